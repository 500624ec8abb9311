"""Inputs of ``pyama plot``: traces (a results folder or merged traces) and a fitted-results CSV.

Every reader here returns tidy pandas tables and raises :class:`PlotInputError` (one line naming
the problem and the fix) on bad input; :mod:`pyama_framework.plotting` draws from those tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import PyamaError

FEATURE_COLUMN = re.compile(r"^(?P<feature>.+)_ch_(?P<channel>\d+)$")
# Columns of a fitted CSV that are not model parameters (``<param>_se`` are excluded separately).
FIT_COLUMNS = ("sample", "results", "fov", "cell", "model", "success", "r_squared", "quality", "n_points")
DEFAULT_FEATURE = "intensity_total"


class PlotInputError(PyamaError):
    """The traces or fitted results given to ``pyama plot`` cannot be plotted."""


@dataclass(frozen=True)
class Traces:
    """One feature on one channel, long format.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``sample, results, fov, cell, frame, time, value`` (time in minutes), sorted in
        that column order. ``sample`` is the merged sample name, or ``fov_XXX`` for per-FOV
        traces; ``results`` is the results folder's name in merged traces, else empty. A cell
        is identified by (sample, results, fov, cell).
    feature, channel : str, int
        The plotted column is ``{feature}_ch_{channel}``.
    merged : bool
        True when the input held sample names (merged traces).
    """

    table: pd.DataFrame
    feature: str
    channel: int
    merged: bool


@dataclass(frozen=True)
class Fitted:
    """A fitted-results CSV (``pyama fit`` output).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per cell; ``sample`` filled (``fov_XXX`` when the fit was on per-FOV traces).
    model : str
        The model name (the ``model`` column; one model per file).
    header : dict of str to str
        The ``# key: value`` lines before the table.
    parameters : tuple of str
        Parameter columns (every column that is neither a standard column nor ``<param>_se``).
    """

    table: pd.DataFrame
    model: str
    header: dict[str, str] = field(default_factory=dict)
    parameters: tuple[str, ...] = ()


def fov_sample(fov: int) -> str:
    """The sample name of a FOV's per-FOV traces."""
    return f"fov_{int(fov):03d}"


def find_trace_files(path: Path) -> list[Path]:
    """The traces CSVs behind ``path``: the file itself, a merge output folder's
    ``<sample>_traces.csv`` files, or a results folder's ``fov_XXX/*_traces.csv`` files."""
    if not path.exists():
        raise PlotInputError(f"{path} does not exist; give a pyama results folder, a merged traces "
                             "folder or a traces CSV")
    if path.is_file():
        return [path]
    files = sorted(path.glob("*_traces.csv")) or sorted(path.glob("fov_*/*_traces.csv"))
    if not files:
        raise PlotInputError(f"no traces found in {path}: expected fov_XXX/*_traces.csv (a results folder) "
                             "or <sample>_traces.csv (pyama merge output)")
    return files


def feature_columns(columns) -> dict[str, list[int]]:
    """``{feature: [channels]}`` of the ``{feature}_ch_{channel}`` columns, in column order."""
    found: dict[str, list[int]] = {}
    for column in columns:
        match = FEATURE_COLUMN.match(str(column))
        if match:
            found.setdefault(match["feature"], []).append(int(match["channel"]))
    return found


def _choose_column(available: dict[str, list[int]], feature: str | None, channel: int | None,
                   source: Path) -> tuple[str, int]:
    if not available:
        raise PlotInputError(f"{source} has no {{feature}}_ch_{{channel}} columns; give a pyama traces file")
    if feature is None:
        feature = DEFAULT_FEATURE if DEFAULT_FEATURE in available else next(iter(available))
    if feature not in available:
        raise PlotInputError(f"feature '{feature}' is not in the traces; choose one of: {', '.join(available)}")
    channels = available[feature]
    if channel is None:
        channel = channels[0]
    if channel not in channels:
        raise PlotInputError(f"channel {channel} has no '{feature}' in the traces; choose one of: "
                             f"{', '.join(map(str, channels))}")
    return feature, channel


def load_traces(path: Path, feature: str | None = None, channel: int | None = None,
                include_all: bool = False) -> Traces:
    """Read the traces behind ``path`` and keep one feature on one channel.

    Parameters
    ----------
    path : Path
        A traces CSV (per-FOV or merged), a merge output folder, or a results folder.
    feature, channel : str or None, int or None
        The column ``{feature}_ch_{channel}``; default ``intensity_total`` (else the first
        feature) on the first channel that has it.
    include_all : bool
        Keep rows whose ``good`` is False (dropped by default, as ``pyama merge`` does).

    Returns
    -------
    Traces

    Raises
    ------
    PlotInputError
        Missing path, no traces, or the feature/channel is not in the traces.
    """
    from .merge import read_traces

    frames = [(f, read_traces(f)) for f in find_trace_files(Path(path))]
    frames = [(f, df) for f, df in frames if len(df)]
    if not frames:
        raise PlotInputError(f"no traces found in {path}: every traces file is empty (the run's filters "
                             "removed all cells)")
    required = {"fov", "cell", "frame", "time"}
    for source, df in frames:
        missing = required - set(df.columns)
        if missing:
            raise PlotInputError(f"{source} lacks the trace column(s) {', '.join(sorted(missing))}; "
                                 "give a pyama traces file")
    feature, channel = _choose_column(feature_columns(frames[0][1].columns), feature, channel, frames[0][0])
    column = f"{feature}_ch_{channel}"
    parts = []
    for source, df in frames:
        if column not in df.columns:
            raise PlotInputError(f"{source} has no column {column}; plot a feature every traces file has")
        if not include_all and "good" in df.columns:
            df = df[df["good"]]
        sample = df["sample"].astype(object).where(df["sample"].notna(), df["fov"].map(fov_sample))
        results = df["results"].astype(str) if "results" in df.columns else pd.Series("", index=df.index)
        parts.append(pd.DataFrame({"sample": sample.astype(str).to_numpy(), "results": results.to_numpy(),
                                   "fov": df["fov"].astype(int).to_numpy(),
                                   "cell": df["cell"].astype(int).to_numpy(),
                                   "frame": df["frame"].astype(int).to_numpy(),
                                   "time": df["time"].astype(float).to_numpy(),
                                   "value": df[column].astype(float).to_numpy()}))
    table = pd.concat(parts, ignore_index=True).sort_values(["sample", "results", "fov", "cell", "frame"],
                                                                kind="stable")
    if table.empty:
        raise PlotInputError(f"no good rows in the traces of {path}; pass --all to plot every row")
    merged = any(df["sample"].notna().any() for _, df in frames)
    return Traces(table.reset_index(drop=True), feature, channel, merged)


def _header_lines(path: Path) -> dict[str, str]:
    header: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
    return header


def load_fitted(path: Path) -> Fitted:
    """Read a fitted-results CSV written by ``pyama fit``.

    Raises
    ------
    PlotInputError
        The file is missing, lacks the standard columns, or holds several models.
    """
    path = Path(path)
    if not path.is_file():
        raise PlotInputError(f"fitted results {path} do not exist; give the CSV written by 'pyama fit'")
    try:
        header = _header_lines(path)
        table = pd.read_csv(path, comment="#")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise PlotInputError(f"{path} is not a readable fitted-results CSV ({type(exc).__name__}); "
                             "give the CSV written by 'pyama fit'") from exc
    missing = [c for c in ("fov", "cell", "model", "success", "r_squared", "quality") if c not in table.columns]
    if missing:
        raise PlotInputError(f"{path} is not a fitted-results CSV: column(s) {', '.join(missing)} missing; "
                             "give the CSV written by 'pyama fit'")
    if table.empty:
        raise PlotInputError(f"{path} holds no fitted cells; fit some traces with 'pyama fit' first")
    models = sorted(table["model"].astype(str).unique())
    if len(models) > 1:
        raise PlotInputError(f"{path} holds several models ({', '.join(models)}); plot one model's CSV at a time")
    table = table.copy()
    table["success"] = table["success"].astype(str).str.lower().isin(["true", "1"])
    if "sample" not in table.columns:
        table["sample"] = pd.NA
    blank = table["sample"].isna() | (table["sample"].astype(str).str.strip() == "")
    table["sample"] = table["sample"].astype(object)
    table.loc[blank, "sample"] = table.loc[blank, "fov"].map(fov_sample)
    table["sample"] = table["sample"].astype(str)
    parameters = tuple(c for c in table.columns
                       if c not in FIT_COLUMNS and not str(c).endswith("_se"))
    return Fitted(table, models[0], header, parameters)


def combine_fitted(parts: list[Fitted], paths: list[Path]) -> Fitted:
    """Several fitted CSVs (``pyama fit`` once per sample) as one; they must share the model,
    feature and channel, and no cell may be in two of them.

    Raises
    ------
    PlotInputError
        The files disagree on the model, feature or channel, or repeat a cell.
    """
    first = parts[0]
    for part, path in zip(parts[1:], paths[1:]):
        for key, a, b in (("model", first.model, part.model),
                          ("feature", first.header.get("feature"), part.header.get("feature")),
                          ("channel", first.header.get("channel"), part.header.get("channel"))):
            if a != b:
                raise PlotInputError(f"fitted CSVs {paths[0]} and {path} differ in {key} ({a} vs {b}); "
                                     f"give fitted results of one {key}")
    if len(parts) == 1:
        return first
    table = pd.concat([p.table for p in parts], ignore_index=True)
    keys = ["sample", "fov", "cell"] + (["results"] if "results" in table.columns else [])
    repeated = table[table.duplicated(keys)]
    if len(repeated):
        row = repeated.iloc[0]
        raise PlotInputError(f"cell {row['cell']} of FOV {row['fov']} (sample {row['sample']}) is in more than "
                             "one fitted CSV; give each sample's fitted results once")
    header = dict(first.header)
    units = {}
    for part in parts:
        units.update(parameter_units(part.header))
    header["units"] = "; ".join(f"{n}={u}" for n, u in units.items())
    parameters = tuple(dict.fromkeys(p for part in parts for p in part.parameters))
    return Fitted(table, first.model, header, parameters)


def fitted_column(fitted: Fitted, feature: str | None, channel: int | None) -> tuple[str | None, int | None]:
    """The feature and channel to plot with fitted results: the ones the fit was run on (its
    ``# feature`` and ``# channel`` lines) unless given; giving others is an error."""
    fit_feature = fitted.header.get("feature") or None
    fit_channel = fitted.header.get("channel", "")
    fit_channel = int(fit_channel) if fit_channel.isdigit() else None
    if feature is not None and fit_feature is not None and feature != fit_feature:
        raise PlotInputError(f"the fitted results are of feature '{fit_feature}', not '{feature}'; "
                             f"drop --feature or pass --feature {fit_feature}")
    if channel is not None and fit_channel is not None and channel != fit_channel:
        raise PlotInputError(f"the fitted results are of channel {fit_channel}, not {channel}; "
                             f"drop --channel or pass --channel {fit_channel}")
    return feature or fit_feature, channel if channel is not None else fit_channel


def check_fitted_matches(fitted: Fitted, traces: Traces) -> pd.DataFrame:
    """The fitted rows of cells present in ``traces`` (sample, fov, cell and, when the fitted
    results have it, results all match), with the traces' ``results`` column.

    Raises
    ------
    PlotInputError
        No fitted cell is in the traces.
    """
    # Fits of merged traces from several results folders carry the folder in ``results``;
    # without it a cell is matched by (sample, fov, cell) and takes the traces' folder.
    on = ["sample", "results", "fov", "cell"] if "results" in fitted.table.columns else ["sample", "fov", "cell"]
    keys = traces.table[["sample", "results", "fov", "cell"]].drop_duplicates()
    table = fitted.table.copy()
    if "results" in table.columns:
        table["results"] = table["results"].fillna("").astype(str)
    matched = table.merge(keys, on=on, how="inner")
    if matched.empty:
        raise PlotInputError("no cell of the fitted results is in the traces (sample, fov and cell must match); "
                             "give the traces the fit was run on")
    return matched


def parameter_units(header: dict[str, str]) -> dict[str, str]:
    """``{parameter: unit}`` from the fitted CSV's ``# units: t0=h; ktl=a.u./h`` line."""
    units = {}
    for item in header.get("units", "").split(";"):
        name, sep, unit = item.partition("=")
        if sep and name.strip():
            units[name.strip()] = unit.strip()
    return units
