"""The 2x-shrunk grid ``logstd`` fills holes on, and the regions behind gaps of an outline.

Holes are found on the log-STD mask shrunk 2x by OR-ing 2 x 2 blocks (the rim cannot break
there, and it is 4x cheaper than at full resolution); what is found there is set back in
the full mask block by block.
"""

from __future__ import annotations

import numpy as np

from ..cvops import cv2  # OpenCV with its thread pool sized like the other native pools
from .morphology import closing, dilate, fill_holes

__all__ = ["or_pool", "set_blocks", "bridged_regions", "fill_bridged"]


def bridged_regions(coarse: np.ndarray, filled: np.ndarray, radius: int) -> np.ndarray:
    """Regions of the shrunk mask ``coarse`` enclosed only once it is closed by
    ``disk(radius)`` (``filled``: ``coarse`` with its own holes filled), each with the
    closing's pixels around it (the gap it bridges): interiors of cells whose outline has
    gaps, and pockets of background enclosed by neighbours."""
    closed = closing(coarse, radius, 1)
    bridged = fill_holes(closed) & ~closed
    bridged |= dilate(bridged, radius) & closed & ~filled
    return bridged


def fill_bridged(mask: np.ndarray, bridged: np.ndarray, deviation: np.ndarray, least: float) -> None:
    """Set in ``mask`` the regions of ``bridged`` (2x-shrunk grid) whose mean ``deviation``
    (in the cells' direction, read on every 2nd row and column of the full grid:
    ``deviation[i, j]`` is that of full-grid pixel ``(2i, 2j)``) is at least ``least``: cell
    interiors behind a gap in the outline, not pockets of background enclosed by neighbours."""
    n, regions = cv2.connectedComponents(bridged.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    where = np.flatnonzero(bridged)  # a few thousand px: sums over those only
    rows, cols = np.divmod(where, regions.shape[1])
    inside = (rows < deviation.shape[0]) & (cols < deviation.shape[1])
    rows, cols = rows[inside], cols[inside]
    ids = regions.ravel()[where[inside]]
    values = deviation[rows, cols]
    mean = np.bincount(ids, weights=values, minlength=n) / np.maximum(np.bincount(ids, minlength=n), 1)
    good = (mean >= least)[ids]
    set_blocks(mask, None, rows[good], cols[good])


def or_pool(mask: np.ndarray) -> np.ndarray:
    """``mask`` shrunk 2x: a pixel per 2 x 2 block, set when any of the block is."""
    h, w = mask.shape
    if h % 2 or w % 2:
        mask = np.pad(mask, ((0, h % 2), (0, w % 2)))
    if mask.dtype == bool and mask.flags.c_contiguous:
        # Each uint16 holds a row's pair of pixels: one OR of row pairs (5x faster).
        pairs = mask.view(np.uint16)
        return (pairs[0::2] | pairs[1::2]) != 0
    return mask[::2, ::2] | mask[1::2, ::2] | mask[::2, 1::2] | mask[1::2, 1::2]


def set_blocks(mask: np.ndarray, blocks: np.ndarray | None, rows=None, cols=None) -> None:
    """Set in ``mask`` the 2 x 2 blocks that are set in its 2x-shrunk ``blocks`` (or at
    ``rows``, ``cols`` of that grid)."""
    if blocks is not None:
        rows, cols = np.divmod(np.flatnonzero(blocks), blocks.shape[1])  # 10x np.nonzero's speed
    h, w = mask.shape
    for dy in (0, 1):
        for dx in (0, 1):
            y, x = 2 * rows + dy, 2 * cols + dx
            inside = (y < h) & (x < w)
            mask[y[inside], x[inside]] = True
