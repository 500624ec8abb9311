"""Tracks of napari's tracks layer, built from a FOV's traces table (pure, no napari import)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Trace columns that are bookkeeping or geometry, not measured features.
BASE_COLUMNS = ("fov", "cell", "parent", "frame", "time", "good", "position_x", "position_y",
                "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "sample", "results")


def tracks_from_traces(traces: pd.DataFrame) -> tuple[np.ndarray, dict[int, list[int]], pd.DataFrame]:
    """The data, graph and features of a napari tracks layer for one FOV's traces.

    Parameters
    ----------
    traces : pandas.DataFrame
        One FOV's traces (columns ``cell``, ``parent``, ``frame``, ``position_y``,
        ``position_x`` and the feature columns), one row per cell and frame.

    Returns
    -------
    data : numpy.ndarray
        ``(N, 4)`` float64 rows ``[cell, frame, y, x]`` in pixels, sorted by cell then frame:
        one track per cell of the traces (its ID is the cell's label value).
    graph : dict of int to list of int
        ``{daughter: [mother]}`` for every cell whose track began at a division of a cell
        that is itself in the traces.
    features : pandas.DataFrame
        Per row of ``data``: ``time`` and every feature column, for colouring the tracks.
    """
    ordered = traces.sort_values(["cell", "frame"], kind="stable")
    data = ordered[["cell", "frame", "position_y", "position_x"]].to_numpy(dtype=np.float64)
    cells = set(ordered["cell"].astype(int))
    graph: dict[int, list[int]] = {}
    if "parent" in ordered:
        parents = ordered.groupby("cell")["parent"].first()
        graph = {int(c): [int(p)] for c, p in parents.items() if p and int(p) in cells}
    feature_columns = ["time"] + feature_names(ordered)
    features = ordered[[c for c in feature_columns if c in ordered]].reset_index(drop=True)
    return data, graph, features


def feature_names(traces: pd.DataFrame) -> list[str]:
    """The measured ``{feature}_ch_{channel}`` columns of a traces table, in table order."""
    return [c for c in traces.columns if c not in BASE_COLUMNS and "_ch_" in c]
