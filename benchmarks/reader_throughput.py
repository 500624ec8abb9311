"""Read and copy throughput and peak memory of the built-in readers on ~1 GB files.

For each format a file of about ``--size-mb`` MB (uint16, 2 FOVs x 2 channels x T frames of
2048 x 2048) is written with the format's own tooling (the test ND2 encoder, pylibCZIrw,
tifffile). A fresh process then copies it frame by frame through our reader into a zarr v3
array per (FOV, channel), one chunk per frame, like pyama's copy stage, and reports the time
and its peak resident memory (``resource.getrusage``). Memory is also reported without the
file pages the reader maps (peak anonymous memory, sampled), because a memory-mapped file's
pages count towards the resident size although the kernel can drop them at any time.

Usage::

    python benchmarks/reader_throughput.py                 # all formats, 1024 MB each
    python benchmarks/reader_throughput.py --size-mb 256 --formats nd2,czi
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HEIGHT = WIDTH = 2048
N_FOVS, N_CHANNELS = 2, 2
FORMATS = {"nd2": "movie.nd2", "czi": "movie.czi", "ome-tiff": "movie.ome.tif", "tiff": "movie.tif"}


class SyntheticMovie:
    """A lazy (P, T, C, Y, X) uint16 movie: a smooth background with noise, cheap to render."""

    def __init__(self, n_frames: int) -> None:
        self.shape = (N_FOVS, n_frames, N_CHANNELS, HEIGHT, WIDTH)
        self.dtype = np.dtype("uint16")
        rng = np.random.default_rng(0)
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        self._base = (1000 + 0.2 * y + 0.1 * x).astype(np.uint16)
        self._noise = rng.integers(0, 64, (8, HEIGHT, WIDTH), dtype=np.uint16)

    def frame(self, p: int, t: int, c: int) -> np.ndarray:
        return self._base + self._noise[(p * 5 + t * 3 + c) % 8] + np.uint16(100 * c + t)

    def __getitem__(self, index: tuple[int, int]) -> np.ndarray:
        p, t = index
        return np.stack([self.frame(p, t, c) for c in range(N_CHANNELS)])


def write_file(fmt: str, path: Path, movie: SyntheticMovie) -> None:
    n_frames = movie.shape[1]
    if fmt == "nd2":
        from pyama_framework.testing.nd2_writer import write_nd2

        write_nd2(path, movie, channel_names=("phase", "gfp"))
    elif fmt == "czi":
        from pylibCZIrw import czi as pyczi

        with pyczi.create_czi(str(path), exist_ok=True) as czi:
            for p in range(N_FOVS):
                for t in range(n_frames):
                    for c in range(N_CHANNELS):
                        czi.write(movie.frame(p, t, c), plane={"T": t, "C": c}, scene=p, location=(3000 * p, 0))
            czi.write_metadata(channel_names={0: "phase", 1: "gfp"}, scale_x=0.65e-6, scale_y=0.65e-6)
    elif fmt == "ome-tiff":
        import tifffile

        with tifffile.TiffWriter(path, ome=True, bigtiff=True) as tif:
            for p in range(N_FOVS):
                pages = (movie.frame(p, t, c) for t in range(n_frames) for c in range(N_CHANNELS))
                tif.write(pages, shape=(n_frames, N_CHANNELS, HEIGHT, WIDTH), dtype=movie.dtype,
                          metadata={"axes": "TCYX", "Channel": {"Name": ["phase", "gfp"]}})
    elif fmt == "tiff":  # a plain page stack: needs reader_params axes
        import tifffile

        with tifffile.TiffWriter(path, bigtiff=True) as tif:
            for p in range(N_FOVS):
                for t in range(n_frames):
                    for c in range(N_CHANNELS):
                        tif.write(movie.frame(p, t, c), contiguous=True, metadata=None)


def copy_file(path: Path, out: Path, params: dict) -> dict:
    """Copy every frame through the selected reader into zarr; runs in its own process."""
    from pyama_framework.config import StorageConfig
    from pyama_framework.store import FovStore

    from pyama_framework.readers import open_reader, select_reader
    from pyama_framework.registry import discover

    anon_peak = _AnonymousMemoryPeak()
    registration = select_reader(path, discover())
    _evict_from_page_cache(path)
    with open_reader(path, registration, params) as reader:  # read only, from disk
        meta = reader.metadata
        start = time.perf_counter()
        for fov in range(meta.n_fovs):
            for channel in range(meta.n_channels):
                for t in range(meta.n_frames):
                    reader.read_frame(fov, t, channel)
        read_seconds = time.perf_counter() - start
    _evict_from_page_cache(path)
    start = time.perf_counter()
    with open_reader(path, registration, params) as reader:  # read and store, like pyama's copy
        meta = reader.metadata
        for fov in range(meta.n_fovs):
            store = FovStore(out, fov, StorageConfig())  # the copy stage's store, default codec
            for channel in range(meta.n_channels):
                array = store.create_stack(f"ch_{channel}", (meta.n_frames, meta.height, meta.width), meta.dtype)
                for t in range(meta.n_frames):
                    array[t] = reader.read_frame(fov, t, channel)
    seconds = time.perf_counter() - start
    anon_peak.stop()
    return {
        "reader": registration.name,
        "read_seconds": read_seconds,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_anon_mb": anon_peak.peak_kb / 1024,
    }


def _evict_from_page_cache(path: Path) -> None:
    """Drop the file's cached pages (no root needed) so reads come from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class _AnonymousMemoryPeak:
    """Sample RssAnon (memory that is not file pages) every 20 ms; keep the maximum."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--copy", type=Path, help=argparse.SUPPRESS)  # child process: copy this file
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.copy:
        print(json.dumps(copy_file(args.copy, args.copy.with_suffix(".zarr"), json.loads(args.params))))
        return

    frame_mb = HEIGHT * WIDTH * 2 / 2**20
    n_frames = max(1, round(args.size_mb / (frame_mb * N_FOVS * N_CHANNELS)))
    movie = SyntheticMovie(n_frames)
    work = args.dir or Path(tempfile.mkdtemp(prefix="pyama-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{N_FOVS} FOVs x {n_frames} frames x {N_CHANNELS} channels of {HEIGHT}x{WIDTH} uint16 in {work}")
    print("read: frames read from disk through the reader; copy: read + stored into zarr (pyama's default codec), one chunk "
          "per frame, from disk; both cold (file evicted from the page cache first)")
    print(f"{'format':<9} {'reader':<6} {'file MB':>8} {'write s':>8} {'read MB/s':>10} {'copy s':>7} "
          f"{'copy MB/s':>10} {'peak RSS MB':>12} {'peak anon MB':>13}")
    try:
        for fmt in args.formats.split(","):
            path = work / FORMATS[fmt]
            start = time.perf_counter()
            write_file(fmt, path, movie)
            written = time.perf_counter() - start
            params = {"axes": "PTCYX", "sizes": {"P": N_FOVS, "C": N_CHANNELS}} if fmt == "tiff" else {}
            child = subprocess.run([sys.executable, __file__, "--copy", str(path), "--params", json.dumps(params)],
                                   capture_output=True, text=True, check=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            size_mb = path.stat().st_size / 2**20
            print(f"{fmt:<9} {result['reader']:<6} {size_mb:8.0f} {written:8.1f} "
                  f"{size_mb / result['read_seconds']:10.0f} {result['seconds']:7.1f} "
                  f"{size_mb / result['seconds']:10.0f} {result['peak_rss_mb']:12.0f} {result['peak_anon_mb']:13.0f}",
                  flush=True)
            path.unlink()
            shutil.rmtree(path.with_suffix(".zarr"), ignore_errors=True)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
