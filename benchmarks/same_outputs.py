"""Are two pipeline outputs the same? Compares every zarr array (decoded values, shape and
dtype) and every CSV (bytes) of one output folder with another's.

    python benchmarks/same_outputs.py OUT_A OUT_B

Used to show that a speed change leaves results alone (e.g. the outputs of
`benchmarks/pipeline.py --baseline`: /tmp/pyama-bench/out_base_2048_30 and out_this_2048_30).
Stage records and processing_config.yaml differ by timings and paths and are not compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import zarr


def differences(a: Path, b: Path) -> tuple[int, list[str]]:
    compared, differ = 0, []
    for table in sorted(a.rglob("*.csv")):
        relative = table.relative_to(a)
        compared += 1
        other = b / relative
        if not other.is_file() or table.read_bytes() != other.read_bytes():
            differ.append(str(relative))
    for meta in sorted(a.rglob("zarr.json")):
        if json.loads(meta.read_text()).get("node_type") != "array":
            continue
        relative = meta.parent.relative_to(a)
        compared += 1
        if not (b / relative / "zarr.json").is_file():
            differ.append(str(relative))
            continue
        x = zarr.open_array(meta.parent, mode="r")[...]
        y = zarr.open_array(b / relative, mode="r")[...]
        if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
            differ.append(str(relative))
    return compared, differ


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python benchmarks/same_outputs.py OUT_A OUT_B")
    compared, differ = differences(Path(sys.argv[1]), Path(sys.argv[2]))
    for name in differ:
        print("differs:", name)
    print(f"{compared} arrays and tables compared, {len(differ)} differ")
    raise SystemExit(1 if differ or compared == 0 else 0)


if __name__ == "__main__":
    main()
