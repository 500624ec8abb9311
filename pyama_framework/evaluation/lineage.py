"""Track tables in the Cell Tracking Challenge's form, built frame by frame.

A CTC track table has one row ``[label, begin, end, parent]`` per track, and a track's label
must be present in every frame from ``begin`` to ``end``. Two builders produce one:

- :class:`GapSplitTracks` for tracked results (pyama's own IDs): a cell missing for some frames
  (gap closing) is split into segments; each later segment gets a new label whose parent is the
  segment before it.
- :class:`OverlapTracks` for ground truth numbered per frame: cells are linked to the previous
  frame by overlap (:func:`links_by_overlap`, the rule documented in docs/evaluation.md).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from .overlap import overlaps

# A cell in frame t+1 descends from the cell in t it overlaps most. Of the cells descending from
# one old cell, two or more that lie mostly inside it (> MIN_COVER of their own area) and each
# cover at least DAUGHTER_SHARE of it are its daughters (a division); otherwise the one with the
# largest overlap continues it and the others start new tracks.
MIN_COVER = 0.5
DAUGHTER_SHARE = 0.25


def table_from_rows(rows: Mapping[int, list[int]]) -> np.ndarray:
    """``{label: [begin, end, parent]}`` as an (N, 4) int64 CTC table sorted by label."""
    if not rows:
        return np.zeros((0, 4), dtype=np.int64)
    return np.array([[label, *rows[label]] for label in sorted(rows)], dtype=np.int64)


class GapSplitTracks:
    """CTC tracks of a tracked label stack, fed the labels present in each frame in order.

    Parameters
    ----------
    first_free_label : int
        Labels for later segments of gapped tracks are taken from here on; it must exceed every
        label of the stack.
    """

    def __init__(self, first_free_label: int):
        self.next_label = int(first_free_label)
        self.current: dict[int, int] = {}  # original label -> its CTC label now
        self.last_seen: dict[int, int] = {}
        self.rows: dict[int, list[int]] = {}  # CTC label -> [begin, end, parent]
        self.segments: dict[int, list[int]] = {}  # original label -> its CTC labels, in time order

    def add_frame(self, t: int, labels: Iterable[int]) -> dict[int, int]:
        """Record the labels present in frame ``t``; return ``{label: new label}`` for relabelled ones."""
        renamed: dict[int, int] = {}
        for label in map(int, labels):
            if label not in self.current:
                self.current[label] = label
                self.rows[label] = [t, t, 0]
                self.segments[label] = [label]
            elif self.last_seen[label] == t - 1:
                self.rows[self.current[label]][1] = t
            else:  # reappears after a gap: a new segment, child of the previous one
                new = self.next_label
                self.next_label += 1
                self.rows[new] = [t, t, self.current[label]]
                self.current[label] = new
                self.segments[label].append(new)
            self.last_seen[label] = t
            if self.current[label] != label:
                renamed[label] = self.current[label]
        return renamed

    def table(self, parents: Mapping[int, int] | None = None) -> np.ndarray:
        """The (N, 4) CTC table; ``parents`` maps a cell to its mother cell (original labels).

        A mother's segment that ends before the daughter begins becomes the parent; a parent
        that does not fit the CTC rule (absent, or not ended before the daughter) is dropped.
        """
        rows = {label: list(row) for label, row in self.rows.items()}
        for cell, mother in (parents or {}).items():
            cell, mother = int(cell), int(mother)
            if mother == 0 or cell not in rows:
                continue
            begin = rows[cell][0]
            before = [s for s in self.segments.get(mother, []) if rows[s][1] < begin]
            rows[cell][2] = before[-1] if before else 0
        return table_from_rows(rows)


def links_by_overlap(ov, min_cover: float = MIN_COVER,
                     daughter_share: float = DAUGHTER_SHARE) -> dict[int, tuple[int, bool]]:
    """Link the cells of frame t+1 to those of frame t by overlap.

    Parameters
    ----------
    ov : Overlaps
        ``overlaps(frame_t, frame_t_plus_1)`` (reference = earlier frame).
    min_cover, daughter_share : float
        See the module constants.

    Returns
    -------
    dict
        ``{new label: (old label, is_division)}``; new cells not in it start new tracks.
        ``is_division`` False means the new cell continues the old one.
    """
    best: dict[int, tuple[int, int]] = {}  # new label -> (old label, intersection)
    for old, new, inter in zip(ov.pair_ref.tolist(), ov.pair_comp.tolist(), ov.pair_inter.tolist()):
        if inter > best.get(new, (0, 0))[1]:
            best[new] = (old, inter)
    children: dict[int, list[tuple[int, int]]] = {}
    for new, (old, inter) in best.items():
        children.setdefault(old, []).append((inter, new))
    links: dict[int, tuple[int, bool]] = {}
    for old, kids in children.items():
        old_area = int(ov.ref_area_of(np.array([old]))[0])
        new_area = ov.comp_area_of(np.array([new for _, new in kids]))
        daughters = [new for (inter, new), area in zip(kids, new_area.tolist())
                     if inter >= daughter_share * old_area and inter > min_cover * area]
        if len(daughters) >= 2:
            links.update({new: (old, True) for new in daughters})
        else:
            links[max(kids)[1]] = (old, False)
    return links


class OverlapTracks:
    """Consistent track IDs and a lineage for label frames numbered independently per frame."""

    def __init__(self) -> None:
        self.rows: dict[int, list[int]] = {}
        self.next_id = 1
        self.previous: np.ndarray | None = None
        self.previous_ids: dict[int, int] = {}

    def add_frame(self, t: int, frame: np.ndarray) -> dict[int, int]:
        """Return ``{label in frame: track ID}`` for frame ``t`` (frames must come in order)."""
        links = links_by_overlap(overlaps(self.previous, frame)) if self.previous is not None else {}
        ids: dict[int, int] = {}
        for label in np.unique(frame[frame != 0]).tolist():
            old, division = links.get(label, (0, False))
            if old and not division:
                ids[label] = self.previous_ids[old]
                self.rows[ids[label]][1] = t
                continue
            ids[label] = self.next_id
            self.rows[self.next_id] = [t, t, self.previous_ids[old] if old else 0]
            self.next_id += 1
        self.previous, self.previous_ids = frame, ids
        return ids

    def table(self) -> np.ndarray:
        return table_from_rows(self.rows)


def relabel(frame: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """``frame`` with each label replaced by ``mapping[label]`` (unmapped labels kept)."""
    if not mapping:
        return frame
    top = max(int(frame.max(initial=0)), max(mapping))
    lut = np.arange(top + 1, dtype=np.int64)
    for old, new in mapping.items():
        lut[old] = new
    return lut[frame]
