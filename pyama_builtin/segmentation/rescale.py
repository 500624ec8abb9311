"""Frames of wide cells are segmented shrunk to a standard cell width (round 13).

The ``logstd`` steps have sizes in px that suit cells about 8-10 px wide: the 3-px log-STD
window, the 1-px morphology, the outline gap, the halo depth, the reach between cells. A
100x objective or small camera pixels make rods 15-20 px wide; their flat interiors then
lose the log-STD signal and whole cells are missed (a colony at 2.5x the magnification:
SEG 0.84 -> 0.62). Like cellpose's ``diameter``, the frame is shrunk (area averaging, which
also averages the noise) until its cells have the standard width, segmented there, and the
labels are brought back to the frame's grid with smooth outlines.
"""

from __future__ import annotations

import cv2
import numpy as np


__all__ = ["shrink", "enlarge_labels", "MIN_SHRUNK_SIDE", "OUTLINE_LEVEL", "SHRUNK_WIDTH"]

# A frame is not shrunk below this side (px): the frame statistics need enough background.
MIN_SHRUNK_SIDE = 64

# Cell width (px) a frame of wider cells is shrunk to: the colonies and rods the steps'
# sizes were chosen on are 7-11 px wide.
SHRUNK_WIDTH = 10.0

# Level of the bilinearly enlarged foreground taken as the outline. 0.5 would be the shrunk
# mask's own edge, but the shrunk segmentation sits ~0.2 px (shrunk) inside the true edge;
# 0.35 left the median boundary error within +-0.07 px on B. subtilis, the own scene and a
# colony at 2x (0.25-0.35 scored alike; docs/algorithms.md, round 13).
OUTLINE_LEVEL = 0.35


def shrink(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` shrunk ``factor`` x (> 1) by area averaging, float32.

    Pixels at the frame's minimum or maximum (dead or hot pixels, padding, saturation) first
    take the median of their 3 x 3 neighbourhood: the full-size steps leave such pixels out
    of the background, but averaged into a shrunk pixel they would be outliers nothing can
    tell apart (a 96-px frame with 40 dead and hot pixels lost its only cell). A saturated
    area keeps its value (its neighbours are saturated too).

    Parameters
    ----------
    image : (H, W) ndarray
    factor : float

    Returns
    -------
    (round(H / factor), round(W / factor)) float32 ndarray
    """
    image = np.asarray(image).astype(np.float32)  # always a copy: the caller's frame stays
    h, w = image.shape
    extreme = np.flatnonzero((image == image.min()) | (image == image.max()))
    if extreme.size < image.size:
        image.reshape(-1)[extreme] = np.median(np.stack(list(_around(image, extreme, 1))), axis=0)
    size = (max(1, round(w / factor)), max(1, round(h / factor)))  # OpenCV: (width, height)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def enlarge_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Labels of a shrunk frame on the frame's own ``shape``.

    The outline is where the bilinearly enlarged foreground passes ``OUTLINE_LEVEL`` (smooth,
    not the staircase of a nearest-neighbour enlargement). Each pixel takes the label its nearest
    shrunk pixel has; foreground pixels whose nearest shrunk pixel was background take the
    largest label around them. No object vanishes (a shrunk pixel's own centre enlarges to
    a foreground level of 1), so the labels stay 1..N.

    Parameters
    ----------
    labels : (h, w) int ndarray
    shape : (H, W)

    Returns
    -------
    (H, W) int32 ndarray
    """
    h, w = shape
    small = np.ascontiguousarray(labels, dtype=np.int32)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    # Foreground as 0/255 bytes: OpenCV's bilinear byte path is ~2x its float path.
    level = OUTLINE_LEVEL * 255
    inside = cv2.resize((small > 0).view(np.uint8) * np.uint8(255), (w, h),
                        interpolation=cv2.INTER_LINEAR) > level
    gaps = np.flatnonzero(inside & (out == 0))
    if gaps.size:  # the largest label within reach of each gap pixel (a few % of the cells' rims)
        reach = int(np.ceil(max(h / small.shape[0], w / small.shape[1])))
        best = np.zeros(gaps.size, dtype=np.int32)
        for values in _around(out, gaps, reach):
            np.maximum(best, values, out=best)
        out.reshape(-1)[gaps] = best
    out[~inside] = 0
    return out


def _around(image: np.ndarray, at: np.ndarray, radius: int):
    """The values of the ``(2 radius + 1)``-square around the flat indices ``at`` of
    ``image``, one offset at a time (coordinates clipped at the border, like edge padding):
    a handful of pixels is read without a padded copy of the frame."""
    h, w = image.shape
    flat = image.reshape(-1)
    y, x = np.divmod(at, w)
    for dy in range(-radius, radius + 1):
        rows = np.clip(y + dy, 0, h - 1) * w
        for dx in range(-radius, radius + 1):
            yield flat[rows + np.clip(x + dx, 0, w - 1)]
