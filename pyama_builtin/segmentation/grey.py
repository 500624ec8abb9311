"""Fast grey-level morphology with square elements: min/max filters, closing, opening and
the black / white top-hats.

A max (min) filter over a square is separable: a running maximum along the rows, then along
the columns. Each running maximum over ``size`` samples is built by doubling: windows of
length 1, 2, 4, ... are combined with one shifted ``np.maximum`` each, and the final window
is the maximum of two overlapping power-of-two windows, so a 13-px filter costs 4 whole-array
operations per axis instead of 12 (shifted slices) or a per-pixel loop over the element.
Measured on a 2048 x 2048 uint16 frame, 13 px square (2 shared cores):

==========================  ==========  ===================================
operation                   here        ``scipy.ndimage``
==========================  ==========  ===================================
grey closing                ~40 ms      ~400 ms ``grey_closing(size=13)``
==========================  ==========  ===================================

Images OpenCV takes (uint8, uint16, int16, float32/64 without NaNs) go through
``cv2.dilate`` / ``cv2.erode`` with a square instead (:func:`pyama_builtin.cvops.square_filter`:
3.6 vs 24 ms per 13-px filter, the same values); the doubling below serves the others.

The results equal ``scipy.ndimage.grey_dilation / grey_erosion / grey_closing /
grey_opening`` with ``size=(k, k)`` (odd ``k``) and the default ``mode="reflect"``
exactly: a reflected border only repeats pixels already inside a centred window, so the
windows are simply clipped at the image edge (see the tests).
"""

from __future__ import annotations

import numpy as np

from ..cvops import square_filter

__all__ = ["max_filter", "min_filter", "grey_closing", "grey_opening",
           "black_tophat", "white_tophat"]


def _running(x: np.ndarray, size: int, axis: int, op, identity) -> np.ndarray:
    """``op`` (np.maximum or np.minimum) over the centred window of ``size`` samples along
    ``axis``, the window clipped at the array's ends."""
    if size <= 1 or x.shape[axis] == 0:
        return x.copy()
    r = size // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (r, r)
    # Padding with the operation's identity clips the windows at the edges.
    acc = np.pad(x, pad, constant_values=identity)
    n = acc.shape[axis]

    def cut(start, stop):
        return (slice(start, stop), slice(None)) if axis == 0 else (slice(None), slice(start, stop))

    length = 1  # acc[i] = op over the forward window [i, i + length)
    while 2 * length <= size:
        nxt = acc[cut(0, n - length)].copy()
        op(nxt, acc[cut(length, n)], out=nxt)
        acc, n, length = nxt, n - length, 2 * length
    # The window [i, i + size) is the union of [i, i + length) and [i + size - length, i + size).
    m = x.shape[axis]
    out = acc[cut(0, m)].copy()
    op(out, acc[cut(size - length, size - length + m)], out=out)
    return out


def _identities(dtype: np.dtype) -> tuple:
    """(lowest, highest) value of ``dtype``: the identities of max and min."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return info.min, info.max
    if dtype == bool:
        return False, True
    return -np.inf, np.inf


def _check(image: np.ndarray, size: int) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the square's side must be a positive odd integer, got {size}")
    return image


def max_filter(image: np.ndarray, size: int) -> np.ndarray:
    """Maximum over the ``size`` x ``size`` square centred on each pixel (grey dilation).

    Parameters
    ----------
    image : (H, W) ndarray
        Any real dtype; not modified.
    size : int
        Odd side of the square.

    Returns
    -------
    (H, W) ndarray of ``image``'s dtype
    """
    image = _check(image, size)
    fast = square_filter(image, size, maximum=True)
    if fast is not None:
        return fast
    low = _identities(image.dtype)[0]
    return _running(_running(image, size, 1, np.maximum, low), size, 0, np.maximum, low)


def min_filter(image: np.ndarray, size: int) -> np.ndarray:
    """Minimum over the ``size`` x ``size`` square centred on each pixel (grey erosion).
    Parameters and returns as :func:`max_filter`."""
    image = _check(image, size)
    fast = square_filter(image, size, maximum=False)
    if fast is not None:
        return fast
    high = _identities(image.dtype)[1]
    return _running(_running(image, size, 1, np.minimum, high), size, 0, np.minimum, high)


def grey_closing(image: np.ndarray, size: int) -> np.ndarray:
    """Max filter then min filter over a ``size`` square: dark details narrower than the
    square are filled with their surroundings' level."""
    return min_filter(max_filter(image, size), size)


def grey_opening(image: np.ndarray, size: int) -> np.ndarray:
    """Min filter then max filter over a ``size`` square: bright details narrower than the
    square are lowered to their surroundings' level."""
    return max_filter(min_filter(image, size), size)


def black_tophat(image: np.ndarray, size: int) -> np.ndarray:
    """Closing minus image, float32 (>= 0): how much darker each pixel is than its
    surroundings at the scale of the square (dark cells in phase contrast)."""
    out = grey_closing(image, size).astype(np.float32)
    out -= image
    return out


def white_tophat(image: np.ndarray, size: int) -> np.ndarray:
    """Image minus opening, float32 (>= 0): how much brighter each pixel is than its
    surroundings at the scale of the square (bright cells)."""
    out = np.asarray(image, dtype=np.float32) - grey_opening(image, size)
    return out
