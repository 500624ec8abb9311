"""Clumps of cells cut along the lines between them (a step of ``logstd``).

The watershed of the distance transform (``objects.split_touching``) cuts touching cells at
the necks of their joint outline. Cells packed side by side in a colony leave no neck: the
outline of the clump is smooth and the distance transform has one ridge. What still
separates them is the signal: the thin line between two cells is brighter (phase contrast,
dark cells) or darker (bright cells) than their bodies. Objects much larger than the frame's
typical cell are therefore cut by a watershed of the smoothed frame itself, from its
h-maxima in the cells' direction (docs/algorithms.md, round 10).
"""

from __future__ import annotations

import numpy as np

from ..cvops import gaussian_blur
from .objects import h_maxima

__all__ = ["split_clumps"]

# Objects above this x the median object area are clumps (a cell about to divide is < 2x).
_CLUMP_OF_MEDIAN = 2.5
# Pieces below this x the median area stay with the clump's first piece.
_MIN_PIECE_OF_MEDIAN = 0.3
_SMOOTH_SIGMA = 1.5  # px: the body's texture and noise smoothed, the 1-2 px lines kept


def split_clumps(labels: np.ndarray, image: np.ndarray, sign: float, noise: float,
                 h: float) -> np.ndarray:
    """Cut clumps of cells along the lines of signal between them.

    Parameters
    ----------
    labels : (H, W) int32 ndarray
        Cells numbered 1..N. Modified in place and returned.
    image : (H, W) ndarray
        The frame.
    sign : float
        +1 when cells are brighter than their surroundings, -1 darker.
    noise : float
        Standard deviation of the background's pixel noise.
    h : float
        Marker height in noise sigma: a cell is a maximum of the smoothed frame (in the cells'
        direction) rising at least ``h x noise`` above the line that joins it to the next.

    Returns
    -------
    (H, W) int32 ndarray
        ``labels``, each clump's pieces beyond the first numbered N+1...

    Notes
    -----
    A clump is an object larger than 2.5 x the median object area. Its crop (padded by
    3 px) is smoothed by a Gaussian of 1.5 px; the h-maxima of ``sign x smoothed`` inside
    the clump mark the cells, and ``skimage.segmentation.watershed`` of its negative,
    restricted to the clump, cuts it. Pieces smaller than 0.3 x the median area stay with
    the first piece; a clump with fewer than two larger pieces is left whole. Requiring the
    pieces to be rods (median aspect ratio >= 2) was tried: it kept the cut from splitting
    bright stem cells from their glow, but also gave back half of the colonies' gain
    (docs/algorithms.md, round 10); ``logstd`` calls this for dark cells only instead.
    """
    from skimage.segmentation import watershed
    from scipy import ndimage as ndi

    n = int(labels.max())
    if n == 0 or sign == 0.0 or h <= 0:
        return labels
    flat = labels.reshape(-1)
    area = np.bincount(flat[np.flatnonzero(labels > 0)], minlength=n + 1)
    present = area[1:] > 0
    median = float(np.median(area[1:][present]))
    clumps = np.flatnonzero(area > _CLUMP_OF_MEDIAN * median)
    if clumps.size == 0:
        return labels
    boxes = ndi.find_objects(labels)
    pad, (height, width), next_label = 3, labels.shape, n + 1
    for k in clumps:
        box = boxes[k - 1]
        y0, y1 = max(box[0].start - pad, 0), min(box[0].stop + pad, height)
        x0, x1 = max(box[1].start - pad, 0), min(box[1].stop + pad, width)
        crop = labels[y0:y1, x0:x1]
        clump = crop == k
        value = sign * gaussian_blur(image[y0:y1, x0:x1], _SMOOTH_SIGMA).astype(np.float64)
        value[~clump] = value[clump].min()
        markers, count = ndi.label(h_maxima(value, h * noise).astype(bool) & clump)
        if count < 2:
            continue
        pieces = watershed(-value, markers, mask=clump)
        sizes = np.bincount(pieces.ravel(), minlength=count + 1)
        large = np.flatnonzero(sizes >= _MIN_PIECE_OF_MEDIAN * median)
        large = large[large > 0]
        if large.size < 2:
            continue
        for piece in large[1:]:  # the first piece keeps the clump's number
            crop[pieces == piece] = next_label
            next_label += 1
    return labels
