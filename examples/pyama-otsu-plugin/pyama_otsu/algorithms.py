"""The algorithms: pure functions over arrays, no I/O."""

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import label
from skimage.morphology import remove_small_objects


def segment_otsu(image: np.ndarray, *, sigma: float, dark_cells: bool, min_size: int) -> np.ndarray:
    """Segment cells with a global Otsu threshold.

    Parameters
    ----------
    image : (H, W) ndarray
        Phase-contrast frame.
    sigma : float
        Gaussian smoothing (px) before thresholding.
    dark_cells : bool
        Whether cells are darker than the background.
    min_size : int
        Objects smaller than this (px) are removed.

    Returns
    -------
    (H, W) int32 ndarray
        Labels 1..N, 0 = background.
    """
    smooth = ndimage.gaussian_filter(image.astype(np.float32), sigma) if sigma > 0 else image.astype(np.float32)
    if smooth.max() == smooth.min():
        return np.zeros(image.shape, np.int32)
    threshold = threshold_otsu(smooth)
    mask = smooth < threshold if dark_cells else smooth > threshold
    mask = remove_small_objects(mask, max_size=min_size - 1) if min_size > 1 else mask
    return label(mask).astype(np.int32)


def major_axis(mask: np.ndarray, image: np.ndarray, background) -> float:
    """Major axis length (px) of the cell ``mask``: 4 * sqrt of the largest moment eigenvalue.

    Parameters
    ----------
    mask : (h, w) bool ndarray
        The cell's pixels inside its bounding box.
    image, background
        Unused (shape features need only the mask).
    """
    ys, xs = np.nonzero(mask)
    if len(ys) < 2:
        return float("nan")
    cov = np.cov(np.stack([ys, xs]).astype(np.float64), bias=True)
    return float(4.0 * np.sqrt(np.linalg.eigvalsh(cov)[-1]))
