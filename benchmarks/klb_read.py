"""Full-volume KLB read time: the ``klb`` reader's numpy/bz2 decoder against pyklb (C++).

A camera-like light-sheet uint16 volume is written once with pyklb (its default block size, bzip2,
as the acquisition pipeline writes them), then read whole, alternating the two readers so
that machine load hits both alike. Reported: median seconds, MB/s of raw pixels, and the
ratio ours / pyklb (< 1 = faster than pyklb). Both use the same number of threads.

    OPENBLAS_NUM_THREADS=1 python benchmarks/klb_read.py                 # 64 x 1024 x 1024
    python benchmarks/klb_read.py --shape 543 2048 2048 --repeats 3      # one IsoView camera
    python benchmarks/klb_read.py --threads 1 --json klb.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pyama_builtin.readers.klb import KlbReader
from pyama_framework.testing.lightsheet_files import lightsheet_plane


def synthetic_volume(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """A camera-like light-sheet volume (``lightsheet_plane``: specimen, shot and read noise)."""
    z, y, x = shape
    out = np.empty(shape, dtype=np.uint16)
    for i in range(z):
        out[i] = lightsheet_plane(i, z, y, x, seed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 1024, 1024), metavar=("Z", "Y", "X"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import pyklb

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "SPM00_TM000000_CM00_CHN00.klb"
        data = synthetic_volume(tuple(args.shape))
        pyklb.writefull(data, str(path), numthreads=args.threads, pixelspacing_tczyx=[2.0, 0.406, 0.406])
        del data
        header = pyklb.readheader(str(path))
        raw_mb = np.prod(args.shape) * 2 / 1e6
        times: dict[str, list[float]] = {"python": [], "pyklb": []}
        reference = pyklb.readfull(str(path), args.threads)
        with KlbReader(path, decoder="python", threads=args.threads) as reader:
            ours = reader.read_planes(0, 0, 0, 0, args.shape[0])
        assert np.array_equal(ours, reference), "decoder output differs from pyklb"
        del ours, reference
        for _ in range(args.repeats):  # alternate A/B
            with KlbReader(path, decoder="python", threads=args.threads) as reader:
                start = time.perf_counter()
                reader.read_planes(0, 0, 0, 0, args.shape[0])
                times["python"].append(time.perf_counter() - start)
            start = time.perf_counter()
            pyklb.readfull(str(path), args.threads)
            times["pyklb"].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        result = {
            "shape_zyx": list(args.shape), "raw_MB": round(raw_mb, 1), "file_MB": round(path.stat().st_size / 1e6, 1),
            "block_size_xyzct": [int(b) for b in header["blocksize_tczyx"][::-1]], "threads": args.threads,
            "median_s": {k: round(v, 3) for k, v in med.items()},
            "MB_per_s": {k: round(raw_mb / v, 1) for k, v in med.items()},
            "ratio_python_over_pyklb": round(med["python"] / med["pyklb"], 3),
            "all_s": {k: [round(t, 3) for t in v] for k, v in times.items()},
        }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
