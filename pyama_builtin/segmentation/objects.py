"""Per-object steps after thresholding: the typical cell width, rejecting debris and halo
fragments, and splitting touching cells with a marker-controlled watershed.

All sizes are relative to the cell width ``W`` (px; the short axis of a rod, the diameter
of a round cell), given or estimated from the frame, so one set of defaults serves 8 px
stem cells and 20 px bacteria.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .morphology import erode

__all__ = ["estimate_cell_width", "reject_objects", "split_touching"]

# Objects measured to estimate the width: a spread sample is as good as all of them and
# bounds the cost (one small distance transform each).
_WIDTH_SAMPLE = 64
_MIN_WIDTH = 3.0  # px; below this no cell can be told from noise


def _inscribed_radius(obj: np.ndarray) -> float:
    """Largest distance from a pixel of ``obj`` (bool crop) to its outside."""
    return float(ndi.distance_transform_edt(np.pad(obj, 1)).max())


def estimate_cell_width(labels: np.ndarray, slices: list, areas: np.ndarray) -> float:
    """Typical cell width: twice the median inscribed-circle radius of the objects.

    The median over objects is robust to a minority of merged clusters (wider) and of
    fragments (thinner). Objects below 20 px are noise and are left out; a sample of at most
    64 objects spread over the size range is measured.

    Parameters
    ----------
    labels : (H, W) int ndarray
    slices : list of tuple of slice
        ``scipy.ndimage.find_objects(labels)``.
    areas : (N,) ndarray
        Pixel count of labels 1..N.

    Returns
    -------
    float
        Width in px (at least 3).
    """
    candidates = np.flatnonzero(areas >= 20)
    if candidates.size == 0:
        return _MIN_WIDTH
    ordered = candidates[np.argsort(areas[candidates], kind="stable")]
    picked = ordered[:: max(1, ordered.size // _WIDTH_SAMPLE)]
    radii = [_inscribed_radius(labels[slices[i]] == i + 1) for i in picked]
    return max(2.0 * float(np.median(radii)), _MIN_WIDTH)


def reject_objects(
    labels: np.ndarray,
    area: np.ndarray,
    contrast: np.ndarray,
    width: float,
    min_area_fraction: float,
    min_thickness: float,
    min_contrast: float,
) -> np.ndarray:
    """Which of labels 1..N are cells (bool array of length N+1, entry 0 False).

    Rejected, each by a measured criterion relative to the cell width ``W``:

    - debris specks: fewer pixels than ``min_area_fraction * W**2``;
    - halo fragments and thin arcs: no pixel deeper than ``min_thickness * W / 2`` inside
      the object (tested by one erosion of all objects together);
    - faint objects: mean deviation from the background, in the cells' direction, below
      ``min_contrast`` (in units of the background noise).

    ``area`` and ``contrast`` hold the pixel count and the contrast of labels 0..N.
    """
    keep = area >= min_area_fraction * width * width
    keep &= contrast >= min_contrast
    depth = int(np.floor(min_thickness * width / 2.0))
    if depth >= 1:
        keep &= np.bincount(labels[erode(labels > 0, depth)], minlength=area.size) > 0
    keep[0] = False
    return keep


def split_touching(
    labels: np.ndarray,
    keep: np.ndarray,
    area: np.ndarray,
    slices: list,
    width: float,
    h_fraction: float,
    min_area: float,
) -> np.ndarray:
    """Number the kept objects 1..N, splitting those that hold several cells.

    Candidates are kept objects larger than 1.5 x the median kept area (a single cell
    rarely is). Inside a candidate's bounding box the Euclidean distance to the outside is
    smoothed (sigma 1 px); its regional maxima rising more than ``h_fraction * W`` above
    their surroundings (h-maxima) mark the cells, and a watershed
    (``skimage.segmentation.watershed``) of the negated distance from those markers,
    restricted to the object, cuts it along its necks. Pieces below ``min_area`` px keep
    the object's number (they would be rejected as debris).

    Parameters
    ----------
    labels : (H, W) int ndarray
        Objects 0..N; ``keep`` and ``area`` (length N+1) say which are cells and their size.
    slices : list of tuple of slice
        ``scipy.ndimage.find_objects(labels)``.
    width, h_fraction, min_area : float
        Cell width (px), marker height relative to it, smallest piece (px).

    Returns
    -------
    (H, W) int32 ndarray
    """
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    kept = np.flatnonzero(keep)
    number = np.zeros(keep.size, dtype=np.int32)
    number[kept] = np.arange(1, kept.size + 1, dtype=np.int32)
    out = number[labels]
    if kept.size == 0:
        return out
    h = max(h_fraction * width, 0.5)
    next_label = kept.size + 1
    for i in kept[area[kept] > 1.5 * np.median(area[kept])]:
        box = slices[i - 1]
        obj = labels[box] == i
        distance = ndi.gaussian_filter(ndi.distance_transform_edt(np.pad(obj, 1)), 1.0)[1:-1, 1:-1]
        markers, count = ndi.label(h_maxima(distance, h))
        if count < 2:
            continue
        pieces = watershed(-distance, markers, mask=obj)
        sizes = np.bincount(pieces[obj], minlength=count + 1)
        big = np.flatnonzero(sizes >= min_area)
        big = big[big > 0]
        if big.size < 2:
            continue
        target = out[box]
        for k in big[1:]:  # the first piece keeps the object's number
            target[pieces == k] = next_label
            next_label += 1
    return out
