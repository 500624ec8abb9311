"""Fast binary morphology for segmentation masks.

Measured on a 2048 x 2048 mask with 600 cells (2 shared cores):

======================================  ==========  ==========
operation                               here        alternative
======================================  ==========  ==========
closing, disk(1)                        ~2 ms       65 ms ``ndi.binary_closing``
closing, disk(7) x 3 iterations         77 ms       1.2-3.0 s ``ndi.binary_closing``
one dilation by a radius-21 disk        35 ms       340 ms ``distance_transform_edt <= 21``
fill holes                              4.5 ms      130-330 ms ``ndi.binary_fill_holes``
======================================  ==========  ==========

``scipy.ndimage`` visits the whole structuring element at every pixel. Here disks up to
radius 10 go through OpenCV (``cv2.dilate`` / ``cv2.erode``: 2-7x faster than the row
runs below at radius 1-7, 1.3x slower at 21); a larger disk is a union of shifted
whole-array ORs (row runs); holes are filled with one ``cv2.floodFill`` from the border
(:mod:`pyama_builtin.cvops`). The results equal scipy's exactly (see the tests). Iterating a
dilation by disk(r) n times is kept literally (scipy's ``iterations``): it equals one
dilation by the n-fold Minkowski sum of the digital disk, which is close to but not exactly
disk(n * r), and costs the same here. A distance-transform threshold would give a true
Euclidean disk of any radius, but costs ~340 ms per transform.

Border convention: pixels outside the image are ignored (neither foreground nor
background), so a cell cut by the image edge is neither eroded from the edge nor grown
into it. ``scipy.ndimage`` instead treats the outside as background, which erodes border
cells away in an opening.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..cvops import dilate_disk, erode_disk
from ..cvops import fill_holes as _fill_holes

__all__ = ["dilate", "erode", "closing", "opening", "fill_holes", "label_by_size"]

# 8-connected objects; holes (background) are 4-connected, the consistent digital-topology
# pairing, as in scipy.ndimage.binary_fill_holes.
_OBJECT_CONNECTIVITY = np.ones((3, 3), dtype=bool)
# Largest disk radius dilated by OpenCV: its cost grows with the disk's area, the row runs'
# with the radius (2048 x 2048: OpenCV 4.9 vs 10.9 ms at radius 7, 41 vs 31 ms at 21).
_OPENCV_MAX_RADIUS = 10


def _disk_half_widths(radius: int) -> np.ndarray:
    """Half-width of each row of ``skimage.morphology.disk(radius)`` (x**2 + y**2 <= r**2),
    for row offsets 0..radius."""
    dy = np.arange(radius + 1)
    return np.floor(np.sqrt(radius * radius - dy * dy) + 1e-9).astype(int)


def dilate(mask: np.ndarray, radius: int, iterations: int = 1) -> np.ndarray:
    """Binary dilation by ``disk(radius)``, applied ``iterations`` times.

    Equal to ``scipy.ndimage.binary_dilation(mask, disk(radius), iterations)`` with the
    default ``border_value=0``.

    Parameters
    ----------
    mask : (H, W) bool ndarray
        Input mask (not modified).
    radius : int
        Disk radius in pixels (0 = identity).
    iterations : int
        Number of repetitions (dilating n times by disk(r) is dilating once by the n-fold
        Minkowski sum of the disk, slightly squarer than disk(n * r)).

    Returns
    -------
    (H, W) bool ndarray
    """
    if 0 < radius <= _OPENCV_MAX_RADIUS and iterations > 0:
        return dilate_disk(mask, radius, iterations)
    out = mask
    for _ in range(iterations if radius > 0 else 0):
        out = _dilate_disk(out, radius)
    return out if out is not mask else mask.copy()


def erode(mask: np.ndarray, radius: int, iterations: int = 1) -> np.ndarray:
    """Binary erosion by ``disk(radius)``, ``iterations`` times, ignoring the image border.

    Parameters and returns as :func:`dilate`. Pixels outside the image do not erode the
    mask (unlike ``scipy.ndimage.binary_erosion`` with its default ``border_value=0``).
    """
    if 0 < radius <= _OPENCV_MAX_RADIUS and iterations > 0:
        return erode_disk(mask, radius, iterations)
    return ~dilate(~mask, radius, iterations)


def closing(mask: np.ndarray, radius: int, iterations: int = 1) -> np.ndarray:
    """Dilate then erode by ``disk(radius)``, ``iterations`` times each (bridges gaps)."""
    return erode(dilate(mask, radius, iterations), radius, iterations)


def opening(mask: np.ndarray, radius: int, iterations: int = 1) -> np.ndarray:
    """Erode then dilate by ``disk(radius)``, ``iterations`` times each (removes specks and
    thin protrusions)."""
    return dilate(erode(mask, radius, iterations), radius, iterations)


def _dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """One dilation by disk(radius) as a union of shifted rows.

    The disk is a stack of horizontal runs: row offset ``dy`` has half-width ``w(dy)``.
    Walking ``dy`` from ``radius`` down to 0, ``w`` only grows, so one horizontally dilated
    copy is widened step by step and OR-ed in, shifted up and down. Cost: about 4 * radius
    whole-array ORs and two working arrays, whatever the radius.
    """
    half_width = _disk_half_widths(radius)
    out = np.zeros_like(mask)
    row = mask.copy()  # mask dilated horizontally by `grown` pixels
    grown = 0
    for dy in range(radius, -1, -1):
        for w in range(grown + 1, half_width[dy] + 1):
            row[:, w:] |= mask[:, :-w]
            row[:, :-w] |= mask[:, w:]
        grown = max(grown, half_width[dy])
        if dy == 0:
            out |= row
        else:
            out[dy:] |= row[:-dy]
            out[:-dy] |= row[dy:]
    return out


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions not connected (4-connectivity) to the image border.

    Same result as ``scipy.ndimage.binary_fill_holes``: one flood fill (:mod:`pyama_builtin.cvops`).
    """
    return _fill_holes(mask)


def label_by_size(mask: np.ndarray, min_size: int = 0, max_size: int | None = None) -> np.ndarray:
    """Label 8-connected objects, drop those outside [min_size, max_size] pixels and number
    the rest 1..N in raster order of their first pixel.

    Returns
    -------
    (H, W) int32 ndarray
    """
    labels, n = ndi.label(mask, structure=_OBJECT_CONNECTIVITY)
    flat = labels.ravel()
    pixels = np.flatnonzero(flat)
    values = flat[pixels]
    area = np.bincount(values, minlength=n + 1)
    keep = area >= min_size
    if max_size is not None:
        keep &= area <= max_size
    keep[0] = False
    if keep[1:].all():
        return labels
    new_label = (np.cumsum(keep) * keep).astype(np.int32)
    out = np.zeros(flat.size, dtype=np.int32)
    out[pixels] = new_label[values]
    return out.reshape(mask.shape)
