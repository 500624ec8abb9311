"""Write one FOV of a run as a Cell Tracking Challenge result: ``maskTTT.tif`` + ``res_track.txt``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from .lineage import GapSplitTracks, relabel
from .results import RunFov
from .truth import EvaluationError

CTC_MAX_LABEL = 2**16 - 1


def mask_name(t: int, n_frames: int) -> str:
    """``mask000.tif``; four digits when the movie has more than 1000 frames (CTC naming)."""
    return f"mask{t:0{4 if n_frames > 1000 else 3}d}.tif"


def export_ctc(run: RunFov, out: Path, overwrite: bool = False) -> dict[str, int]:
    """Write the FOV's tracked masks and lineage to ``out`` in the CTC result format.

    A track that is absent for some frames (gap closing) becomes several CTC tracks: each later
    segment gets a new label (above the run's largest) whose parent is the segment before it,
    because CTC requires a label in every frame from its begin to its end. Frames are streamed.

    Returns
    -------
    dict
        ``frames``, ``tracks`` (rows of res_track.txt) and ``split`` (segments added for gaps).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"{out} is a file; pass a folder for the CTC result")
    existing = sorted(out.glob("mask*.tif")) + ([out / "res_track.txt"] if (out / "res_track.txt").exists() else [])
    if existing and not overwrite:
        raise EvaluationError(f"{out} already holds a CTC result ({existing[0].name}); choose an empty folder "
                              "or pass --overwrite")
    for stale in existing:  # a longer earlier export would leave masks behind
        stale.unlink()
    return write_ctc_result(run.tracked, out, run.parents, run.max_label())


def write_ctc_result(labels: Any, out: Path, parents: Mapping[int, int] | None = None,
                     top: int | None = None) -> dict[str, int]:
    """Write tracked labels as a CTC result folder (``maskTTT.tif``, ``res_track.txt``).

    Parameters
    ----------
    labels : (T, H, W) integer array-like
        Cells carry their track ID in every frame (gaps allowed: split as in :func:`export_ctc`).
    out : Path
        The folder (created; existing masks of the same names are replaced).
    parents : mapping, optional
        ``{cell: mother cell}``.
    top : int, optional
        The largest label of ``labels`` when known (saves a pass over the frames).
    """
    out = Path(out)
    n_frames = int(labels.shape[0])
    if top is None:
        top = max(int(np.asarray(labels[t]).max(initial=0)) for t in range(n_frames))
    out.mkdir(parents=True, exist_ok=True)
    builder = _write_masks(labels, top, lambda t: out / mask_name(t, n_frames))
    table = builder.table(parents)
    _write_track_file(out / "res_track.txt", table)
    return {"frames": n_frames, "tracks": len(table), "split": builder.next_label - top - 1}


def write_ctc_truth(labels: Any, out: Path, parents: Mapping[int, int] | None = None,
                    seg_frames: Iterable[int] | None = None) -> Path:
    """Write tracked labels as a CTC ground-truth folder (``TRA/``, ``SEG/``), e.g. for tests.

    Parameters
    ----------
    labels : (T, H, W) integer array-like
        Cells carry their track ID in every frame (gaps allowed: split as in :func:`export_ctc`).
    out : Path
        The folder to create (``out/TRA/man_trackTTT.tif``, ``man_track.txt``, ``out/SEG/man_segTTT.tif``).
    parents : mapping, optional
        ``{cell: mother cell}``.
    seg_frames : iterable of int, optional
        Frames that get a SEG mask (default: all).
    """
    out = Path(out)
    n_frames = int(labels.shape[0])
    digits = 4 if n_frames > 1000 else 3
    (out / "TRA").mkdir(parents=True, exist_ok=True)
    (out / "SEG").mkdir(exist_ok=True)
    top = max(int(np.asarray(labels[t]).max(initial=0)) for t in range(n_frames))
    builder = _write_masks(labels, top, lambda t: out / "TRA" / f"man_track{t:0{digits}d}.tif")
    _write_track_file(out / "TRA" / "man_track.txt", builder.table(parents))
    import tifffile

    for t in range(n_frames) if seg_frames is None else seg_frames:
        tifffile.imwrite(out / "SEG" / f"man_seg{t:0{digits}d}.tif", np.asarray(labels[t]).astype(np.uint16))
    return out


def _write_masks(frames: Any, top: int, name: Callable[[int], Path]) -> GapSplitTracks:
    """Write every frame (gapped tracks relabelled) as a uint16 TIFF; return the track builder."""
    import tifffile

    builder = GapSplitTracks(top + 1)
    for t in range(int(frames.shape[0])):
        frame = np.asarray(frames[t])
        renamed = builder.add_frame(t, np.flatnonzero(np.bincount(frame.ravel()))[1:])
        if builder.next_label - 1 > CTC_MAX_LABEL:
            raise EvaluationError(f"splitting gapped tracks needs labels above {CTC_MAX_LABEL}, the CTC limit; "
                                  "this result cannot be written in the CTC format")
        tifffile.imwrite(name(t), relabel(frame, renamed).astype(np.uint16))
    return builder


def _write_track_file(path: Path, table: np.ndarray) -> None:
    path.write_text("".join(f"{a} {b} {c} {d}\n" for a, b, c, d in table.tolist()))
