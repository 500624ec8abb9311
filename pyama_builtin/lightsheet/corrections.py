"""Background subtraction and dead-pixel detection/correction: pure functions over arrays.

Dead pixels (stuck at zero, stuck high, hot) are found as IsoView's clusterPT does it, by
comparing each pixel with the median of its 3x3 neighbourhood (here Tukey's ninther), on square-root
intensities (Anscombe-like, so shot noise is about equally large in dim and bright regions)
and voted over many Z planes: a pixel is dead when it is an outlier in at least a fraction
of the sampled planes. Real structure changes from plane to plane; a broken pixel does not.
"""

from __future__ import annotations

import numpy as np

# Offsets of the 8 neighbours of a pixel.
_NEIGHBOURS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


def percentile_from_histogram(histogram: np.ndarray, q: float) -> float:
    """The ``q``-th percentile (0-100) of the integer values counted in ``histogram``.

    Parameters
    ----------
    histogram : (n,) integer ndarray
        ``histogram[v]`` is the number of pixels with value ``v``.
    q : float
        Percentile, 0 to 100.

    Returns
    -------
    float
        The smallest value ``v`` with at least ``q`` % of the pixels at or below it.
    """
    total = int(histogram.sum())
    if total == 0:
        return 0.0
    cumulative = np.cumsum(histogram)
    rank = max(1, int(np.ceil(q / 100.0 * total)))
    return float(np.searchsorted(cumulative, rank))


def background_image(frames: np.ndarray) -> np.ndarray:
    """Reduce a camera background recording to one (Y, X) uint16 image.

    Parameters
    ----------
    frames : (Y, X) or (n, Y, X) ndarray
        One background image or a stack of dark frames.

    Returns
    -------
    (Y, X) uint16 ndarray
        The image, or the per-pixel median of the stack, rounded.
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = np.median(frames, axis=0)
    if frames.ndim != 2:
        raise ValueError(f"a background must be a (Y, X) image or (n, Y, X) stack, got shape {frames.shape}")
    if frames.dtype == np.uint16:  # already what we need: rounding and clipping change nothing
        return frames
    return np.clip(np.rint(frames), 0, 65535).astype(np.uint16)


def subtract_background(planes: np.ndarray, background: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``max(planes - background, 0)`` in the planes' unsigned integer dtype (no overflow).

    Parameters
    ----------
    planes : (n, Y, X) unsigned integer ndarray
    background : (Y, X) ndarray of the same dtype
    out : (n, Y, X) ndarray, optional
        Where to write the result; may be ``planes`` itself (no new slab is allocated).

    Returns
    -------
    (n, Y, X) ndarray
        ``out``, or a new array.
    """
    # max(p, b) - b == max(p - b, 0) for unsigned integers, and both steps can run in place.
    out = np.maximum(planes, background, out=out)
    return np.subtract(out, background, out=out)


def _median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))


def ninther3x3(plane: np.ndarray) -> np.ndarray:
    """Tukey's ninther of every 3x3 neighbourhood: the median of its three row medians.

    Like the 3x3 median it ignores one outlying pixel among the nine (a dead pixel never
    shows in its own reference), but it takes 8 element-wise min/max passes: measured 17x
    faster than ``scipy.ndimage.median_filter(size=3)`` on 2048 x 2048 planes, whose
    1.8 s per plane made dead-pixel detection the bottleneck of the whole pipeline.

    Parameters
    ----------
    plane : (Y, X) ndarray

    Returns
    -------
    (Y, X) ndarray of the same dtype (edges mirrored).
    """
    padded = np.pad(plane, 1, mode="reflect")
    rows = _median3(padded[:, :-2], padded[:, 1:-1], padded[:, 2:])
    return _median3(rows[:-2], rows[1:-1], rows[2:])


def outlier_pixels(plane: np.ndarray, threshold: float) -> np.ndarray:
    """Pixels that differ from their 3x3 neighbourhood's :func:`ninther3x3` (a median) by
    more than ``threshold`` robust sigmas.

    Parameters
    ----------
    plane : (Y, X) ndarray
        One raw plane.
    threshold : float
        In units of the plane's robust noise (1.4826 x MAD of the residuals, on square-root
        intensities).

    Returns
    -------
    (Y, X) bool ndarray
    """
    # The median commutes with the (monotonic) square root, so filter the integers first.
    # In place: the same float32 operations, without a new plane-sized array for each.
    reference = ninther3x3(plane).astype(np.float32)
    np.sqrt(reference, out=reference)
    residual = plane.astype(np.float32)
    np.sqrt(residual, out=residual)
    residual -= reference
    np.abs(residual, out=residual)
    step = max(1, residual.size // 262144)  # the noise level from ~256k pixels is plenty
    sample = residual.ravel()[::step]
    sigma = 1.4826 * float(np.median(sample))
    if sigma == 0.0:
        sigma = float(sample.mean()) or 1.0
    return residual > threshold * sigma


def dead_pixel_map(votes: np.ndarray, n_planes: int, min_fraction: float) -> np.ndarray:
    """Dead pixels: outliers in at least ``min_fraction`` of ``n_planes`` planes.

    Parameters
    ----------
    votes : (Y, X) integer ndarray
        Per pixel, the number of planes in which :func:`outlier_pixels` flagged it.
    n_planes : int
        Planes voted on.
    min_fraction : float

    Returns
    -------
    (Y, X) bool ndarray
    """
    return votes >= max(1, int(np.ceil(min_fraction * n_planes)))


def dead_pixel_neighbours(dead: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates of the dead pixels and of their 8 neighbours, for :func:`correct_dead_pixels`.

    Parameters
    ----------
    dead : (Y, X) bool ndarray

    Returns
    -------
    ys, xs : (n,) int ndarray
        The dead pixels.
    usable : (n, 8) bool ndarray
        Which neighbours are inside the image and not dead themselves.
    """
    ys, xs = np.nonzero(dead)
    ny = ys[:, None] + _NEIGHBOURS[None, :, 0]
    nx = xs[:, None] + _NEIGHBOURS[None, :, 1]
    inside = (ny >= 0) & (ny < dead.shape[0]) & (nx >= 0) & (nx < dead.shape[1])
    usable = inside & ~dead[np.clip(ny, 0, dead.shape[0] - 1), np.clip(nx, 0, dead.shape[1] - 1)]
    return ys, xs, usable


def correct_dead_pixels(planes: np.ndarray, dead: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Replace dead pixels by the median of their usable 8-neighbours, in every plane.

    Parameters
    ----------
    planes : (n, Y, X) ndarray
    dead : (Y, X) bool ndarray
    out : (n, Y, X) ndarray, optional
        Where to write the result; may be ``planes`` itself (saves a copy of the slab).

    Returns
    -------
    (n, Y, X) ndarray
        The corrected planes: ``out``, or a new array (``planes`` itself when there is
        nothing to correct and no ``out``). A dead pixel whose neighbours are all dead
        becomes 0.
    """
    if not dead.any():
        if out is not None and out is not planes:
            out[...] = planes
        return planes if out is None else out
    ys, xs, usable = dead_pixel_neighbours(dead)
    ny = np.clip(ys[:, None] + _NEIGHBOURS[None, :, 0], 0, dead.shape[0] - 1)
    nx = np.clip(xs[:, None] + _NEIGHBOURS[None, :, 1], 0, dead.shape[1] - 1)
    values = planes[:, ny, nx].astype(np.float64)  # (n_planes, n_dead, 8)
    values[:, ~usable] = np.inf
    # The median of each pixel's usable neighbours: sort (unusable ones go last), then the
    # mean of the two middle values of the first `count` -- what np.nanmedian returns, at a
    # fraction of its cost (it loops in Python over the rows of a 3-D array).
    values.sort(axis=2)
    count = usable.sum(axis=1)
    lower = np.take_along_axis(values, np.maximum(count - 1, 0)[None, :, None] // 2, axis=2)[..., 0]
    upper = np.take_along_axis(values, (count // 2)[None, :, None], axis=2)[..., 0]
    fixed = np.where(count > 0, (lower + upper) / 2, 0.0)  # all neighbours dead: 0
    if out is None:
        out = planes.copy()
    elif out is not planes:
        out[...] = planes
    out[:, ys, xs] = np.rint(fixed).astype(planes.dtype)
    return out

