"""Throughput and peak memory of ``pipeline: lightsheet`` on a full-size IsoView volume.

Writes (once, reused from ``--data``) a synthetic IsoView tree: ``SPM00/TM00000/`` with one
2048 x 2048 x 543 uint16 ``.stack`` per camera (4.3 GB each, written plane by plane, with
planted dead pixels) plus its ``ch0.xml``, and a ``Background_<camera>.tif`` per camera.
Then runs ``pyama run`` on it in a fresh process (one worker) and reports:

- peak resident memory of that process (``getrusage``; the ``.stack`` reader reads planes
  with ``np.fromfile``, so no file pages are mapped into it);
- the seconds of each stage (from the stage records) and the throughput in MB/s of raw
  input: input bytes / (calibrate + correct) and / the whole run;
- recall and false positives of the dead-pixel detection against the planted pixels;
- the same figures for a plain copy (read every plane, write the same sharded lz4 zarr), the
  floor any pipeline writing these volumes pays, and CPU seconds next to wall seconds: on a
  shared machine wall time stretches with the load, CPU time much less.

The volume was just written, so it is mostly in the page cache: the figure is processing
throughput, not disk speed. Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py                # 1 camera, 2048 x 2048 x 543
    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py --cameras 2
    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py --small        # 512 x 512 x 64, seconds
    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py --planes 160 --data /dev/shm/pyama-ls

The last keeps input and output in memory (tmpfs, ~2.4 GB): processing throughput without
the disk, which on a shared machine can be the whole difference between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyama_framework.testing.lightsheet_files import isoview_xml  # noqa: E402
from pyama_framework.testing.lightsheet_volume import (  # noqa: E402
    DeadPixels,
    SyntheticVolume,
    write_background_tiff,
)


def write_dataset(root: Path, shape: tuple[int, int, int], cameras: int) -> dict[int, DeadPixels]:
    """The IsoView tree, plane by plane; skipped when a complete one is already there."""
    n_z, height, width = shape
    dead = {cam: DeadPixels.plant((height, width), 5e-4, seed=40 + cam) for cam in range(cameras)}
    marker = root / "complete.json"
    spec = {"shape": list(shape), "cameras": cameras}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return dead
    shutil.rmtree(root, ignore_errors=True)
    folder = root / "TM00000" / "ANG000"
    folder.mkdir(parents=True)
    dims = ",".join(f"{width}x{height}x{n_z}" for _ in range(cameras))
    (root / "TM00000" / "ch0.xml").write_text(isoview_xml(
        dims, camera_index=",".join(str(c) for c in range(cameras)), z_step="2.0", pixel_size="0.406",
        time_point="0", timestamp="1700000000.0"))
    volume = SyntheticVolume(n_z, height, width, seed=1)
    for cam in range(cameras):
        started = time.perf_counter()
        with open(folder / f"SPC00_TM00000_ANG000_CM{cam}_CHN00_PH0.stack", "wb") as fh:
            for plane in volume.planes(0, cam, dead[cam]):
                fh.write(plane.astype("<u2").tobytes())
        write_background_tiff(root / f"Background_{cam}.tif", (height, width), volume.offset, seed=cam)
        print(f"wrote camera {cam}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    marker.write_text(json.dumps(spec))
    return dead


COPY_BASELINE = """
import sys, numpy as np, zarr
from pathlib import Path
from pyama_framework.readers import open_reader
from pyama_framework.registry import get_registry
from pyama_framework.store import compressors
from pyama_framework.config import StorageConfig
from pyama_builtin.lightsheet.volume_store import clip_blocks
root, out, slab = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
with open_reader(root, get_registry().get("reader", "isoview_stack"), {}) as reader:
    m = reader.metadata
    chunks, shards = clip_blocks((1, 256, 256), (16, 2048, 2048), (m.n_z, m.height, m.width))
    for v in range(m.n_channels):
        array = zarr.create_array(out / f"view{v}", shape=(m.n_z, m.height, m.width), dtype=m.dtype, chunks=chunks,
                                  shards=shards, compressors=compressors(StorageConfig()), overwrite=True,
                                  config={"write_empty_chunks": True})
        for z0 in range(0, m.n_z, shards[0]):
            array[z0:z0 + shards[0]] = reader.read_planes(0, 0, v, z0, min(z0 + shards[0], m.n_z))
"""


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def copy_baseline(root: Path, out: Path, slab: int) -> dict:
    """The floor: read every plane and write it to the same sharded lz4 zarr, no processing."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cpu, started = cpu_seconds(), time.perf_counter()
    subprocess.run([sys.executable, "-c", COPY_BASELINE, str(root), str(out), str(slab)], check=True)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    shutil.rmtree(out)  # not needed any more: frees its space (in tmpfs, its memory) for the run
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def run(root: Path, out: Path, slab: int, diagnostics: bool) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = {"input": str(root), "output": str(out / "results"), "pipeline": "lightsheet",
              "pipeline_params": {"slab": slab, "diagnostics": diagnostics}, "execution": {"workers": 1}}
    (out / "run.yaml").write_text(yaml.safe_dump(config))
    cpu, started = cpu_seconds(), time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pyama_framework", "run", str(out / "run.yaml")],
                            capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    if result.returncode != 0:
        raise SystemExit(f"run failed:\n{result.stderr}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    records = out / "results" / "fov_000" / ".pyama"
    stages = {name: json.loads((records / f"{name}.json").read_text())["seconds"]
              for name in ("calibrate", "correct", "diagnostics") if (records / f"{name}.json").exists()}
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak_mb), "stage_s": stages}


def dead_pixel_scores(out: Path, dead: dict[int, DeadPixels], shape: tuple[int, int]) -> dict:
    from pyama_builtin.lightsheet.results import open_lightsheet_results

    results = open_lightsheet_results(out / "results")
    scores = {}
    for v, cam in enumerate(sorted(dead)):
        found = results.calibration("dead_pixels")[0, v]
        truth = dead[cam].map(shape)
        scores[f"cam{cam}"] = {"planted": int(truth.sum()), "recall": round(float((found & truth).sum() / truth.sum()), 4),
                               "false_positive_rate": float((found & ~truth).sum() / (~truth).sum())}
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="512 x 512 x 64 instead of 2048 x 2048 x 543")
    parser.add_argument("--cameras", type=int, default=1)
    parser.add_argument("--slab", type=int, default=16)
    parser.add_argument("--diagnostics", action="store_true", help="also time the PNGs")
    parser.add_argument("--planes", type=int, default=543,
                        help="Z planes of the 2048 x 2048 volume (fewer fit in tmpfs: --data /dev/shm/...)")
    parser.add_argument("--data", type=Path, default=Path("/tmp/pyama-bench-lightsheet"))
    args = parser.parse_args()
    shape = (64, 512, 512) if args.small else (args.planes, 2048, 2048)
    name = "small" if args.small else ("full" if args.planes == 543 else f"z{args.planes}")
    root = args.data / name / "SPM00"
    dead = write_dataset(root, shape, args.cameras)
    load_before = os.getloadavg()[0]
    baseline = copy_baseline(root, args.data / "copy", args.slab)
    report = run(root, args.data / "out", args.slab, args.diagnostics)
    raw_mb = args.cameras * np.prod(shape) * 2 / 1e6
    processing = report["stage_s"]["calibrate"] + report["stage_s"]["correct"]
    report.update({
        "volume_zyx": list(shape), "cameras": args.cameras, "slab": args.slab, "raw_input_mb": round(raw_mb),
        "throughput_mb_s": round(raw_mb / processing, 1),
        "throughput_whole_run_mb_s": round(raw_mb / report["wall_s"], 1),
        # CPU seconds do not stretch when other processes share the cores, wall time does:
        # raw MB per CPU second is what one worker with a core to itself would approach.
        "mb_per_cpu_s": round(raw_mb / report["cpu_s"], 1),
        "copy_baseline": {**baseline, "mb_per_cpu_s": round(raw_mb / baseline["cpu_s"], 1),
                          "mb_s": round(raw_mb / baseline["wall_s"], 1)},
        "pipeline_over_copy_cpu": round(report["cpu_s"] / baseline["cpu_s"], 2),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "dead_pixels": dead_pixel_scores(args.data / "out", dead, shape[1:]),
    })
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
