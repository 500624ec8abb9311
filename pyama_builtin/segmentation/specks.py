"""Round specks among rods: a frame's objects measured by their second moments, and the
round ones far smaller than the frame's rods rejected as debris (round 8 of ``logstd``,
docs/algorithms.md)."""

from __future__ import annotations

import numpy as np

from ..features.shape import inertia_eigenvalues

__all__ = ["aspect_ratios", "reject_specks"]

# Area-weighted median aspect ratio from which a frame's cells count as rods (a newborn rod is
# about twice as long as wide; round cells, and rods seen mostly in clusters, stay below).
_ROD_POPULATION_ASPECT = 2.0


def aspect_ratios(pixels: np.ndarray, ids: np.ndarray, n: int, width: int) -> np.ndarray:
    """Long over short axis of labels 0..n from their pixels' second moments (entry 0 and
    empty labels: NaN). ``pixels`` are flat indices into a frame ``width`` px wide, ``ids``
    their labels: no pass over the whole frame. The moments are the shape features' (a
    pixel's own extent, 1/12, added to both axes, so a single row of pixels is not
    infinitely thin)."""
    y, x = np.divmod(pixels, width)
    y, x = y.astype(np.float64), x.astype(np.float64)
    count = np.bincount(ids, minlength=n + 1).astype(np.float64)
    sums = (np.bincount(ids, weights=w, minlength=n + 1) for w in (y, x, y * y, x * x, x * y))
    major, minor = inertia_eigenvalues(count, *sums)
    return np.sqrt((major + 1.0 / 12.0) / (minor + 1.0 / 12.0))


def reject_specks(keep: np.ndarray, area: np.ndarray, aspect: np.ndarray,
                  area_fraction: float, max_aspect: float) -> np.ndarray:
    """Drop round specks from a frame of rods (``keep`` modified in place and returned).

    Among rod-shaped cells (the area-weighted median aspect ratio of the kept objects is
    at least 2), a round object (aspect ratio below ``max_aspect``) smaller than
    ``area_fraction`` x the kept objects' median area is not a cell of that population:
    a rod's smallest daughter is about half the median and still twice as long as wide.
    Such specks (dust, beads, vesicles) pass the size test relative to the width, which
    has to keep round cells of other movies. Frames of round cells are left alone.

    Parameters
    ----------
    keep : (N+1,) bool ndarray
        Which of labels 0..N are kept so far.
    area, aspect : (N+1,) ndarray
        Pixel count and aspect ratio (:func:`aspect_ratios`) of labels 0..N.
    area_fraction, max_aspect : float
        The speck's largest area relative to the median and its largest aspect ratio
        (``area_fraction`` 0: off).
    """
    kept = np.flatnonzero(keep)
    if area_fraction <= 0 or kept.size < 2:
        return keep
    order = kept[np.argsort(aspect[kept], kind="stable")]
    weight = np.cumsum(area[order])
    population = aspect[order[np.searchsorted(weight, 0.5 * weight[-1])]]
    if population < _ROD_POPULATION_ASPECT:
        return keep
    speck = (area[kept] < area_fraction * np.median(area[kept])) & (aspect[kept] < max_aspect)
    keep[kept[speck]] = False
    return keep
