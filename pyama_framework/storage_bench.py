"""Measure zarr v3 codecs on the user's own pixels: size, ratio, write and read speed.

``pyama storage bench`` reads a bounded sample of an input file through its reader (the Z
planes of one volume, or the first frames of a movie), then writes it once per codec,
unsharded (one chunk per frame/plane) and sharded (``frames_per_shard`` chunks per shard
object), reads it back and checks the pixels are unchanged. Both layouts are written in the
same shard-sized batches, as a streaming writer that buffers one shard does.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .readers import Reader
from .storage_codecs import codec_chain, parse_codec_spec, shard_shape

DEFAULT_CODECS = ("zstd-3", "zstd-5", "zstd-9", "lz4-1", "lz4-5", "lz4hc-9", "gzip-6", "bzip2-9", "none")


@dataclass(frozen=True)
class BenchRow:
    """One codec and layout: median times over the repeats."""

    method: str
    codec: str
    level: int
    sharded: bool
    size_mb: float
    ratio: float
    write_s: float
    read_s: float
    raw_mb: float

    @property
    def write_gb_s(self) -> float:
        return self.raw_mb / 1e3 / self.write_s if self.write_s else float("inf")

    @property
    def read_gb_s(self) -> float:
        return self.raw_mb / 1e3 / self.read_s if self.read_s else float("inf")

    def as_dict(self) -> dict:
        return {**asdict(self), "write_gb_s": round(self.write_gb_s, 3), "read_gb_s": round(self.read_gb_s, 3)}


def read_sample(reader: Reader, channel: int = 0, max_planes: int = 64, max_mb: float = 256.0) -> tuple[np.ndarray, str]:
    """A bounded (N, H, W) sample: the first Z planes of volume (t=0) when the file has Z,
    else the first frames of FOV 0. Returns it with a description of what was read."""
    meta = reader.metadata
    plane_mb = meta.height * meta.width * np.dtype(meta.dtype).itemsize / 1e6
    limit = max(1, min(max_planes, int(max_mb // plane_mb) if plane_mb else max_planes))
    if meta.n_z > 1:
        n = min(limit, meta.n_z)
        return reader.read_planes(0, 0, channel, 0, n), f"Z planes 0-{n - 1} of time point 0, channel {channel}"
    n = min(limit, meta.n_frames)
    return np.stack([reader.read_frame(0, t, channel, 0) for t in range(n)]), f"frames 0-{n - 1} of FOV 0, channel {channel}"


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _write_read(sample: np.ndarray, folder: Path, codec: str, level: int, frames_per_shard: int,
                sharded: bool) -> tuple[float, float, float]:
    import zarr

    chunks = (1, *sample.shape[1:])
    batch = max(1, frames_per_shard)
    start = time.perf_counter()
    array = zarr.create_array(folder, shape=sample.shape, dtype=sample.dtype, chunks=chunks,
                              shards=shard_shape(chunks, frames_per_shard) if sharded else None,
                              compressors=codec_chain(codec, level), fill_value=0,
                              config={"write_empty_chunks": True})
    for lo in range(0, sample.shape[0], batch):
        array[lo:lo + batch] = sample[lo:lo + batch]
    write_s = time.perf_counter() - start
    size = _folder_mb(folder)
    start = time.perf_counter()
    back = zarr.open_array(folder, mode="r")[...]
    read_s = time.perf_counter() - start
    if not np.array_equal(back, sample):
        raise RuntimeError(f"codec {codec}-{level} did not give the pixels back unchanged")
    return write_s, read_s, size


def bench(sample: np.ndarray, codecs: tuple[str, ...] = DEFAULT_CODECS, frames_per_shard: int = 10,
          repeats: int = 1, folder: Path | None = None, progress=None) -> list[BenchRow]:
    """Write and read ``sample`` with every codec, unsharded and sharded; median over ``repeats``.

    Codecs and layouts alternate inside each repeat so that machine load affects all alike.
    """
    specs = [parse_codec_spec(c) for c in codecs]
    layouts = (False, True) if frames_per_shard > 1 else (False,)
    raw_mb = sample.nbytes / 1e6
    runs: dict[tuple, list[tuple[float, float, float]]] = {}
    base = Path(tempfile.mkdtemp(prefix="pyama-storage-bench-", dir=folder))
    try:
        for _ in range(repeats):
            for codec, level in specs:
                for sharded in layouts:
                    target = base / f"{codec}-{level}-{'s' if sharded else 'u'}.zarr"
                    runs.setdefault((codec, level, sharded), []).append(
                        _write_read(sample, target, codec, level, frames_per_shard, sharded))
                    shutil.rmtree(target)
                    if progress:
                        progress(codec, level, sharded)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    for (codec, level, sharded), values in runs.items():
        write_s = statistics.median(v[0] for v in values)
        read_s = statistics.median(v[1] for v in values)
        size = statistics.median(v[2] for v in values)
        name = f"{'blosc-' if codec in ('lz4', 'lz4hc', 'zstd') else ''}{codec}-{level}-{'sharded' if sharded else 'no-shard'}"
        rows.append(BenchRow(name, codec, level, sharded, round(size, 2), round(raw_mb / size, 3) if size else 0.0,
                             write_s, read_s, round(raw_mb, 2)))
    return rows


def markdown_table(rows: list[BenchRow]) -> str:
    """The rows as the spec's table: method, codec, level, size, ratio, write and read GB/s."""
    lines = ["| Method | Codec | Level | Size (MB) | Ratio | Write (s) | Read (s) | Write GB/s | Read GB/s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r.size_mb, r.method)):
        lines.append(f"| {r.method} | {r.codec} | {r.level} | {r.size_mb:.2f} | {r.ratio:.2f}x | {r.write_s:.2f} | "
                     f"{r.read_s:.2f} | {r.write_gb_s:.3f} | {r.read_gb_s:.3f} |")
    return "\n".join(lines)
