"""Merged cells split back into their tracks (the ``lap`` tracker's ``split_merges``).

A segmenter often joins two touching cells into one object for a frame or two and separates
them again. Linked frame by frame, one of the two tracks then continues on the joined object
and the other is lost: whatever ID the object carries, one true cell changes identity when
the clump forms and again when it comes apart (two identity switches per merge; every one
left on the independently rendered ``rodsim`` scenes was of this kind). Cells do not fuse,
so when two or more established tracks of the previous frame disappear into one object of
the current frame, the object is split between them:

- a merge: a current cell whose extent (its second moments, as for divisions) holds the
  predicted centroids of at least two tracks seen in the previous frame, each either linked
  to it or not linked at all, whose areas add up to about its area (the range of
  ``AREA_SUM_RANGE``), none of them smaller than ``MIN_SHARE`` of it (a speck of debris
  absorbed by a cell is not worth a piece of it);
- established: every one of those tracks has existed for more frames than the division
  lookahead (or since the first frame). Pieces of a split the confirmation could still call
  spurious are young and are left merged, so a cell cut in two for a frame is not kept cut.
- the split: each pixel of the object goes to the track whose previous mask, moved by the
  frame's drift, is nearest (a Voronoi partition between the previous outlines, computed in
  the object's bounding box only, so the cost does not depend on the frame size).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ._divisions import AREA_SUM_RANGE, EXTENT, _inside

__all__ = ["find_merges", "split_pixels"]

# Smallest area of a merged track, as a share of the merged object.
MIN_SHARE = 0.2


def find_merges(track_centre: np.ndarray, track_area: np.ndarray, established: np.ndarray,
                linked_to: np.ndarray, centre: np.ndarray, area: np.ndarray,
                cov: np.ndarray) -> list[tuple[int, list[int]]]:
    """Current cells that hold two or more established tracks of the previous frame.

    Parameters
    ----------
    track_centre, track_area : (n, 2), (n,) ndarray
        Tracks seen in the previous frame: centroid predicted in the current frame, area.
    established : (n,) bool ndarray
        Tracks old enough to be split back out of a merge.
    linked_to : (n,) int ndarray
        Current cell each track is linked to, -1 when none.
    centre, area, cov : (m, 2), (m,), (m, 3) ndarray
        Current cells: centroid, area, second central moments.

    Returns
    -------
    list of (cell, tracks)
        The merged current cell and the tracks it holds, the one linked to it first.
    """
    lost = np.flatnonzero((linked_to < 0) & established)
    if lost.size == 0 or area.size == 0:
        return []
    var_major = 0.5 * (cov[:, 0] + cov[:, 1]) + np.sqrt(
        0.25 * (cov[:, 0] - cov[:, 1]) ** 2 + cov[:, 2] ** 2)
    reach = float((EXTENT * np.sqrt(np.maximum(var_major, 0) + 0.25)).max())
    hits = cKDTree(centre).query_ball_point(track_centre[lost], reach)
    owner_of = {}  # cell -> tracks linked to it
    for track, cell in enumerate(linked_to.tolist()):
        if cell >= 0:
            owner_of[cell] = track
    held: dict[int, list[int]] = {}
    for track, cells in zip(lost.tolist(), hits):
        if not cells:
            continue
        cells = np.asarray(cells, dtype=np.int64)
        offset = track_centre[track] - centre[cells]
        inside = _inside(offset, cov[cells])
        if inside.any():  # the cell whose centroid is nearest, among those holding it
            cells = cells[inside]
            held.setdefault(int(cells[np.argmin(np.hypot(*offset[inside].T))]), []).append(track)
    out = []
    for cell, tracks in held.items():
        owner = owner_of.get(cell)
        if owner is not None:
            if not established[owner] or not _inside(track_centre[[owner]] - centre[[cell]],
                                                     cov[[cell]])[0]:
                continue
            tracks = [owner, *tracks]
        if len(tracks) < 2:
            continue
        share = track_area[tracks] / area[cell]
        if AREA_SUM_RANGE[0] <= share.sum() <= AREA_SUM_RANGE[1] and share.min() >= MIN_SHARE:
            out.append((cell, tracks))
    return out


def split_pixels(pixels: np.ndarray, seeds: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray | None:
    """Which seed each pixel of a merged object is nearest to.

    Parameters
    ----------
    pixels : (k,) int ndarray
        Flat indices of the object's pixels.
    seeds : list of int ndarray
        Per track, flat indices of its previous mask moved to the current frame.
    shape : (H, W)

    Returns
    -------
    (k,) int ndarray or None
        Index into ``seeds`` per pixel; None when a track would get no pixel.
    """
    width = shape[1]
    rows, cols = np.divmod(pixels, width)
    seed_rc = [np.divmod(s, width) for s in seeds]
    y0 = min(int(rows.min()), *(int(r.min()) for r, _ in seed_rc if r.size))
    x0 = min(int(cols.min()), *(int(c.min()) for _, c in seed_rc if c.size))
    y1 = max(int(rows.max()), *(int(r.max()) for r, _ in seed_rc if r.size)) + 1
    x1 = max(int(cols.max()), *(int(c.max()) for _, c in seed_rc if c.size)) + 1
    box = np.zeros((y1 - y0, x1 - x0), dtype=np.int32)
    for k, (r, c) in enumerate(seed_rc):
        box[r - y0, c - x0] = k + 1
    if box.max() == 0:
        return None
    _, (iy, ix) = ndi.distance_transform_edt(box == 0, return_indices=True)
    nearest = box[iy[rows - y0, cols - x0], ix[rows - y0, cols - x0]] - 1
    if np.bincount(nearest, minlength=len(seeds)).min() == 0:
        return None
    return nearest
