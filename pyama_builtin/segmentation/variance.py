"""The log-STD statistics of the ``logstd`` segmenter: the local variance of every pixel and
the threshold of the log-STD histogram (steps 1-2 of :mod:`.logstd`)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from ..cvops import box_sum, clip_negative

__all__ = ["local_variance", "logstd_threshold", "sample", "strong_edge_variance"]

# Threshold statistics are computed on at most this many pixels (a regular subsample of
# larger frames): the histogram of a 2048 x 2048 frame is dominated by millions of
# background pixels and a 1-in-16 sample gives the same threshold to a fraction of a bin.
_THRESHOLD_SAMPLE = 1 << 18
# Share of the 90th-percentile edge standard deviation that makes a strong edge (the mask
# the polarity is read on). Any value from 0.2 to 0.5 read every frame of the real and
# rendered movies the same way (docs/algorithms.md, round 12).
STRONG_EDGE_FRACTION = 0.25


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
    return clip_negative(s2)  # rounding may dip a flat window below 0


def _box_sum(x: np.ndarray, size: int) -> np.ndarray:
    """Sum over the ``size`` x ``size`` window, borders mirrored (``x[-1] = x[0]``).

    ``cv2.boxFilter`` (7x faster than shifted-slice additions at 2048 x 2048, window 3;
    ``scipy.ndimage.uniform_filter`` is ~5x slower than those along axis 0). Window sums of
    integers below 2**24 are exact in float32 either way, so both give the same bits on
    such frames. Frames narrower than the window keep the slice additions (their mirror
    wraps differently).
    """
    if min(x.shape) > size:
        return box_sum(x, size)
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


def sample(values: np.ndarray) -> np.ndarray:
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


def strong_edge_variance(variance: np.ndarray, threshold_variance: float,
                         edge_fraction: float = STRONG_EDGE_FRACTION) -> float | None:
    """The variance above which a pixel is a strong edge, or None when that is no stricter
    than ``threshold_variance``.

    The log-STD threshold is relative to the pixel noise. At a high signal-to-noise ratio
    (bright illumination, long exposures, averaged frames) it also takes the weak slopes of
    the wide phase halo around cells and colonies; a threshold relative to the cells' own
    edges does not move with the noise. This one is ``edge_fraction`` x the 90th percentile
    of the local standard deviation of the pixels above the threshold.

    Parameters
    ----------
    variance : ndarray
        Local variances (a :func:`sample` of them is enough).
    threshold_variance : float
        The variance threshold of the frame (the log-STD threshold, squared and exponentiated).
    edge_fraction : float
        Share of the 90th-percentile edge standard deviation.

    Returns
    -------
    float or None
    """
    above = variance[variance > threshold_variance]
    if above.size == 0:
        return None
    strong = (edge_fraction * np.sqrt(float(np.percentile(above, 90)))) ** 2
    return strong if strong > threshold_variance else None
