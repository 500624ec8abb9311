"""The spec's codec table on two inputs, through ``pyama storage bench``'s code path.

1. A light-sheet-like volume (synthetic, ``lightsheet_plane``: a specimen with shot noise
   over camera read noise, compressing like the spec's real stack) written as an IsoView ``.stack`` + XML tree and read back
   through the ``isoview_stack`` reader: ``--planes`` Z planes of 2048 x 2048 uint16.
2. Real time-lapse movies (cached public data, ``docs/datasets.md``): the DeLTA ND2
   (10 frames, 520 x 696 uint16 phase contrast) and the CTC PhC-C2DL-PSC movie
   (50 frames, 576 x 720 uint8), read through their readers.

Each codec is written unsharded (one chunk per plane) and sharded (10 chunks per shard),
read back and checked; medians over ``--repeats``. Prints markdown tables.

    OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=Haswell python benchmarks/storage_codecs.py
    python benchmarks/storage_codecs.py --planes 64 --repeats 3 --json storage.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from klb_read import synthetic_volume  # noqa: E402

from pyama_framework.readers import open_reader, select_reader  # noqa: E402
from pyama_framework.registry import discover  # noqa: E402
from pyama_framework.storage_bench import DEFAULT_CODECS, bench, markdown_table, read_sample  # noqa: E402
from pyama_framework.testing import datasets  # noqa: E402
from pyama_framework.testing.lightsheet_files import write_isoview_tree  # noqa: E402


def sample_of(path: Path, planes: int) -> tuple[np.ndarray, str]:
    registry = discover()
    with open_reader(path, select_reader(path, registry)) as reader:
        return read_sample(reader, 0, planes, max_mb=4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=32, help="Z planes of the 2048 x 2048 light-sheet volume")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--codecs", default=",".join(DEFAULT_CODECS))
    parser.add_argument("--only", default="lightsheet,delta,psc")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    codecs = tuple(args.codecs.split(","))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {}
        if "lightsheet" in args.only:
            vol = synthetic_volume((args.planes, 2048, 2048), seed=0)
            inputs["lightsheet"] = write_isoview_tree(Path(tmp) / "SPM00", {(0, 0, 0): vol}) / "TM00000"
            del vol
        if "delta" in args.only:
            inputs["delta"] = datasets.path("nd2_delta")
        if "psc" in args.only:  # the CTC movie ships as one TIFF per frame: stack them into one file
            movie = datasets.load_movie("psc")
            inputs["psc"] = Path(tmp) / "psc.tif"
            tifffile.imwrite(inputs["psc"], movie.images, metadata={"axes": "TYX"})
        for name, path in inputs.items():
            sample, what = sample_of(path, args.planes if name == "lightsheet" else 1000)
            rows = bench(sample, codecs, frames_per_shard=10, repeats=args.repeats,
                         progress=lambda c, lvl, sh: print(f"  {name}: {c}-{lvl} {'sharded' if sh else 'no-shard'} done", file=sys.stderr, flush=True))
            results[name] = {"sample": what, "shape": list(sample.shape), "dtype": str(sample.dtype),
                             "rows": [r.as_dict() for r in rows]}
            print(f"\n## {name}: {what}, {sample.shape} {sample.dtype}, {sample.nbytes / 1e6:.1f} MB\n")
            print(markdown_table(rows), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
