"""Collect what the QC report shows, through :func:`pyama_framework.open_results`.

Reads the traces, the stage records and, per FOV, three frames of the ``/1`` viewing levels
(phase, tracked labels) and one of a background: the cost grows with the number of FOVs,
not with the frame size or the movie's length.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import parse_fovs
from ..results import Results, ResultsError
from .figures import colour_map, counts_and_traces, thumbnail
from .qc import FovQC, fov_qc


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


@dataclass
class FovSection:
    fov: int
    qc: FovQC | None = None
    thumbnails: list[tuple[str, str]] = field(default_factory=list)   # (caption, base64 PNG)
    background: tuple[str, str] | None = None
    plot: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class RunReport:
    results: Results
    sections: list[FovSection]
    timings: pd.DataFrame                  # FOV x stage, seconds
    plugins: list[dict[str, Any]]


def _trace_column(traces: pd.DataFrame) -> str | None:
    columns = [c for c in traces.columns if c.startswith("intensity_total_ch_")]
    columns = columns or [c for c in traces.columns if "_ch_" in c and not c.startswith("bbox")]
    return columns[0] if columns else None


def _thumbnails(r: Results, fov: int, traces: pd.DataFrame, section: FovSection) -> None:
    # Three frames of zarr arrays: read directly (r.array) rather than through a dask graph.
    pc = r.config.channels.pc
    name = f"pc_ch_{pc.channel}" if pc is not None else next(iter(r.channels))
    try:
        frames = r.array(fov, name, 1)
    except ResultsError:
        section.notes.append("no /1 viewing level (caching.enabled is off or the cache stage failed): "
                             "no thumbnails")
        return
    try:
        labels = r.array(fov, f"seg_tracked_ch_{pc.channel}", 1)
    except ResultsError:
        labels = None
    times = r.geometry(fov).times_min
    n = frames.shape[0]
    for t in sorted({0, n // 2, n - 1}):
        rows = traces[traces["frame"] == t] if len(traces) else traces
        # positions are full-resolution pixel centres; level 1 pixel j is centred on 2j + 0.5
        cells = [(int(c), x / 2 - 0.25, y / 2 - 0.25)
                 for c, x, y in zip(rows.get("cell", []), rows.get("position_x", []), rows.get("position_y", []))]
        png = thumbnail(frames[t], labels[t] if labels is not None else None, cells)
        section.thumbnails.append((f"frame {t} ({float(times[t]):g} min), {len(cells)} traced", _b64(png)))


def _background(r: Results, fov: int, section: FovSection) -> None:
    for channel in (c.channel for c in r.config.channels.fl):
        try:
            background = r.array(fov, f"fl_background_ch_{channel}", 1)
        except ResultsError:
            continue
        t = background.shape[0] // 2
        section.background = (f"background, channel {channel}, frame {t} (percentile-scaled)",
                              _b64(colour_map(background[t])))
        return


def fov_section(r: Results, fov: int) -> FovSection:
    section = FovSection(fov)
    traces = r.traces(fov)
    records = r.records(fov)
    n_frames = int(r.array(fov, next(iter(r.channels)), 0).shape[0])
    section.qc = fov_qc(fov, traces, records.get("extract"), n_frames)
    _thumbnails(r, fov, traces, section)
    _background(r, fov, section)
    times = r.geometry(fov).times_min
    section.plot = _b64(counts_and_traces(times, section.qc.cells_per_frame, section.qc.traced_per_frame,
                                          traces, _trace_column(traces)))
    if section.qc.counts_source == "traces":
        section.notes.append("tracked cells per frame were not recorded by this run (older version): "
                             "counts are of the cells in the traces")
    return section


def _selected(r: Results, fovs: str | list[int] | None) -> list[int]:
    if fovs is None:
        return r.fovs
    try:
        chosen = parse_fovs(fovs)
    except ValueError as exc:
        raise ResultsError(f"--fovs: {exc}") from None
    for fov in chosen:
        r.fov_status(fov)  # one-line error for a FOV the run does not have, or that failed
    return chosen


def build_report(r: Results, fovs: str | list[int] | None = None) -> RunReport:
    """Everything the page shows; ``fovs`` restricts the FOV sections (default: all complete)."""
    if r.config.copy_only or r.config.channels.pc is None:
        raise ResultsError(f"{r.path} holds copied frames only (no segmentation or traces); "
                           "a QC report needs a processed run")
    sections = [fov_section(r, fov) for fov in _selected(r, fovs)]
    timings = pd.DataFrame({fov: {stage: rec.get("seconds", np.nan) for stage, rec in s.records.items()}
                            for fov, s in r.status.items()}).T
    plugins = [{"role": role, **info} for role, info in ((r.config.provenance or {}).get("plugins") or {}).items()]
    return RunReport(r, sections, timings, plugins)
