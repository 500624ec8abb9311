"""Where the cells of a :class:`.synthetic.SyntheticScene` are and how they move.

Each cell gets a shape (an ellipse), a path (own velocity plus the common drift, a small
random walk, a slow rotation) and a role (regular, entering or leaving through the edge,
appearing mid-movie). Cells are rejection-sampled one at a time until they keep ``min_gap``
px from every cell placed before them, in every frame both exist. The random stream is
drawn in a fixed order, so a scene's layout depends only on its seed and arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CellPlacer", "Layout", "half_extent", "support"]

_JITTER_STEP = 0.25  # px, std of each cell's random-walk step per frame
_SPIN = 0.03  # rad/frame, maximum rotation speed
_CLUSTER_FRACTION = 0.5  # share of ordinary cells placed next to an existing cell
_ATTEMPTS_PER_CELL = 400


@dataclass(frozen=True)
class Layout:
    """Shapes and paths of ``n`` cells; a candidate during placement is a layout of one."""

    centres: np.ndarray  # (n, T, 2) float64, (y, x)
    angles: np.ndarray  # (n, T) float64
    axes: np.ndarray  # (n, 2) float64, (major, minor)
    first_frame: np.ndarray  # (n,) int64
    roles: tuple[str, ...]

    def take(self, index) -> "Layout":
        """The cells selected by ``index`` (a slice, index array or boolean mask)."""
        roles = np.asarray(self.roles, dtype=object)[index]
        return Layout(
            self.centres[index], self.angles[index], self.axes[index], self.first_frame[index], tuple(roles)
        )


def support(uy: np.ndarray, ux: np.ndarray, angle: np.ndarray, major, minor) -> np.ndarray:
    """Half-width of a centred ellipse projected on the unit direction ``(uy, ux)``."""
    along = ux * np.cos(angle) + uy * np.sin(angle)
    across = uy * np.cos(angle) - ux * np.sin(angle)
    return np.hypot(major * along, minor * across)


def half_extent(angle: float, major: float, minor: float) -> tuple[float, float]:
    """Half height and half width of the bounding box of a rotated ellipse."""
    c, s = np.cos(angle), np.sin(angle)
    return float(np.hypot(major * s, minor * c)), float(np.hypot(major * c, minor * s))



class CellPlacer:
    """Places the cells of one scene (the geometry arguments of :class:`.synthetic.SyntheticScene`).

    Parameters
    ----------
    height, width, n_frames, n_cells : int
    cell_radius : (float, float)
        Range of the semi-axes in pixels.
    min_gap : float
        Background pixels kept between two masks in every frame.
    drift : (float, float)
        Common drift ``(dy, dx)`` in px/frame.
    """

    def __init__(self, height: int, width: int, n_frames: int, n_cells: int,
                 cell_radius: tuple[float, float], min_gap: float, drift: tuple[float, float]) -> None:
        self.height, self.width, self.n_frames, self.n_cells = height, width, n_frames, n_cells
        self.cell_radius, self.min_gap, self.drift = cell_radius, min_gap, drift

    def roles(self, enter_leave: bool, appear_mid_movie: bool) -> list[str]:
        n = self.n_cells
        n_cross = max(2, round(0.06 * n)) if enter_leave and self.n_frames >= 2 else 0
        n_cross = min(n_cross, n)
        n_enter = n_cross // 2
        n_leave = n_cross - n_enter
        n_appear = max(1, round(0.1 * n)) if appear_mid_movie and self.n_frames >= 2 else 0
        n_appear = min(n_appear, n - n_cross)
        # Moving cells first: they sweep the most space and are hardest to fit later.
        n_regular = n - n_cross - n_appear
        return ["enters"] * n_enter + ["leaves"] * n_leave + ["appears"] * n_appear + ["regular"] * n_regular

    def place_cells(self, rng: np.random.Generator, roles: list[str]) -> Layout:
        """Rejection-sample each cell's shape and path until it keeps ``min_gap`` from every
        cell placed before it, in every frame both exist."""
        n, n_t = len(roles), self.n_frames
        placed = Layout(
            centres=np.zeros((n, n_t, 2)),
            angles=np.zeros((n, n_t)),
            axes=np.zeros((n, 2)),
            first_frame=np.zeros(n, dtype=np.int64),
            roles=tuple(roles),
        )
        swept = np.zeros((n, 4))  # box [y0, x0, y1, x1] swept by each placed cell
        for i, role in enumerate(roles):
            before = placed.take(slice(0, i))
            for _ in range(_ATTEMPTS_PER_CELL):
                candidate = self._candidate(rng, role, before)
                path = candidate.centres[0]
                reach = candidate.axes[0, 0] + self.min_gap + 1
                box = np.concatenate([path.min(axis=0) - reach, path.max(axis=0) + reach])
                # Only cells whose swept boxes come near can collide; test those exactly.
                near = (
                    (swept[:i, 0] < box[2]) & (box[0] < swept[:i, 2])
                    & (swept[:i, 1] < box[3]) & (box[1] < swept[:i, 3])
                )
                if self._clear(candidate, before.take(near)):
                    break
            else:
                raise ValueError(
                    f"could not place cell {i + 1} of {n} with a {self.min_gap:g} px gap in a "
                    f"{self.height}x{self.width} field; lower n_cells, cell_radius or min_gap"
                )
            placed.centres[i], placed.angles[i] = candidate.centres[0], candidate.angles[0]
            placed.axes[i], placed.first_frame[i] = candidate.axes[0], candidate.first_frame[0]
            swept[i] = box
        return placed

    def _candidate(self, rng: np.random.Generator, role: str, placed: Layout) -> Layout:
        """A random shape and path for one cell of ``role``: start position, own velocity
        plus the common drift, a small random walk and a slow rotation."""
        n_t = self.n_frames
        frames = np.arange(n_t)
        lo, hi = self.cell_radius
        major = rng.uniform(lo, hi)
        minor = rng.uniform(lo, major)
        angles = rng.uniform(0, np.pi) + rng.uniform(-_SPIN, _SPIN) * frames
        first = int(rng.integers(1, n_t)) if role == "appears" else 0
        steps = rng.normal(0.0, _JITTER_STEP, size=(n_t, 2))
        walk = np.cumsum(steps, axis=0)
        walk -= walk[first]  # the start position holds at the first frame
        start, velocity = self._start_and_velocity(rng, role, major, minor, angles[first], placed)
        path = start + (np.array(self.drift) + velocity) * (frames - first)[:, None] + walk
        return Layout(path[None], angles[None], np.array([[major, minor]]), np.array([first]), (role,))

    def _start_and_velocity(
        self, rng: np.random.Generator, role: str, major: float, minor: float, angle: float, placed: Layout
    ) -> tuple[np.ndarray, np.ndarray]:
        """Centre at the cell's first frame, and its own velocity on top of the drift."""
        size = np.array([self.height, self.width], dtype=float)
        still = np.zeros(2)
        if role == "appears":  # fully inside the field when it appears
            return rng.uniform(major + 2, size - 1 - major - 2), still
        if role in ("enters", "leaves"):
            axis = int(rng.integers(2))  # crosses a horizontal (0) or vertical (1) edge
            # Fully outside (allowing for the random walk) at one end of the movie, fully
            # inside at the other.
            outside = -(major + 1 + rng.uniform(0, 3)) - 3 * _JITTER_STEP * np.sqrt(self.n_frames)
            inside = major + 2 + rng.uniform(0, 10)
            begin, end = (outside, inside) if role == "enters" else (inside, outside)
            if rng.integers(2):  # the far edge instead
                begin, end = size[axis] - 1 - begin, size[axis] - 1 - end
            start = rng.uniform(major + 2, size - 1 - major - 2)
            start[axis] = begin
            velocity = still.copy()
            velocity[axis] = (end - begin) / (self.n_frames - 1) - self.drift[axis]
            return start, velocity
        # Regular: uniform, or just beyond touching distance of a cell present from frame 0
        # to make dense clusters. The centre may lie up to minor/2 outside the field, so the
        # mask can be clipped by the edge but is never empty.
        low, high = np.full(2, -0.5 * minor), size - 1 + 0.5 * minor
        anchors = np.flatnonzero(placed.first_frame == 0)
        if anchors.size and rng.random() < _CLUSTER_FRACTION:
            anchor = int(rng.choice(anchors))
            direction = rng.uniform(0, 2 * np.pi)
            uy, ux = np.sin(direction), np.cos(direction)
            touching = support(uy, ux, placed.angles[anchor, 0], *placed.axes[anchor])
            touching += support(uy, ux, angle, major, minor)
            distance = touching + self.min_gap + 1 + rng.uniform(0.5, 4)
            start = placed.centres[anchor, 0] + distance * np.array([uy, ux])
            if np.all(start >= low) and np.all(start <= high):
                return start, still
        return rng.uniform(low, high), still

    def _clear(self, candidate: Layout, others: Layout) -> bool:
        """True if the candidate ellipse stays ``min_gap + 1`` px from each of ``others`` in
        every frame both exist.

        Two convex sets whose projections on the line joining their centres are ``g`` apart
        are at least ``g`` apart, so comparing the centre distance with the sum of the two
        projected half-widths is a sufficient (slightly conservative) test.
        """
        if len(others.roles) == 0:
            return True
        delta = candidate.centres - others.centres  # (k, T, 2)
        distance = np.hypot(delta[..., 0], delta[..., 1])
        safe = np.maximum(distance, 1e-9)
        uy, ux = delta[..., 0] / safe, delta[..., 1] / safe
        gap = distance
        for cells in (candidate, others):
            gap = gap - support(uy, ux, cells.angles, cells.axes[:, :1], cells.axes[:, 1:])
        both = np.arange(self.n_frames) >= np.maximum(others.first_frame, candidate.first_frame)[:, None]
        return bool(np.all(gap[both] >= self.min_gap + 1))

    def choose_dropout(self, rng: np.random.Generator, lay: Layout) -> tuple[int, int]:
        """A cell fully inside the field in every frame, and a frame that is neither first
        nor last, so the gap is a pure tracking event."""
        size = np.array([self.height, self.width])
        margin = lay.axes[:, 0, None, None] + 1
        inside = np.all((lay.centres >= margin) & (lay.centres <= size - 1 - margin), axis=(1, 2))
        candidates = np.flatnonzero(inside & (lay.first_frame == 0))
        if candidates.size == 0:
            candidates = np.flatnonzero(lay.first_frame == 0)
        if candidates.size == 0:
            candidates = np.arange(self.n_cells)
        cell = int(rng.choice(candidates))
        low = max(1, int(lay.first_frame[cell]) + 1)
        t = int(rng.integers(low, self.n_frames - 1)) if low < self.n_frames - 1 else self.n_frames - 1
        return cell, t
