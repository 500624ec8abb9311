"""Ground truth for ``pyama evaluate``: a CTC folder, a label stack (TIFF, zarr, npy) or an array.

Every source yields :class:`TruthFrame` objects one frame at a time (a stack is never read
whole) and, once consumed, the CTC track table of the truth. Where the truth has no lineage
(a stack, or a CTC folder with only ``SEG/``) the tracks are derived by overlap
(:class:`~pyama_framework.evaluation.lineage.OverlapTracks`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import PyamaError
from .lineage import OverlapTracks, relabel
from .overlap import LabelImageError, check_label_image

TRACES_NAME = "traces.csv"  # in a CTC folder; a stack X.tif uses X.traces.csv


class EvaluationError(PyamaError):
    """Ground truth or results that cannot be evaluated; the message names the problem and the fix."""


@dataclass(frozen=True)
class TruthFrame:
    """The truth of one frame.

    Attributes
    ----------
    t : int
        Frame index.
    tra : (H, W) integer ndarray
        Cells labelled with their track ID (the labels of the truth's track table).
    seg : (H, W) integer ndarray or None
        Complete instance masks of this frame, or None when the frame has no SEG annotation.
    seg_is_tra : bool
        ``seg`` is the same partition as ``tra`` (only the label values differ).
    trace_labels : dict or None
        ``{track ID: label used in the truth traces CSV}``; None when they are the track IDs.
    """

    t: int
    tra: np.ndarray
    seg: np.ndarray | None
    seg_is_tra: bool
    trace_labels: dict[int, int] | None = None


class Truth:
    """Base of the truth sources: ``n_frames``, ``shape``, ``frames()``, ``tracks()``, ``traces``."""

    description = "ground truth"
    n_frames: int
    shape: tuple[int, int]
    traces: Any = None  # pandas DataFrame (frame, label, <columns>) or None

    def frames(self) -> Iterator[TruthFrame]:
        raise NotImplementedError

    def tracks(self) -> np.ndarray:
        """(N, 4) CTC table ``[label, begin, end, parent]``; complete after ``frames()`` ran."""
        raise NotImplementedError


class StackTruth(Truth):
    """Label frames numbered per frame; links and divisions are derived by overlap."""

    def __init__(self, frames: Sequence[np.ndarray], description: str, traces: Any = None):
        shape = tuple(getattr(frames, "shape", ()))
        if len(shape) != 3:
            raise EvaluationError(f"{description} has shape {shape}; expected a (T, H, W) label stack")
        self._frames, self.description, self.traces = frames, description, traces
        self.n_frames, self.shape = int(shape[0]), (int(shape[1]), int(shape[2]))
        self._lineage = OverlapTracks()

    def frames(self) -> Iterator[TruthFrame]:
        self._lineage = OverlapTracks()
        for t in range(self.n_frames):
            frame = _checked(self._frames[t], f"{self.description}, frame {t}")
            ids = self._lineage.add_frame(t, frame)
            yield TruthFrame(t, relabel(frame, ids), frame, True, {v: k for k, v in ids.items()})

    def tracks(self) -> np.ndarray:
        return self._lineage.table()


class CtcTruth(Truth):
    """A Cell Tracking Challenge ground-truth folder: ``SEG/man_seg*.tif``, ``TRA/man_track*.tif``
    and ``TRA/man_track.txt``. Without ``TRA/``, the SEG masks must cover every frame and the
    lineage is derived from them by overlap."""

    def __init__(self, folder: Path, traces: Any = None):
        self.folder, self.traces = folder, traces
        self.description = str(folder)
        self.seg_files = _numbered(folder / "SEG", "man_seg")
        self.tra_files = _numbered(folder / "TRA", "man_track")
        if not self.seg_files and not self.tra_files:
            raise EvaluationError(f"{folder} holds no SEG/man_seg*.tif or TRA/man_track*.tif; "
                                  "pass a CTC ground-truth folder or a label stack")
        self._derived: OverlapTracks | None = None
        if self.tra_files:
            self.n_frames = _contiguous(self.tra_files, folder / "TRA")
            self._tracks = _read_track_file(folder / "TRA" / "man_track.txt")
        else:
            self.n_frames = _contiguous(self.seg_files, folder / "SEG", seg_only=True)
            self._derived = OverlapTracks()
        late = [t for t in self.seg_files if t >= self.n_frames]
        if late:
            raise EvaluationError(f"{folder / 'SEG'} annotates frame {late[0]}, but TRA/ has only "
                                  f"{self.n_frames} frames")
        first = (self.tra_files or self.seg_files)[0]
        self.shape = _tiff_shape(first)

    def frames(self) -> Iterator[TruthFrame]:
        if self._derived is not None:
            self._derived = OverlapTracks()
            for t in range(self.n_frames):
                seg = _read_tiff(self.seg_files[t])
                ids = self._derived.add_frame(t, seg)
                yield TruthFrame(t, relabel(seg, ids), seg, True, {v: k for k, v in ids.items()})
            return
        table = self._tracks
        for t in range(self.n_frames):
            tra = _read_tiff(self.tra_files[t])
            present = set(np.unique(tra[tra != 0]).tolist())
            listed = set(table[(table[:, 1] <= t) & (table[:, 2] >= t), 0].tolist())
            if present != listed:
                odd = sorted(present ^ listed)[:3]
                raise EvaluationError(f"{self.tra_files[t]} and TRA/man_track.txt disagree on labels {odd} in "
                                      f"frame {t}; fix the ground truth (each track's label must be in every "
                                      "frame from its begin to its end)")
            seg = _read_tiff(self.seg_files[t]) if t in self.seg_files else None
            yield TruthFrame(t, tra, seg, False)

    def tracks(self) -> np.ndarray:
        return self._derived.table() if self._derived is not None else self._tracks


class _TiffFrames:
    """Frames of a multi-page TIFF read one page at a time."""

    def __init__(self, path: Path):
        import tifffile

        try:
            self._tif = tifffile.TiffFile(path)
        except Exception as exc:
            raise EvaluationError(f"cannot read {path} as TIFF ({exc}); pass a label stack .tif") from exc
        series = self._tif.series[0]
        shape = tuple(s for s in series.shape if s != 1) or (1, 1)
        if len(shape) == 2:
            shape = (1, *shape)
        if len(shape) != 3:
            raise EvaluationError(f"{path} has shape {series.shape}; expected a (T, H, W) label stack")
        self.shape, self.dtype = shape, series.dtype
        self._pages = series.pages if len(series.pages) == shape[0] else None
        self._whole = None if self._pages is not None else series.asarray().reshape(shape)

    def __getitem__(self, t: int) -> np.ndarray:
        if self._pages is None:
            return self._whole[t]
        return self._pages[t].asarray().reshape(self.shape[1:])


def load_truth(path: Path, traces: Path | None = None) -> Truth:
    """Open ground truth at ``path``: a CTC folder, a ``.tif``/``.tiff``/``.npy`` stack or a zarr array.

    ``traces`` is a CSV of true per-cell values (``frame,label,<column>...``); by default
    ``<folder>/traces.csv`` for a CTC folder and ``<stack stem>.traces.csv`` next to a stack.
    """
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"ground truth {path} does not exist; pass a CTC folder (SEG/, TRA/) "
                              "or a label stack (.tif, .zarr, .npy)")
    is_zarr = path.suffix == ".zarr" or (path / "zarr.json").is_file() or (path / ".zarray").is_file()
    if path.is_dir() and not is_zarr:
        if not ((path / "SEG").is_dir() or (path / "TRA").is_dir()):
            raise EvaluationError(f"{path} is a folder without SEG/ or TRA/; pass a CTC ground-truth folder "
                                  "or a label stack (.tif, .zarr, .npy)")
        return CtcTruth(path, _read_traces(traces or path / TRACES_NAME, explicit=traces is not None))
    default_traces = path.with_name(path.name.split(".")[0] + ".traces.csv")
    table = _read_traces(traces or default_traces, explicit=traces is not None)
    if is_zarr:
        frames = _open_zarr(path)
    elif path.suffix.lower() in (".tif", ".tiff"):
        frames = _TiffFrames(path)
    elif path.suffix.lower() == ".npy":
        frames = np.load(path, mmap_mode="r")
    else:
        raise EvaluationError(f"{path}: unknown ground-truth format '{path.suffix}'; use a CTC folder, "
                              ".tif, .zarr or .npy")
    if len(getattr(frames, "shape", ())) == 2:
        frames = np.asarray(frames)[None]
    return StackTruth(frames, str(path), table)


def _open_zarr(path: Path):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise EvaluationError(f"cannot open {path} as zarr ({exc})") from exc
    if isinstance(node, zarr.Group):
        arrays = [name for name, _ in node.arrays()]
        groups = [name for name, _ in node.groups()]
        example = arrays[0] if arrays else f"{groups[0]}/0" if groups else None
        hint = f"pass one of its arrays, e.g. {path}/{example}" if example else "it holds no arrays"
        raise EvaluationError(f"{path} is a zarr group, not a label array; {hint}")
    return node


def _checked(frame: Any, what: str) -> np.ndarray:
    try:
        return check_label_image(np.asarray(frame), what)
    except LabelImageError as exc:
        raise EvaluationError(str(exc)) from exc


_NUMBER = re.compile(r"^(\d+)\.tiff?$")


def _numbered(folder: Path, prefix: str) -> dict[int, Path]:
    """``{frame: path}`` of ``<prefix><digits>.tif`` files (CTC 2-D naming)."""
    if not folder.is_dir():
        return {}
    found = {}
    for p in folder.iterdir():
        m = _NUMBER.match(p.name[len(prefix):]) if p.name.startswith(prefix) else None
        if m:
            found[int(m.group(1))] = p
    return dict(sorted(found.items()))


def _contiguous(files: dict[int, Path], folder: Path, seg_only: bool = False) -> int:
    n = len(files)
    if list(files) != list(range(n)):
        missing = sorted(set(range(max(files) + 1)) - set(files))
        fix = ("without TRA/, SEG/ must annotate every frame" if seg_only
               else "TRA/ needs one man_track file per frame")
        raise EvaluationError(f"{folder} lacks frame {missing[0]}; {fix}")
    return n


def _read_track_file(path: Path) -> np.ndarray:
    if not path.is_file():
        raise EvaluationError(f"{path} is missing; a CTC TRA folder needs its lineage file man_track.txt")
    try:
        table = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise EvaluationError(f"{path} is not a CTC track file ('L B E P' integers per line): {exc}") from exc
    if table.size == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if table.shape[1] != 4:
        raise EvaluationError(f"{path} has {table.shape[1]} columns; a CTC track file has 4 (L B E P)")
    return table


def _tiff_shape(path: Path) -> tuple[int, int]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        shape = tuple(s for s in tif.series[0].shape if s != 1)
    if len(shape) != 2:
        raise EvaluationError(f"{path} has shape {shape}; only 2-D CTC ground truth is supported")
    return shape  # type: ignore[return-value]


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        image = tifffile.imread(path)
    except Exception as exc:
        raise EvaluationError(f"cannot read {path} as TIFF ({exc}); replace the file") from exc
    return _checked(np.squeeze(image), str(path))


def _read_traces(path: Path, explicit: bool):
    """The truth traces CSV (frame, label, value columns), or None when absent and not asked for."""
    if not path.is_file():
        if explicit:
            raise EvaluationError(f"truth traces {path} does not exist")
        return None
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise EvaluationError(f"cannot read truth traces {path}: {exc}") from exc
    values = [c for c in table.columns if c not in ("frame", "label")]
    if not {"frame", "label"} <= set(table.columns) or not values:
        raise EvaluationError(f"truth traces {path} need the columns frame, label and at least one value "
                              "column named like a trace column (e.g. intensity_total_ch_1)")
    return table
