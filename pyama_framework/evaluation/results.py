"""Open one FOV of a finished ``pyama run`` for evaluation or export (read only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..store import RECORDS_DIR, fov_dirname
from .truth import EvaluationError

TRACKED_PREFIX = "seg_tracked_ch_"
TRACKS_CSV = "tracks.csv"


@dataclass
class RunFov:
    """The tracked masks, lineage and traces of one FOV of a run.

    Attributes
    ----------
    root : Path
        ``<results>/fov_XXX``.
    fov : int
    tracked : zarr.Array
        ``(T, H, W)`` uint16 tracked labels, read frame by frame.
    parents : dict
        ``{cell: mother cell}`` from ``tracks.csv`` (empty when the run has no lineage file).
    traces_path : Path or None
        The FOV's traces CSV.
    """

    root: Path
    fov: int
    tracked: Any
    parents: dict[int, int]
    traces_path: Path | None

    def traces(self):
        import pandas as pd

        return pd.read_csv(self.traces_path) if self.traces_path is not None else None

    def max_label(self) -> int:
        """The largest label of the stack (stored by the track stage; computed when absent)."""
        top = self.tracked.attrs.get("max_label")
        if top is None:
            top = max((int(np.asarray(self.tracked[t]).max(initial=0)) for t in range(self.tracked.shape[0])),
                      default=0)
        return int(top)


def open_run(results: Path, fov: int | None = None) -> RunFov:
    """Open FOV ``fov`` (the only FOV when None) of the run in ``results``, or raise EvaluationError.

    Built on :func:`pyama_framework.open_results` (a FOV needs only to be tracked here, so
    unfinished runs are opened too)."""
    from ..results import ResultsError, open_results

    results = Path(results)
    try:
        run = open_results(results, partial=True)
    except ResultsError as exc:
        raise EvaluationError(str(exc)) from None
    fovs = [f for f, s in run.status.items() if s.root.is_dir()]
    if fov is None:
        if len(fovs) != 1:
            listed = ", ".join(map(str, fovs)) or "none"
            raise EvaluationError(f"{results} holds FOVs {listed}; choose one with --fov N")
        fov = fovs[0]
    if fov not in fovs:
        raise EvaluationError(f"{results} has no FOV {fov} (it holds {', '.join(map(str, fovs)) or 'none'}); "
                              "run it first or pick another with --fov")
    root = results / fov_dirname(fov)
    if "track" not in run.records(fov):
        raise EvaluationError(f"FOV {fov} in {results} is not tracked yet (no {RECORDS_DIR}/track.json); "
                              "run 'pyama run' on it to completion first")
    pc = run.config.channels.pc
    try:
        tracked = run.array(fov, f"{TRACKED_PREFIX}{pc.channel if pc else 0}")
    except ResultsError:
        raise EvaluationError(f"FOV {fov} in {results} has no {TRACKED_PREFIX}* array; "
                              "the FOV's output is incomplete: rerun 'pyama run'") from None
    parents: dict[int, int] = {}
    if (root / TRACKS_CSV).is_file():
        import pandas as pd

        lineage = pd.read_csv(root / TRACKS_CSV)
        if not {"cell", "parent"} <= set(lineage.columns):
            raise EvaluationError(f"{root / TRACKS_CSV} lacks the columns cell, parent; rerun 'pyama run'")
        parents = {int(c): int(p) for c, p in zip(lineage["cell"], lineage["parent"]) if int(p) != 0}
    return RunFov(root, fov, tracked, parents, run.traces_path(fov))
