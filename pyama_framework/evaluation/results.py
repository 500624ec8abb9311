"""Open one FOV of a finished ``pyama run`` for evaluation or export (read only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..store import CONFIG_FILENAME, RECORDS_DIR, fov_dirname
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


def _fovs(results: Path) -> list[int]:
    return sorted(int(p.name[4:]) for p in results.glob("fov_[0-9]*") if p.is_dir() and p.name[4:].isdigit())


def _pc_channel(results: Path) -> int | None:
    import yaml

    try:
        config = yaml.safe_load((results / CONFIG_FILENAME).read_text()) or {}
        return int(config["channels"]["pc"]["channel"])
    except (KeyError, TypeError, ValueError, yaml.YAMLError):
        return None


def open_run(results: Path, fov: int | None = None) -> RunFov:
    """Open FOV ``fov`` (the only FOV when None) of the run in ``results``, or raise EvaluationError."""
    import zarr

    results = Path(results)
    if not (results / CONFIG_FILENAME).is_file():
        raise EvaluationError(f"{results} is not a pyama output folder (no {CONFIG_FILENAME}); "
                              "pass the 'output' folder of a finished 'pyama run'")
    fovs = _fovs(results)
    if fov is None:
        if len(fovs) != 1:
            listed = ", ".join(map(str, fovs)) or "none"
            raise EvaluationError(f"{results} holds FOVs {listed}; choose one with --fov N")
        fov = fovs[0]
    root = results / fov_dirname(fov)
    if fov not in fovs:
        raise EvaluationError(f"{results} has no FOV {fov} (it holds {', '.join(map(str, fovs)) or 'none'}); "
                              "run it first or pick another with --fov")
    if not (root / RECORDS_DIR / "track.json").is_file():
        raise EvaluationError(f"FOV {fov} in {results} is not tracked yet (no {RECORDS_DIR}/track.json); "
                              "run 'pyama run' on it to completion first")
    channel = _pc_channel(results)
    images = root / "images.zarr"
    names = sorted(p.name for p in images.glob(f"{TRACKED_PREFIX}*") if (p / "0" / "zarr.json").is_file())
    name = f"{TRACKED_PREFIX}{channel}" if f"{TRACKED_PREFIX}{channel}" in names else (
        names[0] if len(names) == 1 else None)
    if name is None:
        raise EvaluationError(f"{images} has no single {TRACKED_PREFIX}* array (found {names or 'none'}); "
                              "the FOV's output is incomplete: rerun 'pyama run'")
    tracked = zarr.open_array(images / name / "0", mode="r")
    parents: dict[int, int] = {}
    if (root / TRACKS_CSV).is_file():
        import pandas as pd

        lineage = pd.read_csv(root / TRACKS_CSV)
        if not {"cell", "parent"} <= set(lineage.columns):
            raise EvaluationError(f"{root / TRACKS_CSV} lacks the columns cell, parent; rerun 'pyama run'")
        parents = {int(c): int(p) for c, p in zip(lineage["cell"], lineage["parent"]) if int(p) != 0}
    traces = sorted(root.glob(f"*_{fov_dirname(fov)}_traces.csv"))
    return RunFov(root, fov, tracked, parents, traces[0] if traces else None)
