"""A growing, dividing colony of rods with a known lineage, rendered with :mod:`.rodsim`'s optics.

The evidence for tracking through divisions at scale: a few founder rods grow into a dense
monolayer of hundreds, and the truth is a Cell Tracking Challenge lineage. Like
:mod:`.rodsim` it shares no code with the segmenters and trackers under test.

- Growth: each rod elongates exponentially, doubling its length every ``doubling`` frames
  (jittered per cell), and divides at about twice its birth length. In the frame before the
  cut it is constricted (pinched at its middle, still one cell); the next frame shows two
  daughters, each half the mother, a contact gap apart along her axis. Daughters get new
  track IDs; the mother's track ends.
- Mechanics: after each frame's growth, overlapping rods are pushed apart
  (:func:`.colony_mechanics.relax`) until every pair is at least ``contact_gap`` px apart
  (0.2 px tolerance), so a dense colony is a monolayer of rods 0.3-1 px apart; each rod also
  turns and moves a little at random. The whole field follows a random-walk stage drift.
- Truth per frame: labels carry track IDs (the nominal outline, as in :class:`.rodsim.RodScene`),
  ``tracks`` is the CTC table ``[label, begin, end, parent]`` and the true ``intensity_total``
  of each cell is its blurred fluorescence summed over the frame. Per-cell arrays of a frame
  are indexed by ``label - 1`` over every track of the movie.

The cell states of all frames are simulated once in the constructor (a few arrays per frame);
images are rendered one frame at a time. Everything is deterministic in ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .colony_mechanics import axis, relax
from .rodsim import PHASE_LEVEL, RodRenderer, _positive_level

__all__ = ["ColonyScene", "colony_scene", "small_colony_scene"]

_SIMULATION_STREAM, _APPEARANCE_STREAM = 0xC010, 0xC011
_DIVISION_JITTER = 0.07  # relative spread of the length at division (about twice the birth length)
_SPLIT_JITTER = 0.03  # relative spread of the share of the mother each daughter gets
_TURN_NOISE = 0.01  # rad per frame, random turning of each rod
_MOVE_NOISE = 0.1  # px per frame, random motion of each rod
_MARGIN = 8  # px the colony keeps from the field edge (with drift)


@dataclass
class _Rods:
    """The live rods of one moment (parallel arrays)."""

    ids: np.ndarray  # (n,) int64 track IDs
    centres: np.ndarray  # (n, 2) float
    angles: np.ndarray  # (n,) float
    lengths: np.ndarray  # (n,) float, cap to cap
    radii: np.ndarray  # (n,) float
    division_at: np.ndarray  # (n,) float, length at which the rod constricts
    doubling: np.ndarray  # (n,) float, frames per doubling of the length

    def take(self, index) -> "_Rods":
        return _Rods(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def stadia(self) -> np.ndarray:
        """``[y0, x0, y1, x1, radius]`` of every rod."""
        half = (self.lengths / 2 - self.radii)[:, None] * axis(self.angles)
        return np.column_stack([self.centres - half, self.centres + half, self.radii])


class ColonyScene(RodRenderer):
    """A deterministic time-lapse of a growing, dividing colony (see the module docstring).

    Parameters
    ----------
    height, width, n_frames : int
    n_founders : int
        Rods at frame 0.
    seed : int
    doubling : float
        Mean frames for a rod to double its length (each cell: +-``doubling_jitter``).
    doubling_jitter : float
        Relative half-range of the per-cell doubling time.
    birth_length : (float, float)
        Range of the founders' birth lengths, cap to cap (px).
    radius : (float, float)
        Range of the founders' radii (px); daughters inherit their mother's.
    founder_spread : float or None
        Founders start within this distance of the field centre (px); default a sixth of
        the smaller side.
    contact_gap : float
        Distance the mechanics keep between touching rods (px).
    edge_width, psf_sigma, n_debris, drift_step, noise, phase_level
        As in :class:`.rodsim.RodScene` (``n_debris`` default: 10 + area / 50 000 px²).

    Attributes
    ----------
    tracks : (N, 4) int64 ndarray
        CTC lineage ``[label, begin, end, parent]`` (parent 0 for founders).
    parents : dict
        ``{daughter: mother}``.
    n_tracks : int

    Raises
    ------
    ValueError
        On invalid arguments, or when the colony grows out of the field.
    """

    def __init__(self, height: int = 1024, width: int = 1024, n_frames: int = 40, n_founders: int = 4,
                 seed: int = 0, *, doubling: float = 7.0, doubling_jitter: float = 0.15,
                 birth_length: tuple[float, float] = (22.0, 28.0), radius: tuple[float, float] = (3.5, 4.5),
                 founder_spread: float | None = None, contact_gap: float = 0.5, edge_width: float = 2.0,
                 psf_sigma: float = 1.5, n_debris: int | None = None, drift_step: float = 1.5,
                 noise: bool = True, phase_level: float = PHASE_LEVEL) -> None:
        if n_founders < 1 or n_frames < 1 or min(height, width) < 64:
            raise ValueError("ColonyScene needs n_founders >= 1, n_frames >= 1 and a frame of at least 64 x 64")
        if doubling <= 1 or not 0 <= doubling_jitter < 1 or contact_gap < 0.3:
            raise ValueError("ColonyScene needs doubling > 1 frame, 0 <= doubling_jitter < 1 and contact_gap >= 0.3")
        if not 0 < radius[0] <= radius[1] or not 4 * radius[1] <= birth_length[0] <= birth_length[1]:
            raise ValueError("ColonyScene needs 0 < radius lo <= hi and 4 * radius hi <= birth_length lo <= hi")
        self.height, self.width, self.n_frames = int(height), int(width), int(n_frames)
        self.seed, self.edge_width, self.psf_sigma, self.noise = int(seed), float(edge_width), float(psf_sigma), noise
        self.phase_level = _positive_level(phase_level)
        self.doubling, self.doubling_jitter, self.contact_gap = float(doubling), float(doubling_jitter), float(contact_gap)
        rng = np.random.default_rng([self.seed, _SIMULATION_STREAM])
        spread = min(height, width) / 6 if founder_spread is None else float(founder_spread)
        founders = self._founders(rng, int(n_founders), birth_length, radius, spread)
        self._simulate(rng, founders)
        self._appearance(np.random.default_rng([self.seed, _APPEARANCE_STREAM]), drift_step, n_debris)
        for t, stadia in enumerate(self._stadia):
            self._check_inside(t, stadia, self.drift[t])

    # ------------------------------------------------------------- simulation
    def _founders(self, rng, n, birth_length, radius, spread) -> _Rods:
        """Founders anywhere in a disc around the centre, at random points of their cycle."""
        distance, direction = spread * np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n)
        centres = np.column_stack([self.height / 2 + distance * np.sin(direction),
                                   self.width / 2 + distance * np.cos(direction)])
        births = rng.uniform(*birth_length, n)
        rods = _Rods(np.arange(1, n + 1), centres, rng.uniform(0, np.pi, n),
                     births * 2 ** rng.uniform(0, 0.9, n), rng.uniform(*radius, n),
                     2 * births * (1 + rng.normal(0, _DIVISION_JITTER, n)), self._doubling(rng, n))
        rods.centres, rods.angles = relax(rods.centres, rods.angles, rods.lengths / 2 - rods.radii, rods.radii,
                                          self.contact_gap)
        return rods

    def _doubling(self, rng, n: int) -> np.ndarray:
        return self.doubling * rng.uniform(1 - self.doubling_jitter, 1 + self.doubling_jitter, n)

    def _simulate(self, rng, rods: _Rods) -> None:
        """Every frame's rods: divide the constricted ones, grow, jiggle, relax, mark the next to divide."""
        begin = {int(i): 0 for i in rods.ids}
        parent = {int(i): 0 for i in rods.ids}
        self._stadia, self._ids, self._constricted = [], [], []
        next_id = int(rods.ids.max()) + 1
        for t in range(self.n_frames):
            if t:
                dividing = self._constricted[-1]
                if dividing.any():
                    daughters = self._divide(rng, rods.take(dividing), next_id)
                    for mother, a in zip(rods.ids[dividing], daughters.ids[::2]):
                        for child in (int(a), int(a) + 1):
                            begin[child], parent[child] = t, int(mother)
                    next_id += len(daughters.ids)
                    rods = self._join(rods.take(~dividing), daughters)
                n = len(rods.ids)
                rods.lengths = rods.lengths * 2 ** (1 / rods.doubling)
                rods.angles = rods.angles + rng.normal(0, _TURN_NOISE, n)
                rods.centres = rods.centres + rng.normal(0, _MOVE_NOISE, (n, 2))
                rods.centres, rods.angles = relax(rods.centres, rods.angles, rods.lengths / 2 - rods.radii,
                                                  rods.radii, self.contact_gap)
            self._ids.append(rods.ids.copy())
            self._stadia.append(rods.stadia())
            self._check_inside(t, self._stadia[-1], np.zeros(2))  # early: before simulating a colony too large
            # Constricted now, two daughters next frame (the last frame shows the pinch only).
            self._constricted.append(rods.lengths * 2 ** (1 / rods.doubling) >= rods.division_at)
        last = {}
        for t, ids in enumerate(self._ids):
            last.update((int(i), t) for i in ids)
        self.tracks = np.array([[i, begin[i], last[i], parent[i]] for i in sorted(begin)], dtype=np.int64)
        self.parents = {i: p for i, p in parent.items() if p}
        self.n_tracks = len(self.tracks)

    def _divide(self, rng, mothers: _Rods, first_id: int) -> _Rods:
        """Two daughters per mother, each about half of her, ``contact_gap`` apart along her axis;
        IDs ``first_id, first_id + 1`` for the first mother, and so on."""
        n = len(mothers.ids)
        share = 0.5 + rng.normal(0, _SPLIT_JITTER, n)
        usable = mothers.lengths - self.contact_gap
        front, back = usable * share, usable * (1 - share)
        u = axis(mothers.angles)
        tail = mothers.centres - (mothers.lengths / 2)[:, None] * u  # the mother's rear cap tip
        lengths = np.column_stack([back, front]).ravel()
        offsets = np.column_stack([back / 2, mothers.lengths - front / 2]).ravel()
        pick = np.repeat(np.arange(n), 2)
        births = lengths * (1 + rng.normal(0, _DIVISION_JITTER, 2 * n))
        return _Rods(np.arange(first_id, first_id + 2 * n), tail[pick] + offsets[:, None] * u[pick],
                     mothers.angles[pick] + rng.normal(0, 0.03, 2 * n), lengths, mothers.radii[pick],
                     2 * births, self._doubling(rng, 2 * n))

    @staticmethod
    def _join(a: _Rods, b: _Rods) -> _Rods:
        return _Rods(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__))

    # ------------------------------------------------------------- appearance
    def _appearance(self, rng, drift_step: float, n_debris: int | None) -> None:
        """Fluorescence, refractive density, debris, drift and background; daughters inherit
        their mother's signal level at the division (with 10 % spread) and her trend."""
        n = self.n_tracks
        self.brightness = np.exp(rng.uniform(np.log(60.0), np.log(1200.0), n))
        self.rate = rng.uniform(-0.03, 0.04, n)
        self.polarity = rng.uniform(-0.3, 0.3, n)
        self.density = rng.uniform(0.8, 1.2, n)
        spread = rng.lognormal(0, 0.1, n)
        for label, start, _, mother in self.tracks:  # mothers come first (smaller IDs)
            if mother:
                m = mother - 1
                self.brightness[label - 1] = (self.brightness[m] * np.exp(self.rate[m] * (start - self.tracks[m, 1]))
                                              * spread[label - 1])
                self.rate[label - 1], self.density[label - 1] = self.rate[m], self.density[m]
        area = self.height * self.width
        n_debris = 10 + area // 50_000 if n_debris is None else int(n_debris)
        self.debris_yx = rng.uniform(0, 1, (n_debris, 2)) * (self.height, self.width)
        self.debris_size = rng.uniform(0.7, 1.8, n_debris)
        self.debris_opl = rng.choice([-1.0, 1.0], n_debris, p=[0.3, 0.7]) * rng.uniform(6, 20, n_debris)
        self.debris_fl = np.where(rng.random(n_debris) < 0.3, rng.uniform(50, 600, n_debris), 0.0)
        steps = rng.normal(0, drift_step, (self.n_frames, 2))
        steps[0] = 0
        self.drift = np.cumsum(steps, axis=0)
        self._bg = (rng.uniform(250, 600), rng.uniform(-0.2, 0.2, 2), rng.uniform(0.2, 0.4),
                    rng.uniform(0, 1, (3, 2)) * (self.height, self.width), rng.uniform(-0.15, 0.15, 3))

    def _check_inside(self, t: int, stadia: np.ndarray, shift: np.ndarray) -> None:
        ends = np.concatenate([stadia[:, :2], stadia[:, 2:4]]) + shift
        reach = stadia[:, 4].max() + _MARGIN
        if ends.min() < reach or np.any(ends.max(axis=0) > np.array([self.height, self.width]) - 1 - reach):
            raise ValueError(f"the colony reaches the field edge at frame {t} ({len(stadia)} rods in "
                             f"{self.height}x{self.width}); lower n_frames or raise doubling or the frame size")

    # -------------------------------------------------------------- per frame
    def cell_count(self, t: int) -> int:
        """Rods in frame ``t``."""
        return len(self._ids[t])

    def stadia(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Track IDs and stadia ``[y0, x0, y1, x1, radius]`` (with the drift) of frame ``t``."""
        return self._ids[t].copy(), self._stadia[t] + np.r_[self.drift[t], self.drift[t], 0]

    def _cells_at(self, t: int):
        ids, stadia = self.stadia(t)
        for label, stadium, pinched in zip(ids, stadia, self._constricted[t]):
            k = label - 1
            amplitude = self.brightness[k] * np.exp(self.rate[k] * (t - self.tracks[k, 1]))
            yield int(label), stadium, "constricted" if pinched else "rod", amplitude, self.polarity[k], self.density[k]


def colony_scene(seed: int, n_frames: int = 40, size: int = 1024, **options) -> ColonyScene:
    """A dense colony at ``size``²: 4 founders, doubling every 7 frames, about 150-300 rods at
    frame 39 (the issue's real target: 2 -> 358 rods in 53 frames)."""
    return ColonyScene(size, size, n_frames=n_frames, n_founders=4, seed=seed, **options)


def small_colony_scene(seed: int, n_frames: int = 15, **options) -> ColonyScene:
    """A colony for tests: 256², 4 founders close together, doubling every 5 frames, about
    30 rods at frame 14."""
    options = {"doubling": 5.0, "founder_spread": 25.0, "n_debris": 6, **options}
    return ColonyScene(256, 256, n_frames=n_frames, n_founders=4, seed=seed, **options)
