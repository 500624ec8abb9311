"""Frame-to-frame cell tracking by overlap (IoU) and optimal one-to-one assignment.

Each frame's cells are matched to the previous frame's tracked cells by intersection over
union, choosing the matching with the largest total IoU (Hungarian algorithm) among pairs
with IoU >= ``min_iou``. Unmatched cells start new tracks in any frame. With gap closing,
cells still unmatched are compared with the last masks of tracks lost up to ``max_gap``
frames ago, so a cell missing from one segmentation keeps its ID. A cell replaced by two
that each lie mostly on it (a division) ends its track; the daughters get new IDs and the
mother as parent (see ``_divisions.py``).

Cells are held sparsely (flat indices of their pixels and their labels), so the state is a
few arrays per remembered frame and memory does not grow with the number of frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from pyama_framework.types import TrackedFrame

from ._confirm import CellFrame, confirm_divisions
from ._divisions import find_overlap_divisions

__all__ = ["track_iou_hungarian"]

# Candidate pairs for bbox IoU are found by broadcasting this many previous cells at a time
# against all current cells, which bounds the temporary (rows x current cells) matrices.
_BBOX_CHUNK = 1024


@dataclass(frozen=True)
class _Cells:
    """The kept cells of one frame, stored sparsely.

    ``pixels`` are flat indices of the cells' pixels and ``label`` their cell index
    (0..n-1, aligned with ``pixels``); ``area`` and ``bbox`` ([y0, x0, y1, x1), half-open)
    are per cell; ``ids`` the track ID of each cell once assigned.
    """

    pixels: np.ndarray
    label: np.ndarray
    area: np.ndarray
    bbox: np.ndarray | None
    ids: np.ndarray

    @property
    def n(self) -> int:
        return self.area.size


def track_iou_hungarian(
    label_frames: Iterable[np.ndarray],
    min_iou: float = 0.1,
    iou: Literal["mask", "bbox"] = "mask",
    min_size: int = 0,
    max_size: int | None = None,
    max_gap: int = 2,
    divisions: bool = True,
    division_lookahead: int = 2,
    min_mother_age: int = 2,
) -> Iterator[TrackedFrame]:
    """Link per-frame cell labels into tracks with consistent IDs.

    Parameters
    ----------
    label_frames : iterable of (H, W) integer ndarray
        Per-frame labels in time order (0 = background; any positive values, numbering need
        not be consistent across frames). Consumed lazily, one frame at a time.
    min_iou : float, optional
        Smallest IoU for two cells in consecutive frames (or across a gap) to be linked.
    iou : {"mask", "bbox"}, optional
        Overlap measure: exact IoU of the cells' pixel masks, or IoU of their bounding boxes
        (cheaper to reason about, but links cells whose boxes overlap and masks barely do).
    min_size, max_size : int, optional
        Cells with fewer than ``min_size`` or more than ``max_size`` pixels are dropped
        (set to 0 in the output). ``max_size=None`` means no upper limit.
    max_gap : int, optional
        Largest number of consecutive frames a cell may be missing and still keep its ID.
        0 disables gap closing.
    divisions : bool, optional
        Detect divisions: when two cells of a frame each lie mostly (> 50 % of their pixels,
        or of their boxes with ``iou="bbox"``) on the same cell of the previous frame and
        their areas add up to about its area, the mother's track ends and each daughter
        gets a new ID with the mother as parent.
    division_lookahead : int, optional
        A division stands only if both daughters are still separate cells in each of the
        next ``division_lookahead`` frames (the output lags the input by that many frames
        when ``divisions`` is on); otherwise the split is a segmentation artefact and the
        longer-lived piece keeps the mother's ID (see ``_confirm.py``).
    min_mother_age : int, optional
        Frames a track must exist before it can divide (tracks of the first frame always
        can): a piece of a split that just happened does not divide again.

    Yields
    ------
    TrackedFrame
        One per input frame. ``labels``: (H, W) uint16 (uint32 in frames with IDs above
        65535), each kept cell carries its track ID (>= 1), the same in every frame it
        appears in; background and dropped cells are 0.
        IDs are assigned in order of first appearance. ``parents``: each daughter track
        starting in this frame -> its mother's ID.

    Notes
    -----
    Matching maximises the total IoU over one-to-one pairs with IoU >= ``min_iou``; with
    ``divisions=False`` a cell that splits keeps its ID on the best-overlapping side only,
    and two that merge continue the best-overlapping track.
    Overlaps are counted from a contingency table of (previous cell, current cell) pixel
    pairs (``np.bincount``), never by comparing cells pair by pair.
    """
    if iou not in ("mask", "bbox"):
        raise ValueError(f"iou must be 'mask' or 'bbox', got {iou!r}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    if division_lookahead < 0 or min_mother_age < 0:
        raise ValueError("division_lookahead and min_mother_age must be >= 0")
    frames = _link_frames(label_frames, min_iou, iou, min_size, max_size, max_gap, divisions)
    if divisions:
        yield from confirm_divisions(frames, division_lookahead, min_mother_age, max_gap + 1)
    else:
        for frame in frames:
            yield frame.render()


def _link_frames(label_frames, min_iou, iou, min_size, max_size, max_gap,
                 divisions) -> Iterator[CellFrame]:
    """The tracker proper: per frame, cells with IDs and the proposed divisions."""
    shape: tuple[int, ...] | None = None
    scratch: np.ndarray | None = None  # dense label image of one remembered frame, reused
    history: deque[_Cells] = deque(maxlen=max_gap + 1)  # newest last
    divided: deque[np.ndarray] = deque(maxlen=max_gap + 1)  # mothers' IDs, never continued
    next_id = 1

    for frame in label_frames:
        labels = np.asarray(frame)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"label frames must be 2-D integer arrays, got {labels.dtype} "
                             f"{labels.shape}")
        if shape is None:
            shape = labels.shape
            scratch = np.zeros(labels.size, dtype=np.int32)
        elif labels.shape != shape:
            raise ValueError(f"frame shape {labels.shape} differs from the first {shape}")

        cells = _kept_cells(labels, min_size, max_size, with_bbox=(iou == "bbox"))
        unmatched = np.ones(cells.n, dtype=bool)
        parents: dict[int, int] = {}
        mothers = np.empty(0, dtype=np.uint32)
        overlaps = None  # (previous, current, common pixels) pairs with the previous frame

        # Previous frame first, then tracks lost 1..max_gap frames before it.
        for age, past in enumerate(reversed(history)):
            if not unmatched.any():
                break
            if age == 0:
                candidates = np.ones(past.n, dtype=bool)
            else:
                seen_later = np.concatenate([h.ids for h in list(history)[len(history) - age:]]
                                            + list(divided))
                candidates = ~np.isin(past.ids, seen_later)
                if not candidates.any():
                    continue
            p, c, score, inter = _iou_pairs(past, cells, scratch, iou, candidates, unmatched)
            good = score >= min_iou
            prev_idx, cur_idx = _max_weight_matching(p[good], c[good], score[good])
            cells.ids[cur_idx] = past.ids[prev_idx]
            unmatched[cur_idx] = False
            if age == 0:
                overlaps = p, c, inter, past
        # Divisions after gap closing, so that a clump of two tracks that comes apart again
        # gives the lost one back its ID instead of being taken for a division: a daughter
        # is a cell left unmatched or matched to the mother herself.
        if divisions and overlaps is not None:
            p, c, inter, past = overlaps
            free = (cells.ids[c] == 0) | (cells.ids[c] == past.ids[p])
            p, c, inter = p[free], c[free], inter[free]
            found = find_overlap_divisions(p, c, inter, _sizes(past, iou), _sizes(cells, iou))
            for mother, a, b in found:
                daughters = np.array([a, b])
                next_id = _new_ids(cells.ids, daughters, next_id)
                unmatched[daughters] = False
                parents[int(cells.ids[a])] = parents[int(cells.ids[b])] = int(past.ids[mother])
            mothers = np.array([past.ids[d.mother] for d in found], dtype=np.uint32)

        next_id = _new_ids(cells.ids, np.flatnonzero(unmatched), next_id)
        history.append(cells)
        divided.append(mothers)
        yield CellFrame(shape, cells.pixels, cells.label, cells.ids, cells.area, parents)


def _new_ids(ids: np.ndarray, where: np.ndarray, next_id: int) -> int:
    """Give the cells ``where`` consecutive new IDs from ``next_id``; return the next free."""
    if next_id + where.size > 2**32:
        raise OverflowError("more than 2**32 - 1 tracks")
    ids[where] = np.arange(next_id, next_id + where.size, dtype=np.uint32)
    return next_id + where.size


def _sizes(cells: _Cells, iou: str) -> np.ndarray:
    """Cell areas, or bounding-box areas when overlaps are measured on boxes."""
    if iou == "mask":
        return cells.area
    b = cells.bbox
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _kept_cells(labels: np.ndarray, min_size: int, max_size: int | None,
                with_bbox: bool) -> _Cells:
    """Collect the cells of ``labels`` within the size limits, numbered 0..n-1."""
    flat = labels.ravel()
    pixels = np.flatnonzero(flat != 0)  # faster than flatnonzero(flat) on ints
    values = flat[pixels]
    if values.size and values.min() < 0:
        raise ValueError("label frames must not contain negative labels")
    # Labels are usually 1..N; arbitrary values are compacted first so tables stay small.
    if values.size and int(values.max()) > 4 * values.size + 65536:
        _, values = np.unique(values, return_inverse=True)
        values = values + 1
    area = np.bincount(values, minlength=1)
    keep = area >= max(min_size, 1)
    if max_size is not None:
        keep &= area <= max_size
    keep[0] = False
    index_of = np.full(area.size, -1, dtype=np.int64)
    index_of[keep] = np.arange(int(keep.sum()))
    label = index_of[values]
    on_kept = label >= 0
    if not on_kept.all():
        pixels, label = pixels[on_kept], label[on_kept]
    bbox = _bboxes(pixels, label, keep.sum(), labels.shape[1]) if with_bbox else None
    return _Cells(pixels, label, area[keep], bbox, np.zeros(int(keep.sum()), dtype=np.uint32))


def _bboxes(pixels: np.ndarray, label: np.ndarray, n: int, width: int) -> np.ndarray:
    """Half-open bounding boxes [y0, x0, y1, x1) of cells 0..n-1 (each has >= 1 pixel)."""
    rows, cols = np.divmod(pixels, width)
    bbox = np.empty((n, 4), dtype=np.int64)
    bbox[:, 0] = bbox[:, 1] = np.iinfo(np.int64).max
    bbox[:, 2] = bbox[:, 3] = -1
    np.minimum.at(bbox[:, 0], label, rows)
    np.minimum.at(bbox[:, 1], label, cols)
    np.maximum.at(bbox[:, 2], label, rows)
    np.maximum.at(bbox[:, 3], label, cols)
    bbox[:, 2:] += 1
    return bbox


def _iou_pairs(prev: _Cells, cur: _Cells, scratch: np.ndarray, iou: str,
               prev_mask: np.ndarray, cur_mask: np.ndarray):
    """(prev, cur, IoU, intersection) of the overlapping pairs of selected cells.

    Only cells selected by the boolean ``prev_mask`` / ``cur_mask`` take part; with
    ``iou="bbox"`` IoU and intersection are those of the bounding boxes.
    """
    if iou == "mask":
        return _mask_iou_pairs(prev, cur, scratch, prev_mask, cur_mask)
    return _bbox_iou_pairs(prev.bbox, cur.bbox, prev_mask, cur_mask)


def _mask_iou_pairs(prev: _Cells, cur: _Cells, scratch: np.ndarray,
                    prev_mask: np.ndarray, cur_mask: np.ndarray):
    """(prev, cur, IoU, intersection) for every pair of selected cells whose masks overlap."""
    # Paint the previous cells (1-based) into the reusable dense buffer and read it back at
    # the current cells' pixels: one pixel pair per overlapping pixel.
    sel = prev_mask[prev.label]
    prev_pixels = prev.pixels[sel]
    scratch[prev_pixels] = prev.label[sel] + 1
    sel_cur = cur_mask[cur.label]
    under = scratch[cur.pixels[sel_cur]]
    scratch[prev_pixels] = 0
    overlap = under > 0
    p = under[overlap].astype(np.int64) - 1
    c = cur.label[sel_cur][overlap]
    if p.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0), empty
    # Contingency table as a bincount over pair keys; np.unique when the dense table would
    # be much larger than the number of pixel pairs.
    key = p * cur.n + c
    if prev.n * cur.n <= 8 * key.size + 1_000_000:
        counts = np.bincount(key, minlength=prev.n * cur.n)
        key = np.flatnonzero(counts)
        inter = counts[key]
    else:
        key, inter = np.unique(key, return_counts=True)
    p, c = np.divmod(key, cur.n)
    score = inter / (prev.area[p] + cur.area[c] - inter)
    return p, c, score, inter


def _bbox_iou_pairs(prev_box: np.ndarray, cur_box: np.ndarray,
                    prev_mask: np.ndarray, cur_mask: np.ndarray):
    """(prev, cur, IoU, intersection) for every pair of selected cells whose bounding
    boxes intersect."""
    prev_sel, cur_sel = np.flatnonzero(prev_mask), np.flatnonzero(cur_mask)
    b = cur_box[cur_sel]
    b_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    ps, cs, scores, inters = [], [], [], []
    for start in range(0, prev_sel.size, _BBOX_CHUNK):
        rows = prev_sel[start:start + _BBOX_CHUNK]
        a = prev_box[rows][:, None, :]
        h = np.minimum(a[..., 2], b[:, 2]) - np.maximum(a[..., 0], b[:, 0])
        w = np.minimum(a[..., 3], b[:, 3]) - np.maximum(a[..., 1], b[:, 1])
        inter = np.clip(h, 0, None) * np.clip(w, 0, None)
        i, j = np.nonzero(inter)
        a_area = (a[i, 0, 2] - a[i, 0, 0]) * (a[i, 0, 3] - a[i, 0, 1])
        ps.append(rows[i])
        cs.append(cur_sel[j])
        scores.append(inter[i, j] / (a_area + b_area[j] - inter[i, j]))
        inters.append(inter[i, j])
    if not ps:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0), empty
    return (np.concatenate(ps), np.concatenate(cs), np.concatenate(scores),
            np.concatenate(inters))


def _max_weight_matching(p: np.ndarray, c: np.ndarray,
                         score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of candidate pairs (p[i], c[i]) with the largest total score."""
    if p.size == 0:
        return p, c
    # A pair whose two cells take part in no other candidate pair is in every optimum;
    # only the ambiguous rest goes to the Hungarian algorithm (keeps it small).
    alone = (np.bincount(p)[p] == 1) & (np.bincount(c)[c] == 1)
    if alone.all():
        return p, c
    rest = ~alone
    rows, ri = np.unique(p[rest], return_inverse=True)
    cols, ci = np.unique(c[rest], return_inverse=True)
    cost = np.zeros((rows.size, cols.size))
    cost[ri, ci] = -score[rest]
    r, k = linear_sum_assignment(cost)
    real = cost[r, k] < 0  # zero cost = not a candidate pair, i.e. left unmatched
    return (np.concatenate([p[alone], rows[r[real]]]),
            np.concatenate([c[alone], cols[k[real]]]))
