"""Why the same background stage took 2.4 s in one run and 11 s in another (issue 8).

The ``tiled_spline`` background is small matrix products and a linear solve per frame: it
runs in numpy's and scipy's OpenBLAS, each of which starts one thread per core. When more
processes want the cores than there are (the local executor's workers, or anything else on
a shared machine), OpenBLAS threads that wait for each other spin instead of sleeping and
the stage slows down several-fold. This script times the background of 2048 x 2048 / 600
cell frames in worker processes, with the native pools left at their defaults ("default")
and capped at one thread per process ("one", what the executors now set: see
pyama_framework/executors/native_threads.py), for

- 1 worker alone, and
- ``--workers`` (default 2) workers at the same time, as ``execution.workers: 2`` runs,

alternating the two settings (A/B/A/B ...) and quoting medians and their ratio.

    OPENBLAS_CORETYPE=Haswell python benchmarks/native_threads.py [--rounds 3] [--frames 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import json, sys, time
import numpy as np
data = np.load(sys.argv[1])
from pyama_builtin.background.tiled_spline import estimate_background
from threadpoolctl import threadpool_info
image, labels, frames = data["image"], data["labels"], int(sys.argv[2])
estimate_background(image, labels)  # warm-up
times = []
for _ in range(frames):
    start = time.perf_counter()
    estimate_background(image, labels)
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": times, "blas_threads": [i["num_threads"] for i in threadpool_info()]}))
"""


def make_frame(folder: Path) -> Path:
    import numpy as np

    from pyama_framework.testing.synthetic import SyntheticScene

    path = folder / "frame.npz"
    scene = SyntheticScene(height=2048, width=2048, n_cells=600, n_frames=1, n_fluorescence=1, seed=7)
    frame = next(iter(scene.frames()))
    np.savez(path, image=frame.fluorescence[0], labels=frame.labels)
    return path


def run_workers(frame: Path, n: int, capped: bool, frames: int) -> tuple[float, list[int]]:
    """Median seconds per frame over ``n`` concurrent worker processes."""
    from pyama_framework.executors.native_threads import THREAD_ENV_VARS, thread_env

    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV_VARS}
    if capped:
        env.update(thread_env(1))
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(frame), str(frames)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    results = [json.loads(p.communicate()[0]) for p in procs]
    seconds = [s for r in results for s in r["seconds"]]
    return statistics.median(seconds), results[0]["blas_threads"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from pyama_framework.executors.native_threads import available_cores

    print(f"{available_cores()} cores; load average {os.getloadavg()[0]:.1f}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    with tempfile.TemporaryDirectory() as tmp:
        frame = make_frame(Path(tmp))
        for n in (1, args.workers):
            timings: dict[bool, list[float]] = {False: [], True: []}
            threads: dict[bool, list[int]] = {}
            for r in range(args.rounds):
                for capped in ((False, True) if r % 2 == 0 else (True, False)):
                    seconds, threads[capped] = run_workers(frame, n, capped, args.frames)
                    timings[capped].append(seconds)
            default, capped = statistics.median(timings[False]), statistics.median(timings[True])
            print(f"{n} worker(s): default pools {threads[False]} threads: {default:.3f} s/frame "
                  f"(rounds {', '.join(f'{t:.2f}' for t in timings[False])}); one {threads[True]}: "
                  f"{capped:.3f} s/frame (rounds {', '.join(f'{t:.2f}' for t in timings[True])}); "
                  f"default/one = {default / capped:.2f}x")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")
