"""Division detection shared by the built-in trackers.

A division is a cell of frame t-1 (the mother) replaced in frame t by two cells (the
daughters) that together have about the mother's area. What "replaced" means differs per
tracker: the ``lap`` tracker asks that both daughters' centroids lie inside the mother's
extent (:func:`find_divisions`), ``iou_hungarian`` that most of each daughter overlaps the
mother (:func:`find_overlap_divisions`). Both then apply :func:`plausible_areas`, and the
divisions proposed here are confirmed or rejected by the frames that follow (``_confirm.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["Division", "find_divisions", "find_overlap_divisions", "plausible_areas"]

# Daughters' summed area over the mother's: growth during one frame and segmentation noise
# on the upper side, lost edge pixels between touching daughters on the lower side.
AREA_SUM_RANGE = (0.6, 1.5)
# Each daughter is at most this share of the mother (a "daughter" as large as its mother is
# the mother itself next to a new object), and the smaller one at least this share of the
# larger: cells divide into about equal halves (0.72-0.99 over the 15 true divisions of the
# PSC and B. subtilis movies), while a clump of a cell and a fragment that the segmenter
# splits apart gives unequal pieces (half of the spurious splits on PSC are below 0.55).
# Budding yeast divides unequally: lower this for it.
MAX_DAUGHTER_SHARE = 0.85
MIN_DAUGHTER_RATIO = 0.6
# A daughter centroid lies inside the mother's extent when its Mahalanobis distance under
# the mother's second moments is <= 2 (the edge of a uniform ellipse), plus 25 % slack for
# motion between the frames.
EXTENT = 2.5


class Division(NamedTuple):
    """Indices of a mother (previous frame) and her two daughters (current frame)."""

    mother: int
    daughter_a: int
    daughter_b: int


def plausible_areas(mother: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether daughters of areas ``a`` and ``b`` can come from a mother of area ``mother``."""
    total = (a + b) / mother
    return ((total >= AREA_SUM_RANGE[0]) & (total <= AREA_SUM_RANGE[1])
            & (np.maximum(a, b) <= MAX_DAUGHTER_SHARE * mother)
            & (np.minimum(a, b) >= MIN_DAUGHTER_RATIO * np.maximum(a, b)))


def find_divisions(mother_centre: np.ndarray, mother_area: np.ndarray, mother_cov: np.ndarray,
                   linked_to: np.ndarray, centre: np.ndarray, area: np.ndarray,
                   unlinked: np.ndarray) -> list[Division]:
    """Divisions between a frame's cells and the next frame's, by geometry and areas.

    Parameters
    ----------
    mother_centre, mother_area, mother_cov : (n, 2), (n,), (n, 3) ndarray
        Previous frame's cells: centroid (y, x) predicted in the current frame, area, and
        second central moments (var_y, var_x, cov_yx).
    linked_to : (n,) int ndarray
        Index of the current cell each previous cell is linked to, -1 when none.
    centre, area : (m, 2), (m,) ndarray
        Current frame's cells.
    unlinked : (m,) bool ndarray
        Current cells no previous cell is linked to.

    Returns
    -------
    list of Division
        One-to-one (each cell in at most one division): a mother and two cells inside her
        extent with plausible areas, each unlinked, linked to her, or linked to another
        previous cell at no more than ``MAX_DAUGHTER_SHARE`` of that cell's area (a link
        from a mother to a daughter, possibly a neighbour's: the division takes it over).
        Ambiguities are resolved greedily by a score: how well the areas add up plus how
        far the daughters' centroids lie from those of the mother's two halves.

    Notes
    -----
    In a burst of divisions (a synchronised colony) the frame-to-frame links of mothers
    land on daughters, sometimes on a neighbouring mother's; asking that one daughter be
    the mother's own linked cell and the other unlinked then misses both divisions (on
    the colony's true masks, 9-26 per 40-frame movie). The halves term keeps a mother
    from pairing her own daughter with a neighbour's of a fitting area: their joint area
    can match hers as well as her true daughters do, their positions do not.
    """
    if area.size == 0 or mother_area.size == 0:
        return []
    # A current cell can be a daughter of mother mm when it is unlinked, linked to mm, or
    # linked to another previous cell whose link halves it (about a daughter's area: that
    # cell divided too, and in a burst of divisions the link may have crossed to a
    # neighbour's daughter). Cells linked at about their own size stay with their tracks.
    owner = np.full(area.size, -1)
    linked = np.flatnonzero(linked_to >= 0)
    owner[linked_to[linked]] = linked
    halved = np.zeros(mother_area.size, dtype=bool)
    halved[linked] = area[linked_to[linked]] <= MAX_DAUGHTER_SHARE * mother_area[linked]
    open_ = unlinked | ((owner >= 0) & halved[np.maximum(owner, 0)])
    if not open_.any():
        return []
    free = np.flatnonzero(open_ | (owner >= 0))
    var_major, reach = _extent_reach(mother_cov)
    hits = cKDTree(mother_centre).query_ball_point(centre[free], float(reach.max()))
    m = np.concatenate([np.asarray(h, dtype=np.int64) for h in hits])
    f = np.repeat(free, [len(h) for h in hits])
    inside = _inside(centre[f] - mother_centre[m], mother_cov[m])
    m, f = m[inside], f[inside]
    ok = open_[f] | (owner[f] == m)
    m, f = m[ok], f[ok]
    daughters: dict[int, list[int]] = {}
    for mm, ff in zip(m.tolist(), f.tolist()):
        daughters.setdefault(mm, []).append(ff)
    candidates = []  # (score, mother, a, b)
    for mm, found in daughters.items():
        if len(found) < 2:
            continue
        halves = _mother_halves(mother_centre[mm], mother_cov[mm], var_major[mm])
        pairs = [(a, b) for i, a in enumerate(found) for b in found[i + 1:]]
        for a, b in pairs:
            if plausible_areas(mother_area[mm], area[a], area[b]):
                # how well the areas add up, and how near the daughters lie to the mother's
                # halves (in units of her area / pi, the squared radius of a disk of it)
                score = abs(np.log((area[a] + area[b]) / mother_area[mm])) + _halves_misfit(
                    halves, centre[a], centre[b]) * np.pi / mother_area[mm]
                candidates.append((float(score), mm, a, b))
    return _greedy(candidates)


def find_overlap_divisions(p: np.ndarray, c: np.ndarray, inter: np.ndarray,
                           mother_area: np.ndarray, area: np.ndarray) -> list[Division]:
    """Divisions by overlap: two current cells each lying mostly (> 50 %) on one previous cell.

    ``(p, c, inter)`` are the overlapping (previous, current) cell pairs and their common
    pixel counts; ``mother_area`` and ``area`` the previous and current cells' areas.
    """
    mostly = inter > 0.5 * area[c]
    p, c, inter = p[mostly], c[mostly], inter[mostly]
    if p.size < 2:
        return []
    order = np.lexsort((-inter, p))  # by mother, largest overlap first
    p, c = p[order], c[order]
    first = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
    two = first[(first + 1 < p.size)]
    two = two[p[np.minimum(two + 1, p.size - 1)] == p[two]]
    m, a, b = p[two], c[two], c[two + 1]
    ok = plausible_areas(mother_area[m], area[a], area[b])
    return [Division(int(x), int(y), int(z)) for x, y, z in zip(m[ok], a[ok], b[ok])]


def _mother_halves(centre: np.ndarray, cov: np.ndarray, var_major: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of a mother's two halves: a quarter of her length either way along her
    long axis (``var_major``: the larger eigenvalue of her moments ``cov``)."""
    vy, vx, vyx = cov
    angle = 0.5 * np.arctan2(2 * vyx, vy - vx)  # of the long axis, from the y axis
    axis = np.array([np.cos(angle), np.sin(angle)])
    quarter = np.sqrt(0.75 * max(var_major, 0.0)) * axis  # L/4 for a uniform rod of length L
    return centre + quarter, centre - quarter


def _halves_misfit(halves: tuple[np.ndarray, np.ndarray], a: np.ndarray, b: np.ndarray) -> float:
    """Squared distance (px²) of two daughters' centroids from the centroids of the
    mother's two ``halves``, for the better of the two ways round."""
    e1, e2 = halves
    one = np.sum((a - e1) ** 2) + np.sum((b - e2) ** 2)
    other = np.sum((a - e2) ** 2) + np.sum((b - e1) ** 2)
    return float(min(one, other))


def _extent_reach(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of moments ``cov[i]`` (var_y, var_x, cov_yx): the larger eigenvalue (variance
    along the long axis) and how far its extent (EXTENT Mahalanobis units, regularised as
    in :func:`_mahalanobis2`) reaches along that axis, in px."""
    var_major = 0.5 * (cov[:, 0] + cov[:, 1]) + np.sqrt(
        0.25 * (cov[:, 0] - cov[:, 1]) ** 2 + cov[:, 2] ** 2)
    return var_major, EXTENT * np.sqrt(np.maximum(var_major, 0) + 0.25)


def _inside(offset: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Whether ``offset[i]`` from a centroid lies within EXTENT Mahalanobis units of
    moments ``cov[i]`` (var_y, var_x, cov_yx)."""
    return _mahalanobis2(offset, cov) <= EXTENT * EXTENT


def _mahalanobis2(offset: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of ``offset[i]`` under moments ``cov[i]`` (var_y, var_x,
    cov_yx)."""
    vy, vx, vyx = cov[:, 0], cov[:, 1], cov[:, 2]
    # Regularise: a 1-px-wide cell still has an extent of ~1 px across.
    vy, vx = vy + 0.25, vx + 0.25
    det = vy * vx - vyx * vyx
    dy, dx = offset[:, 0], offset[:, 1]
    return (vx * dy * dy - 2 * vyx * dy * dx + vy * dx * dx) / det


def _greedy(candidates: list[tuple[float, int, int, int]]) -> list[Division]:
    used_m, used_c, out = set(), set(), []
    for _, m, a, b in sorted(candidates):
        if m in used_m or a in used_c or b in used_c:
            continue
        used_m.add(m)
        used_c.update((a, b))
        out.append(Division(m, a, b))
    return out
