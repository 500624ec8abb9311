"""Shape features of a cell's mask, with the definitions of scikit-image ``regionprops``.

They use only the mask (the image and background are accepted and ignored). Every feature
has a per-cell function ``f(mask, image, background)`` and a ``f_frame(cell_frame)`` fast
path returning the same values for all cells of a frame.

- ``area``: number of pixels.
- ``aspect_ratio``: major / minor axis length of the ellipse with the same second central
  moments (``axis_major_length / axis_minor_length``); NaN when the minor axis is 0 (a
  single pixel or a one-pixel-wide line).
- ``eccentricity``: of that ellipse, in [0, 1); 0 for a single pixel.
- ``perimeter``: ``regionprops`` perimeter (4-connected border, Benkrid & Crookes weights).
- ``circularity``: ``4 pi area / perimeter**2``, 1 for a disk; NaN when the perimeter is 0.
- ``solidity``: area / area of the convex hull image.
"""

from __future__ import annotations

import numpy as np

from pyama_framework.types import CellFrame

from ._pixels import cell_pixels


# ------------------------------------------------------------------ moments
def _moment_sums(mask: np.ndarray) -> tuple[float, ...]:
    """Pixel count and sums of y, x, y*y, x*x, x*y over the mask (exact integers)."""
    y, x = np.nonzero(mask)
    y, x = y.astype(np.float64), x.astype(np.float64)
    return float(y.size), y.sum(), x.sum(), (y * y).sum(), (x * x).sum(), (x * y).sum()


def _moment_sums_frame(cell_frame: CellFrame) -> tuple[np.ndarray, ...]:
    """The same sums for every cell, with coordinates relative to each cell's bounding box
    (as in a crop) so they stay small and exact."""
    flat, cell = cell_pixels(cell_frame)
    n = len(cell_frame.cell_ids)
    y, x = np.divmod(flat, cell_frame.labels.shape[1])
    y = (y - cell_frame.bboxes[cell, 0]).astype(np.float64)
    x = (x - cell_frame.bboxes[cell, 1]).astype(np.float64)
    count = np.bincount(cell, minlength=n).astype(np.float64)
    sums = (np.bincount(cell, weights=w, minlength=n) for w in (y, x, y * y, x * x, x * y))
    return (count, *sums)


def inertia_eigenvalues(n, sy, sx, syy, sxx, sxy):
    """Eigenvalues ``l1 >= l2 >= 0`` of the covariance of the pixel coordinates (scikit-image's
    ``inertia_tensor_eigvals``), from the moment sums; works on scalars and arrays."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var_y = (syy - sy * sy / n) / n
        var_x = (sxx - sx * sx / n) / n
        cov = (sxy - sx * sy / n) / n
    half_trace = (var_y + var_x) / 2
    root = np.sqrt(((var_y - var_x) / 2) ** 2 + cov * cov)
    return np.maximum(half_trace + root, 0.0), np.maximum(half_trace - root, 0.0)


def _aspect_ratio(l1, l2):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(l2 > 0, np.sqrt(l1 / l2), np.nan)


def _eccentricity(l1, l2):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(l1 > 0, np.sqrt(np.maximum(1 - l2 / l1, 0.0)), 0.0)


# ------------------------------------------------------------------ per cell
def area(mask: np.ndarray, image=None, background=None) -> float:
    return float(np.count_nonzero(mask))


def aspect_ratio(mask: np.ndarray, image=None, background=None) -> float:
    if not mask.any():
        return np.nan
    return float(_aspect_ratio(*inertia_eigenvalues(*_moment_sums(mask))))


def eccentricity(mask: np.ndarray, image=None, background=None) -> float:
    if not mask.any():
        return np.nan
    return float(_eccentricity(*inertia_eigenvalues(*_moment_sums(mask))))


def perimeter(mask: np.ndarray, image=None, background=None) -> float:
    from skimage.measure import perimeter as skimage_perimeter

    return float(skimage_perimeter(mask, neighborhood=4)) if mask.any() else np.nan


def circularity(mask: np.ndarray, image=None, background=None) -> float:
    length = perimeter(mask)
    return float(4 * np.pi * np.count_nonzero(mask) / length**2) if length > 0 else np.nan


def solidity(mask: np.ndarray, image=None, background=None) -> float:
    from skimage.morphology import convex_hull_image

    n = np.count_nonzero(mask)
    return float(n / np.count_nonzero(convex_hull_image(mask))) if n else np.nan


# ------------------------------------------------------------------ per frame
def area_frame(cell_frame: CellFrame) -> np.ndarray:
    _, cell = cell_pixels(cell_frame)
    return np.bincount(cell, minlength=len(cell_frame.cell_ids)).astype(np.float64)


def aspect_ratio_frame(cell_frame: CellFrame) -> np.ndarray:
    sums = _moment_sums_frame(cell_frame)
    return np.where(sums[0] > 0, _aspect_ratio(*inertia_eigenvalues(*sums)), np.nan)


def eccentricity_frame(cell_frame: CellFrame) -> np.ndarray:
    sums = _moment_sums_frame(cell_frame)
    return np.where(sums[0] > 0, _eccentricity(*inertia_eigenvalues(*sums)), np.nan)


# skimage.measure.perimeter: a border pixel's code is 1 + 2 * (border 4-neighbours)
# + 10 * (border diagonal neighbours); the code gives its share of the perimeter.
_PERIMETER_WEIGHTS = np.zeros(50)
_PERIMETER_WEIGHTS[[5, 7, 15, 17, 25, 27]] = 1
_PERIMETER_WEIGHTS[[21, 33]] = np.sqrt(2)
_PERIMETER_WEIGHTS[[13, 23]] = (1 + np.sqrt(2)) / 2


def _perimeter_and_area_frame(cell_frame: CellFrame) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's perimeter, and the area, of every cell at once.

    A cell's border pixels are those with a 4-neighbour outside the cell; each border pixel
    is weighted by which of its 8 neighbours are border pixels of the same cell.
    """
    labels = cell_frame.labels
    n = len(cell_frame.cell_ids)
    flat, cell = cell_pixels(cell_frame)
    count = np.bincount(cell, minlength=n).astype(np.float64)
    stride = labels.shape[1] + 2
    padded = np.pad(labels, 1).ravel()  # 0 outside the frame, like outside a crop
    y, x = np.divmod(flat, labels.shape[1])
    at = (y + 1) * stride + x + 1
    own = padded[at]
    sides = (-stride, stride, -1, 1)
    corners = (-stride - 1, -stride + 1, stride - 1, stride + 1)

    border = np.zeros(at.shape, dtype=bool)
    for step in sides:
        border |= padded[at + step] != own
    at, own, cell = at[border], own[border], cell[border]
    is_border = np.zeros(padded.shape, dtype=bool)
    is_border[at] = True

    code = np.ones(at.shape, dtype=np.intp)
    for step, weight in [(s, 2) for s in sides] + [(s, 10) for s in corners]:
        code += weight * (is_border[at + step] & (padded[at + step] == own))
    length = np.bincount(cell, weights=_PERIMETER_WEIGHTS[code], minlength=n)
    return np.where(count > 0, length, np.nan), count


def perimeter_frame(cell_frame: CellFrame) -> np.ndarray:
    return _perimeter_and_area_frame(cell_frame)[0]


def circularity_frame(cell_frame: CellFrame) -> np.ndarray:
    length, count = _perimeter_and_area_frame(cell_frame)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(length > 0, 4 * np.pi * count / length**2, np.nan)


def solidity_frame(cell_frame: CellFrame) -> np.ndarray:
    """Per cell on its crop: the convex hull has no vectorised form in scikit-image."""
    return np.array([solidity(cell_frame.crops(i)[0]) for i in range(len(cell_frame.cell_ids))], dtype=np.float64)
