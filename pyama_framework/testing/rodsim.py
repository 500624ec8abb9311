"""An independent second renderer: rod-shaped bacteria in microcolonies, optics modelled.

:mod:`.synthetic` draws what the built-in algorithms were developed on; scoring only on it
rewards whatever its model gets wrong. This module shares no code with it and models the
image differently, so a method tuned to one is checked on the other:

- Cells are spherocylinders (rods) and ellipses given by a signed distance ``d`` to their
  nominal outline (px, negative inside). The true label of a pixel is ``d <= 0`` (the 50 %
  level of the soft edge).
- Fluorescence: the cell's signal fades linearly over ``edge_width`` px centred on the
  outline, has a gradient along the cell, and is blurred by a Gaussian PSF (``psf_sigma``).
  The true ``intensity_total`` of a cell is the sum of its blurred signal over the whole
  frame: what a perfect method would recover. Background: camera offset + vignetted,
  tilted and blotchy illumination that dims over time. Real Poisson noise.
- Phase contrast: optical path = thickness of each cell (a rod's true cross-section) plus
  debris; the image is ``illumination * (1 - k * (p - G_s p))`` of the optically blurred
  path ``p``, a high-pass that makes dark cells with bright halos and shade-off inside large
  bodies (instead of drawn rings).
- Microcolonies of touching cells (0-1 px apart), single cells, debris specks (dark or
  bright in phase, some fluorescent), a random-walk stage drift moving the whole scene.

In a :class:`RodScene` cells never divide or move relative to each other; track ``i + 1`` is
cell ``i``. :class:`.colony.ColonyScene` renders a growing, dividing colony with the same
optics (both are :class:`RodRenderer` subclasses). Everything is deterministic in ``seed``;
frames are rendered one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

__all__ = ["PHASE_LEVEL", "RodFrame", "RodRenderer", "RodScene", "magnified", "stadium_gap"]

PHASE_LEVEL = 2500.0  # default phase illumination at the centre, counts
_PHASE_GAIN = 0.07  # darkening per px of high-passed optical path
_HALO_SCALE = 5.0  # px, the low-pass subtracted from the optical path (sets the halo width)
_OPTICS_SIGMA = 0.9  # px, blur of the phase image
_CAMERA_OFFSET = 100.0
_ISOLATION = 6.0  # px, minimum gap between cells of different colonies
_PSF_TRUNCATE = 4.0  # Gaussian kernel radius in sigmas (the kernel sums to 1)
_WAIST_DEPTH = 0.45  # a constricting rod's radius at its middle, as a share lost


def _point_segment(py, px, ay, ax, by, bx):
    """Distance from points ``(py, px)`` to the segment ``a-b`` (broadcasting)."""
    vy, vx = by - ay, bx - ax
    length2 = vy * vy + vx * vx
    s = np.clip(((py - ay) * vy + (px - ax) * vx) / np.maximum(length2, 1e-12), 0.0, 1.0)
    return np.hypot(py - ay - s * vy, px - ax - s * vx)


def _positive_level(level: float) -> float:
    if not level > 0:
        raise ValueError(f"phase_level must be > 0 counts, got {level}")
    return float(level)


def stadium_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Gap in px between two stadia ``[y0, x0, y1, x1, radius]`` (negative when they overlap).

    Segment distance: 0 if the segments cross, else the smallest endpoint-to-segment distance.
    """
    (ay0, ax0, ay1, ax1, ra), (by0, bx0, by1, bx1, rb) = a, b

    def side(py, px, qy, qx, ry, rx):
        return np.sign((qx - px) * (ry - py) - (qy - py) * (rx - px))

    crossing = (side(ay0, ax0, ay1, ax1, by0, bx0) * side(ay0, ax0, ay1, ax1, by1, bx1) < 0
                and side(by0, bx0, by1, bx1, ay0, ax0) * side(by0, bx0, by1, bx1, ay1, ax1) < 0)
    distance = 0.0 if crossing else min(
        _point_segment(ay0, ax0, by0, bx0, by1, bx1), _point_segment(ay1, ax1, by0, bx0, by1, bx1),
        _point_segment(by0, bx0, ay0, ax0, ay1, ax1), _point_segment(by1, bx1, ay0, ax0, ay1, ax1))
    return float(distance - ra - rb)


@dataclass(frozen=True)
class RodFrame:
    """One frame and its truth (per-cell arrays are indexed by cell, track ID = index + 1).

    The fields mirror :class:`.synthetic.SyntheticFrame` (one fluorescence channel, kept in
    1-tuples), so scoring code and ``write_ome_tiff`` work with either generator.

    Attributes
    ----------
    phase : (H, W) uint16 ndarray
    fluorescence : 1-tuple of (H, W) uint16 ndarray
    labels : (H, W) uint16 ndarray, nominal outlines (``d <= 0``).
    background : 1-tuple of (H, W) float32 ndarray, true fluorescence background.
    fluorescence_exact : (H, W) float64 ndarray, fluorescence before noise and rounding.
    intensity_total : 1-tuple of (n,) float64 ndarray, sum over the frame of the cell's
        blurred signal (NaN when the cell is out of the field).
    visible : (n,) bool ndarray, cells with at least one labelled pixel.
    t : int
    """

    phase: np.ndarray
    fluorescence: tuple[np.ndarray]
    labels: np.ndarray
    background: tuple[np.ndarray]
    fluorescence_exact: np.ndarray
    intensity_total: tuple[np.ndarray]
    visible: np.ndarray
    t: int


class RodRenderer:
    """Renders rods with the optics of the module docstring; subclasses say where the rods are.

    A subclass sets ``height``, ``width``, ``n_frames``, ``n_tracks`` (length of the per-cell
    arrays of a frame), ``seed``, ``edge_width``, ``psf_sigma``, ``noise``, ``drift``
    ((T, 2) stage offset per frame), the debris arrays ``debris_yx``, ``debris_size``,
    ``debris_opl``, ``debris_fl`` and the background parameters ``_bg``, and implements
    :meth:`_cells_at`.
    """

    n_fluorescence = 1

    def _cells_at(self, t: int):
        """Yield ``(label, stadium, kind, amplitude, polarity, density)`` for every cell of frame ``t``:
        the stadium ``[y0, x0, y1, x1, radius]`` already moved by the drift, ``kind`` one of
        ``"rod"``, ``"ellipse"``, ``"constricted"`` (a rod pinched at its middle before it divides)."""
        raise NotImplementedError

    # -------------------------------------------------------------- rendering
    @staticmethod
    def _cell_geometry(stadium, kind: str, y0: int, x0: int, shape: tuple[int, int]):
        """Signed distance ``d``, thickness and position along the axis (-1..1) of a cell
        on the pixel centres of the box at ``(y0, x0)`` of ``shape``."""
        ay, ax, by, bx, radius = stadium
        yy = np.arange(y0, y0 + shape[0], dtype=np.float64)[:, None]
        xx = np.arange(x0, x0 + shape[1], dtype=np.float64)[None, :]
        cy, cx = (ay + by) / 2, (ax + bx) / 2
        half = np.hypot(by - ay, bx - ax) / 2
        angle = np.arctan2(by - ay, bx - ax)
        u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)  # along the cell
        v = (yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)
        along = np.clip(u / (half + radius), -1, 1)
        if kind == "rod":
            rho = _point_segment(yy, xx, ay, ax, by, bx)
            d = rho - radius
            thickness = 2 * np.sqrt(np.maximum(radius**2 - rho**2, 0.0))
        elif kind == "constricted":  # the radius dips over about one radius around the middle
            rho = _point_segment(yy, xx, ay, ax, by, bx)
            local = radius * (1 - _WAIST_DEPTH * np.exp(-0.5 * (u / (0.6 * radius)) ** 2))
            d = rho - local
            thickness = 2 * np.sqrt(np.maximum(local**2 - rho**2, 0.0))
        else:  # ellipse of semi-axes (half + radius, radius); d to first order (a Newton step)
            a, b = half + radius, radius
            q2 = (u / a) ** 2 + (v / b) ** 2
            grad = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2)
            d = np.where(grad > 1e-9, (q2 - 1) / (2 * np.maximum(grad, 1e-9)), -b)
            thickness = 2 * b * np.sqrt(np.maximum(1 - q2, 0.0))
        return d, thickness, along

    @staticmethod
    def _box(stadium, pad: float) -> tuple[int, int, int, int]:
        ay, ax, by, bx, radius = stadium
        reach = radius + pad
        y0, x0 = int(np.floor(min(ay, by) - reach)), int(np.floor(min(ax, bx) - reach))
        y1, x1 = int(np.ceil(max(ay, by) + reach)) + 1, int(np.ceil(max(ax, bx) + reach)) + 1
        return y0, x0, y1, x1

    def _clip(self, y0, x0, y1, x1):
        """The part of a box inside the frame: (frame slices, crop slices) or None."""
        fy0, fx0, fy1, fx1 = max(y0, 0), max(x0, 0), min(y1, self.height), min(x1, self.width)
        if fy0 >= fy1 or fx0 >= fx1:
            return None
        return ((slice(fy0, fy1), slice(fx0, fx1)),
                (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0)))

    def _background(self, t: int) -> np.ndarray:
        level, (gy, gx), vignette, blotch_yx, blotch_amp = self._bg
        half = max(self.height, self.width) / 2
        y = (np.arange(self.height) - (self.height - 1) / 2)[:, None] / half
        x = (np.arange(self.width) - (self.width - 1) / 2)[None, :] / half
        shade = (1 + gy * y + gx * x) * (1 - vignette * (y * y + x * x))
        for (by, bx), amp in zip(blotch_yx, blotch_amp):
            spread = 0.3 * half
            shade = shade * (1 + amp * np.exp(-((np.arange(self.height)[:, None] - by) ** 2
                                                + (np.arange(self.width)[None, :] - bx) ** 2) / (2 * spread**2)))
        dimming = 1 - 0.05 * t / max(self.n_frames - 1, 1)
        return (_CAMERA_OFFSET + level * dimming * shade).astype(np.float32)

    def _render(self, t: int):
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} out of range [0, {self.n_frames})")
        n, shape = self.n_tracks, (self.height, self.width)
        background = self._background(t)
        fl = background.astype(np.float64)
        opl = np.zeros(shape)
        labels = np.zeros(shape, dtype=np.uint16)
        nearest = np.full(shape, np.inf)
        totals = np.full(n, np.nan)
        pad = self.edge_width / 2 + _PSF_TRUNCATE * self.psf_sigma + 2
        for label, stadium, kind, amplitude, polarity, density in self._cells_at(t):
            box = self._box(stadium, pad)
            parts = self._clip(*box)
            if parts is None:
                continue
            inside, crop = parts
            d, thickness, along = self._cell_geometry(stadium, kind, box[0], box[1],
                                                      (box[2] - box[0], box[3] - box[1]))
            if self.edge_width > 0:
                weight = np.clip(0.5 - d / self.edge_width, 0.0, 1.0)
            else:
                weight = (d <= 0).astype(np.float64)
            signal = amplitude * (1 + polarity * along) * weight
            if self.psf_sigma > 0:
                signal = ndi.gaussian_filter(signal, self.psf_sigma, mode="constant", truncate=_PSF_TRUNCATE)
            fl[inside] += signal[crop]
            opl[inside] += density * thickness[crop]
            own = (d[crop] <= 0) & (d[crop] < nearest[inside])
            if own.any():
                labels[inside][own] = label
                nearest[inside][own] = d[crop][own]
                totals[label - 1] = signal[crop].sum()
        self._draw_debris(t, fl, opl)
        present = np.bincount(labels.ravel(), minlength=n + 1)[1:] > 0
        totals[~present] = np.nan
        level = np.float64(self.phase_level)
        half = max(shape) / 2
        y = (np.arange(shape[0]) - shape[0] / 2)[:, None] / half
        x = (np.arange(shape[1]) - shape[1] / 2)[None, :] / half
        illumination = level * (1 + 0.04 * y - 0.03 * x) * (1 - 0.1 * (y * y + x * x))
        path = ndi.gaussian_filter(opl, _OPTICS_SIGMA)
        phase = illumination * (1 - _PHASE_GAIN * (path - ndi.gaussian_filter(path, _HALO_SCALE)))
        return np.maximum(phase, 1.0), fl, labels, background, totals, present

    def _draw_debris(self, t: int, fl: np.ndarray, opl: np.ndarray) -> None:
        """Gaussian specks: optical path (dark or bright in phase) and, for some, fluorescence
        already blurred by the PSF (a Gaussian of the combined width, same flux)."""
        for (py, px), size, path, glow in zip(self.debris_yx, self.debris_size, self.debris_opl, self.debris_fl):
            py, px = py + self.drift[t, 0], px + self.drift[t, 1]
            spread = np.hypot(size, self.psf_sigma)
            r = int(np.ceil(4 * spread)) + 1
            y0, x0 = int(round(py)) - r, int(round(px)) - r
            parts = self._clip(y0, x0, y0 + 2 * r + 1, x0 + 2 * r + 1)
            if parts is None:
                continue
            inside, crop = parts
            dy2 = (np.arange(y0, y0 + 2 * r + 1)[:, None] - py) ** 2
            dx2 = (np.arange(x0, x0 + 2 * r + 1)[None, :] - px) ** 2
            opl[inside] += (path * np.exp(-(dy2 + dx2) / (2 * size**2)))[crop]
            if glow:
                flux = glow * 2 * np.pi * size**2
                fl[inside] += (flux / (2 * np.pi * spread**2) * np.exp(-(dy2 + dx2) / (2 * spread**2)))[crop]

    def frame(self, t: int) -> RodFrame:
        """Render frame ``t`` (independent of the frames rendered before)."""
        phase, exact, labels, background, totals, present = self._render(t)
        fl = exact
        if self.noise:
            rng = np.random.default_rng([self.seed, 1, t])
            phase, fl = rng.poisson(phase), rng.poisson(exact)
        phase, fl = (np.clip(np.rint(im), 0, 65535).astype(np.uint16) for im in (phase, fl))
        return RodFrame(phase, (fl,), labels, (background,), exact, (totals,), present, t)

    def frames(self):
        """Every frame in time order, one at a time."""
        for t in range(self.n_frames):
            yield self.frame(t)


class RodScene(RodRenderer):
    """A deterministic time-lapse of rods and ellipses (see the module docstring).

    Parameters
    ----------
    height, width, n_frames, n_cells : int
    seed : int
    colony_fraction : float
        Share of the cells that sit in microcolonies of touching cells.
    rod_fraction : float
        Share of spherocylinders; the others are ellipses.
    touching_gap : (float, float)
        Range of the gap between a colony member and the cell it was placed against (px).
    edge_width : float
        Width of the soft edge of the fluorescence signal, centred on the outline (px).
    psf_sigma : float
        Sigma of the Gaussian PSF blurring the fluorescence (px); 0 disables it.
    n_debris : int or None
        Debris specks; default a third of ``n_cells``.
    drift_step : float
        Standard deviation of the stage drift per frame and axis (px).
    noise : bool
        Poisson noise; ``False`` gives the rounded noise-free images.
    phase_level : float
        Phase-contrast illumination at the field's centre (counts). The noise is Poisson, so
        this sets the phase image's signal-to-noise ratio (x10: sqrt(10) x higher, a long
        exposure or a bright lamp).
    """

    def __init__(self, height: int = 1024, width: int = 1024, n_frames: int = 4, n_cells: int = 150,
                 seed: int = 0, *, colony_fraction: float = 0.6, rod_fraction: float = 0.7,
                 touching_gap: tuple[float, float] = (0.0, 1.0), edge_width: float = 2.0,
                 psf_sigma: float = 1.5, n_debris: int | None = None, drift_step: float = 1.5,
                 noise: bool = True, phase_level: float = PHASE_LEVEL) -> None:
        if n_cells < 1 or n_frames < 1 or min(height, width) < 64:
            raise ValueError("RodScene needs n_cells >= 1, n_frames >= 1 and a frame of at least 64 x 64")
        if not 0 <= touching_gap[0] <= touching_gap[1] or edge_width < 0 or psf_sigma < 0:
            raise ValueError("touching_gap must be 0 <= lo <= hi; edge_width and psf_sigma >= 0")
        self.height, self.width, self.n_frames, self.n_cells = int(height), int(width), int(n_frames), int(n_cells)
        self.seed, self.edge_width, self.psf_sigma, self.noise = int(seed), float(edge_width), float(psf_sigma), noise
        self.n_fluorescence = 1
        self.phase_level = _positive_level(phase_level)
        rng = np.random.default_rng([self.seed, 0xB0D])
        self.stadia, self.kinds = self._place(rng, colony_fraction, rod_fraction, touching_gap)
        n = self.n_cells
        self.brightness = np.exp(rng.uniform(np.log(60.0), np.log(1200.0), n))
        self.rate = rng.uniform(-0.03, 0.04, n)
        self.polarity = rng.uniform(-0.3, 0.3, n)  # signal gradient along the cell
        self.density = rng.uniform(0.8, 1.2, n)  # refractive index contrast
        n_debris = n // 3 if n_debris is None else int(n_debris)
        self.debris_yx = rng.uniform(0, 1, (n_debris, 2)) * (self.height, self.width)
        self.debris_size = rng.uniform(0.7, 1.8, n_debris)
        self.debris_opl = rng.choice([-1.0, 1.0], n_debris, p=[0.3, 0.7]) * rng.uniform(6, 20, n_debris)
        self.debris_fl = np.where(rng.random(n_debris) < 0.3, rng.uniform(50, 600, n_debris), 0.0)
        steps = rng.normal(0, drift_step, (self.n_frames, 2))
        steps[0] = 0
        self.drift = np.cumsum(steps, axis=0)
        self._bg = (rng.uniform(250, 600), rng.uniform(-0.2, 0.2, 2), rng.uniform(0.2, 0.4),
                    rng.uniform(0, 1, (3, 2)) * (self.height, self.width), rng.uniform(-0.15, 0.15, 3))

    # ----------------------------------------------------------------- layout
    def _shape(self, rng, kind: str, cy: float, cx: float, angle: float) -> np.ndarray:
        """A stadium ``[y0, x0, y1, x1, radius]``; an ellipse is kept as its enclosing stadium
        (semi-axes ``half + radius`` and ``radius``) and rendered from it."""
        radius = rng.uniform(3.5, 5.5) if kind == "rod" else rng.uniform(4.0, 7.0)
        half = rng.uniform(4.0, 14.0) if kind == "rod" else rng.uniform(0.0, 5.0)
        dy, dx = half * np.sin(angle), half * np.cos(angle)
        return np.array([cy - dy, cx - dx, cy + dy, cx + dx, radius])

    def _place(self, rng, colony_fraction, rod_fraction, touching_gap):
        """Colonies (2-8 touching cells) until ``colony_fraction`` of the cells is placed,
        then single cells; different colonies keep ``_ISOLATION`` px apart."""
        n, size = self.n_cells, np.array([self.height, self.width], float)
        kinds = np.where(rng.random(n) < rod_fraction, "rod", "ellipse")
        stadia = np.zeros((n, 5))
        colony = np.full(n, -1)
        n_colonial = int(round(colony_fraction * n))
        i = 0
        while i < n:
            members = min(int(rng.integers(2, 9)) if i < n_colonial else 1, n - i)
            for _ in range(2000):
                centre = rng.uniform(0, 1, 2) * (size - 40) + 20
                seed = self._shape(rng, kinds[i], *centre, rng.uniform(0, np.pi))
                if self._fits(seed, stadia, colony, i, group=i):
                    break
            else:
                raise ValueError(f"could not place cell {i + 1} of {n} in {self.height}x{self.width}; lower n_cells")
            stadia[i], colony[i] = seed, i
            group, i = i, i + 1
            for _ in range(members - 1):
                self._grow_colony(rng, stadia, colony, kinds, i, group, touching_gap)
                i += 1
        order = rng.permutation(n)  # IDs say nothing about colonies
        return stadia[order], kinds[order]

    def _fits(self, candidate, stadia, colony, i, group) -> bool:
        """Inside the field, not overlapping its colony, well clear of every other cell."""
        mid = (candidate[:2] + candidate[2:4]) / 2
        if np.any(mid < 10) or np.any(mid > np.array([self.height, self.width]) - 10):
            return False
        near = np.flatnonzero(np.abs((stadia[:i, :2] + stadia[:i, 2:4]) / 2 - mid).max(axis=1) < 60)
        return all(stadium_gap(candidate, stadia[j]) >= (0.0 if colony[j] == group else _ISOLATION) for j in near)

    def _grow_colony(self, rng, stadia, colony, kinds, i, group, touching_gap) -> None:
        """Place cell ``i`` against a random member of colony ``group``: roughly aligned with
        it, slid in from a random direction until the gap to it is ``touching_gap``."""
        own = np.flatnonzero(colony[:i] == group)
        for _ in range(2000):
            a = stadia[int(rng.choice(own))]
            angle = np.arctan2(a[2] - a[0], a[3] - a[1]) + rng.normal(0, 0.35)
            shape = self._shape(rng, kinds[i], 0.0, 0.0, angle)
            direction = rng.uniform(0, 2 * np.pi)
            offset = np.array([np.sin(direction), np.cos(direction)])
            target = rng.uniform(*touching_gap)
            centre = (a[:2] + a[2:4]) / 2

            def at(step):
                return shape + np.r_[centre + step * offset, centre + step * offset, 0]

            lo, hi = 0.0, 60.0  # gap(hi) > target >= gap(lo): bisect along the ray
            if stadium_gap(at(lo), a) > target:
                continue
            for _ in range(30):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if stadium_gap(at(mid), a) <= target else (lo, mid)
            moved = at(lo)
            if self._fits(moved, stadia, colony, i, group):
                stadia[i], colony[i] = moved, group
                return
        raise ValueError(f"could not grow a colony to cell {i + 1} of {self.n_cells}; lower n_cells")

    @property
    def n_tracks(self) -> int:
        return self.n_cells

    def _cells_at(self, t: int):
        sy, sx = self.drift[t]
        for i in range(self.n_cells):
            ay, ax, by, bx, radius = self.stadia[i]
            yield (i + 1, (ay + sy, ax + sx, by + sy, bx + sx, radius), self.kinds[i],
                   self.brightness[i] * np.exp(self.rate[i] * t), self.polarity[i], self.density[i])


def magnified(scene: RodRenderer, t: int, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t``'s phase image and true labels as a ``zoom`` x larger magnification (or
    smaller camera pixels) shows them: cells, halos and blur all ``zoom`` x wider in px.

    The noise-free render is resampled (cubic spline; labels: nearest), then Poisson noise
    is drawn, so the noise per pixel stays that of the camera.

    Parameters
    ----------
    scene : RodRenderer
        Built with ``noise=False``.
    t : int
        Frame index.
    zoom : float
        Magnification factor (>= 1).

    Returns
    -------
    phase : (H * zoom, W * zoom) uint16 ndarray
    labels : (H * zoom, W * zoom) uint16 ndarray
    """
    if scene.noise:
        raise ValueError("magnified needs a scene built with noise=False (noise is drawn after resampling)")
    if zoom < 1:
        raise ValueError(f"zoom must be >= 1, got {zoom}")
    frame = scene.frame(t)
    phase = ndi.zoom(frame.phase.astype(np.float64), zoom, order=3)
    phase = np.random.default_rng([scene.seed, 2, t]).poisson(np.clip(phase, 0.0, None))
    labels = ndi.zoom(frame.labels, zoom, order=0)
    return np.clip(phase, 0, 65535).astype(np.uint16), labels
