"""Per-frame cell measurements of the ``lap`` tracker, and which cells lie inside another's
extent (the cell's outline as an ellipse from its second moments)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ._divisions import EXTENT, _extent_reach, _inside, _mahalanobis2
from .iou_hungarian import _kept_cells, _max_weight_matching

# A track left unlinked takes a free cell inside its extent whose area is within this factor
# of its own (``extent_links``): a cell found in part, or with a piece of a neighbour.
EXTENT_LINK_RATIO = 3.0


@dataclass
class _Frame:
    """Per-cell measurements of one frame (cells numbered 0..n-1)."""

    centre: np.ndarray  # (n, 2) float64 (y, x)
    area: np.ndarray  # (n,) float64
    cov: np.ndarray  # (n, 3) float64: var_y, var_x, cov_yx
    edge: np.ndarray  # (n,) bool: touches the frame border (visible area is not its area)
    pixels: np.ndarray
    label: np.ndarray

    @property
    def n(self) -> int:
        return self.area.size


def _measure(labels: np.ndarray, min_size: int, max_size: int | None) -> _Frame:
    """Centroid, area and second central moments of the kept cells of ``labels``."""
    cells = _kept_cells(labels, min_size, max_size, with_bbox=False)
    centre, area, cov, edge = _measure_pixels(cells.pixels, cells.label, cells.n, labels.shape)
    return _Frame(centre, area, cov, edge, cells.pixels, cells.label)


def _measure_pixels(pixels: np.ndarray, label: np.ndarray, n: int, shape: tuple[int, ...]):
    """Centroid, area, second central moments and border contact of cells 0..n-1 given by
    their flat pixel indices and each pixel's cell."""
    rows, cols = np.divmod(pixels, shape[1])
    rows, cols = rows.astype(np.float64), cols.astype(np.float64)
    area = np.bincount(label, minlength=n).astype(np.float64)
    sy, sx = (np.bincount(label, v, minlength=n) for v in (rows, cols))
    syy, sxx, syx = (np.bincount(label, v, minlength=n)
                     for v in (rows * rows, cols * cols, rows * cols))
    cy, cx = sy / np.maximum(area, 1), sx / np.maximum(area, 1)
    cov = np.stack([syy / area - cy * cy, sxx / area - cx * cx, syx / area - cy * cx], axis=1)
    h, w = shape
    border = (rows == 0) | (rows == h - 1) | (cols == 0) | (cols == w - 1)
    edge = np.bincount(label[border], minlength=n) > 0
    return np.stack([cy, cx], axis=1).reshape(n, 2), area, cov.reshape(n, 3), edge


def _extent_link(centre: np.ndarray, area: np.ndarray, cov: np.ndarray, cur_c: np.ndarray,
                 cur_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one links between tracks (``centre`` predicted now, ``area``, moments ``cov``)
    and cells (``cur_c``, ``cur_a``) lying inside their extent (Mahalanobis distance <=
    EXTENT under the track's moments) at an area within ``EXTENT_LINK_RATIO`` of the
    track's; the assignment maximises the total saving ``2 - (d / EXTENT)**2 - (ln ratio /
    ln EXTENT_LINK_RATIO)**2`` (both terms at most 1)."""
    if not centre.size or not cur_c.size:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    reach = _extent_reach(cov)[1]
    hits = cKDTree(cur_c).query_ball_point(centre, float(reach.max()))
    p = np.repeat(np.arange(centre.shape[0]), [len(h) for h in hits])
    if not p.size:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    c = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
    d2 = _mahalanobis2(cur_c[c] - centre[p], cov[p]) / EXTENT ** 2
    ratio = np.abs(np.log(cur_a[c] / area[p])) / np.log(EXTENT_LINK_RATIO)
    keep = (d2 <= 1.0) & (ratio <= 1.0)
    p, c = p[keep], c[keep]
    return _max_weight_matching(p, c, 2.0 - d2[keep] - ratio[keep] ** 2 + 1e-9)


def _holder(centre: np.ndarray, cov: np.ndarray, points: np.ndarray) -> np.ndarray:
    """For each point, the nearest of the cells (``centre``, ``cov``) whose extent holds
    it (Mahalanobis distance <= EXTENT under its moments), -1 when none."""
    reach = float(_extent_reach(cov)[1].max())
    out = np.full(points.shape[0], -1, dtype=np.int64)
    for i, near in enumerate(cKDTree(centre).query_ball_point(points, reach)):
        if near:
            near = np.asarray(near, dtype=np.int64)
            offset = points[i] - centre[near]
            inside = _inside(offset, cov[near])
            if inside.any():
                out[i] = near[inside][np.argmin(np.hypot(*offset[inside].T))]
    return out
