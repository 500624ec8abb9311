"""Speed and memory of the whole pipeline on one large FOV (issue 3's benchmark).

Generates a 2048 x 2048, 600-cell synthetic FOV (phase + 1 fluorescence channel) as
OME-TIFF, runs the full pipeline with the built-in defaults in one worker, and reports per
stage the seconds per frame and the peak RSS while the stage ran, then the whole run.
Each T is measured in a fresh process so the peaks do not mix.

    python benchmarks/pipeline.py                 # T = 30 and T = 60
    python benchmarks/pipeline.py --frames 30     # one size only

pyama-core 0.1.0 on the same kind of FOV (shared/spec/pyama-core-facts.md): 353 s for the
pipeline (~11.8 s/frame), 3.0 GB peak RSS. Targets: <= 0.4 s/frame, <= 500 MB, flat in T.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WORKLOAD = {"height": 2048, "width": 2048, "n_cells": 600}
# The stages pyama-core's published timing covers (its own segmentation, tracking,
# background and extraction functions); copy, crop and cache come on top.
CORE_STAGES = ("segment", "track", "background", "extract")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_input(folder: Path, frames: int) -> Path:
    from pyama_framework.testing.synthetic import SyntheticScene, write_ome_tiff

    path = folder / f"bench_{frames}.ome.tif"
    if not path.exists():
        scene = SyntheticScene(n_frames=frames, n_fluorescence=1, seed=7, **WORKLOAD)
        write_ome_tiff(path, [scene])
    return path


def measure(input_path: Path, output: Path, frames: int) -> dict:
    """Run the pipeline in this process; sample RSS per stage."""
    from pyama_framework.config import RunConfig
    from pyama_framework.runner import execute, plan_run, prepare_output

    config = RunConfig.model_validate({
        "input": str(input_path), "output": str(output),
        "channels": {"pc": {"channel": 0, "features": ["area", "aspect_ratio"]},
                     "fl": [{"channel": 1, "features": ["intensity_total", "intensity_mean"]}]},
        "extraction": {"min_frames": 1},
        "execution": {"workers": 1},
    })
    current = {"stage": "setup"}
    peaks: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            stage = current["stage"]
            peaks[stage] = max(peaks.get(stage, 0.0), rss_mb())
            time.sleep(0.005)

    def progress(fov, stage, done, total):
        current["stage"] = stage

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    plan = plan_run(config)
    prepare_output(plan, overwrite=True)
    summary = execute(plan, progress)
    total = time.perf_counter() - started
    stop.set()
    sampler.join()
    outcome = summary.outcomes[0]
    assert outcome.status == "done", outcome.error
    records = output / "fov_000" / ".pyama"
    stages = {}
    for record in sorted(records.glob("*.json"), key=lambda p: p.stat().st_mtime):
        seconds = json.loads(record.read_text())["seconds"]
        stages[record.stem] = {"s_per_frame": seconds / frames, "peak_rss_mb": peaks.get(record.stem, 0.0)}
    return {"frames": frames, "stages": stages, "total_s": total, "s_per_frame": total / frames,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cells": outcome.info.get("extract_cells")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="*", default=[30, 60])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pyama-bench")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        path = make_input(args.workdir, args.child)
        print(json.dumps(measure(path, args.workdir / f"out_{args.child}", args.child)))
        return
    for frames in args.frames:
        make_input(args.workdir, frames)  # generated outside the measured process
        result = subprocess.run([sys.executable, __file__, "--child", str(frames), "--workdir", str(args.workdir)],
                                capture_output=True, text=True, check=True)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"\n2048 x 2048, 600 cells, T = {frames}: {report['cells']} cells traced")
        print(f"{'stage':<12}{'s/frame':>10}{'peak RSS MB':>14}")
        for stage, row in report["stages"].items():
            print(f"{stage:<12}{row['s_per_frame']:>10.3f}{row['peak_rss_mb']:>14.0f}")
        core = sum(report["stages"][s]["s_per_frame"] for s in CORE_STAGES if s in report["stages"])
        print(f"{'core stages':<12}{core:>10.3f}{'':>14}   (segment+track+background+extract: "
              f"what pyama-core's 11.8 s/frame covers)")
        print(f"{'pipeline':<12}{report['s_per_frame']:>10.3f}{report['peak_rss_mb']:>14.0f}"
              f"   (all stages, {report['total_s']:.1f} s; pyama-core: 3000 MB)")


if __name__ == "__main__":
    main()
