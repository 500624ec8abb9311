"""Divisions confirmed by looking ahead, shared by the built-in trackers.

A tracker proposes a division when a cell is replaced by two pieces (``_divisions.py``). On
masks from a segmenter most such splits are not divisions: a clump of touching cells merged
in one frame comes apart in the next, or one cell is cut in two for a frame. They differ
from a division in what follows: the pieces of a spurious split merge again or vanish
within a frame or two, and a mother that was born a moment ago (itself a piece of a split)
does not divide again. So a proposed division stands only when

- both daughters are present as cells of their own in each of the next ``lookahead``
  frames (the stream is held back by that many frames: memory stays constant, and there is
  still one output per input, in order), and
- the mother's track is at least ``min_mother_age`` frames old (tracks present in the
  first frame have an unknown age and always qualify).

A rejected split is not a division: the daughter seen in more of the next frames (the
larger on a tie) keeps the mother's ID in this and all later frames, the other keeps its
new ID without a parent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from pyama_framework.types import TrackedFrame

__all__ = ["CellFrame", "confirm_divisions"]


@dataclass
class CellFrame:
    """One tracked frame held sparsely: the tracker's output before it is rendered.

    ``pixels`` are flat indices of the cells' pixels, ``label`` each pixel's cell (0..n-1),
    ``ids`` and ``area`` per cell; ``parents`` maps each proposed daughter to her mother.
    """

    shape: tuple[int, ...]
    pixels: np.ndarray
    label: np.ndarray
    ids: np.ndarray
    area: np.ndarray
    parents: dict[int, int] = field(default_factory=dict)

    def render(self) -> TrackedFrame:
        """The label image: uint16 when every ID fits (the type the pipeline stores, so it
        needs no conversion and half the memory), else uint32."""
        fits = not self.ids.size or int(self.ids.max()) <= np.iinfo(np.uint16).max
        out = np.zeros(int(np.prod(self.shape)), dtype=np.uint16 if fits else np.uint32)
        out[self.pixels] = self.ids[self.label]
        return TrackedFrame(out.reshape(self.shape), self.parents)

    def rename(self, old: int, new: int) -> None:
        self.ids[self.ids == old] = new
        self.parents = {d: (new if m == old else m) for d, m in self.parents.items()}


def confirm_divisions(frames: Iterable[CellFrame], lookahead: int, min_mother_age: int,
                      horizon: int, split_daughters: bool = False) -> Iterator[TrackedFrame]:
    """Render a tracker's frames, keeping only the divisions that the next frames confirm.

    Parameters
    ----------
    frames : iterable of CellFrame
        The tracker's frames in time order, with proposed divisions in ``parents``.
    lookahead : int
        Frames in which both daughters must be present; the output lags the input by this
        many frames (0: divisions are only checked for the mother's age).
    min_mother_age : int
        Smallest number of frames a mother's track must have existed before dividing.
    horizon : int
        Frames after which an ID that was not seen cannot come back (the tracker's gap
        closing): renamings and ages of older IDs are forgotten, so memory stays bounded.
    split_daughters : bool, optional
        A daughter that is the mother of a division proposed in a later frame of the
        lookahead counts as present there (a rod cut a frame before it divides: the cut is
        proposed as a division, and one piece is cut again when the daughters part). That
        later division is confirmed or rejected on its own.

    Yields
    ------
    TrackedFrame
        One per input frame, in order; ``parents`` holds the confirmed divisions only.
    """
    held: deque[CellFrame] = deque()
    renamed: dict[int, int] = {}  # a rejected daughter's ID -> her mother's, for later frames
    born: dict[int, int] = {}  # ID -> first frame (-1: present in the first frame)
    last: dict[int, int] = {}  # ID -> last frame seen
    t = -1
    for t, frame in enumerate(frames):
        if renamed:
            for old in np.intersect1d(frame.ids, np.fromiter(renamed, np.int64)).tolist():
                last[old] = t  # the tracker still uses this ID: its renaming must not be forgotten
                frame.rename(old, renamed[old])
            for m in frame.parents.values():
                if m in renamed:
                    last[m] = t
            frame.parents = {d: renamed.get(m, m) for d, m in frame.parents.items()}
        _note_ages(frame.ids, t, born, last)
        held.append(frame)
        if len(held) > lookahead:
            _resolve(held, t - lookahead, min_mother_age, renamed, born, split_daughters)
            yield held.popleft().render()
        if t % 16 == 0:  # forget IDs that can no longer come back
            for old in [i for i, s in last.items() if s < t - horizon - lookahead]:
                last.pop(old)
                born.pop(old, None)
                renamed.pop(old, None)
    start = t - len(held) + 1
    while held:
        _resolve(held, start, min_mother_age, renamed, born, split_daughters)
        start += 1
        yield held.popleft().render()


def _note_ages(ids: np.ndarray, t: int, born: dict[int, int], last: dict[int, int]) -> None:
    first_frame = -1 if t == 0 else t
    for i in ids.tolist():
        born.setdefault(i, first_frame)
        last[i] = t


def _resolve(held: deque[CellFrame], t: int, min_mother_age: int, renamed: dict[int, int],
             born: dict[int, int], split_daughters: bool = False) -> None:
    """Confirm or reject the divisions proposed in ``held[0]`` (frame ``t``) using the rest."""
    frame = held[0]
    if not frame.parents:
        return
    later = [set(f.ids.tolist()) | (set(f.parents.values()) if split_daughters else set())
             for f in list(held)[1:]]
    by_mother: dict[int, list[int]] = {}
    for daughter, mother in frame.parents.items():
        by_mother.setdefault(mother, []).append(daughter)
    for mother, daughters in by_mother.items():
        seen = [sum(d in ids for ids in later) for d in daughters]
        first = born.get(mother, -1)  # -1: unknown age (first frame, or long forgotten)
        age = t - first if first >= 0 else min_mother_age
        if len(daughters) == 2 and min(seen) == len(later) and age >= min_mother_age:
            continue
        area = {int(i): float(a) for i, a in zip(frame.ids.tolist(), frame.area)}
        keeper = max(zip(seen, [area.get(d, 0.0) for d in daughters], daughters))[2]
        for d in daughters:
            del frame.parents[d]
        for f in held:
            f.rename(keeper, mother)
        renamed[keeper] = mother
