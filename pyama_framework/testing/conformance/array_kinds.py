"""Conformance suites of the array kinds: segmenters, trackers, background estimators, features.

Each ``check_*`` is a plain function: it returns None when the plugin keeps its kind's
contract (:mod:`pyama_framework.types`) and raises :class:`ContractViolation` (an
``AssertionError``) with a message naming the broken rule and the fix otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ...types import CellFrame, TrackedFrame
from ._support import (ContractViolation, accepts_keyword, call, check_registration,
                       check_same, check_unchanged, conformance_movie, fail, load, params_kwargs)
from .discovery import check_light_discovery
from .end_to_end import check_end_to_end
from ..fixture_movie import PIXEL_SIZE_UM

LABEL_MAX = np.iinfo(np.uint16).max  # labels are stored as uint16


def _common(registration: Any, kind: str, plugin_module: str | None) -> None:
    check_registration(registration, kind)
    check_light_discovery(registration, plugin_module)


def _check_labels(registration: Any, what: str, labels: Any, shape: tuple[int, int], top: int) -> np.ndarray:
    if not isinstance(labels, np.ndarray):
        fail(registration, f"{what} is a {type(labels).__name__}, expected a numpy array")
    if labels.shape != shape:
        fail(registration, f"{what} has shape {labels.shape}, expected the input's {shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        fail(registration, f"{what} has dtype {labels.dtype}; labels must be an integer dtype "
                           f"(return labels.astype(np.int32))")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > top):
        fail(registration, f"{what} has values {int(labels.min())}..{int(labels.max())}; "
                           f"labels must lie in 0..{top} (0 = background)")
    return labels


def check_segmenter(registration: Any, *, params: dict | None = None, plugin_module: str | None = None,
                    end_to_end: bool = True, tmp_path: Path | None = None) -> None:
    """Check a :class:`~pyama_framework.SegmenterRegistration` against its contract.

    Parameters
    ----------
    registration : SegmenterRegistration
    params : dict, optional
        Params to run with (default: the model's defaults).
    plugin_module : str, optional
        Entry-point module to probe for heavy imports (default: found among the installed
        ``pyama.plugins`` entry points).
    end_to_end : bool
        Also run ``pyama run`` on the fixture movie with this segmenter.
    tmp_path : Path, optional
        Folder for the end-to-end run (default: a temporary folder).

    Raises
    ------
    ContractViolation
        Naming the broken rule: labels shape or dtype, input modified, not deterministic,
        heavy import at discovery, params model, end-to-end failure.
    """
    _common(registration, "segmenter", plugin_module)
    segment = load(registration, registration.load, registration.implementation)
    kwargs = params_kwargs(registration, params)
    if accepts_keyword(segment, "pixel_size_um"):
        kwargs["pixel_size_um"] = PIXEL_SIZE_UM
    movie = conformance_movie()
    for t in (0, movie.shape[1] - 1):
        image = movie.phase[0, t].copy()
        labels = call(registration, f"segmenting frame {t}", segment, image, **kwargs)
        check_unchanged(registration, "image", movie.phase[0, t], image)
        _check_labels(registration, "the returned labels", labels, image.shape, LABEL_MAX)
        check_same(registration, "frame", labels, call(registration, f"segmenting frame {t}", segment,
                                                          image.copy(), **kwargs))
    if end_to_end:
        check_end_to_end(registration, params, tmp_path)


def _segmenter_output(movie: Any) -> list[np.ndarray]:
    """The true masks renumbered 1..N in a random order per frame, as a segmenter numbers them."""
    rng = np.random.default_rng(0)
    frames = []
    for truth in movie.labels[0]:
        ids = np.unique(truth[truth > 0])
        lut = np.zeros(int(truth.max()) + 1, np.int32)
        lut[ids] = rng.permutation(len(ids)) + 1
        frames.append(lut[truth])
    return frames


def _track(registration: Any, track: Any, frames: list[np.ndarray], kwargs: dict) -> tuple[list, int]:
    """All items the tracker yields, and how many input frames it had pulled at the first one."""
    pulled = {"n": 0, "at_first": None}

    def feed() -> Iterator[np.ndarray]:
        for frame in frames:
            pulled["n"] += 1
            yield frame

    items: list = []
    try:
        for item in track(feed(), **kwargs):
            if pulled["at_first"] is None:
                pulled["at_first"] = pulled["n"]
            items.append(item)
            if len(items) > len(frames):
                fail(registration, f"yielded more frames than the {len(frames)} it was given")
    except ContractViolation:
        raise
    except Exception as exc:
        fail(registration, f"raised {type(exc).__name__} while tracking frame {len(items)}: {exc}")
    return items, pulled["at_first"] or 0


def check_tracker(registration: Any, *, params: dict | None = None, plugin_module: str | None = None,
                  end_to_end: bool = True, tmp_path: Path | None = None) -> None:
    """Check a :class:`~pyama_framework.TrackerRegistration` against its contract: one
    integer frame (or :class:`~pyama_framework.TrackedFrame`) per input frame, streamed,
    IDs in 1..2**32-1, parents only for tracks starting in the frame, inputs untouched,
    deterministic. Parameters as :func:`check_segmenter`.
    """
    from ...stages.context import StageError
    from ...stages.track import Lineage

    _common(registration, "tracker", plugin_module)
    track = load(registration, registration.load, registration.implementation)
    kwargs = params_kwargs(registration, params)
    frames = _segmenter_output(conformance_movie())
    originals = [f.copy() for f in frames]
    items, at_first = _track(registration, track, frames, kwargs)
    for t, (before, after) in enumerate(zip(originals, frames)):
        check_unchanged(registration, f"label frame {t}", before, after)
    if len(items) != len(frames):
        fail(registration, f"yielded {len(items)} frames for {len(frames)} inputs; yield exactly one per input")
    if at_first == len(frames):
        fail(registration, f"read all {len(frames)} label frames before yielding the first; a tracker must "
                           f"stream (yield each frame once it is decided), not materialise the movie")
    lineage = Lineage()
    outputs = []
    for t, item in enumerate(items):
        labels, parents = (item.labels, dict(item.parents)) if isinstance(item, TrackedFrame) else (item, {})
        labels = _check_labels(registration, f"tracked frame {t}", labels, frames[t].shape, 2 ** 32 - 1)
        cells = np.unique(labels[labels > 0])
        try:
            lineage.add(t, cells, parents, f"{registration.kind} '{registration.name}'")
        except StageError as exc:
            raise ContractViolation(str(exc)) from None
        outputs.append((labels, sorted(parents.items())))
    again, _ = _track(registration, track, [f.copy() for f in originals], kwargs)
    for t, (first, item) in enumerate(zip(outputs, again)):
        labels, parents = (item.labels, dict(item.parents)) if isinstance(item, TrackedFrame) else (item, {})
        check_same(registration, f"label frames (frame {t})", first[0], labels)
        if first[1] != sorted(parents.items()):
            fail(registration, f"is not deterministic: the parents of frame {t} differ between two runs")
    if end_to_end:
        check_end_to_end(registration, params, tmp_path)


def check_background(registration: Any, *, params: dict | None = None, plugin_module: str | None = None,
                     end_to_end: bool = True, tmp_path: Path | None = None) -> None:
    """Check a :class:`~pyama_framework.BackgroundRegistration`: a finite float32 (H, W)
    background, inputs untouched, deterministic. Parameters as :func:`check_segmenter`.
    """
    _common(registration, "background", plugin_module)
    estimate = load(registration, registration.load, registration.implementation)
    kwargs = params_kwargs(registration, params)
    movie = conformance_movie()
    for t in (0, movie.shape[1] - 1):
        image, labels = movie.fluorescence[0, t].copy(), movie.labels[0, t].astype(np.int32)
        labels_before = labels.copy()
        background = call(registration, f"estimating frame {t}", estimate, image, labels, **kwargs)
        check_unchanged(registration, "image", movie.fluorescence[0, t], image)
        check_unchanged(registration, "labels", labels_before, labels)
        if not isinstance(background, np.ndarray) or background.shape != image.shape:
            got = getattr(background, "shape", type(background).__name__)
            fail(registration, f"returned {got}, expected an array of the image's shape {image.shape}")
        if background.dtype != np.float32:
            fail(registration, f"returned dtype {background.dtype}; the background must be float32 "
                               f"(return background.astype(np.float32))")
        if not np.isfinite(background).all():
            fail(registration, "returned non-finite background values (NaN or inf)")
        check_same(registration, "frame", background, call(registration, f"estimating frame {t}", estimate,
                                                              image.copy(), labels.copy(), **kwargs))
    if end_to_end:
        check_end_to_end(registration, params, tmp_path)


def _cell_frames(channel_kind: str) -> list[CellFrame]:
    from ...stages.extract import cells_in_frame

    movie = conformance_movie()
    frames = []
    for t in (0, movie.shape[1] - 1):
        labels = movie.labels[0, t]
        ids, boxes, _, _ = cells_in_frame(labels)
        fluorescence = channel_kind == "fluorescence"
        image = (movie.fluorescence if fluorescence else movie.phase)[0, t].copy()
        background = movie.background[0, t].copy() if fluorescence else None
        frames.append(CellFrame(labels.copy(), image, background, ids, boxes))
    empty = frames[0]
    frames.append(CellFrame(np.zeros_like(empty.labels), empty.image, empty.background,
                            np.zeros(0, np.int64), np.zeros((0, 4), np.int64)))
    return frames


def _per_cell(registration: Any, function: Any, frame: CellFrame, kwargs: dict) -> np.ndarray:
    values = []
    for i in range(len(frame.cell_ids)):
        value = call(registration, f"the per-cell call for cell {frame.cell_ids[i]}", function,
                     *frame.crops(i), **kwargs)
        if np.ndim(value) != 0 or not np.issubdtype(np.asarray(value).dtype, np.number):
            fail(registration, f"returned {type(value).__name__} {np.shape(value)} for one cell; "
                               f"return one float (NaN when undefined)")
        values.append(float(value))
    return np.array(values, dtype=np.float64)


def check_feature(registration: Any, *, params: dict | None = None, plugin_module: str | None = None,
                  end_to_end: bool = True, tmp_path: Path | None = None, rtol: float = 1e-7) -> None:
    """Check a :class:`~pyama_framework.FeatureRegistration`: one float per cell, inputs
    untouched, deterministic, and the fast ``frame_implementation`` (if any) equal to the
    per-cell implementation within ``rtol``. Other parameters as :func:`check_segmenter`.
    """
    _common(registration, "feature", plugin_module)
    per_cell = load(registration, registration.load, registration.implementation)
    fast = load(registration, registration.load_frame, registration.frame_implementation)
    kwargs = params_kwargs(registration, params)
    for frame in _cell_frames(registration.channel_kind):
        kept = [None if a is None else a.copy() for a in (frame.labels, frame.image, frame.background)]
        slow = _per_cell(registration, per_cell, frame, kwargs)
        for what, before, after in zip(("labels", "image", "background"), kept,
                                       (frame.labels, frame.image, frame.background)):
            if before is not None:
                check_unchanged(registration, what, before, after)
        check_same(registration, "cells", slow, _per_cell(registration, per_cell, frame, kwargs))
        if fast is None:
            continue
        values = np.asarray(call(registration, "frame_implementation", fast, frame, **kwargs), dtype=np.float64)
        if values.shape != frame.cell_ids.shape:
            fail(registration, f"frame_implementation returned shape {values.shape} for {len(frame.cell_ids)} "
                               f"cells; return one value per cell_frame.cell_ids")
        for what, before, after in zip(("labels", "image", "background"), kept,
                                       (frame.labels, frame.image, frame.background)):
            if before is not None:
                check_unchanged(registration, f"{what} (frame_implementation)", before, after)
        if getattr(registration, "uses_neighbours", False):
            continue  # the per-cell call sees one cell alone; only the fast path is the feature
        close = np.isclose(values, slow, rtol=rtol, atol=0, equal_nan=True)
        if not close.all():
            i = int(np.flatnonzero(~close)[0])
            fail(registration, f"frame_implementation differs from the per-cell implementation for "
                               f"{int((~close).sum())} of {len(close)} cells (cell {frame.cell_ids[i]}: fast "
                               f"{values[i]!r}, per-cell {slow[i]!r}); both must give the same values")
    if end_to_end:
        check_end_to_end(registration, params, tmp_path)


__all__ = ["check_background", "check_feature", "check_segmenter", "check_tracker"]
