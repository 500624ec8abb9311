"""Rods that push each other apart: the mechanics of :mod:`.colony`.

A rod is a spherocylinder: a centre ``(y, x)``, an angle from +x towards +y, a half segment
length ``half`` (centre to cap centre) and a radius. Two rods overlap when the distance
between their segments is below the sum of their radii. :func:`relax` removes overlaps the
way overdamped rods in a monolayer would (the scheme of individual-based colony models):
every overlapping pair is pushed apart along the line joining its closest points, each rod
taking half, as a shift of its centre plus a turn about it from the lever arm of the contact.
Pushes are summed over contacts (Jacobi) and damped, which converges without oscillation.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["axis", "closest_points", "relax", "segment_gaps"]

_STEP = 0.5  # damping of one relaxation sweep
_TURN = 0.5  # share of a push taken as rotation about the centre (rods turn as they are pushed)
_REBUILD = 8  # sweeps between neighbour searches (rods move far less than the search margin)


def axis(angles: np.ndarray) -> np.ndarray:
    """Unit vectors ``(y, x)`` along rods at ``angles`` (radians from +x towards +y)."""
    return np.stack([np.sin(angles), np.cos(angles)], axis=-1)


def closest_points(p1, q1, p2, q2) -> tuple[np.ndarray, np.ndarray]:
    """Parameters ``s, t`` in [0, 1] of the closest points of segments ``p1-q1`` and ``p2-q2``.

    Vectorised over the leading axis ((n, 2) inputs); the algorithm of Ericson, Real-Time
    Collision Detection, 5.1.9 (segments have non-zero length here).
    """
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e = (d1 * d1).sum(-1), (d2 * d2).sum(-1)
    b, c, f = (d1 * d2).sum(-1), (d1 * r).sum(-1), (d2 * r).sum(-1)
    denom = a * e - b * b
    parallel = denom < 1e-9 * a * e
    s = np.where(parallel, 0.0, np.clip((b * f - c * e) / np.where(parallel, 1.0, denom), 0.0, 1.0))
    t = (b * s + f) / e
    low, high = t < 0, t > 1
    s = np.where(low, np.clip(-c / a, 0, 1), np.where(high, np.clip((b - c) / a, 0, 1), s))
    return s, np.clip(t, 0.0, 1.0)


def _contacts(centres, angles, halves, radii, i, j):
    """Closest points, their gap and the unit normal (from ``j`` to ``i``) of pairs ``i, j``."""
    u = axis(angles)
    start, end = centres - halves[:, None] * u, centres + halves[:, None] * u
    s, t = closest_points(start[i], end[i], start[j], end[j])
    on_i = start[i] + s[:, None] * (end[i] - start[i])
    on_j = start[j] + t[:, None] * (end[j] - start[j])
    delta = on_i - on_j
    distance = np.hypot(delta[:, 0], delta[:, 1])
    # Crossing segments (distance 0): push across rod j's axis.
    across = np.stack([u[j, 1], -u[j, 0]], axis=-1)
    normal = np.where(distance[:, None] > 1e-9, delta / np.maximum(distance, 1e-9)[:, None], across)
    return on_i, on_j, distance - radii[i] - radii[j], normal


def segment_gaps(centres, angles, halves, radii) -> np.ndarray:
    """Gap in px between every pair of rods closer than their reach (negative: overlap).

    Returns
    -------
    (m,) float ndarray
        One gap per pair of rods whose bounding circles come within 2 px; empty when none.
    """
    if len(centres) < 2:
        return np.zeros(0)
    reach = float((halves + radii).max())
    pairs = cKDTree(centres).query_pairs(2 * reach + 2, output_type="ndarray")
    if not len(pairs):
        return np.zeros(0)
    return _contacts(centres, angles, halves, radii, pairs[:, 0], pairs[:, 1])[2]


def relax(centres: np.ndarray, angles: np.ndarray, halves: np.ndarray, radii: np.ndarray, gap: float,
          tolerance: float = 0.2, max_sweeps: int = 5000) -> tuple[np.ndarray, np.ndarray]:
    """Move rods until every pair is at least ``gap - tolerance`` px apart.

    Parameters
    ----------
    centres : (n, 2) float ndarray
    angles, halves, radii : (n,) float ndarray
    gap : float
        Wanted distance between touching rods (px).
    tolerance : float
        Accepted shortfall (px); the result has no pair closer than ``gap - tolerance``.
    max_sweeps : int

    Returns
    -------
    centres, angles : new arrays (the inputs are not modified)

    Raises
    ------
    RuntimeError
        When the rods are still too close after ``max_sweeps`` sweeps.
    """
    centres, angles = np.array(centres, dtype=float), np.array(angles, dtype=float)
    n = len(centres)
    if n < 2:
        return centres, angles
    reach = float((halves + radii).max())
    pairs = np.zeros((0, 2), dtype=np.int64)
    for sweep in range(max_sweeps):
        if sweep % _REBUILD == 0:
            pairs = cKDTree(centres).query_pairs(2 * reach + gap + 4, output_type="ndarray")
            if not len(pairs):
                return centres, angles
        i, j = pairs[:, 0], pairs[:, 1]
        on_i, on_j, gaps, normal = _contacts(centres, angles, halves, radii, i, j)
        short = gap - gaps
        hit = short > 0
        if not np.any(short > tolerance):
            return centres, angles
        i, j, on_i, on_j, normal = i[hit], j[hit], on_i[hit], on_j[hit], normal[hit]
        push = (_STEP * 0.5 * short[hit])[:, None] * normal  # on rod i; rod j gets -push
        shift = np.zeros_like(centres)
        turn = np.zeros(n)
        np.add.at(shift, i, (1 - _TURN) * push)
        np.add.at(shift, j, -(1 - _TURN) * push)
        # Turning by dtheta moves the contact at arm (a_y, a_x) by dtheta * (a_x, -a_y): the
        # push's component along that direction over the rod's size squared is the turn.
        for rod, point, force in ((i, on_i, push), (j, on_j, -push)):
            arm = point - centres[rod]
            lever = arm[:, 1] * force[:, 0] - arm[:, 0] * force[:, 1]
            np.add.at(turn, rod, _TURN * lever / (halves[rod] ** 2 + radii[rod] ** 2))
        centres += shift
        angles += turn
    raise RuntimeError(f"rods still overlap after {max_sweeps} relaxation sweeps; lower the growth rate")
