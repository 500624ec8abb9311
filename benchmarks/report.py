"""Cost of the QC report and of opening results, against the number of FOVs.

    python benchmarks/report.py                    # demo (3 FOVs, 16 frames), then 10 and 100 FOVs
    python benchmarks/report.py --repeats 5 --fovs 10,100

Runs ``pyama demo``'s pipeline once, then makes larger runs by copying its FOV folders
(real files, as a run would leave them). For each size it measures, in one process and in
alternation, ``write_report`` (target for the demo: <= 10 s) and ``open_results`` plus
building every FOV's image and label arrays (lazy: no pixel is read, so it must stay far
below reading the pixels). Medians of ``--repeats`` runs, wall and CPU seconds.
Set ``OPENBLAS_NUM_THREADS=1`` for timings on a shared machine.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from pyama_framework import open_results
from pyama_framework.config import load_config
from pyama_framework.demo import write_demo
from pyama_framework.report import write_report
from pyama_framework.runner import run_config
from pyama_framework.store import fov_dirname


def _timed(call) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _grown(demo: Path, n_fovs: int, root: Path) -> Path:
    """A copy of the demo results with ``n_fovs`` FOVs (the demo's FOVs repeated)."""
    target = root / f"results_{n_fovs}"
    if target.exists():
        return target
    target.mkdir()
    shutil.copy2(demo / "processing_config.yaml", target)
    sources = sorted(demo.glob("fov_*"))
    for fov in range(n_fovs):
        source = sources[fov % len(sources)]
        copy = shutil.copytree(source, target / fov_dirname(fov))
        for traces in copy.glob("*_traces.csv"):
            traces.rename(copy / traces.name.replace(source.name, fov_dirname(fov)))
    text = (target / "processing_config.yaml").read_text().replace("fovs: all", f"fovs: 0-{n_fovs - 1}")
    (target / "processing_config.yaml").write_text(text)
    return target


def _open_all(path: Path) -> None:
    r = open_results(path)
    for fov in r.fovs:
        r.images(fov)
        r.labels(fov)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fovs", default="10,100", help="larger runs to build by copying FOVs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyama-report-bench-") as tmp:
        root = Path(tmp)
        config = write_demo(root / "demo", workers=1)
        assert run_config(load_config(config)).ok
        demo = root / "demo" / "results"
        sizes = [("demo (3 FOVs)", demo)] + [(f"{n} FOVs", _grown(demo, n, root))
                                             for n in map(int, args.fovs.split(","))]
        print(f"{'run':<16}{'report wall':>12}{'report cpu':>12}{'open wall':>11}{'open cpu':>10}  (median s)")
        for label, path in sizes:
            report, opened = [], []
            for _ in range(args.repeats):  # alternate the two, so machine load hits both alike
                report.append(_timed(lambda: write_report(path, root / "report.html")))
                opened.append(_timed(lambda: _open_all(path)))
            med = [statistics.median(v) for v in (*zip(*report), *zip(*opened))]
            print(f"{label:<16}{med[0]:>12.2f}{med[1]:>12.2f}{med[2]:>11.2f}{med[3]:>10.2f}")


if __name__ == "__main__":
    main()
