"""``pyama fit``: registered on the main typer app when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .cli import _fail, app, err
from .errors import PyamaError


def _parse_set(items: list[str]) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = float(text)
        except ValueError:
            _fail(f"--set {item!r} is not NAME=NUMBER; e.g. --set km=1.3")
    return values


@app.command("fit")
def fit(
    traces: Path = typer.Argument(..., help="Per-FOV traces CSV (pyama run) or merged traces CSV (pyama merge)"),
    model: str = typer.Option(..., "--model", "-m", help="Fitting model, e.g. maturation (see 'pyama plugins list')"),
    feature: str = typer.Option(..., "--feature", "-f", help="Feature to fit, e.g. intensity_total"),
    channel: int = typer.Option(..., "--channel", "-c", help="Channel of the feature"),
    set_: List[str] = typer.Option([], "--set", help="Fixed value or starting value, NAME=NUMBER (repeatable)"),
    fix: List[str] = typer.Option([], "--fix", help="Hold a fitted parameter at its value (repeatable)"),
    free: List[str] = typer.Option([], "--free", help="Fit a parameter the model holds fixed (repeatable)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Fitted CSV (default: <traces stem>_fitted_<model>.csv beside TRACES)"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Processes (default: CPU count, at most 8)"),
    all_rows: bool = typer.Option(False, "--all", help="Also fit rows flagged good=False"),
) -> None:
    """Fit a model to every cell's trace: one row per cell with parameters, standard errors and R²."""
    import time

    from .fitting import (column_of, default_workers, fit_traces, fitted_header, get_model, prepare,
                          write_fitted)
    from .merge import read_traces

    values = _parse_set(set_)
    started = time.perf_counter()
    try:
        registration = get_model(model)
        setup = prepare(registration, values, fix, free)
        table = read_traces(traces)
        column = column_of(table, feature, channel, traces.name)
        fitted = fit_traces(table, setup, column, workers or default_workers(), good_only=not all_rows)
        stem = traces.name.removesuffix(".csv")
        target = output or traces.with_name(f"{stem}_fitted_{model}.csv")
        header = fitted_header(setup, feature, channel, traces, not all_rows, registration.time_unit)
        write_fitted(target, fitted, header)
    except PyamaError as exc:
        _fail(str(exc))
        return
    counts = fitted["quality"].value_counts()
    failed = int((~fitted["success"]).sum())
    err.print(f"{len(fitted)} cells fitted with '{model}' in {time.perf_counter() - started:.1f} s: "
              f"{counts.get('good', 0)} good, {counts.get('fair', 0)} fair, {counts.get('poor', 0)} poor "
              f"(R² > 0.9, > 0.7, else); {failed} did not converge -> {target}", highlight=False)
