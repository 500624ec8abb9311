"""Fluorescence features: statistics of a cell's background-corrected intensity.

The corrected intensity of a pixel is ``raw - background``, where the framework passes the
background already multiplied by the channel's weight (``None`` when there is none). All
arithmetic is in float64: a uint16 value minus a float32 background is exact in float64, and
so are sums of them at any realistic size, so totals and means do not depend on summation
order.

Every feature has a per-cell function ``f(mask, image, background)`` (the reference, easy to
read) and a ``f_frame(cell_frame)`` fast path for a whole frame that returns the same values.
"""

from __future__ import annotations

import numpy as np

from pyama_framework.types import CellFrame

from ._pixels import cell_pixels, once_per_frame


# ------------------------------------------------------------------ per cell
def corrected_intensity(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """Background-corrected intensities (float64) of the pixels in ``mask``."""
    values = image[mask].astype(np.float64)
    if background is not None:
        values -= background[mask]
    return values


def intensity_total(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None = None) -> float:
    """Sum over the cell of ``raw - background`` (NaN for an empty mask)."""
    values = corrected_intensity(mask, image, background)
    return float(values.sum()) if values.size else np.nan


def intensity_total_unmixed(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None = None) -> float:
    """A cell seen alone in its box has no neighbour to unmix: its plain ``intensity_total``.

    The frame implementation is the real feature (it needs the neighbours); for a cell far
    from any other it differs from this only by the modelled light beyond the mask.
    """
    return intensity_total(mask, image, background)


def intensity_mean(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None = None) -> float:
    """Mean over the cell of ``raw - background``."""
    values = corrected_intensity(mask, image, background)
    return float(values.sum() / values.size) if values.size else np.nan


def intensity_median(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None = None) -> float:
    """Median over the cell of ``raw - background``."""
    values = corrected_intensity(mask, image, background)
    return float(np.median(values)) if values.size else np.nan


def intensity_max(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None = None) -> float:
    """Maximum over the cell of ``raw - background``."""
    values = corrected_intensity(mask, image, background)
    return float(values.max()) if values.size else np.nan


def intensity_std(mask: np.ndarray, image: np.ndarray, background: np.ndarray | None = None) -> float:
    """Population standard deviation (``ddof=0``) over the cell of ``raw - background``."""
    values = corrected_intensity(mask, image, background)
    if not values.size:
        return np.nan
    deviation = values - values.sum() / values.size
    return float(np.sqrt((deviation * deviation).sum() / values.size))


# ------------------------------------------------------------------ per frame
def _corrected_by_cell(cell_frame: CellFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corrected intensity of every cell pixel, the cell index of each, and pixel counts
    (once per frame, read-only)."""
    return once_per_frame(cell_frame, _correct_by_cell)


def _correct_by_cell(cell_frame: CellFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    flat, cell = cell_pixels(cell_frame)
    values = cell_frame.image.ravel()[flat].astype(np.float64)
    if cell_frame.background is not None:
        values -= cell_frame.background.ravel()[flat]
    count = np.bincount(cell, minlength=len(cell_frame.cell_ids))
    return values, cell, count


def _per_cell_sum(cell: np.ndarray, values: np.ndarray, count: np.ndarray) -> np.ndarray:
    return np.bincount(cell, weights=values, minlength=len(count))


def intensity_total_frame(cell_frame: CellFrame) -> np.ndarray:
    values, cell, count = _corrected_by_cell(cell_frame)
    return np.where(count > 0, _per_cell_sum(cell, values, count), np.nan)


def intensity_mean_frame(cell_frame: CellFrame) -> np.ndarray:
    values, cell, count = _corrected_by_cell(cell_frame)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, _per_cell_sum(cell, values, count) / count, np.nan)


def intensity_std_frame(cell_frame: CellFrame) -> np.ndarray:
    values, cell, count = _corrected_by_cell(cell_frame)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _per_cell_sum(cell, values, count) / count
        deviation = values - mean[cell]
        return np.sqrt(_per_cell_sum(cell, deviation * deviation, count) / count)


def intensity_max_frame(cell_frame: CellFrame) -> np.ndarray:
    values, cell, count = _corrected_by_cell(cell_frame)
    peak = np.full(len(count), -np.inf)
    np.maximum.at(peak, cell, values)
    return np.where(count > 0, peak, np.nan)


def intensity_median_frame(cell_frame: CellFrame) -> np.ndarray:
    values, cell, count = _corrected_by_cell(cell_frame)
    ordered = values[np.lexsort((values, cell))]  # grouped by cell, ascending within a cell
    present = count > 0
    start, n = (np.cumsum(count) - count)[present], count[present]
    median = np.full(len(count), np.nan)
    median[present] = (ordered[start + (n - 1) // 2] + ordered[start + n // 2]) / 2
    return median


def intensity_total_unmixed_frame(cell_frame: CellFrame) -> np.ndarray:
    """``intensity_total`` plus :func:`.unmix.neighbour_correction`: the light of touching
    cells split between them by a Gaussian PSF model (``cell_frame.psf_sigma``, fitted per
    frame when ``"auto"``)."""
    from .unmix import fit_psf_sigma, neighbour_correction

    total = intensity_total_frame(cell_frame)
    if cell_frame.cell_labels is None:
        own, boxes = cell_frame.labels, cell_frame.bboxes
    else:
        own, boxes = cell_frame.cell_labels, cell_frame.cell_bboxes
    sigma = cell_frame.psf_sigma
    if sigma == "auto":
        sigma = fit_psf_sigma(cell_frame.image, cell_frame.background, own, cell_frame.cell_ids, boxes)
    return total + neighbour_correction(cell_frame.image, cell_frame.background, own, cell_frame.labels,
                                        cell_frame.cell_ids, boxes, float(sigma))
