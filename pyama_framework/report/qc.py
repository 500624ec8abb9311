"""The QC numbers and anomaly rules of one FOV, from its traces and stage records (pure).

Rules (each a concrete threshold, named in the report):

- ``count jump``: the number of tracked cells changes by more than :data:`JUMP` (30 %)
  between two consecutive frames (segmentation lost or split many cells at once);
- ``no cells``: no tracked cell at all, or none left in the traces after the filters;
- ``background above cells``: on a fluorescence channel, the median background-corrected
  ``intensity_mean`` (else ``intensity_total``) of the traced cells is below zero, i.e. the
  background estimate lies above the cells' own signal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

JUMP = 0.30
FLUORESCENCE_COLUMN = re.compile(r"^intensity_(mean|total)_ch_(\d+)$")


@dataclass
class FovQC:
    """What the report shows about one FOV besides pictures."""

    fov: int
    cells_per_frame: np.ndarray            # tracked cells per frame (before filters)
    traced_per_frame: np.ndarray           # cells per frame in the traces (after filters)
    counts_source: str                     # "extract record" or "traces"
    filters: list[tuple[str, int]]         # (step, cells left), in order
    n_traced: int
    flags: list[str] = field(default_factory=list)


def per_frame(traces: pd.DataFrame, n_frames: int) -> np.ndarray:
    """Cells per frame in a traces table (one row per cell and frame)."""
    frames = traces["frame"].to_numpy(dtype=np.int64)
    return np.bincount(frames, minlength=n_frames)[:n_frames] if frames.size else np.zeros(n_frames, int)


def count_jumps(counts: np.ndarray, limit: float = JUMP) -> list[tuple[int, int, int]]:
    """``(frame, before, after)`` where the count changes by more than ``limit`` of the
    previous frame's count (a frame after an empty one counts as a jump when it has cells)."""
    counts = np.asarray(counts, dtype=np.int64)
    jumps = []
    for t in range(1, len(counts)):
        before, after = int(counts[t - 1]), int(counts[t])
        if (before == 0 and after > 0) or (before > 0 and abs(after - before) > limit * before):
            jumps.append((t, before, after))
    return jumps


def background_above_cells(traces: pd.DataFrame) -> list[tuple[int, str, float]]:
    """``(channel, column, median)`` of fluorescence channels whose median corrected
    intensity over the traced cells is negative (``intensity_mean`` preferred)."""
    by_channel: dict[int, str] = {}
    for column in traces.columns:
        match = FLUORESCENCE_COLUMN.match(column)
        if match and (int(match[2]) not in by_channel or match[1] == "mean"):
            by_channel[int(match[2])] = column
    found = []
    for channel, column in sorted(by_channel.items()):
        values = pd.to_numeric(traces[column], errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size and float(np.median(values)) < 0:
            found.append((channel, column, float(np.median(values))))
    return found


def fov_qc(fov: int, traces: pd.DataFrame, extract_record: dict[str, Any] | None, n_frames: int) -> FovQC:
    """Counts, filter steps and flags of one FOV (see the module docstring for the rules)."""
    record = extract_record or {}
    traced = per_frame(traces, n_frames)
    recorded = record.get("cells_per_frame")
    if recorded is not None and len(recorded) == n_frames:
        counts, source = np.asarray(recorded, dtype=np.int64), "extract record"
    else:  # runs made before the counts were recorded: the traces are all there is
        counts, source = traced, "traces"
    n_traced = int(traces["cell"].nunique()) if len(traces) else 0
    steps = record.get("filters")
    filters = ([("tracked", steps["tracked"]), ("min_frames", steps["after_min_frames"]),
                ("border_margin", steps["after_border_margin"])] if steps else [("traced", n_traced)])
    qc = FovQC(fov, counts, traced, source, filters, n_traced)
    if counts.sum() == 0:
        qc.flags.append("no cells: nothing was segmented in any frame")
    elif n_traced == 0:
        qc.flags.append("no cells: every tracked cell was removed by the filters")
    jumps = count_jumps(counts)
    if jumps:
        t, before, after = max(jumps, key=lambda j: abs(j[2] - j[1]) / max(j[1], 1))
        qc.flags.append(f"count jump: {len(jumps)} frame(s) change by more than {JUMP:.0%}; "
                        f"largest at frame {t}: {before} -> {after} cells")
    for channel, column, median in background_above_cells(traces):
        qc.flags.append(f"background above cells: channel {channel} median {column} is {median:.3g} (< 0)")
    return qc
