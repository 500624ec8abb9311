"""Faint cells between found ones (a step of ``logstd``, after edge growth).

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

from ..cvops import cv2, dilate_disk, gaussian_blur, label
from .blocks import or_pool
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
# The screen on the 2x-shrunk frame passes candidates reaching this x the search's contrast.
_SCREEN = 0.75


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
    cheaper) joined neighbouring faint cells through the thin bright lines between them, so
    the shrunk frame only screens: the search runs in boxes around the places where a
    looser test finds candidates (:func:`_regions_to_search`): none in a frame of cells
    lying apart, one around a colony.
    """
    n = int(labels.max())
    if n == 0 or sign == 0.0:
        return labels
    size = max(3, int(round(scale * width)) | 1)
    boxes, median_area = _regions_to_search(labels, image, sign, noise, width, relative_contrast, size,
                                            min_size)
    # The size test is the whole frame's (a box may hold only a few cells, cut by its edge).
    min_area = max(float(min_size), _MIN_AREA_OF_MEDIAN * median_area)
    for box in boxes:
        crop = labels[box].copy()
        n = _add_in(crop, image[box], sign, noise, width, relative_contrast, size, min_area, split_h, n)
        labels[box] = crop
    return labels


def _regions_to_search(labels: np.ndarray, image: np.ndarray, sign: float, noise: float, width: float,
                       relative_contrast: float, size: int, min_size: int) -> tuple[list, float]:
    """Boxes (slice pairs) around the places that may hold faint cells, found on the frame
    shrunk 2x by 2 x 2 means (~4x cheaper than the search itself): components of the
    shrunk top-hat's candidates next to found cells whose mean top-hat reaches
    ``_SCREEN x relative_contrast`` x the found cells' median there (a looser test than the
    search's, so that it passes everything the search would keep). Boxes are padded by the
    top-hat's square and a cell width, and overlapping ones merged. A frame of cells lying
    apart yields none, a colony one box around it. Also returns the found cells' median
    area (px, from one pixel per block x 4)."""
    h, w = labels.shape
    h2, w2 = h // 2, w // 2
    if h2 < size or w2 < size:
        found = labels[labels > 0]
        return [(slice(0, h), slice(0, w))], float(np.median(np.bincount(found)[np.unique(found)]))
    small = cv2.resize(np.ascontiguousarray(image[: 2 * h2, : 2 * w2], dtype=np.float32), (w2, h2),
                       interpolation=cv2.INTER_AREA)
    top = (white_tophat if sign > 0 else black_tophat)(small, max(3, (size // 2) | 1))
    del small
    found = or_pool(labels[: 2 * h2, : 2 * w2] > 0)
    sampled = labels[0 : 2 * h2 : 2, 0 : 2 * w2 : 2].reshape(-1)  # a pixel per block
    at = np.flatnonzero(sampled)
    if at.size == 0:
        return [], 0.0
    area = np.bincount(sampled[at])
    sums = np.bincount(sampled[at], weights=top.reshape(-1)[at])
    seen = area > 0
    typical = float(np.median(sums[seen] / area[seen]))
    median_area = 4.0 * float(np.median(area[seen]))
    candidates = (top > _PIXEL_SIGMA * noise) & ~found
    pixels = np.flatnonzero(candidates)
    if pixels.size == 0:
        return [], median_area
    pieces, m = label(candidates, pixels)
    ids = pieces.reshape(-1)[pixels]
    piece_area = np.bincount(ids, minlength=m + 1)
    contrast = np.bincount(ids, weights=top.reshape(-1)[pixels], minlength=m + 1) / np.maximum(piece_area, 1)
    near = dilate_disk(found, _NEAR // 2 + 1).reshape(-1)[pixels]
    share_near = np.bincount(ids, weights=near, minlength=m + 1) / np.maximum(piece_area, 1)
    ok = (contrast >= _SCREEN * relative_contrast * typical) & (share_near >= _MIN_NEAR_SHARE)
    ok &= piece_area >= 0.5 * min_size / 4.0
    ok[0] = False
    if not ok.any():
        return [], median_area
    pad = size + int(np.ceil(width))
    boxes = []
    for k, box in enumerate(object_slices(pixels, ids, m, w2), start=1):
        if ok[k]:
            boxes.append([max(2 * box[0].start - pad, 0), min(2 * box[0].stop + pad, h),
                          max(2 * box[1].start - pad, 0), min(2 * box[1].stop + pad, w)])
    return [(slice(a, b), slice(c, d)) for a, b, c, d in _merge_overlapping(boxes)], median_area


def _merge_overlapping(boxes: list) -> list:
    """Union of overlapping boxes ``[y0, y1, x0, x1]`` until none overlap."""
    merged = True
    while merged:
        merged, out = False, []
        for box in boxes:
            for other in out:
                if box[0] < other[1] and other[0] < box[1] and box[2] < other[3] and other[2] < box[3]:
                    other[:] = [min(box[0], other[0]), max(box[1], other[1]),
                                min(box[2], other[2]), max(box[3], other[3])]
                    merged = True
                    break
            else:
                out.append(list(box))
        boxes = out
    return boxes


def _add_in(labels: np.ndarray, image: np.ndarray, sign: float, noise: float, width: float,
            relative_contrast: float, size: int, min_area: float, split_h: float, n: int) -> int:
    """The search of :func:`add_faint_cells` in one region: ``labels`` (C-contiguous, cells
    numbered up to ``n``) gets the faint cells numbered ``n + 1``...; returns the last number."""
    if not labels.any():
        return n
    top = (white_tophat if sign > 0 else black_tophat)(gaussian_blur(image, 1.0), size)
    flat = labels.reshape(-1)
    found = labels > 0
    cells = np.flatnonzero(found)  # 4x faster than on the int32 labels
    area = np.bincount(flat[cells], minlength=n + 1)
    sums = np.bincount(flat[cells], weights=top.reshape(-1)[cells], minlength=n + 1)
    seen = area[1:] > 0
    typical = float(np.median(sums[1:][seen] / area[1:][seen]))
    candidates = fill_holes(opening((top > _PIXEL_SIGMA * noise) & ~dilate_disk(found, 1), 1))
    pixels = np.flatnonzero(candidates)
    if pixels.size == 0:
        return n
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
        return n
    number = np.zeros(m + 1, dtype=np.int32)
    number[kept] = np.arange(n + 1, n + 1 + kept.size, dtype=np.int32)
    new = number[ids]
    flat[pixels[new > 0]] = new[new > 0]
    return n + kept.size
