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
  spurious are young and are left merged, so a cell cut in two for a frame is not kept cut
  (with ``split_young_merges`` the rule below decides for young tracks).
- young tracks (``split_young_merges``): each track remembers what it came from (a daughter
  her mother, a new track the previous cell whose extent held it, i.e. the cell it was cut
  from). A merge holding young tracks is split too, unless one of them was cut from
  another (never) or two are sisters of one split (only where the object narrows between
  them, :func:`necked`), and only when every piece is about its track's previous area
  (``lap.py``); a merge left whole continues one of its tracks.
- the split: each pixel of the object goes to the track whose previous mask, moved by the
  frame's drift, is nearest (a Voronoi partition between the previous outlines, computed in
  the object's bounding box only, so the cost does not depend on the frame size).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ._cells import _Frame, _measure_pixels
from ._divisions import AREA_SUM_RANGE, _extent_reach, _inside

__all__ = ["find_merges", "necked", "split_pixels"]

# Smallest area of a merged track, as a share of the merged object.
MIN_SHARE = 0.2
# Young sisters (the two pieces of one split) merged again are split back only where the
# object narrows between them to at most this share of the pieces' width (see ``necked``).
NECK = 0.83


def find_merges(track_centre: np.ndarray, track_area: np.ndarray, established: np.ndarray,
                linked_to: np.ndarray, centre: np.ndarray, area: np.ndarray,
                cov: np.ndarray, kin: tuple[np.ndarray, np.ndarray] | None = None
                ) -> list[tuple[int, list[int], bool, bool | None]]:
    """Current cells that hold two or more established tracks of the previous frame.

    Parameters
    ----------
    track_centre, track_area : (n, 2), (n,) ndarray
        Tracks seen in the previous frame: centroid predicted in the current frame, area.
    established : (n,) bool ndarray
        Tracks old enough to be split back out of a merge.
    kin : pair of (n,) uint ndarray, optional
        The tracks' IDs and the ID each came from (its mother, or the track it was cut
        from; 0: none). When given, a merge holding tracks that are not established is
        split too, unless one of its tracks was cut from another (a cell cut in two for a
        frame is joined again); sisters of one split are split only where the object
        narrows between them (see :func:`necked`).
    linked_to : (n,) int ndarray
        Current cell each track is linked to, -1 when none.
    centre, area, cov : (m, 2), (m,), (m, 3) ndarray
        Current cells: centroid, area, second central moments.

    Returns
    -------
    list of (cell, tracks, young, sisters)
        The merged current cell and the tracks it holds, the one linked to it first;
        ``young``: not all of them established; ``sisters``: young sisters among them, to
        be split only at a neck; None: one of them was cut from another (not to be split).
    """
    eligible = established if kin is None else np.ones_like(established)
    lost = np.flatnonzero((linked_to < 0) & eligible)
    if lost.size == 0 or area.size == 0:
        return []
    reach = float(_extent_reach(cov)[1].max())
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
            if not eligible[owner] or not _inside(track_centre[[owner]] - centre[[cell]],
                                                     cov[[cell]])[0]:
                continue
            tracks = [owner, *tracks]
        if len(tracks) < 2:
            continue
        share = track_area[tracks] / area[cell]
        if not (AREA_SUM_RANGE[0] <= share.sum() <= AREA_SUM_RANGE[1] and share.min() >= MIN_SHARE):
            continue
        sisters, young = False, not established[tracks].all()
        if young:
            own, came = kin[0][tracks], kin[1][tracks]
            if np.isin(came, own).any():  # a piece and the track it was cut from
                sisters = None
            else:
                sisters = bool((np.unique(came[came > 0], return_counts=True)[1] > 1).any())
        out.append((cell, tracks, young, sisters))
    return out


def necked(pixels: np.ndarray, nearest: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether an object narrows where its pieces meet: the widest point of the line
    between the pieces (distance to the object's edge) is at most ``NECK`` of the thinnest
    piece's widest point. Two daughters joined end to end meet at a neck; a cell that was
    cut in two for a frame and is whole again does not (the line is as wide as the cell).
    """
    width = shape[1]
    rows, cols = np.divmod(pixels, width)
    y0, x0 = int(rows.min()), int(cols.min())
    box = np.zeros((int(rows.max()) - y0 + 3, int(cols.max()) - x0 + 3), dtype=np.int32)
    box[rows - y0 + 1, cols - x0 + 1] = nearest + 1
    depth = ndi.distance_transform_edt(box > 0)
    line = np.zeros(box.shape, dtype=bool)  # pixels with a 4-neighbour in another piece
    for a, b in ((box[1:], box[:-1]), (box[:, 1:], box[:, :-1])):
        meet = (a > 0) & (b > 0) & (a != b)
        if a.shape[0] < box.shape[0]:
            line[1:] |= meet
            line[:-1] |= meet
        else:
            line[:, 1:] |= meet
            line[:, :-1] |= meet
    if not line.any():
        return True
    widest = np.zeros(int(nearest.max()) + 2)
    np.maximum.at(widest, box.ravel(), depth.ravel())
    return bool(depth[line].max() <= NECK * widest[1:].min())


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


# A merge holding young tracks is split back only when every piece has about the area its
# track had in the previous frame (within this factor either way).
YOUNG_PIECE_RATIO = 2 ** 0.5


def _split_merges(cur: _Frame, last: _Frame, merges: list[tuple[int, list[int], bool, bool | None]],
                  shift: np.ndarray, shape: tuple[int, ...]
                  ) -> tuple[_Frame, list[tuple[int, int]], list[tuple[int, list[int]]]]:
    """Split each merged cell of ``cur`` between the previous frame's cells it holds.

    ``merges`` are (current cell, previous cells, young, sisters) as :func:`find_merges`
    gives them. A merge holding young tracks is split only when each piece is about its
    track's previous area (within ``YOUNG_PIECE_RATIO``), one of young sisters only at a
    neck (:func:`necked`), one holding a piece and the track it was cut from (``sisters``
    None) never. Returns the new frame (the first previous cell keeps the merged cell's
    index, the others get new indices after the existing cells), the (current cell,
    previous cell) pairs made, and the (current cell, previous cells) left whole.
    """
    h, w = shape
    dy, dx = np.rint(shift).astype(np.int64)
    order = np.argsort(last.label, kind="stable")
    start = np.concatenate([[0], np.cumsum(np.bincount(last.label, minlength=last.n))])
    cur_order = np.argsort(cur.label, kind="stable")
    cur_start = np.concatenate([[0], np.cumsum(np.bincount(cur.label, minlength=cur.n))])
    label = cur.label.copy()
    pieces, touched, n, whole = [], [], cur.n, []
    for cell, members, young, sisters in merges:
        if sisters is None:
            whole.append((cell, members))
            continue
        seeds = []
        for k in members:  # the previous mask, moved by the frame's drift
            rows, cols = np.divmod(last.pixels[order[start[k]:start[k + 1]]], w)
            rows, cols = rows + dy, cols + dx
            ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
            seeds.append(rows[ok] * w + cols[ok])
        where = cur_order[cur_start[cell]:cur_start[cell + 1]]
        nearest = split_pixels(cur.pixels[where], seeds, (h, w))
        if nearest is None:
            whole.append((cell, members))
            continue
        if young:
            ratio = np.bincount(nearest, minlength=len(members)) / last.area[members]
            if np.abs(np.log(ratio)).max() > np.log(YOUNG_PIECE_RATIO):
                whole.append((cell, members))
                continue
        if sisters and not necked(cur.pixels[where], nearest, (h, w)):
            whole.append((cell, members))
            continue
        index = np.array([cell, *range(n, n + len(members) - 1)])
        label[where] = index[nearest]
        n += len(members) - 1
        pieces += list(zip(index.tolist(), members))
        touched.append(index)
    if not pieces:
        return cur, [], whole
    touched = np.concatenate(touched)
    centre = np.concatenate([cur.centre, np.zeros((n - cur.n, 2))])
    area = np.concatenate([cur.area, np.zeros(n - cur.n)])
    cov = np.concatenate([cur.cov, np.zeros((n - cur.n, 3))])
    edge = np.concatenate([cur.edge, np.zeros(n - cur.n, bool)])
    local = np.full(n, -1)
    local[touched] = np.arange(touched.size)
    on = local[label] >= 0
    m = _measure_pixels(cur.pixels[on], local[label[on]], touched.size, shape)
    centre[touched], area[touched], cov[touched], edge[touched] = m
    return _Frame(centre, area, cov, edge, cur.pixels, label), pieces, whole
