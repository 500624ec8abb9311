"""Figures of ``pyama plot``: traces per sample, fitted curves, parameter distributions, R² quality.

Each ``*_figure`` function takes tables from :mod:`pyama_framework.plot_inputs` and returns a
:class:`matplotlib.figure.Figure` drawn on an explicit Agg canvas (no pyplot, so no global figure
state). :func:`save_figure` writes PNG and SVG with fixed metadata, so two runs on the same input
give identical bytes. :func:`make_plots` ties it together and returns the files written.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plot_inputs import (Fitted, PlotInputError, Traces, check_fitted_matches, combine_fitted, fitted_column,
                          fov_sample, load_fitted, load_traces, parameter_units)

SEED = 0  # cell sampling is seeded: the same input always shows the same cells
QUALITY_ORDER = ("good", "fair", "poor", "failed")
QUALITY_COLORS = {"good": "#2ca02c", "fair": "#ff7f0e", "poor": "#d62728", "failed": "#7f7f7f"}
FORMATS = ("png", "svg")
HOURS_AFTER_MIN = 720  # time axes switch from minutes to hours beyond 12 h
CELL_KEY = ("results", "fov", "cell")  # identifies a cell within a sample


def _new_figure(n_panels: int, panel_size=(4.0, 3.0), max_columns: int = 3):
    columns = max(1, min(max_columns, n_panels))
    rows = max(1, math.ceil(n_panels / columns))
    fig = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, columns, squeeze=False, sharex=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _time_axis(max_minutes: float) -> tuple[float, str]:
    """Divisor and axis label for times given in minutes."""
    return (60.0, "time [h]") if max_minutes > HOURS_AFTER_MIN else (1.0, "time [min]")


def sample_cells(cells: pd.DataFrame, n: int, seed: int = SEED) -> pd.DataFrame:
    """``n`` rows of ``cells`` (one row per cell) drawn without replacement with a fixed seed,
    in their original order; all of them when there are at most ``n``."""
    if len(cells) <= n:
        return cells
    chosen = np.sort(np.random.default_rng(seed).choice(len(cells), size=n, replace=False))
    return cells.iloc[chosen]


def traces_figure(traces: Traces, n_cells: int = 10) -> Figure:
    """One panel per sample: mean ± SD over cells per frame, and ``n_cells`` individual cells.

    Parameters
    ----------
    traces : Traces
        Long table of one feature on one channel.
    n_cells : int
        Individual cells drawn per sample (seeded random choice, :data:`SEED`).
    """
    table = traces.table
    samples = list(dict.fromkeys(table["sample"]))
    scale, xlabel = _time_axis(table["time"].max())
    fig, axes = _new_figure(len(samples))
    column = f"{traces.feature}_ch_{traces.channel}"
    for ax, sample in zip(axes, samples):
        rows = table[table["sample"] == sample]
        stats = rows.groupby("frame").agg(time=("time", "mean"), mean=("value", "mean"),
                                          sd=("value", "std"), n=("value", "size"))
        stats["sd"] = stats["sd"].fillna(0.0)
        all_cells = rows[list(CELL_KEY)].drop_duplicates()
        cells = sample_cells(all_cells, n_cells)
        for i, (results, fov, cell) in enumerate(cells.itertuples(index=False)):
            one = rows[(rows["results"] == results) & (rows["fov"] == fov) & (rows["cell"] == cell)]
            ax.plot(one["time"] / scale, one["value"], lw=0.8, alpha=0.6, color=f"C{i % 10}")
        t = stats["time"].to_numpy() / scale
        ax.fill_between(t, stats["mean"] - stats["sd"], stats["mean"] + stats["sd"], color="black",
                        alpha=0.15, lw=0, label="mean ± SD")
        ax.plot(t, stats["mean"], color="black", lw=2, label="mean")
        ax.set_title(f"{sample} ({len(all_cells)} cells, {len(cells)} shown)", fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(column)
    axes[0].legend(fontsize=7, loc="best")
    return fig


def choose_fitted_cells(fitted_rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` successful fits at evenly spaced ranks of R², best first, so the figure shows the
    whole range of fit quality (deterministic: ties broken by sample, results, fov, cell)."""
    ok = fitted_rows[fitted_rows["success"]].sort_values(["r_squared", "sample", "results", "fov", "cell"],
                                                         ascending=[False, True, True, True, True], kind="stable")
    if len(ok) <= n:
        return ok
    return ok.iloc[np.unique(np.linspace(0, len(ok) - 1, n).round().astype(int))]


def fits_figure(traces: Traces, fitted_rows: pd.DataFrame, model: str, parameters: tuple[str, ...],
                curve: Callable[..., np.ndarray] | None, n_cells: int = 9) -> Figure:
    """One panel per chosen cell (:func:`choose_fitted_cells`): the data points and the fitted
    curve ``curve(model, t_minutes, **params)`` with the row's value of every parameter (fixed
    ones included: ``pyama fit`` writes a column for each).

    ``curve`` is :func:`pyama_framework.fitting.evaluate_model`; with None only the data is drawn.
    """
    chosen = choose_fitted_cells(fitted_rows, n_cells)
    if chosen.empty:
        raise PlotInputError("no fit in the fitted results succeeded; there is no curve to plot")
    table = traces.table
    scale, xlabel = _time_axis(table["time"].max())
    fig, axes = _new_figure(len(chosen), panel_size=(3.4, 2.6))
    column = f"{traces.feature}_ch_{traces.channel}"
    for ax, row in zip(axes, chosen.to_dict("records")):  # dicts: parameter names need not be identifiers
        data = table[(table["sample"] == row["sample"]) & (table["results"] == row["results"])
                     & (table["fov"] == row["fov"]) & (table["cell"] == row["cell"])]
        ax.plot(data["time"] / scale, data["value"], "o", ms=2.5, color="C0", alpha=0.7, label="data")
        if curve is not None and len(data):
            t = np.linspace(data["time"].min(), data["time"].max(), 400)
            params = {p: float(row[p]) for p in parameters}
            ax.plot(t / scale, curve(model, t, **params), color="C3", lw=1.5, label=model)
        where = row["sample"] if row["sample"] == fov_sample(row["fov"]) else f"{row['sample']} fov {row['fov']}"
        ax.set_title(f"{where} cell {row['cell']}  R² = {row['r_squared']:.3f} ({row['quality']})", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.supxlabel(xlabel, fontsize=9)  # one label per figure: fewer texts to lay out
    fig.supylabel(column, fontsize=9)
    axes[0].legend(fontsize=7, loc="best")
    return fig


def parameters_figure(fitted: Fitted) -> Figure | None:
    """One panel per fitted parameter: a violin per sample over the successful fits (points when
    a sample has fewer than 3); log scale when all values are positive and span > 2 decades.
    Parameters constant over every cell (fixed ones) are left out; None when none varies."""
    ok = fitted.table[fitted.table["success"]]
    varying = [p for p in fitted.parameters
               if pd.api.types.is_numeric_dtype(ok[p]) and ok[p].nunique(dropna=True) > 1]
    if not varying:
        return None
    samples = list(dict.fromkeys(ok["sample"]))
    units = parameter_units(fitted.header)
    fig, axes = _new_figure(len(varying), panel_size=(max(3.2, 0.9 * len(samples) + 1.5), 3.0))
    for ax, param in zip(axes, varying):
        values = [ok.loc[ok["sample"] == s, param].dropna().to_numpy(float) for s in samples]
        finite = np.concatenate(values)
        log = finite.size and finite.min() > 0 and finite.max() / finite.min() > 100
        shown = [np.log10(v) if log else v for v in values]
        positions = np.arange(1, len(samples) + 1)
        violins = [(p, v) for p, v in zip(positions, shown) if len(v) >= 3 and np.ptp(v) > 0]
        if violins:
            parts = ax.violinplot([v for _, v in violins], positions=[p for p, _ in violins],
                                  showmedians=True, widths=0.8)
            for body in parts["bodies"]:
                body.set_alpha(0.5)
        for p, v in zip(positions, shown):
            if not any(p == q for q, _ in violins):
                ax.plot(np.full(len(v), p), v, "o", ms=3, color="C0")
        ax.set_xticks(positions, samples, rotation=45 if len(samples) > 3 else 0, ha="right" if
                      len(samples) > 3 else "center", fontsize=8)
        label = f"{param} [{units[param]}]" if units.get(param) else param
        ax.set_ylabel(f"log10 {label}" if log else label)
        ax.set_title(f"{param} (n = {finite.size})", fontsize=9)
    return fig


def quality_counts(fitted: Fitted) -> pd.DataFrame:
    """Cells per sample (rows) and R² class (columns ``good, fair, poor, failed``); a fit that
    did not succeed counts as ``failed`` whatever its quality label."""
    table = fitted.table
    label = table["quality"].astype(str).where(table["success"], "failed")
    counts = pd.crosstab(table["sample"], label)
    order = [q for q in QUALITY_ORDER if q in counts.columns] + sorted(set(counts.columns) - set(QUALITY_ORDER))
    return counts.reindex(index=list(dict.fromkeys(table["sample"])), columns=order, fill_value=0)


def quality_figure(fitted: Fitted) -> Figure:
    """Stacked bars: per sample, the cells whose fit is good, fair, poor (R² classes) or failed."""
    counts = quality_counts(fitted)
    fig, (ax,) = _new_figure(1, panel_size=(max(4.0, 0.8 * len(counts) + 2), 3.2))
    x = np.arange(len(counts))
    bottom = np.zeros(len(counts))
    for quality in counts.columns:
        heights = counts[quality].to_numpy(float)
        bars = ax.bar(x, heights, bottom=bottom, color=QUALITY_COLORS.get(quality, "#bcbd22"), label=quality)
        ax.bar_label(bars, labels=[str(int(h)) if h else "" for h in heights], label_type="center", fontsize=7)
        bottom += heights
    ax.set_xticks(x, counts.index, rotation=45 if len(counts) > 3 else 0,
                  ha="right" if len(counts) > 3 else "center", fontsize=8)
    ax.set_ylabel("cells")
    ax.set_title(f"{fitted.model}: fit quality (R²)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``; fixed SVG hash salt and no date, so bytes are reproducible."""
    written = []
    fig.draw_without_rendering()  # lay out once (constrained layout is the slow part), then freeze it
    fig.set_layout_engine("none")
    with rc_context({"svg.hashsalt": "pyama", "svg.fonttype": "path"}):
        for fmt in FORMATS:
            path = stem.with_suffix(f".{fmt}")
            metadata = {"Date": None} if fmt == "svg" else None
            fig.savefig(path, format=fmt, dpi=120, metadata=metadata)
            written.append(path)
    return written


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _evaluate_model() -> Callable[..., np.ndarray] | None:
    try:
        from .fitting import evaluate_model
    except ImportError:  # the fitting module is optional for plotting traces
        return None
    return evaluate_model


def make_plots(path: Path, output: Path, fitted_path: Path | Sequence[Path] | None = None,
               feature: str | None = None, channel: int | None = None, n_cells: int = 10,
               include_all: bool = False) -> list[Path]:
    """Write every figure for the traces behind ``path`` (and the fitted CSV or CSVs
    ``fitted_path``, e.g. one per sample) into ``output``.

    Files (each as ``.png`` and ``.svg``): ``traces_{feature}_ch_{channel}``; with fitted
    results also ``fits_{model}_{feature}_ch_{channel}``, ``parameters_{model}`` (when a
    parameter varies) and ``quality_{model}``.

    Raises
    ------
    PlotInputError
        Bad input (see :mod:`pyama_framework.plot_inputs`).
    """
    paths = [] if fitted_path is None else [Path(fitted_path)] if isinstance(fitted_path, (str, Path)) \
        else [Path(p) for p in fitted_path]
    fitted = combine_fitted([load_fitted(p) for p in paths], paths) if paths else None
    if fitted is not None:  # plot the column the fit was run on
        feature, channel = fitted_column(fitted, feature, channel)
    traces = load_traces(Path(path), feature, channel, include_all)
    column = _safe(f"{traces.feature}_ch_{traces.channel}")
    figures: list[tuple[str, Figure]] = [(f"traces_{column}", traces_figure(traces, n_cells))]
    if fitted is not None:
        rows = check_fitted_matches(fitted, traces)
        model = _safe(fitted.model)
        figures.append((f"fits_{model}_{column}", fits_figure(traces, rows, fitted.model, fitted.parameters,
                                                               _evaluate_model(), n_cells)))
        parameters = parameters_figure(fitted)
        if parameters is not None:
            figures.append((f"parameters_{model}", parameters))
        figures.append((f"quality_{model}", quality_figure(fitted)))
    output = Path(output)  # created only once every input checked out
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlotInputError(f"cannot create output folder {output} ({exc.strerror}); choose another with --output") from None
    written = []
    for stem, fig in figures:
        written += save_figure(fig, output / stem)
    return written
