"""Synthetic phase-contrast + fluorescence time-lapses with exact ground truth.

A :class:`SyntheticScene` lays out elliptical cells once (deterministically from ``seed``) and
renders any frame on demand. Each frame comes with the true labels, the true fluorescence
background and the true background-corrected ``intensity_total`` of every cell, so the
segmenter, tracker, background estimator and features can be scored against known answers.

What the scene contains, and why:

- Phase contrast: a smooth, vignetted background (~3000 counts) with Poisson-like noise; cells
  are dark textured bodies with a bright halo ring just outside the mask, i.e. strong local
  variation against a smooth background, which is what the LOG-STD segmenter relies on.
- Fluorescence: a smooth, non-flat background (vignette + linear gradient, 300-1500 counts,
  slowly dimming over time) plus a dome-shaped signal confined to each cell's mask, with
  brightness spread over a 20x range and a slow exponential trend per cell.
- Cells are ellipses of varying size and orientation that share a common drift plus a small
  random walk and slow rotation. They are placed (partly in clusters) so that the masks of any
  two cells are separated by at least ``min_gap`` background pixels in every frame.
- Tracking events: cells that enter or leave through the field edge, cells that first appear
  mid-movie, and one cell that drops out of the images for exactly one frame.
- Optics, off by default (keyword options; :func:`demo_scene` and the accuracy tests turn
  them on): a soft fluorescence edge fading over ``edge_width`` px centred on the outline
  (the mask is its 50 % level), a Gaussian PSF of ``psf_sigma`` px on the fluorescence, blur
  of the phase image, stronger halos, and debris specks (dark in phase with a halo, some
  fluorescent) that belong to no cell. With these the signal reaches past the mask, and the
  true ``intensity_total`` is the sum of the cell's signal over the whole frame.

Coordinates are ``(y, x)`` in pixels (row, column). ``cells[i].track_id == i + 1`` and every
per-cell array in a :class:`SyntheticFrame` is indexed by ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator, Mapping, Sequence

import numpy as np
from scipy import ndimage

from .ome_tiff import _planes, write_ome_tiff  # noqa: F401 (re-exported; _planes for tests)
from .synthetic_layout import CellPlacer, half_extent

__all__ = ["REALISTIC_OPTICS", "SyntheticCell", "SyntheticFrame", "SyntheticScene", "demo_scene", "draw_kinetics",
           "write_ome_tiff"]

# Independent random streams of one scene: the layout, and per-frame noise.
_LAYOUT_STREAM = 0
_NOISE_STREAM = 1

_PHASE_LEVEL = 3000.0  # phase-contrast background counts at the field centre
_HALO_OFFSET = 0.5  # px outside the mask where the halo ring peaks
_HALO_SIGMA = 0.8  # px, width of the halo ring
_HALO_REACH = 4  # px drawn around a cell's box (the halo is < 0.1 count beyond)
_BRIGHTNESS_RANGE = (40.0, 800.0)  # peak fluorescence above background, counts (20x)
_DEBRIS_STREAM = 2  # debris has its own stream, so the cells do not depend on it
_PSF_TRUNCATE = 4.0  # the PSF kernel reaches this many sigmas (and sums to 1)
_KINETICS_STREAM = 3  # per-cell kinetics parameters: drawn only when asked, so defaults do not change


@dataclass(frozen=True)
class SyntheticCell:
    """Ground truth of one cell track.

    Attributes
    ----------
    track_id : int
        Label value of the cell in :attr:`SyntheticFrame.labels` (``>= 1``).
    role : str
        ``"regular"``, ``"enters"`` (starts outside the field and moves in), ``"leaves"``
        (starts inside and moves out) or ``"appears"`` (first shown at ``first_frame > 0``).
    first_frame : int
        First frame in which the cell exists (it is drawn only where it overlaps the field).
    dropout_frame : int or None
        The one frame in which the cell is missing from every image and from the labels.
    centres : tuple of (float, float)
        Centre ``(y, x)`` in every frame (also defined, but meaningless, before
        ``first_frame``).
    angles : tuple of float
        Orientation of the major axis in every frame, radians from the +x axis towards +y.
    semi_axes : (float, float)
        Semi-major and semi-minor axis in pixels.
    brightness : tuple of float
        Peak signal above background per fluorescence channel at frame 0 (counts); the signal
        at frame ``t`` is ``brightness * exp(brightness_rate * t)``, falling to 60 % at the
        mask edge.
    brightness_rate : float
        Exponential trend of the fluorescence per frame (unused with ``kinetics``).
    kinetics : mapping of str to float or None
        With a scene's ``kinetics`` model: the cell's true parameters (every parameter of
        the model, in its units); its total fluorescence at frame ``t`` is the model at
        ``t * frame_interval_min`` minutes.
    """

    track_id: int
    role: str
    first_frame: int
    dropout_frame: int | None
    centres: tuple[tuple[float, float], ...]
    angles: tuple[float, ...]
    semi_axes: tuple[float, float]
    brightness: tuple[float, ...]
    brightness_rate: float
    kinetics: Mapping[str, float] | None = None

    def exists(self, t: int) -> bool:
        """Whether the cell is part of the scene in frame ``t`` (it may still be outside the
        field; see :attr:`SyntheticFrame.visible`)."""
        return t >= self.first_frame and t != self.dropout_frame


@dataclass(frozen=True)
class SyntheticFrame:
    """One rendered frame with its ground truth.

    Attributes
    ----------
    phase : (H, W) uint16 ndarray
        Phase-contrast image.
    fluorescence : tuple of (H, W) uint16 ndarray
        One image per fluorescence channel: background + cell signal + noise.
    labels : (H, W) uint16 ndarray
        True masks; a cell's pixels carry its ``track_id``, 0 is background.
    background : tuple of (H, W) float32 ndarray
        True background of each fluorescence channel.
    visible : (n_cells,) bool ndarray
        Cells drawn in this frame (exactly the cells present in ``labels``).
    intensity_total : tuple of (n_cells,) float64 ndarray
        Per channel, the cell's noise-free signal summed over the whole frame (exactly what was
        added to the float image before noise and rounding; without ``edge_width`` and
        ``psf_sigma`` all of it lies in the mask); NaN for cells not in ``labels``.
    area : (n_cells,) int64 ndarray
        Mask pixels of each cell in this frame (0 when absent).
    bboxes : (n_cells, 4) int64 ndarray
        Half-open mask bounding box ``[y0, x0, y1, x1)`` of each cell (zeros when absent).
    t : int
        Frame index.
    """

    phase: np.ndarray
    fluorescence: tuple[np.ndarray, ...]
    labels: np.ndarray
    background: tuple[np.ndarray, ...]
    visible: np.ndarray
    intensity_total: tuple[np.ndarray, ...]
    area: np.ndarray
    bboxes: np.ndarray
    t: int


class SyntheticScene:
    """A deterministic synthetic time-lapse of one field of view.

    Parameters
    ----------
    height, width : int
        Frame shape in pixels.
    n_frames : int
        Number of time points.
    n_cells : int
        Number of cell tracks (each is visible in at least one frame).
    n_fluorescence : int
        Number of fluorescence channels.
    seed : int
        Seed of everything random; the same arguments give byte-identical frames.
    drift : (float, float)
        Common drift ``(dy, dx)`` of all cells in px/frame.
    enter_leave : bool
        Include cells that move into or out of the field through its edge (needs 2 frames).
    appear_mid_movie : bool
        Include cells that first appear at a frame > 0 (needs 2 frames).
    dropout : bool
        One cell is missing from every image and from the labels for exactly one frame
        (neither the first nor the last; needs 3 frames).
    cell_radius : (float, float)
        Range of the semi-axes in pixels.
    min_gap : float
        Minimum number of background pixels between the masks of two cells in every frame
        (no pixel of one mask lies within ``min_gap`` px of another mask).
    noise : bool
        Add camera noise; ``False`` renders noise-free (rounded) images.
    edge_width : float
        Soft fluorescence edge: the signal fades linearly over this many px centred on the
        mask outline (0 = a hard edge at the mask).
    psf_sigma : float
        Sigma (px) of the Gaussian PSF blurring each cell's fluorescence (0 = none).
    phase_blur : float
        Sigma (px) of a Gaussian blur of the phase image (0 = none).
    halo_strength : float
        Multiplier of the bright halo's height (1 = the default look).
    n_debris : int
        Debris specks: small, dark in phase with a halo, 30 % of them fluorescent, drifting
        with the cells and in no label.
    kinetics : str, optional
        Name of a registered fitting model (``pyama plugins list``): each cell's total
        fluorescence (every channel) follows it over time, with per-cell parameters from
        ``kinetics_params`` or, for the built-in models, drawn from :func:`draw_kinetics`.
        The truth is each cell's :attr:`SyntheticCell.kinetics`.
    kinetics_params : sequence of mappings, optional
        One mapping per cell (parameters not given take the model's defaults).
    frame_interval_min : float
        Minutes between frames for the kinetics (write the file with the same interval).

    Raises
    ------
    ValueError
        On invalid arguments, or when the cells cannot be placed with the requested gap.
    """

    def __init__(
        self,
        height: int = 512,
        width: int = 512,
        n_frames: int = 10,
        n_cells: int = 40,
        n_fluorescence: int = 1,
        seed: int = 0,
        drift: tuple[float, float] = (0.3, 0.2),
        enter_leave: bool = True,
        appear_mid_movie: bool = True,
        dropout: bool = True,
        cell_radius: tuple[float, float] = (6, 12),
        *,
        min_gap: float = 4.0,
        noise: bool = True,
        edge_width: float = 0.0,
        psf_sigma: float = 0.0,
        phase_blur: float = 0.0,
        halo_strength: float = 1.0,
        n_debris: int = 0,
        kinetics: str | None = None,
        kinetics_params: Sequence[Mapping[str, float]] | None = None,
        frame_interval_min: float = 10.0,
    ) -> None:
        lo, hi = (float(r) for r in cell_radius)
        if not 1 <= lo <= hi:
            raise ValueError(f"cell_radius must satisfy 1 <= min <= max, got {cell_radius}")
        if min(height, width) < 4 * hi:
            raise ValueError(f"frame {height}x{width} is too small for cells of radius {hi}")
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        if not 0 <= n_cells < 2**16:
            raise ValueError(f"n_cells must be in [0, 65535] (uint16 labels), got {n_cells}")
        if n_fluorescence < 0:
            raise ValueError(f"n_fluorescence must be >= 0, got {n_fluorescence}")
        if min_gap < 0:
            raise ValueError(f"min_gap must be >= 0, got {min_gap}")
        if min(edge_width, psf_sigma, phase_blur, halo_strength, n_debris) < 0:
            raise ValueError("edge_width, psf_sigma, phase_blur, halo_strength and n_debris must be >= 0")
        self.height, self.width = int(height), int(width)
        self.n_frames, self.n_cells = int(n_frames), int(n_cells)
        self.n_fluorescence = int(n_fluorescence)
        self.seed = int(seed)
        self.drift = (float(drift[0]), float(drift[1]))
        self.cell_radius = (lo, hi)
        self.min_gap = float(min_gap)
        self.noise = bool(noise)
        self.edge_width, self.psf_sigma = float(edge_width), float(psf_sigma)
        self.phase_blur, self.halo_strength = float(phase_blur), float(halo_strength)

        rng = np.random.default_rng([self.seed, _LAYOUT_STREAM])
        placer = CellPlacer(self.height, self.width, self.n_frames, self.n_cells, self.cell_radius,
                            self.min_gap, self.drift)
        roles = placer.roles(enter_leave, appear_mid_movie)
        layout = placer.place_cells(rng, roles)
        order = rng.permutation(len(roles))  # track IDs say nothing about roles
        self._layout = layout.take(order)
        n = self.n_cells
        self._brightness = np.exp(rng.uniform(*np.log(_BRIGHTNESS_RANGE), size=(n, self.n_fluorescence)))
        self._brightness_rate = rng.uniform(-0.02, 0.03, size=n)
        # Phase appearance: body depth, halo height, and three texture waves per cell.
        self._body_depth = rng.uniform(0.28, 0.40, size=n) * _PHASE_LEVEL
        self._halo_height = rng.uniform(0.15, 0.25, size=n) * _PHASE_LEVEL
        wavelength = rng.uniform(3.0, 6.0, size=(n, 3))
        direction = rng.uniform(0, 2 * np.pi, size=(n, 3))
        self._wave_u = 2 * np.pi / wavelength * np.cos(direction)
        self._wave_v = 2 * np.pi / wavelength * np.sin(direction)
        self._wave_phase = rng.uniform(0, 2 * np.pi, size=(n, 3))
        self._dropout = np.full(n, -1, dtype=np.int64)
        if dropout and self.n_frames >= 3 and n:
            cell, t = placer.choose_dropout(rng, self._layout)
            self._dropout[cell] = t
        # Background shape per fluorescence channel: level, gradient (gy, gx), vignetting.
        self._fl_level = rng.uniform(700.0, 1000.0, size=self.n_fluorescence)
        self._fl_gradient = rng.uniform(-0.15, 0.15, size=(self.n_fluorescence, 2))
        self._fl_vignette = rng.uniform(0.25, 0.35, size=self.n_fluorescence)
        self._phase_gradient = rng.uniform(-0.05, 0.05, size=2)

        self.kinetics, self.frame_interval_min = kinetics, float(frame_interval_min)
        self._kinetics_params: list[dict[str, float]] | None = None
        self._kinetics_totals: np.ndarray | None = None
        if kinetics is not None:
            self._set_kinetics(kinetics, kinetics_params)
        self.cells: tuple[SyntheticCell, ...] = tuple(self._cell(i) for i in range(n))
        debris = np.random.default_rng([self.seed, _DEBRIS_STREAM])
        self._debris_yx = debris.uniform(0, 1, (int(n_debris), 2)) * (self.height, self.width)
        self._debris_radius = debris.uniform(1.0, 2.5, int(n_debris))
        self._debris_fl = np.where(debris.random(int(n_debris)) < 0.3,
                                   debris.uniform(100.0, 600.0, int(n_debris)), 0.0)

    # ----------------------------------------------------------------- layout
    def _cell(self, i: int) -> SyntheticCell:
        lay = self._layout
        dropout = int(self._dropout[i])
        return SyntheticCell(
            track_id=i + 1,
            role=lay.roles[i],
            first_frame=int(lay.first_frame[i]),
            dropout_frame=dropout if dropout >= 0 else None,
            centres=tuple((float(y), float(x)) for y, x in lay.centres[i]),
            angles=tuple(float(a) for a in lay.angles[i]),
            semi_axes=(float(lay.axes[i, 0]), float(lay.axes[i, 1])),
            brightness=tuple(float(b) for b in self._brightness[i]),
            brightness_rate=float(self._brightness_rate[i]),
            kinetics=None if self._kinetics_params is None else dict(self._kinetics_params[i]),
        )

    def _set_kinetics(self, model: str, params: Sequence[Mapping[str, float]] | None) -> None:
        """Per-cell parameters and true totals (n_cells, n_frames) of the kinetics model."""
        from ..fitting import evaluate_model, get_model

        defaults = {p.name: p.initial for p in get_model(model).parameters}
        minutes = np.arange(self.n_frames) * self.frame_interval_min
        if params is None:
            rng = np.random.default_rng([self.seed, _KINETICS_STREAM])
            params = draw_kinetics(model, self.n_cells, rng, float(minutes[-1]) / 60.0)
        if len(params) != self.n_cells:
            raise ValueError(f"kinetics_params has {len(params)} entries for {self.n_cells} cells")
        self._kinetics_params = [{**defaults, **{k: float(v) for k, v in p.items()}} for p in params]
        self._kinetics_totals = np.array([evaluate_model(model, minutes, **p) for p in self._kinetics_params])

    # -------------------------------------------------------------- rendering
    def _unit_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Column and row vectors of coordinates scaled to about [-1, 1] (float32)."""
        half = max(self.height, self.width) / 2
        y = ((np.arange(self.height, dtype=np.float32) - (self.height - 1) / 2) / half)[:, None]
        x = ((np.arange(self.width, dtype=np.float32) - (self.width - 1) / 2) / half)[None, :]
        return y, x

    def _backgrounds(self, t: int) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Smooth phase background and true fluorescence backgrounds of frame ``t``."""
        y, x = self._unit_coordinates()
        radius2 = y * y + x * x  # built from broadcast vectors: one full-frame operation
        gy, gx = self._phase_gradient
        phase = (np.float32(_PHASE_LEVEL) * (1 + gy * y + gx * x)) * (1 - np.float32(0.08) * radius2)
        # Slow dimming over the movie (e.g. lamp drift), 10 % over the whole time-lapse.
        dimming = 1.0 - 0.1 * t / max(self.n_frames - 1, 1)
        fluorescence = []
        for level, (gy, gx), vignette in zip(self._fl_level, self._fl_gradient, self._fl_vignette):
            shade = np.float32(level * dimming) * (1 + np.float32(gy) * y + np.float32(gx) * x)
            fluorescence.append((shade * (1 - np.float32(vignette) * radius2)).astype(np.float32, copy=False))
        return phase.astype(np.float32, copy=False), tuple(fluorescence)

    def _render(self, t: int) -> SyntheticFrame:
        """Frame ``t`` before noise and rounding: ``phase`` and ``fluorescence`` are float32,
        and ``fluorescence[c] - background[c]`` is exactly the drawn cell signal."""
        if not 0 <= t < self.n_frames:
            raise IndexError(f"frame {t} out of range [0, {self.n_frames})")
        lay = self._layout
        n, height, width = self.n_cells, self.height, self.width
        phase, background = self._backgrounds(t)
        fluorescence = [bg.copy() for bg in background]
        labels = np.zeros((height, width), dtype=np.uint16)
        visible = np.zeros(n, dtype=bool)
        totals = np.full((self.n_fluorescence, n), np.nan)
        area = np.zeros(n, dtype=np.int64)
        bboxes = np.zeros((n, 4), dtype=np.int64)
        exists = (lay.first_frame <= t) & (self._dropout != t)
        # Light reaches past the mask by the soft edge and the PSF: draw that much further.
        reach = _HALO_REACH + int(np.ceil(self.edge_width / 2 + _PSF_TRUNCATE * self.psf_sigma))
        for i in np.flatnonzero(exists):
            cy, cx = lay.centres[i, t]
            angle = lay.angles[i, t]
            major, minor = lay.axes[i]
            half_h, half_w = half_extent(angle, major, minor)
            y0 = max(int(np.floor(cy - half_h)) - reach, 0)
            y1 = min(int(np.ceil(cy + half_h)) + reach + 1, height)
            x0 = max(int(np.floor(cx - half_w)) - reach, 0)
            x1 = min(int(np.ceil(cx + half_w)) + reach + 1, width)
            if y0 >= y1 or x0 >= x1:
                continue
            dy = (np.arange(y0, y1) - cy)[:, None]
            dx = (np.arange(x0, x1) - cx)[None, :]
            cos, sin = np.cos(angle), np.sin(angle)
            u = dx * cos + dy * sin  # along the major axis
            v = dy * cos - dx * sin  # along the minor axis
            rho2 = (u / major) ** 2 + (v / minor) ** 2  # 1 on the ellipse boundary
            mask = rho2 <= 1.0
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if rows.size == 0:
                continue
            visible[i] = True
            area[i] = np.count_nonzero(mask)
            bboxes[i] = (y0 + rows[0], x0 + cols[0], y0 + rows[-1] + 1, x0 + cols[-1] + 1)
            labels[y0:y1, x0:x1][mask] = i + 1

            # Phase: dark body, darker in the middle, with internal texture; bright halo
            # peaking just outside the boundary (distance measured along the ray).
            rho = np.sqrt(rho2)
            radius = np.hypot(dx, dy)
            outside = radius - radius / np.maximum(rho, 1e-6)
            waves = zip(self._wave_u[i], self._wave_v[i], self._wave_phase[i])
            texture = sum(np.sin(ku * u + kv * v + phi) for ku, kv, phi in waves)
            body = self._body_depth[i] * (-(1.0 - 0.35 * rho2) + 0.12 * texture)
            halo = self.halo_strength * self._halo_height[i] * np.exp(
                -0.5 * ((outside - _HALO_OFFSET) / _HALO_SIGMA) ** 2)
            phase[y0:y1, x0:x1] += np.where(mask, body, 0.0).astype(np.float32) + halo.astype(np.float32)

            # Fluorescence: dome-shaped signal in the mask (soft-edged and blurred when asked);
            # the truth is its sum over the frame.
            if self.edge_width > 0:  # ``outside`` is the signed distance to the outline along the ray
                weight = np.clip(0.5 - outside / self.edge_width, 0.0, 1.0)
                profile = (1.0 - 0.4 * np.minimum(rho2, 1.0)) * weight
            else:
                profile = np.where(mask, 1.0 - 0.4 * rho2, 0.0)
            if self.psf_sigma > 0:
                profile = ndimage.gaussian_filter(profile, self.psf_sigma, mode="constant", truncate=_PSF_TRUNCATE)
            if self._kinetics_totals is None:
                peaks = self._brightness[i] * np.exp(self._brightness_rate[i] * t)
            else:  # the dome integrates to 0.8 pi a b: scale it to the model's total
                peaks = np.full(self.n_fluorescence, self._kinetics_totals[i, t] / (0.8 * np.pi * major * minor))
            for c in range(self.n_fluorescence):
                signal = (peaks[c] * profile).astype(np.float32)
                fluorescence[c][y0:y1, x0:x1] += signal
                totals[c, i] = signal.sum(dtype=np.float64)
        self._draw_debris(t, phase, fluorescence)
        if self.phase_blur > 0:
            phase = ndimage.gaussian_filter(phase, self.phase_blur)
        return SyntheticFrame(
            phase=phase,
            fluorescence=tuple(fluorescence),
            labels=labels,
            background=background,
            visible=visible,
            intensity_total=tuple(totals),
            area=area,
            bboxes=bboxes,
            t=t,
        )

    def _draw_debris(self, t: int, phase: np.ndarray, fluorescence: list[np.ndarray]) -> None:
        """Specks moving with the common drift: a dark Gaussian dot with a bright ring in
        phase and, for some, a fluorescent dot (blurred by the PSF, in no cell's truth)."""
        shift = np.array(self.drift) * t
        for (py, px), radius, glow in zip(self._debris_yx + shift, self._debris_radius, self._debris_fl):
            spread = np.hypot(radius / 2, self.psf_sigma)
            r = int(np.ceil(radius + 4 * max(spread, _HALO_SIGMA + 1)))
            y0, y1 = max(int(py) - r, 0), min(int(py) + r + 1, self.height)
            x0, x1 = max(int(px) - r, 0), min(int(px) + r + 1, self.width)
            if y0 >= y1 or x0 >= x1:
                continue
            dist = np.hypot((np.arange(y0, y1) - py)[:, None], (np.arange(x0, x1) - px)[None, :])
            dot = np.exp(-0.5 * (dist / (radius / 2)) ** 2)
            ring = np.exp(-0.5 * ((dist - radius - _HALO_OFFSET) / _HALO_SIGMA) ** 2)
            look = _PHASE_LEVEL * (-0.6 * dot + 0.2 * self.halo_strength * ring)
            phase[y0:y1, x0:x1] += look.astype(np.float32)
            if glow:
                for image in fluorescence:
                    image[y0:y1, x0:x1] += (glow * np.exp(-0.5 * (dist / spread) ** 2)).astype(np.float32)

    def frame(self, t: int) -> SyntheticFrame:
        """Render frame ``t`` (deterministic; independent of which frames were rendered
        before). Memory is a few (H, W) arrays; cells are drawn inside their boxes only."""
        exact = self._render(t)
        rng = np.random.default_rng([self.seed, _NOISE_STREAM, t])
        return replace(
            exact,
            phase=self._expose(exact.phase, rng),
            fluorescence=tuple(self._expose(image, rng) for image in exact.fluorescence),
        )

    def _expose(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Add shot noise (Gaussian with variance = mean, i.e. Poisson-like at these counts)
        in place, then round to uint16."""
        if self.noise:
            noise = rng.standard_normal(image.shape, dtype=np.float32)
            noise *= np.sqrt(np.maximum(image, 0.0))
            image += noise
        np.rint(image, out=image)
        np.clip(image, 0, np.iinfo(np.uint16).max, out=image)
        return image.astype(np.uint16)

    def frames(self) -> Iterator[SyntheticFrame]:
        """Yield every frame in time order, one at a time."""
        for t in range(self.n_frames):
            yield self.frame(t)


def draw_kinetics(model: str, n: int, rng: np.random.Generator, span_h: float) -> list[dict[str, float]]:
    """Plausible per-cell parameters of a built-in fitting model over a movie of ``span_h``
    hours, scaled to this generator's cell totals (~1e4-1e5 counts above background).

    Raises
    ------
    ValueError
        For a model without ranges here (a lab's model): pass ``kinetics_params``.
    """
    def log_uniform(lo: float, hi: float) -> np.ndarray:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))

    if model == "maturation":
        columns = {"t0": rng.uniform(-0.5, 0.5, n), "ktl": log_uniform(3e3, 3e4),
                   "delta": log_uniform(0.05, 0.5), "offset": np.zeros(n)}
    elif model == "exponential_decay":
        columns = {"amplitude": log_uniform(2e4, 1e5), "rate": log_uniform(1.0, 5.0) / span_h,
                   "offset": rng.uniform(2e3, 1e4, n)}
    elif model in ("logistic", "gompertz"):
        columns = {"capacity": log_uniform(2e4, 1e5), "rate": log_uniform(8.0, 30.0) / span_h,
                   "t_mid": rng.uniform(0.3, 0.6, n) * span_h, "offset": rng.uniform(2e3, 1e4, n)}
    else:
        raise ValueError(f"no parameter ranges for model '{model}'; pass kinetics_params (one mapping per cell)")
    return [{k: float(v[i]) for k, v in columns.items()} for i in range(n)]


# What real optics add (issue 7): soft edges, a PSF of 1.5 px, blurred phase with strong
# halos, cells 1 px apart, debris. The demo and the accuracy tests use these.
REALISTIC_OPTICS = {"edge_width": 2.0, "psf_sigma": 1.5, "phase_blur": 0.7, "halo_strength": 1.5, "min_gap": 1.0}


def demo_scene(fov: int, n_frames: int = 12, kinetics: str | None = None,
               frame_interval_min: float = 10.0) -> SyntheticScene:
    """Small scene for ``pyama demo``: 256 x 256 px, 25 cells, one fluorescence channel,
    with :data:`REALISTIC_OPTICS` and 6 debris specks; each ``fov`` gets its own layout.
    ``kinetics`` names a fitting model the cells' fluorescence follows (see SyntheticScene)."""
    return SyntheticScene(256, 256, n_frames=n_frames, n_cells=25, n_fluorescence=1, seed=1000 + fov,
                          n_debris=6, kinetics=kinetics, frame_interval_min=frame_interval_min,
                          **REALISTIC_OPTICS)
