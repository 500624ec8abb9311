"""Global displacement of the cells between two frames (the ``lap`` tracker's drift step).

The two centroid clouds are correlated on a coarse grid, so the estimate follows the layout
of the whole field and stays right when the colony moves several cell sizes; an iterative
closest-point fit refines it. Cells are paired only with partners of about their area, so a
burst of divisions (mothers laid onto daughters) cannot pass for a displacement.
"""

from __future__ import annotations

import numpy as np
from scipy import fft
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree

__all__ = ["estimate_drift"]

_GRID_CELLS = 128  # long side of the coarse grid the centroid clouds are correlated on
_ICP_ROUNDS = 4
_MIN_EXPLAINED = 0.5  # share of the cells a drift must bring onto a cell of their size
_AREA_NEIGHBOURS = 3  # nearest current cells checked for one of about the same area


def estimate_drift(prev: np.ndarray, cur: np.ndarray, shape: tuple[int, ...], gate: float,
                   prev_weight: np.ndarray | None = None,
                   cur_weight: np.ndarray | None = None) -> np.ndarray:
    """Global displacement (dy, dx) that carries the ``prev`` centroids onto ``cur``.

    Parameters
    ----------
    prev, cur : (n, 2) and (m, 2) float ndarray
        Cell centroids (y, x) in two frames.
    shape : (H, W)
        Frame shape; shifts up to the frame size in either direction are found.
    gate : float
        Linking distance in pixels: sets the coarse grid (a quarter of it per cell, at
        most ``_GRID_CELLS`` per side) and the radius of the closest-point refinement.
    prev_weight, cur_weight : (n,) and (m,) float ndarray, optional
        Cell areas: the weights of the points in the coarse correlation; the fit then pairs
        only cells whose areas differ by less than a factor 2**0.5.

    Returns
    -------
    (2,) float64 ndarray
        The shift; the fit from zero instead unless the shift brings more cells within
        ``gate / 2`` of a partner of about their area than no shift does (and at least a
        half of them), and at least as many within ``gate / 2`` of any partner.

    Notes
    -----
    The two clouds are splatted on a coarse grid, blurred by about one cell and
    cross-correlated (zero-padded FFT), so the peak follows the layout of the whole field
    rather than any single cell: it stays right when the colony moves several cell sizes
    between frames, where nearest-neighbour matching alone locks onto the wrong neighbour.
    The coarse peak is then refined by an iterative closest-point fit (median residual of
    nearest neighbours within the gate). With weights (areas), a cell's partner in the fit
    and in that count must have about its area, so that mothers laid onto their daughters
    in a burst of divisions neither pull the fit nor outvote the cells that did not divide.
    """
    zero = np.zeros(2)
    if prev.shape[0] == 0 or cur.shape[0] == 0:
        return zero
    step = max(gate / 4.0, max(shape) / _GRID_CELLS, 1.0)
    grid = (int(np.ceil(shape[0] / step)) + 1, int(np.ceil(shape[1] / step)) + 1)
    a = _splat(prev, prev_weight, grid, step)
    b = _splat(cur, cur_weight, grid, step)
    # Zero-padded (no wrap-around) to sizes FFT is fast on (a prime side is ~10x slower).
    size = (fft.next_fast_len(2 * grid[0], real=True), fft.next_fast_len(2 * grid[1], real=True))
    corr = fft.irfft2(fft.rfft2(b, size) * np.conj(fft.rfft2(a, size)), size)
    peak = np.array(np.unravel_index(int(np.argmax(corr)), size), dtype=np.float64)
    peak = np.where(peak >= np.array(size) // 2, peak - np.array(size), peak)
    shift = peak * step
    tree = cKDTree(cur)
    areas = None
    if prev_weight is not None and cur_weight is not None:
        areas = (np.asarray(prev_weight, np.float64), np.asarray(cur_weight, np.float64))
    shift = _refine(prev, tree, shift, gate, areas)
    # A displacement of the field brings more cells onto themselves than no shift does, with
    # or without asking for equal areas, and most of them (in a frame most cells neither
    # divide nor vanish); one that chance or a burst of divisions makes look good fails one
    # of these counts.
    counts = [(_partners(prev, tree, shift, gate / 2, a)[0].sum(),
               _partners(prev, tree, zero, gate / 2, a)[0].sum())
              for a in ([areas, None] if areas is not None else [None])]
    if (counts[0][0] > counts[0][1] and counts[0][0] >= _MIN_EXPLAINED * prev.shape[0]
            and all(moved >= still for moved, still in counts)):
        return shift
    return _refine(prev, tree, zero, gate / 2, areas)


def _splat(points: np.ndarray, weight: np.ndarray | None, grid: tuple[int, int],
           step: float) -> np.ndarray:
    """Weighted point histogram on the coarse grid, blurred by ~1 cell, zero mean."""
    idx = np.clip(np.rint(points / step).astype(np.int64), 0, np.array(grid) - 1)
    w = np.ones(points.shape[0]) if weight is None else np.asarray(weight, dtype=np.float64)
    image = np.bincount(idx[:, 0] * grid[1] + idx[:, 1], w, minlength=grid[0] * grid[1])
    image = gaussian_filter(image.reshape(grid), 2.0)
    return image - image.mean()


def _refine(prev: np.ndarray, tree: cKDTree, shift: np.ndarray, radius: float,
            areas: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Iterative closest point (translation only) from ``shift``, over the partners of
    :func:`_partners`."""
    for _ in range(_ICP_ROUNDS):
        ok, j = _partners(prev, tree, shift, radius, areas)
        if not ok.any():
            break
        step = np.median(tree.data[j[ok]] - (prev[ok] + shift), axis=0)
        shift = shift + step
        if np.hypot(*step) < 0.1:
            break
    return shift


def _partners(prev: np.ndarray, tree: cKDTree, shift: np.ndarray, radius: float,
              areas: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """For each previous cell moved by ``shift``: whether a current cell lies within
    ``radius``, and the nearest one; with ``areas`` (previous, current), the nearest of
    about the same area.

    The areas matter when many cells divide at once (a synchronised colony): a shift by a
    quarter of a rod then lays each mother onto one of her daughters and "explains" more
    cells than the true, small drift, and nearest neighbours pull the fit towards it. A
    daughter has half her mother's area, so only a partner whose area is nearer the cell's
    own than half or twice of it (ratio within 2**±0.5) counts as the same cell.
    """
    if areas is None:
        dist, j = tree.query(prev + shift, distance_upper_bound=radius)
        ok = np.isfinite(dist)
        return ok, np.where(ok, j, 0)
    dist, j = tree.query(prev + shift, k=_AREA_NEIGHBOURS, distance_upper_bound=radius)
    found = np.isfinite(dist)
    j = np.where(found, j, 0)
    ratio = areas[1][j] / areas[0][:, None]
    same = found & (np.abs(np.log2(np.maximum(ratio, 1e-12))) <= 0.5)
    first = np.argmax(same, axis=1)  # neighbours come nearest first
    return same.any(axis=1), j[np.arange(j.shape[0]), first]
