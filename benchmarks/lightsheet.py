"""Throughput and peak memory of ``pipeline: lightsheet`` on a full-size IsoView volume.

Writes (once, reused from ``--data``) a synthetic IsoView tree: ``SPM00/TM00000/`` with one
2048 x 2048 x 543 uint16 ``.stack`` per camera (4.3 GB each, written plane by plane, with
planted dead pixels) plus its ``ch0.xml``, and a ``Background_<camera>.tif`` per camera.
Then runs ``pyama run`` on it in a fresh process (one worker) and reports:

- peak resident memory of that process (``getrusage``; the ``.stack`` reader reads planes
  with ``np.fromfile``, so no file pages are mapped into it);
- the seconds of each stage (from the stage records) and the throughput in MB/s of raw
  input: input bytes / (calibrate + correct) and / the whole run;
- recall and false positives of the dead-pixel detection against the planted pixels.

The volume was just written, so it is mostly in the page cache: the figure is processing
throughput, not disk speed. Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py                # 1 camera, 2048 x 2048 x 543
    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py --cameras 2
    OPENBLAS_NUM_THREADS=1 python benchmarks/lightsheet.py --small        # 512 x 512 x 64, seconds
"""

from __future__ import annotations

import argparse
import json
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


def run(root: Path, out: Path, slab: int, diagnostics: bool) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = {"input": str(root), "output": str(out / "results"), "pipeline": "lightsheet",
              "pipeline_params": {"slab": slab, "diagnostics": diagnostics}, "execution": {"workers": 1}}
    (out / "run.yaml").write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pyama_framework", "run", str(out / "run.yaml")],
                            capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"run failed:\n{result.stderr}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    records = out / "results" / "fov_000" / ".pyama"
    stages = {name: json.loads((records / f"{name}.json").read_text())["seconds"]
              for name in ("calibrate", "correct", "diagnostics") if (records / f"{name}.json").exists()}
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb), "stage_s": stages}


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
    parser.add_argument("--data", type=Path, default=Path("/tmp/pyama-bench-lightsheet"))
    args = parser.parse_args()
    shape = (64, 512, 512) if args.small else (543, 2048, 2048)
    root = args.data / ("small" if args.small else "full") / "SPM00"
    dead = write_dataset(root, shape, args.cameras)
    report = run(root, args.data / "out", args.slab, args.diagnostics)
    raw_mb = args.cameras * np.prod(shape) * 2 / 1e6
    processing = report["stage_s"]["calibrate"] + report["stage_s"]["correct"]
    report.update({
        "volume_zyx": list(shape), "cameras": args.cameras, "slab": args.slab, "raw_input_mb": round(raw_mb),
        "throughput_mb_s": round(raw_mb / processing, 1),
        "throughput_whole_run_mb_s": round(raw_mb / report["wall_s"], 1),
        "dead_pixels": dead_pixel_scores(args.data / "out", dead, shape[1:]),
    })
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
