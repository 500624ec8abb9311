"""How `pyama run` scales with workers, executors and FOVs (issue 8's scaling targets).

Writes one multi-FOV synthetic OME-TIFF (small frames so that it finishes in minutes), then
times whole `pyama run` processes, alternating the variants of each comparison in one
session and quoting medians, so that the ratios hold on a shared machine:

- workers: 4 FOVs with 1 and 2 local workers (target on 2 cores: >= 1.8x);
- executors: 4 FOVs, the dask LocalCluster executor against the local one at the same
  number of workers (target: within 10 %); needs the dask executor and the `dask` extra;
- FOVs: seconds per FOV with 4 and 16 FOVs at 2 workers (target: flat).

    python benchmarks/scaling.py                        # all three, 3 repeats
    python benchmarks/scaling.py --only workers --repeats 5
    python benchmarks/scaling.py --executor dask        # the executor comparison only

Set OPENBLAS_NUM_THREADS=1 for timings on a shared machine. Each FOV runs on one thread
(`frame_threads: 1`), so that the comparisons measure FOV parallelism alone: by default a
lone worker would already spread a FOV's frames over the free cores
(`--frame-threads 0` keeps that default).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_input(folder: Path, n_fovs: int, size: int, frames: int, cells: int) -> Path:
    from pyama_framework.testing.synthetic import SyntheticScene, write_ome_tiff

    path = folder / f"scaling_{n_fovs}fov_{size}_{frames}.ome.tif"
    if not path.exists():
        scenes = [SyntheticScene(height=size, width=size, n_frames=frames, n_cells=cells, n_fluorescence=1,
                                 seed=100 + fov) for fov in range(n_fovs)]
        write_ome_tiff(path, scenes)
    return path


FRAME_THREADS = {"frame_threads": 1}  # set from --frame-threads in main()


def _children_cpu() -> float:
    """CPU seconds (user + sys) of the finished child processes: a `pyama run` process and every
    process it waited for (local workers; dask's nannies, workers and scheduler)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(input_path: Path, folder: Path, workers: int, executor: str = "local") -> float:
    """Seconds of one whole `pyama run` process on a fresh output."""
    output = folder / f"out_{executor}_{workers}"
    shutil.rmtree(output, ignore_errors=True)
    config = folder / f"scaling_{executor}_{workers}.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "input": str(input_path), "output": str(output),
        "channels": {"pc": {"channel": 0, "features": ["area"]},
                     "fl": [{"channel": 1, "features": ["intensity_total"]}]},
        "extraction": {"min_frames": 1},
        "execution": {"executor": executor, "workers": workers, **FRAME_THREADS},
    }))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pyama_framework", "run", str(config)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"pyama run with executor {executor!r}, {workers} worker(s) failed: {last}")
    return seconds


def alternate(variants: dict[str, callable], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, measure in variants.items():
            before = _children_cpu()
            times[name].append(measure())
            cpu[name].append(_children_cpu() - before)
    for name, values in cpu.items():
        print(f"  CPU s (all processes) {name:<20} median {statistics.median(values):7.2f}   runs: "
              f"{', '.join(f'{v:.1f}' for v in values)}")
    return times


def show(title: str, times: dict[str, list[float]], per: dict[str, int] | None = None) -> dict[str, float]:
    print(f"\n{title}")
    medians = {}
    for name, values in times.items():
        medians[name] = statistics.median(values) / (per or {}).get(name, 1)
        unit = " per FOV" if per else ""
        print(f"  {name:<28}{medians[name]:8.2f} s{unit}   runs: {', '.join(f'{v:.1f}' for v in values)}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["workers", "executor", "fovs"], action="append")
    parser.add_argument("--executor", default=None, help="compare this executor with 'local' (e.g. dask)")
    parser.add_argument("--size", type=int, default=1024, help="frame side (px)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--cells", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pyama-scaling")
    parser.add_argument("--frame-threads", type=int, default=1,
                        help="execution.frame_threads of every run (0: the default, cores per running FOV)")
    args = parser.parse_args()
    FRAME_THREADS.clear()
    if args.frame_threads:
        FRAME_THREADS["frame_threads"] = args.frame_threads
    args.workdir.mkdir(parents=True, exist_ok=True)
    parts = args.only or (["executor"] if args.executor else ["workers", "executor", "fovs"])
    executor = args.executor or "dask"
    four = make_input(args.workdir, 4, args.size, args.frames, args.cells)
    print(f"{args.size} x {args.size}, {args.cells} cells, {args.frames} frames per FOV; whole `pyama run` "
          f"processes, medians of {args.repeats} alternated runs")

    if "workers" in parts:
        times = alternate({"1 worker": lambda: run(four, args.workdir, 1),
                           "2 workers": lambda: run(four, args.workdir, 2)}, args.repeats)
        m = show("4 FOVs, local executor", times)
        print(f"  speed-up 1 -> 2 workers: {m['1 worker'] / m['2 workers']:.2f}x (target >= 1.8x)")
    if "executor" in parts:
        times = alternate({"local, 2 workers": lambda: run(four, args.workdir, 2),
                           f"{executor}, 2 workers": lambda: run(four, args.workdir, 2, executor)}, args.repeats)
        m = show(f"4 FOVs, {executor} against local", times)
        print(f"  {executor} / local: {m[f'{executor}, 2 workers'] / m['local, 2 workers']:.2f} (target within 10 %)")
    if "fovs" in parts:
        sixteen = make_input(args.workdir, 16, args.size, args.frames, args.cells)
        times = alternate({"4 FOVs": lambda: run(four, args.workdir, 2),
                           "16 FOVs": lambda: run(sixteen, args.workdir, 2)}, args.repeats)
        m = show("2 local workers, seconds per FOV", times, per={"4 FOVs": 4, "16 FOVs": 16})
        print(f"  per FOV, 16 / 4 FOVs: {m['16 FOVs'] / m['4 FOVs']:.2f} (target: flat, <= 1)")


if __name__ == "__main__":
    main()
