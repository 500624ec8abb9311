"""LOG-STD segmentation of phase-contrast frames.

Cells in phase contrast are textured and outlined by sharp dark/bright edges, while the
background is smooth, so the logarithm of the local standard deviation separates them with
one global threshold. Pipeline per frame:

1. local variance over a ``window_size`` square (float32 window sums);
2. threshold of the log-STD histogram: ``"mode_sigma"`` (pyama: fullest bin + n_sigma x the
   standard deviation of the values at or below it) or ``"valley"`` (the first minimum of the
   smoothed histogram above the background mode);
3. closing by ``disk(footprint_radius)`` x ``iterations``;
4. optional halo removal: keep only pixels darker than the local background (cell bodies are
   dark, their halos bright; the LOG-STD mask covers both);
5. hole filling, opening by the same disk, labelling, min/max object size.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from .morphology import closing, fill_holes, label_by_size, opening

__all__ = ["segment_logstd", "local_variance", "logstd_threshold"]

# Threshold statistics are computed on at most this many pixels (a regular subsample of
# larger frames): the histogram of a 2048 x 2048 frame is dominated by millions of
# background pixels and a 1-in-16 sample gives the same threshold to a fraction of a bin.
_THRESHOLD_SAMPLE = 1 << 18
# Side of the square blocks over which the background level is averaged for halo removal:
# large enough to hold background between cells, small against illumination gradients.
_BACKGROUND_BLOCK = 64


def segment_logstd(
    image: np.ndarray,
    window_size: int = 3,
    threshold_method: Literal["mode_sigma", "valley"] = "mode_sigma",
    n_sigma: float = 3.0,
    bins: int = 200,
    footprint_radius: int = 1,
    iterations: int = 1,
    remove_halo: bool = True,
    min_size: int = 50,
    max_size: int = 10_000,
) -> np.ndarray:
    """Segment cells in a phase-contrast frame by thresholding the log local std.

    Parameters
    ----------
    image : (H, W) ndarray
        Phase-contrast frame (any real dtype; usually uint16). Not modified.
    window_size : int, optional
        Side of the square window of the local standard deviation (odd).
    threshold_method : {"mode_sigma", "valley"}, optional
        How the log-STD threshold is chosen; see :func:`logstd_threshold`.
    n_sigma : float, optional
        Width multiplier of the ``"mode_sigma"`` rule.
    bins : int, optional
        Number of histogram bins.
    footprint_radius : int, optional
        Radius of the disk used for closing and opening (0 skips both).
    iterations : int, optional
        Repetitions of each dilation/erosion in the closing and the opening.
    remove_halo : bool, optional
        Drop mask pixels that are not darker than the local background: the bright halo
        around phase-contrast cells has high local variance too, and would otherwise widen
        every cell by ~3 px and join neighbours. Turn off for images whose cells are not
        darker than the background.
    min_size, max_size : int, optional
        Objects with fewer or more pixels are discarded.

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 is background, cells are numbered 1..N.

    Notes
    -----
    The spec's ``remove_small_objects`` step between closing and hole filling is merged into
    the final ``min_size`` filter: objects below the size only differ when filling their
    holes would lift them over it.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd integer, got {window_size}")

    variance = local_variance(image, window_size)
    threshold = logstd_threshold(_sample(variance), threshold_method, n_sigma, bins)
    if threshold is None:
        return np.zeros(image.shape, dtype=np.int32)
    # log-STD > t  <=>  variance > exp(2 t): no full-frame logarithm needed.
    mask = variance > np.exp(2.0 * threshold)
    del variance

    mask = closing(mask, footprint_radius, iterations)
    if remove_halo:
        mask = _darker_than_background(image, mask)
    mask = fill_holes(mask)
    mask = opening(mask, footprint_radius, iterations)
    return label_by_size(mask, min_size, max_size)


def local_variance(image: np.ndarray, size: int = 3) -> np.ndarray:
    """Variance of the ``size`` x ``size`` neighbourhood of every pixel.

    Borders are mirrored (``scipy.ndimage`` ``"reflect"`` mode). Computed in float32 from
    window sums, ``(n * sum(d**2) - sum(d)**2) / n**2`` with ``d`` the image minus its
    (rounded) mean: centring keeps the sums of typical integer images exact or within a
    relative 1e-7, and float32 halves the memory traffic of float64 (2x faster).

    Parameters
    ----------
    image : (H, W) ndarray
    size : int
        Odd window side.

    Returns
    -------
    (H, W) float32 ndarray, >= 0
    """
    x = np.asarray(image).astype(np.float32)  # always a copy: centred in place below
    x -= np.float32(np.rint(x[::4, ::4].mean(dtype=np.float64)))
    n = size * size
    s2 = _box_sum(x * x, size)
    s1 = _box_sum(x, size)
    s2 *= n
    s1 *= s1
    s2 -= s1
    s2 *= np.float32(1.0 / (n * n))
    np.maximum(s2, 0.0, out=s2)  # rounding may dip a flat window below 0
    return s2


def _box_sum(x: np.ndarray, size: int) -> np.ndarray:
    """Sum over the ``size`` x ``size`` window, borders mirrored (``x[-1] = x[0]``).

    Shifted-slice additions along each axis: ``scipy.ndimage.uniform_filter`` is ~5x slower
    along axis 0 for small windows, and a running (cumulative) sum loses float32 precision
    over thousands of rows.
    """
    return _line_sum(_line_sum(x, size, axis=0), size, axis=1)


def _line_sum(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Sum over ``size`` neighbours along ``axis`` (0 or 1), borders mirrored."""
    def along(index):  # slice along `axis` (keeps memory order; no transposes)
        return (index, slice(None)) if axis == 0 else (slice(None), index)

    out = x.copy()
    n = x.shape[axis]
    for d in range(1, min(size // 2, n) + 1):
        out[along(slice(d, None))] += x[along(slice(None, -d))]
        out[along(slice(None, -d))] += x[along(slice(d, None))]
        out[along(slice(None, d))] += x[along(slice(d - 1, None, -1))]  # -d..-1 -> d-1..0
        out[along(slice(n - d, None))] += x[along(slice(None, None, -1))][along(slice(None, d))]
    return out


def _sample(values: np.ndarray) -> np.ndarray:
    """A regular subsample of at most ~``_THRESHOLD_SAMPLE`` values (deterministic)."""
    step = max(1, int(np.sqrt(values.size / _THRESHOLD_SAMPLE)))
    return values[::step, ::step]


def logstd_threshold(
    variance: np.ndarray,
    method: Literal["mode_sigma", "valley"] = "mode_sigma",
    n_sigma: float = 3.0,
    bins: int = 200,
) -> float | None:
    """Threshold on log-STD (``0.5 * log(variance)``) separating cells from background.

    Parameters
    ----------
    variance : ndarray
        Local variances (any shape); zero-variance pixels have no logarithm and are left
        out (they are never foreground).
    method : {"mode_sigma", "valley"}
        ``"mode_sigma"``: centre of the fullest histogram bin (the background mode) plus
        ``n_sigma`` times the standard deviation of the values at or below it (published
        pyama rule). ``"valley"``: the lowest point of the histogram (smoothed over ~2 bins)
        between the background mode and the first rise above it.
    n_sigma : float
        Multiplier of the ``"mode_sigma"`` rule.
    bins : int
        Histogram bins spanning the log-STD range.

    Returns
    -------
    float or None
        The threshold (pixels strictly above it are foreground), or None when no pixel can be
        foreground (flat image).
    """
    positive = variance[variance > 0]
    if positive.size == 0:
        return None
    logstd = 0.5 * np.log(positive)
    counts, edges = np.histogram(logstd, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    mode = int(np.argmax(counts))
    if method == "mode_sigma":
        below = logstd[logstd <= centres[mode]]
        return float(centres[mode] + n_sigma * below.std())
    if method == "valley":
        smooth = ndi.gaussian_filter1d(counts.astype(np.float64), 2.0, mode="constant")
        i = mode
        while i + 1 < bins and smooth[i + 1] <= smooth[i]:
            i += 1
        return float(edges[i + 1])
    raise ValueError(f"unknown threshold method {method!r}; use 'mode_sigma' or 'valley'")


def _darker_than_background(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask`` without the pixels at least as bright as the local background.

    The background level of each ``_BACKGROUND_BLOCK``-square block is the median of its
    non-mask pixels (robust to debris), read on every 2nd row and column (a smooth level
    needs no more; 4x cheaper). Pixels at the frame's minimum or maximum value (black
    padding, saturation) are not background either. Blocks with little background take the
    median of the other blocks. Block levels follow vignetting and illumination gradients.
    """
    h, w = image.shape
    b = _BACKGROUND_BLOCK
    step = 2
    sb = b // step
    sample = image[::step, ::step]
    not_background = mask[::step, ::step] | (sample == image.min()) | (sample == image.max())
    sample = np.where(not_background, np.inf, sample).astype(np.float32)
    pad = ((0, -sample.shape[0] % sb), (0, -sample.shape[1] % sb))
    sample = np.pad(sample, pad, constant_values=np.inf)
    nby, nbx = sample.shape[0] // sb, sample.shape[1] // sb
    blocks = sample.reshape(nby, sb, nbx, sb).transpose(0, 2, 1, 3).reshape(nby, nbx, sb * sb)
    blocks.sort(axis=-1)  # mask pixels (inf) sort last
    count = np.isfinite(blocks).sum(axis=-1)
    enough = count >= sb
    if not enough.any():  # (almost) all foreground: nothing to compare with
        return mask
    middle = np.maximum(count - 1, 0) // 2
    level = np.take_along_axis(blocks, middle[..., None], axis=-1)[..., 0]
    level[~enough] = np.median(level[enough])

    out = mask.copy()
    flat = out.ravel()
    pixels = np.flatnonzero(flat)
    rows, cols = np.divmod(pixels, w)
    bright = image.ravel()[pixels] >= level[rows // b, cols // b]
    flat[pixels[bright]] = False
    return out
