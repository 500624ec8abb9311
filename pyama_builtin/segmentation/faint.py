"""Faint cells between found ones (the last step of ``logstd``).

In a dense colony some cells are much fainter than their neighbours (out of focus, thin,
lying in the neighbours' halo): inside the colony's glow they sit at the level of the
background far away, so the body test against the block background (step 4) keeps only
fragments of them, and the size tests drop those. What still marks them is their
surroundings: the bright lines between the cells of a colony. A top-hat at cell scale
measures how far each pixel stands out of its surroundings, so a faint cell stands out
like its neighbours, only less. This step looks for such objects in the space the found
cells leave free, next to found cells, and keeps those that stand out at least
``relative_contrast`` x as much as the found cells typically do (docs/algorithms.md,
round 9).
"""

from __future__ import annotations

import numpy as np

from ..cvops import dilate_disk, gaussian_blur, label
from .grey import black_tophat, white_tophat
from .morphology import fill_holes, opening
from .objects import object_slices, reject_objects, split_touching

__all__ = ["add_faint_cells"]

# Pixels of a candidate stand out of their surroundings by this many pixel-noise sigma (the
# object-level test below decides; this only delimits the candidates).
_PIXEL_SIGMA = 3.0
# A candidate lies next to found cells: this share of its pixels within _NEAR px of one.
# Debris and pockets of background away from the cells have ~0; faint colony cells 0.07-0.45.
_NEAR = 3
_MIN_NEAR_SHARE = 0.05
# Candidates smaller than this x the found cells' median area are fragments.
_MIN_AREA_OF_MEDIAN = 0.3


def add_faint_cells(labels: np.ndarray, image: np.ndarray, sign: float, noise: float,
                    width: float, relative_contrast: float, scale: float = 1.5,
                    min_size: int = 50, split_h: float = 0.1) -> np.ndarray:
    """Add the faint cells lying in the free space between the found ones.

    Parameters
    ----------
    labels : (H, W) int32 ndarray
        The cells found so far, numbered 1..N. Modified in place and returned.
    image : (H, W) ndarray
        The frame.
    sign : float
        +1 when cells are brighter than their surroundings (white top-hat), -1 darker
        (black top-hat).
    noise : float
        Standard deviation of the background's pixel noise.
    width : float
        Cell width in px.
    relative_contrast : float
        A candidate's mean top-hat must reach this x the median of the found cells' mean
        top-hat.
    scale : float, optional
        Side of the top-hat's square, x ``width``.
    min_size : int, optional
        Smallest cell in px (the size test is also relative: 0.3 x the median found area).
    split_h : float, optional
        Marker height of the watershed that splits touching candidates, x ``width``.

    Returns
    -------
    (H, W) int32 ndarray
        ``labels`` with the faint cells numbered N+1...

    Notes
    -----
    The top-hat is taken of the frame smoothed by a Gaussian of 1 px, with a square of
    ``scale`` x ``width``. Candidates are pixels more than 1 px away from every found cell
    whose top-hat exceeds 3 pixel-noise sigma, opened by a 3 x 3 cross, holes filled;
    touching ones are split like touching cells. A candidate is a cell when (1) it has at
    least ``max(min_size, 0.3 x median found area)`` pixels and the thickness of a cell (no
    thinner than half the width), (2) at least 5 % of it lies within 3 px of a found cell
    (debris and pockets of background away from the cells have none), and (3) its mean
    top-hat is at least ``relative_contrast`` x the median of the found cells' mean top-hat:
    pockets of background that neighbouring halos enclose stand out too, but only about a
    third as much as the cells around them. Working on the 2x-shrunk frame instead (4x
    cheaper) joined neighbouring faint cells through the thin bright lines between them.
    """
    n = int(labels.max())
    if n == 0 or sign == 0.0:
        return labels
    size = max(3, int(round(scale * width)) | 1)
    top = (white_tophat if sign > 0 else black_tophat)(gaussian_blur(image, 1.0), size)
    flat = labels.reshape(-1)
    found = labels > 0
    cells = np.flatnonzero(found)  # 4x faster than on the int32 labels
    area = np.bincount(flat[cells], minlength=n + 1)
    sums = np.bincount(flat[cells], weights=top.reshape(-1)[cells], minlength=n + 1)
    seen = area[1:] > 0
    typical = float(np.median(sums[1:][seen] / area[1:][seen]))
    min_area = max(float(min_size), _MIN_AREA_OF_MEDIAN * float(np.median(area[1:][seen])))
    candidates = fill_holes(opening((top > _PIXEL_SIGMA * noise) & ~dilate_disk(found, 1), 1))
    pixels = np.flatnonzero(candidates)
    if pixels.size == 0:
        return labels
    pieces, m = label(candidates, pixels)
    del candidates
    ids = pieces.reshape(-1)[pixels]
    piece_area = np.bincount(ids, minlength=m + 1)
    pieces = split_touching(pieces, piece_area > 0, piece_area,
                            object_slices(pixels, ids, m, labels.shape[1]), width, split_h,
                            min_area, pixels=pixels, overwrite=True)
    m = int(pieces.max())
    ids = pieces.reshape(-1)[pixels]
    piece_area = np.bincount(ids, minlength=m + 1)
    contrast = np.bincount(ids, weights=top.reshape(-1)[pixels], minlength=m + 1)
    contrast /= np.maximum(piece_area, 1) * typical
    near = dilate_disk(found, _NEAR).reshape(-1)[pixels]
    share_near = np.bincount(ids, weights=near, minlength=m + 1) / np.maximum(piece_area, 1)
    piece_area[piece_area < min_area] = 0
    keep = reject_objects(pieces, pieces > 0, piece_area, contrast, width, 0.0, 0.5,
                          relative_contrast)
    keep &= share_near >= _MIN_NEAR_SHARE
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return labels
    number = np.zeros(m + 1, dtype=np.int32)
    number[kept] = np.arange(n + 1, n + 1 + kept.size, dtype=np.int32)
    new = number[ids]
    flat[pixels[new > 0]] = new[new > 0]
    return labels
