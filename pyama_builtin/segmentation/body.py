"""The top-hat body test of ``logstd`` (step 4 with ``body="tophat"``, and ``"auto"`` for
bright cells).

A cell body stands out of its surroundings at cell scale: of a white top-hat (bright cells)
or a black one (dark cells) over a square ``scale`` x the cell width. The glow around bright
cells lies on their own side of the background, where the block-background test keeps it,
but it does not stand out of the top-hat. Kept are the pixels whose top-hat exceeds Li's
minimum-cross-entropy threshold of the top-hat and 3 pixel-noise sigma.

Frames of 8- and 16-bit integers (every camera's) take a cheaper way to the same mask
(18 vs 72 ms CPU at 2048 x 2048, docs/algorithms.md, "Body step at cell scale"): the
top-hat is computed, sampled and compared in the frame's unsigned type (no float32 frame);
Li's threshold is skimage's histogram iteration, on one ``cv2.calcHist`` (~1.5 ms), instead
of its float iteration over a million samples (~25 ms; the two agree within 5e-4 grey levels
on the real and synthetic frames, and the mask compares integers with the threshold); the
pixel noise is the exact median of the frame's differences taken in its own type
(:func:`~pyama_builtin.segmentation.tophat.noise_sigma`, ~1 vs ~24 ms); the width
pre-estimate labels with OpenCV. Labels of the real movies are unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..cvops import cv2, label
from .grey import black_tophat, max_filter, min_filter, white_tophat
from .morphology import fill_holes
from .objects import estimate_cell_width
from .tophat import noise_sigma

__all__ = ["tophat_body", "integer_tophat", "li_threshold", "body_width"]


def tophat_body(image: np.ndarray, sign: float, coarse_body: np.ndarray,
                width: float | None = None, scale: float = 1.5) -> np.ndarray:
    """Pixels standing out of a top-hat at cell scale in the cells' direction.

    Parameters
    ----------
    image : (H, W) ndarray
        The frame (any real dtype). Not modified.
    sign : float
        +1 for cells brighter than their surroundings (white top-hat), -1 darker (black).
    coarse_body : (h, w) bool ndarray
        The cell-body pixels on the frame shrunk 2x (used only when ``width`` is None).
    width : float or None, optional
        Cell width in px; None estimates it on ``coarse_body`` (:func:`body_width`).
    scale : float, optional
        Side of the top-hat's square, x ``width`` (rounded to an odd number of px, >= 3).

    Returns
    -------
    (H, W) bool ndarray
        Pixels whose top-hat exceeds both Li's threshold of the top-hat (read on every 2nd
        row and column) and 3 x :func:`~pyama_builtin.segmentation.tophat.noise_sigma`.
        All False when the top-hat is flat.
    """
    image = np.asarray(image)
    if width is None:
        width = body_width(coarse_body)
    size = max(3, int(round(scale * width)) | 1)
    top = integer_tophat(image, size, sign)
    if top is None:  # float frames: float32 top-hats and skimage's float iteration
        top = (white_tophat if sign > 0 else black_tophat)(image, size)
    threshold = li_threshold(top[::2, ::2])
    if threshold is None:
        return np.zeros(image.shape, dtype=bool)
    threshold = max(threshold, 3.0 * noise_sigma(image))  # > 0
    if top.dtype.kind == "u":  # integers: top > t  <=>  top > floor(t), compared in their type
        level = int(np.floor(threshold))
        if level >= np.iinfo(top.dtype).max:
            return np.zeros(image.shape, dtype=bool)
        return top > top.dtype.type(level)
    return top > threshold


def integer_tophat(image: np.ndarray, size: int, sign: float) -> np.ndarray | None:
    """White (``sign`` > 0) or black top-hat over a ``size`` square, in an unsigned integer
    type: the same values as :func:`~pyama_builtin.segmentation.grey.white_tophat` /
    :func:`~pyama_builtin.segmentation.grey.black_tophat` (which are float32), half or a
    quarter of the memory and no float conversion of the frame.

    Parameters
    ----------
    image : (H, W) ndarray
        uint8, uint16 or int16 frame; any other dtype returns None.
    size : int
        Odd side of the square.
    sign : float
        > 0: image minus its opening; otherwise its closing minus the image.

    Returns
    -------
    (H, W) uint8 or uint16 ndarray, or None
        uint8 for uint8 frames, uint16 for uint16 and int16 ones; None for other dtypes.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16, np.int16):
        return None
    if sign > 0:
        high, low = image, max_filter(min_filter(image, size), size)
    else:
        high, low = min_filter(max_filter(image, size), size), image
    out = np.empty(image.shape, dtype=np.uint8 if image.dtype == np.uint8 else np.uint16)
    # high >= low everywhere (an opening lies under the image, a closing over it), and the
    # difference fits the unsigned type of the same width: the subtraction wraps exactly.
    np.subtract(high, low, out=out, casting="unsafe")
    return out


def li_threshold(values: np.ndarray, integer: bool | None = None) -> float | None:
    """Li's minimum-cross-entropy threshold of ``values``: :func:`skimage.filters.threshold_li`,
    computed on a histogram when the values are integers.

    For integer input skimage iterates over the histogram of the values (tolerance 0.5);
    here that histogram is one ``cv2.calcHist`` and each class mean a difference of
    cumulative sums, all exact in float64, so the threshold is skimage's own to the last bit
    (~1 vs ~5 ms for a million samples). For float input skimage iterates over every value
    (~20 ms); on integer-valued data the two paths agree within ~1e-4.

    Parameters
    ----------
    values : ndarray
        The values (any shape): integers, or floats.
    integer : bool or None, optional
        True: ``values`` hold integers in [0, 65535] (e.g. a top-hat of an integer frame in
        float32) and take the histogram path. None: only integer dtypes take it.

    Returns
    -------
    float or None
        The threshold; None when there are no values or all are equal.
    """
    values = np.asarray(values)
    if integer is None:
        integer = values.dtype.kind in "iu"
    if values.size == 0 or values.max() <= values.min():
        return None
    if not integer:
        from skimage.filters import threshold_li

        return float(threshold_li(values.astype(np.float32) if values.dtype.kind in "iu" else values))
    if values.dtype not in (np.uint8, np.uint16):
        values = values.astype(np.uint16)
    bins = 256 if values.dtype == np.uint8 else 1 << 16
    hist = cv2.calcHist([np.ascontiguousarray(values).reshape(1, -1)], [0], None, [bins], [0, bins])
    hist = hist.reshape(-1).astype(np.float64)
    present = np.flatnonzero(hist)
    low, high = int(present[0]), int(present[-1])
    hist = hist[low : high + 1]  # the values minus their minimum, as skimage shifts them
    count = np.cumsum(hist)
    total = np.cumsum(hist * np.arange(hist.size, dtype=np.float64))
    t_next, t_curr = total[-1] / count[-1], -1.0  # skimage: the mean; -2 x tolerance
    while abs(t_next - t_curr) > 0.5:
        t_curr = t_next
        j = min(int(np.floor(t_curr)), hist.size - 1)  # background: values <= t_curr
        n_back, n_fore = count[j], count[-1] - count[j]
        if n_back == 0 or n_fore == 0:  # skimage's np.average fails there: let it say so
            from skimage.filters import threshold_li

            return float(threshold_li(values))
        mean_back, mean_fore = total[j] / n_back, (total[-1] - total[j]) / n_fore
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return float(t_next + low)


def body_width(coarse_body: np.ndarray) -> float:
    """Cell width in px from the body mask on the 2x-shrunk grid: twice the width of its
    8-connected objects, holes filled (:func:`~pyama_builtin.segmentation.objects.estimate_cell_width`).

    Parameters
    ----------
    coarse_body : (h, w) bool ndarray
        Body pixels of the frame shrunk 2x.

    Returns
    -------
    float
        Width in px of the full frame (at least 6).
    """
    filled = fill_holes(coarse_body)
    pixels = np.flatnonzero(filled)
    labels, n = label(filled, pixels)  # scipy.ndimage.label's numbering, 3x faster
    area = np.bincount(labels.reshape(-1)[pixels], minlength=n + 1)
    # find_objects over the frame: the mask holds thousands of specks (1.9 vs 3.3 ms for
    # object_slices' per-pixel reductions).
    return 2.0 * estimate_cell_width(labels, ndi.find_objects(labels), area[1:])
