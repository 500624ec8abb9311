"""Speed and accuracy of ``pyama fit`` with ``maturation``, and of pyama-core's fit on the same traces.

Simulates N cells x 180 points (every 10 min, 30 h) from the maturation model with known
per-cell parameters and Gaussian noise sigma = peak / SNR, writes them as a traces CSV, and
times the real command ``pyama fit`` (reading the CSV, fitting in worker processes, writing
the results). With a pyama-core checkout, its ``fit_trace_data`` (one cell at a time, in one
process) fits the same traces, in hours, with its own defaults.

    python benchmarks/fitting.py                                  # 10 000 cells, 2 workers
    python benchmarks/fitting.py --pyama-core PATH                # PATH: pyama-core/src of a checkout
    python benchmarks/fitting.py --cells 2000 --core-cells 500    # pyama-core on a subset (time scaled)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

T_MINUTES = np.arange(180) * 10.0


def simulate(n: int, snr: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Traces (per-FOV CSV columns) and the true parameters of ``n`` cells."""
    from pyama_builtin.fitting.models import maturation

    rng = np.random.default_rng(seed)
    truth = pd.DataFrame({
        "fov": np.arange(n) // 1000, "cell": np.arange(n) % 1000 + 1,
        "t0": rng.uniform(-0.8, 0.8, n), "ktl": 10 ** rng.uniform(2, 4, n),
        "delta": 10 ** rng.uniform(np.log10(0.05), np.log10(0.5), n), "offset": rng.uniform(-50, 50, n)})
    values = np.empty((n, T_MINUTES.size))
    for i, row in enumerate(truth.itertuples()):
        clean = maturation(T_MINUTES / 60, row.t0, row.ktl, row.delta, row.offset, 1.28, 5.22e-3, 1.0)
        values[i] = clean + rng.normal(0, np.abs(clean - row.offset).max() / snr, T_MINUTES.size)
    traces = pd.DataFrame({
        "fov": np.repeat(truth["fov"], T_MINUTES.size), "cell": np.repeat(truth["cell"], T_MINUTES.size),
        "parent": 0, "frame": np.tile(np.arange(T_MINUTES.size), n), "time": np.tile(T_MINUTES, n),
        "good": True, "intensity_total_ch_1": values.ravel()})
    return traces, truth


def accuracy(fitted: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    merged = truth.merge(fitted, on=["fov", "cell"], suffixes=("_true", ""))
    out = {"cells": len(merged), "success": float(merged["success"].mean())}
    for name in ("ktl", "delta"):
        out[f"{name}_within_5pct"] = float(np.mean(np.abs(merged[name] / merged[f"{name}_true"] - 1) < 0.05))
    return out


def run_pyama(traces_csv: Path, workers: int) -> tuple[pd.DataFrame, float, float]:
    """Fitted table, wall seconds and CPU seconds (the command and its worker processes)."""
    from pyama_framework.fitting import read_fitted

    output = traces_csv.with_name("fitted.csv")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pyama_framework", "fit", str(traces_csv), "--model", "maturation",
                           "--feature", "intensity_total", "--channel", "1", "--workers", str(workers),
                           "--output", str(output)], capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if done.returncode:
        raise SystemExit(done.stderr)
    return read_fitted(output)[0], seconds, cpu


def run_pyama_core(src: Path, traces: pd.DataFrame, cells: int) -> tuple[pd.DataFrame, float]:
    """pyama-core's ``fit_trace_data`` on the first ``cells`` cells, in its tidy format (hours)."""
    sys.path.insert(0, str(src))
    from pyama_core.analysis.fitting import fit_trace_data

    keep = traces[traces.groupby(["fov", "cell"]).ngroup() < cells]
    tidy = pd.DataFrame({"fov": keep["fov"], "cell": keep["cell"], "time": keep["time"] / 60.0,
                         "value": keep["intensity_total_ch_1"]}).set_index(["fov", "cell"]).sort_index()
    started = time.process_time()  # CPU time: one process, comparable with pyama's CPU seconds
    results = fit_trace_data(tidy, "maturation")
    seconds = time.process_time() - started
    rows = [{"fov": fov, "cell": cell, "success": r.success, "r_squared": r.r_squared,
             **{k: p.value for k, p in r.fitted_params.items()}} for (fov, cell), r in results]
    return pd.DataFrame(rows), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--snr", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pyama-core", type=Path, help="pyama-core/src of a checkout")
    parser.add_argument("--core-cells", type=int, help="cells for pyama-core (default: all); time is scaled up")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

    traces, truth = simulate(args.cells, args.snr, args.seed)
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="pyama-fitting-") as tmp:
        path = Path(tmp) / "bench_traces.csv"
        traces.to_csv(path, index=False)
        fitted, seconds, cpu = run_pyama(path, args.workers)
    # CPU seconds tell what the wall time would be on idle cores when the machine is shared.
    report["pyama"] = {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "workers": args.workers,
                       **accuracy(fitted, truth)}
    print(f"pyama fit: {args.cells} cells x {T_MINUTES.size} points, maturation, {args.workers} workers: "
          f"{seconds:.1f} s wall, {cpu:.1f} s CPU (CLI, CSV in and out); {report['pyama']}")
    if args.pyama_core:
        n = min(args.core_cells or args.cells, args.cells)
        core, seconds = run_pyama_core(args.pyama_core, traces, n)
        scaled = seconds * args.cells / n
        report["pyama-core"] = {"seconds": round(seconds, 1), "cells_fitted": n,
                                "seconds_for_all": round(scaled, 1), **accuracy(core, truth)}
        print(f"pyama-core fit_trace_data: {n} cells in {seconds:.1f} s CPU (1 process) -> {scaled:.0f} s for "
              f"{args.cells}; {report['pyama-core']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
