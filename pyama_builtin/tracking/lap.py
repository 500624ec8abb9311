"""Linear-assignment tracking by centroid distance, after removing the frame's global drift.

Per frame: (1) estimate the global displacement of the cells since the previous frame
(``_drift.py``); (2) link previous cells to current ones by the one-to-one assignment with
the lowest total cost (squared centroid distance in units of the gate, plus an optional
area-change term), pairs farther apart than the gate never linked; (3) split a current cell
that established tracks merged into back between them (``_merges.py``; younger tracks
too, unless one was cut from the other, or they are sisters not separated by a neck);
(4) gap closing:
still unlinked cells are matched against tracks lost up to ``max_gap`` frames ago; (5)
detect divisions: a previous cell replaced by two current cells that lie inside its extent
and whose areas add up to about its area ends its track, each daughter starting a new one
with it as parent (confirmed by the next frames, ``_confirm.py``); a daughter may be a cell
that step (2) linked at half its size to another track (in a burst of divisions links cross
to neighbours' daughters); (6) tracks that a division left without a cell are linked again
to the cells still free; (7) a track still without a cell takes a free cell inside its
extent whose area changed too much for the gate (``extent_links``: the cell found in part).

laptrack and TrackMate's LAP tracker are the references; unlike them this tracker streams
(it links frame by frame and never sees the future), so it holds one row of state per
recently seen track and memory does not grow with the number of frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
from scipy.spatial import cKDTree

from pyama_framework.types import TrackedFrame

from ._confirm import CellFrame, confirm_divisions
from ._drift import estimate_drift
from ._cells import _extent_link, _Frame, _holder, _measure
from ._divisions import find_divisions
from ._merges import _split_merges, find_merges
from .iou_hungarian import _max_weight_matching

__all__ = ["track_lap", "estimate_drift"]




@dataclass
class _Tracks:
    """State of the tracks that may still be continued (seen in the last max_gap + 1 frames).

    Positions are kept in the coordinates of the latest frame: every frame's drift is added
    to all of them, so a lost track is predicted where its cell would be now.
    """

    ids: np.ndarray
    centre: np.ndarray
    area: np.ndarray
    cov: np.ndarray
    edge: np.ndarray
    last_seen: np.ndarray  # frame index
    born: np.ndarray  # first frame of the track, -1 for tracks of the first frame
    kin: np.ndarray  # the track a young track came from (mother, or the cell it was cut from), 0: none

    @classmethod
    def empty(cls) -> "_Tracks":
        return cls(np.empty(0, np.uint32), np.empty((0, 2)), np.empty(0), np.empty((0, 3)),
                   np.empty(0, bool), np.empty(0, np.int64), np.empty(0, np.int64),
                   np.empty(0, np.uint32))

    def select(self, keep: np.ndarray) -> "_Tracks":
        return _Tracks(self.ids[keep], self.centre[keep], self.area[keep], self.cov[keep],
                       self.edge[keep], self.last_seen[keep], self.born[keep], self.kin[keep])

    def known(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of ``ids`` are tracks held here, and their rows (valid where known)."""
        if not self.ids.size:
            return np.zeros(ids.size, dtype=bool), np.zeros(ids.size, dtype=np.int64)
        order = np.argsort(self.ids)
        at = order[np.minimum(np.searchsorted(self.ids, ids, sorter=order), self.ids.size - 1)]
        return self.ids[at] == ids, at

    def born_of(self, ids: np.ndarray, t: int) -> np.ndarray:
        """First frame of each of ``ids``: its track's, or ``t`` for a new one."""
        born = np.full(ids.size, -1 if t == 0 else t, dtype=np.int64)
        known, at = self.known(ids)
        born[known] = self.born[at[known]]
        return born

    def kin_of(self, ids: np.ndarray, new_kin: dict[int, int]) -> np.ndarray:
        """Kin of each of ``ids``: its track's, else ``new_kin``'s entry (0 when none)."""
        kin = np.zeros(ids.size, dtype=np.uint32)
        if new_kin:
            kin[:] = [new_kin.get(i, 0) for i in ids.tolist()]
        known, at = self.known(ids)
        kin[known] = self.kin[at[known]]
        return kin

    def extended(self, ids: np.ndarray, cells: _Frame, t: int, born: np.ndarray,
                 kin: np.ndarray) -> "_Tracks":
        return _Tracks(np.concatenate([self.ids, ids]),
                       np.concatenate([self.centre, cells.centre]),
                       np.concatenate([self.area, cells.area]),
                       np.concatenate([self.cov, cells.cov]),
                       np.concatenate([self.edge, cells.edge]),
                       np.concatenate([self.last_seen, np.full(cells.n, t)]),
                       np.concatenate([self.born, born]),
                       np.concatenate([self.kin, kin]))


def track_lap(
    label_frames: Iterable[np.ndarray],
    max_distance: float = 1.0,
    max_distance_px: float | None = None,
    drift: bool = True,
    area_weight: float = 1.0,
    max_gap: int = 2,
    divisions: bool = True,
    min_size: int = 0,
    max_size: int | None = None,
    division_lookahead: int = 2,
    min_mother_age: int = 2,
    split_merges: bool = True,
    split_young_merges: bool = True,
    extent_links: bool = True,
    split_daughters: bool = True,
) -> Iterator[TrackedFrame]:
    """Link per-frame cell labels into tracks by centroid distance and linear assignment.

    Parameters
    ----------
    label_frames : iterable of (H, W) integer ndarray
        Per-frame labels in time order (0 = background; numbering need not be consistent
        across frames). Consumed lazily, one frame at a time.
    max_distance : float, optional
        Gate: the largest distance between a cell's predicted and observed centroid that
        can be linked, in median cell diameters (equivalent diameter of the previous frame's
        cells). Measured after the global drift is removed.
    max_distance_px : float or None, optional
        The gate in pixels; overrides ``max_distance`` when given.
    drift : bool, optional
        Estimate and remove the global displacement of the cells between frames (stage
        drift, flow, a colony moving as a whole) before linking.
    area_weight : float, optional
        Weight of the area change in the link cost ``(d / gate)**2 + area_weight *
        ln(A1 / A0)**2``; 0 links on distance alone.
    max_gap : int, optional
        Frames a cell may be missing and still keep its ID (0 disables gap closing).
    divisions : bool, optional
        Detect divisions: the mother's track ends, each daughter gets a new ID and the
        mother as parent.
    min_size, max_size : int, optional
        Cells with fewer than ``min_size`` or more than ``max_size`` pixels are dropped
        (set to 0 in the output). ``max_size=None`` means no upper limit.
    division_lookahead : int, optional
        A division stands only if both daughters are still separate cells in each of the
        next ``division_lookahead`` frames (the output lags the input by that many frames
        when ``divisions`` is on); otherwise the split is a segmentation artefact and the
        longer-lived piece keeps the mother's ID (see ``_confirm.py``).
    min_mother_age : int, optional
        Frames a track must exist before it can divide (tracks of the first frame always
        can): a piece of a split that just happened does not divide again.
    split_merges : bool, optional
        Split an object back between the tracks that merged into it: two or more tracks
        older than ``division_lookahead`` frames (or present since the first frame) lost
        into one cell whose extent holds their predicted centroids and whose area is about
        theirs together (see ``_merges.py``). Keeps both identities through a frame in
        which the segmenter joins touching cells.
    split_young_merges : bool, optional
        With ``split_merges``, also split merges holding younger tracks, unless two of them
        came from one cell (sisters of one split, or a piece and the track it was cut
        from): a young track, e.g. a cell found again after a miss or a daughter, then
        keeps its ID through a merge with a neighbour, while a cell cut in two for a frame
        is still joined again.
    extent_links : bool, optional
        A track of the previous frame left without a cell after all other steps takes a
        free cell whose centroid lies inside its extent (Mahalanobis distance <= 2.5 under
        its moments) and whose area is within ``EXTENT_LINK_RATIO`` (3) of its own: the
        segmenter found only part of the cell, or the cell with a piece of a neighbour, and
        the centroid and area moved too far for the gate.
    split_daughters : bool, optional
        A daughter that is the mother of a division proposed within the lookahead still
        counts as present when her own division is confirmed: a rod cut a frame before
        it divides (its cut proposed as the division) whose piece is cut again as the
        daughters part keeps its division.

    Yields
    ------
    TrackedFrame
        ``labels``: (H, W) uint16 (uint32 in frames with IDs above 65535), each kept cell
        carries its track ID (>= 1, assigned in order of first appearance); ``parents``:
        for each daughter track starting in this frame, its mother's ID.
    """
    if max_distance <= 0 or (max_distance_px is not None and max_distance_px <= 0):
        raise ValueError("max_distance and max_distance_px must be > 0")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    if area_weight < 0:
        raise ValueError(f"area_weight must be >= 0, got {area_weight}")
    if division_lookahead < 0 or min_mother_age < 0:
        raise ValueError("division_lookahead and min_mother_age must be >= 0")
    frames = _link_frames(label_frames, max_distance, max_distance_px, drift, area_weight,
                          max_gap, divisions, min_size, max_size,
                          division_lookahead if split_merges else None,
                          split_merges and split_young_merges, extent_links)
    if divisions:
        yield from confirm_divisions(frames, division_lookahead, min_mother_age, max_gap + 1,
                                     split_daughters)
    else:
        for frame in frames:
            yield frame.render()


def _link_frames(label_frames, max_distance, max_distance_px, drift, area_weight, max_gap,
                 divisions, min_size, max_size, merge_age, young_merges,
                 extent_links=False) -> Iterator[CellFrame]:
    """The tracker proper: per frame, cells with IDs and the proposed divisions.

    ``merge_age``: tracks older than this many frames are split back out of a merge (None:
    merges are not split); ``young_merges``: younger tracks are split back too unless two
    of a merge's tracks are kin (``_merges.find_merges``).
    """

    shape: tuple[int, ...] | None = None
    tracks = _Tracks.empty()
    last: _Frame | None = None  # the previous frame's cells (track rows of age 1, in order)
    next_id = 1
    for t, frame in enumerate(label_frames):
        labels = np.asarray(frame)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"label frames must be 2-D integer arrays, got {labels.dtype} "
                             f"{labels.shape}")
        if shape is None:
            shape = labels.shape
        elif labels.shape != shape:
            raise ValueError(f"frame shape {labels.shape} differs from the first {shape}")

        cur = _measure(labels, min_size, max_size)
        ids = np.zeros(cur.n, dtype=np.uint32)
        parents: dict[int, int] = {}
        new_kin: dict[int, int] = {}  # daughter -> mother
        cut_from: dict[int, int] = {}  # new track's cell -> the track whose extent holds it
        recent = tracks.last_seen == t - 1
        if tracks.ids.size and cur.n:
            gate = _gate(tracks.area[recent], max_distance, max_distance_px)
            shift = np.zeros(2)
            if drift and recent.any():
                shift = estimate_drift(tracks.centre[recent], cur.centre, shape, gate,
                                       tracks.area[recent], cur.area)
                tracks.centre += shift
            # 1. frame-to-frame links from the tracks seen in the previous frame
            prev = np.flatnonzero(recent)
            p, c = _link(tracks.centre[prev], tracks.area[prev], tracks.edge[prev],
                         cur.centre, cur.area, cur.edge, gate, area_weight)
            ids[c] = tracks.ids[prev[p]]
            linked_to = np.full(prev.size, -1)
            linked_to[p] = c
            # 1b. an object holding established tracks that merged into it is split between them
            if merge_age is not None and prev.size and last is not None:
                born = tracks.born[prev]
                merges = find_merges(tracks.centre[prev], tracks.area[prev],
                                     (born < 0) | (t - born > merge_age), linked_to,
                                     cur.centre, cur.area, cur.cov,
                                     (tracks.ids[prev], tracks.kin[prev]) if young_merges else None)
                if merges:
                    cur, pieces, whole = _split_merges(cur, last, merges, shift, shape)
                    # a merge left whole (a cell cut for a frame joined again, or no neck
                    # between young sisters) that no track was linked to continues the
                    # largest of its tracks instead of starting a new one
                    for cell, members in whole if young_merges else ():
                        if ids[cell] == 0:
                            k = max(members, key=lambda m: (tracks.area[prev[m]], -m))
                            ids[cell] = tracks.ids[prev[k]]
                            linked_to[k] = cell
                    ids = np.concatenate([ids, np.zeros(cur.n - ids.size, np.uint32)])
                    for piece, k in pieces:
                        ids[piece] = tracks.ids[prev[k]]
                        linked_to[k] = piece
            ended = np.zeros(tracks.ids.size, dtype=bool)
            # 2. gap closing against tracks lost 1..max_gap frames ago, most recent first;
            # before divisions, so that a clump of two tracks that comes apart again gives
            # the lost one back its ID instead of being taken for a division.
            for age in range(2, max_gap + 2):
                lost = np.flatnonzero(tracks.last_seen == t - age)
                free = np.flatnonzero(ids == 0)
                if not lost.size or not free.size:
                    continue
                p, c = _link(tracks.centre[lost], tracks.area[lost], tracks.edge[lost],
                             cur.centre[free], cur.area[free], cur.edge[free], gate,
                             area_weight)
                ids[free[c]] = tracks.ids[lost[p]]
            # 3. divisions: the mother ends, daughters get new IDs below
            if divisions:
                found = find_divisions(tracks.centre[prev], tracks.area[prev], tracks.cov[prev],
                                       linked_to, cur.centre, cur.area, ids == 0)
                daughters = {x for d in found for x in (d.daughter_a, d.daughter_b)}
                for d in found:
                    ended[prev[d.mother]] = True
                    # her linked cell, when no division's daughter, starts a new track (a
                    # division may take a cell linked to another mother: in a burst of
                    # divisions links cross to neighbours' daughters)
                    if linked_to[d.mother] >= 0 and linked_to[d.mother] not in daughters:
                        ids[linked_to[d.mother]] = 0
                for d in found:
                    mother = prev[d.mother]
                    ids[[d.daughter_a, d.daughter_b]] = 0
                    next_id = _new_ids(ids, [d.daughter_a, d.daughter_b], next_id)
                    parents.update({int(ids[d.daughter_a]): int(tracks.ids[mother]),
                                    int(ids[d.daughter_b]): int(tracks.ids[mother])})
                new_kin.update(parents)
                if found:
                    # 4. A division releases its mother's linked cell and may take a cell
                    # linked to another track: the previous frame's tracks left without a
                    # cell are linked again to the cells left free.
                    orphan = prev[~ended[prev] & ~np.isin(tracks.ids[prev], ids)]
                    free = np.flatnonzero(ids == 0)
                    if orphan.size and free.size:
                        p, c = _link(tracks.centre[orphan], tracks.area[orphan],
                                     tracks.edge[orphan], cur.centre[free], cur.area[free],
                                     cur.edge[free], gate, area_weight)
                        ids[free[c]] = tracks.ids[orphan[p]]
            # 5. a track left without a cell takes a free cell inside its extent whose area
            # changed too much for the gate (a part of it found, or it with a neighbour's part)
            if extent_links and prev.size:
                lost = prev[~ended[prev] & ~np.isin(tracks.ids[prev], ids)]
                free = np.flatnonzero(ids == 0)
                if lost.size and free.size:
                    p, c = _extent_link(tracks.centre[lost], tracks.area[lost], tracks.cov[lost],
                                        cur.centre[free], cur.area[free])
                    ids[free[c]] = tracks.ids[lost[p]]
            # 6. a new track's kin: the previous cell whose extent holds it (it was cut from it)
            fresh = np.flatnonzero(ids == 0)
            if young_merges and fresh.size and prev.size:
                holder = _holder(tracks.centre[prev], tracks.cov[prev], cur.centre[fresh])
                cut_from = {int(c): int(tracks.ids[prev[h]]) for c, h in zip(fresh, holder) if h >= 0}
            # Continued tracks are replaced by their current cell below, divided ones end.
            born = tracks.born_of(ids, t)  # before the continued tracks' rows are dropped
            kin = tracks.kin_of(ids, new_kin)
            tracks = tracks.select(~ended & ~np.isin(tracks.ids, ids))
        else:
            born = tracks.born_of(ids, t)
            kin = tracks.kin_of(ids, new_kin)
        tracks = tracks.select(tracks.last_seen >= t - max_gap)
        fresh = np.flatnonzero(ids == 0)
        next_id = _new_ids(ids, fresh, next_id)
        if cut_from:
            kin[fresh] = [cut_from.get(int(c), 0) for c in fresh]
        tracks = tracks.extended(ids, cur, t, born, kin)
        last = cur
        yield CellFrame(shape, cur.pixels, cur.label, ids, cur.area, parents)


def _new_ids(ids: np.ndarray, where, next_id: int) -> int:
    where = np.asarray(where, dtype=np.int64)
    if next_id + where.size > 2**32:
        raise OverflowError("more than 2**32 - 1 tracks")
    ids[where] = np.arange(next_id, next_id + where.size, dtype=np.uint32)
    return next_id + where.size


def _gate(area: np.ndarray, max_distance: float, max_distance_px: float | None) -> float:
    if max_distance_px is not None:
        return float(max_distance_px)
    diameter = 2.0 * np.sqrt(np.median(area) / np.pi) if area.size else 10.0
    return float(max_distance * diameter)


def _link(prev_c: np.ndarray, prev_a: np.ndarray, prev_edge: np.ndarray, cur_c: np.ndarray,
          cur_a: np.ndarray, cur_edge: np.ndarray, gate: float,
          area_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Lowest-cost one-to-one links between two sets of cells within ``gate`` pixels.

    The cost of a link is ``(d / gate)**2 + area_weight * ln(a1 / a0)**2``; leaving a cell
    unlinked costs 1 (TrackMate's alternative cost), so only links cheaper than that are
    made, and among those the assignment maximises the total saving. The area term is left
    out when either cell touches the frame border: crossing it changes the visible area.
    """
    if not prev_c.size or not cur_c.size:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pairs = cKDTree(prev_c).sparse_distance_matrix(cKDTree(cur_c), gate, output_type="ndarray")
    p, c = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)
    weight = np.where(prev_edge[p] | cur_edge[c], 0.0, area_weight)
    cost = (pairs["v"] / gate) ** 2 + weight * np.log(cur_a[c] / prev_a[p]) ** 2
    # Saving must be > 0 (zero marks "no pair" in the matching); ties at the gate are dropped.
    keep = cost < 1.0
    return _max_weight_matching(p[keep], c[keep], 1.0 - cost[keep] + 1e-9)
