"""Overlaps between two label images, and the two ways evaluation matches cells with them.

- :func:`ctc_match`: the Cell Tracking Challenge's rule (a found cell matches a true one when it
  covers more than half of the true cell), used for SEG, DET and TRA.
- :func:`iou_match`: one-to-one pairs with IoU >= 0.5, used for F1, links and traces.

Everything here works on in-memory arrays, one frame at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class LabelImageError(ValueError):
    """An array that should be a label image is not one; the message says why."""


# A label image is flat inside each cell: only cell borders change value between
# neighbours. An intensity image (noise, texture) changes value at most neighbours.
MAX_CHANGING_NEIGHBOURS = 0.30


def check_label_image(image: np.ndarray, what: str) -> np.ndarray:
    """Return ``image`` as an integer array, or raise :class:`LabelImageError`.

    Parameters
    ----------
    image : (H, W) ndarray
        The candidate label image (0 = background, cells 1..N).
    what : str
        How to name the image in the error message (e.g. a file name and frame).

    Returns
    -------
    (H, W) ndarray of an unsigned integer dtype (bool becomes uint8).

    Notes
    -----
    Refused: a non-integer dtype, negative values, and images whose foreground is not made of
    flat regions: more than 30 % of the horizontally or vertically adjacent foreground pixel
    pairs differ in value (an intensity image, not labels).
    """
    image = np.asarray(image)
    if image.dtype == bool:
        return image.astype(np.uint8)
    if not np.issubdtype(image.dtype, np.integer):
        raise LabelImageError(f"{what} has dtype {image.dtype}; ground truth must be an integer label image "
                              "(0 = background, cells 1..N), not an intensity image")
    if image.ndim != 2:
        raise LabelImageError(f"{what} has shape {image.shape}; expected one (H, W) label image per frame")
    if np.issubdtype(image.dtype, np.signedinteger):
        if image.size and image.min() < 0:
            raise LabelImageError(f"{what} holds negative values; labels must be 0 (background) or positive")
        image = image.astype(np.uint32 if image.max(initial=0) < 2**32 else np.uint64)
    pairs = changed = 0
    for a, b in ((image[:, 1:], image[:, :-1]), (image[1:, :], image[:-1, :])):
        both = (a != 0) & (b != 0)
        pairs += int(both.sum())
        changed += int((both & (a != b)).sum())
    if pairs and changed > MAX_CHANGING_NEIGHBOURS * pairs:
        raise LabelImageError(f"{what} looks like an intensity image, not labels: {changed / pairs:.0%} of "
                              "neighbouring foreground pixels differ (a label image is flat inside each cell)")
    return image


@dataclass(frozen=True)
class Overlaps:
    """Pixel overlaps between a reference (true) and a computed (found) label image.

    Attributes
    ----------
    ref_labels, comp_labels : (R,), (C,) int64 ndarray
        Labels present (0 excluded), ascending.
    ref_area, comp_area : (R,), (C,) int64 ndarray
        Pixels of each label.
    pair_ref, pair_comp, pair_inter : (P,) int64 ndarray
        Every overlapping pair (labels) and its intersection in pixels.
    """

    ref_labels: np.ndarray
    comp_labels: np.ndarray
    ref_area: np.ndarray
    comp_area: np.ndarray
    pair_ref: np.ndarray
    pair_comp: np.ndarray
    pair_inter: np.ndarray

    def pair_iou(self) -> np.ndarray:
        ra = self.ref_area[np.searchsorted(self.ref_labels, self.pair_ref)]
        ca = self.comp_area[np.searchsorted(self.comp_labels, self.pair_comp)]
        return self.pair_inter / np.maximum(ra + ca - self.pair_inter, 1)

    def ref_area_of(self, labels: np.ndarray) -> np.ndarray:
        return self.ref_area[np.searchsorted(self.ref_labels, labels)]

    def comp_area_of(self, labels: np.ndarray) -> np.ndarray:
        return self.comp_area[np.searchsorted(self.comp_labels, labels)]


# Counting by np.bincount is ~5x faster than np.unique (a sort) when the label range is small.
_BINCOUNT_LIMIT = 1 << 24


def _count(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct non-negative ``values`` and how often each occurs."""
    if values.size and int(values.max()) < _BINCOUNT_LIMIT:
        counts = np.bincount(values)
        present = np.flatnonzero(counts)
        return present.astype(np.int64), counts[present].astype(np.int64)
    found, counts = np.unique(values, return_counts=True)
    return found.astype(np.int64), counts.astype(np.int64)


def _areas(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, counts = _count(image.ravel())
    return (labels[1:], counts[1:]) if labels.size and labels[0] == 0 else (labels, counts)


def overlaps(ref: np.ndarray, comp: np.ndarray) -> Overlaps:
    """Overlaps of every pair of labels of ``ref`` and ``comp`` (same shape, integer)."""
    if ref.shape != comp.shape:
        raise ValueError(f"label images differ in shape: {ref.shape} vs {comp.shape}")
    ref_labels, ref_area = _areas(ref)
    comp_labels, comp_area = _areas(comp)
    both = (ref != 0) & (comp != 0)
    stride = int(comp_labels[-1]) + 1 if comp_labels.size else 1
    key, inter = _count(ref[both].astype(np.int64) * stride + comp[both])
    return Overlaps(ref_labels, comp_labels, ref_area, comp_area, key // stride, key % stride, inter)


def ctc_match(ov: Overlaps) -> tuple[list[int], list[int], list[int], list[int], list[float]]:
    """The CTC matching: a found cell matches a true cell when it covers > 50 % of it.

    Returns the same five lists as ``ctc_metrics.utils.representations.match``: true labels,
    found labels, matched true labels, their matched found labels, and the IoU of each match.
    A true cell has at most one match; a found cell may match several (a merge).
    """
    keep = ov.pair_inter > 0.5 * ov.ref_area_of(ov.pair_ref)
    iou = ov.pair_iou()[keep]
    return (ov.ref_labels.tolist(), ov.comp_labels.tolist(), ov.pair_ref[keep].tolist(),
            ov.pair_comp[keep].tolist(), iou.tolist())


def iou_match(ov: Overlaps, threshold: float = 0.5) -> dict[int, int]:
    """One-to-one matches ``{true label: found label}`` with IoU >= ``threshold`` (greedy by IoU)."""
    iou = ov.pair_iou()
    order = np.argsort(-iou, kind="stable")
    matches: dict[int, int] = {}
    used: set[int] = set()
    for i in order[iou[order] >= threshold]:
        r, c = int(ov.pair_ref[i]), int(ov.pair_comp[i])
        if r not in matches and c not in used:
            matches[r] = c
            used.add(c)
    return matches


def mutual_match(ref: np.ndarray, comp: np.ndarray) -> dict[int, int]:
    """``{found label: true label}`` for pairs in which each covers more than half of the other
    (at most one partner each; used to compare per-cell values such as intensities)."""
    ov = overlaps(ref, comp)
    ok = (2 * ov.pair_inter > ov.ref_area_of(ov.pair_ref)) & (2 * ov.pair_inter > ov.comp_area_of(ov.pair_comp))
    return dict(zip(ov.pair_comp[ok].tolist(), ov.pair_ref[ok].tolist()))
