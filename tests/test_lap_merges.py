"""Merges of young tracks in the ``lap`` tracker (``split_young_merges``): a segmentation
error should not cost a young track its identity, and a cell cut for a frame should not be
kept cut. Small hand-built label stacks whose answer is known exactly."""

from __future__ import annotations

import numpy as np

from pyama_builtin.tracking import LapParams
from pyama_builtin.tracking import _merges
from pyama_builtin.tracking.lap import track_lap
from test_tracking_lap import ellipses, ids_at, run

SHAPE = (80, 140)
A, B = (1, 40, 60, 7, 6), (2, 40, 75, 7, 6)  # two short cells end to end, 1 px apart
WHOLE = (1, 40, 67.5, 15, 6)  # one cell over both (no neck)
POINTS = [(40, 60), (40, 75)]


def necked_pair(label=1):
    """A and B as one object that narrows where they meet (two daughters the segmenter
    joined end to end): their ellipses overlapping by a pixel."""
    pair = ellipses(SHAPE, [(label, 40, 61, 7, 6), (label, 40, 74, 7, 6)])
    return pair


def test_a_young_cell_keeps_its_id_through_a_merge_with_an_established_neighbour():
    # B appears (found again after a miss, or a faint cell found) next to A, which has been
    # tracked from the first frame; one frame later the segmenter joins them. B is younger
    # than the division lookahead, so the age rule alone left the clump to A: B switched
    # identity going in and again coming out (gap closing gives its ID back).
    scenes = [[A]] * 3 + [[A, B]] + [[WHOLE]] + [[A, B]] * 3
    frames = [ellipses(SHAPE, c) for c in scenes]
    labels, parents = run(track_lap, frames)
    a, b = ids_at(labels[3], POINTS)
    assert a != b and not any(parents)
    assert all(ids_at(lab, POINTS) == [a, b] for lab in labels[3:])
    assert np.array_equal(labels[4] > 0, frames[4] > 0)  # the clump's pixels shared, none lost
    labels, _ = run(track_lap, frames, split_young_merges=False)
    assert ids_at(labels[4], POINTS)[0] == ids_at(labels[4], POINTS)[1]


def test_daughters_joined_again_at_a_neck_keep_their_ids_and_their_division():
    # A rod divides; in the next frame the segmenter joins the daughters end to end (the
    # object narrows between them), then sees them apart again. The daughters are young
    # sisters: split back at the neck, the division stands and both keep their IDs.
    scenes = [ellipses(SHAPE, [WHOLE])] * 3 + [ellipses(SHAPE, [A, B])] + [necked_pair()] \
        + [ellipses(SHAPE, [A, B])] * 3
    labels, parents = run(track_lap, scenes)
    mother = int(labels[0][40, 67])
    a, b = ids_at(labels[3], POINTS)
    assert parents[3] == {a: mother, b: mother}
    assert all(ids_at(lab, POINTS) == [a, b] for lab in labels[3:])
    # Without the rule the join rejects the division: one daughter takes the mother's ID.
    labels, parents = run(track_lap, scenes, split_young_merges=False)
    assert not any(parents)
    assert len(set(ids_at(labels[4], POINTS))) == 1


def test_a_cell_cut_at_no_neck_is_joined_again():
    # A cell cut in two equal pieces for one frame (taken for a division) and whole again:
    # the pieces are young sisters, but the whole cell does not narrow where they meet, so
    # it is not split and the cut is not made permanent (regardless of the lookahead).
    scenes = [[WHOLE]] * 3 + [[A, B]] + [[WHOLE]] * 4
    labels, parents = run(track_lap, [ellipses(SHAPE, c) for c in scenes], division_lookahead=1)
    assert not any(parents)
    assert len({int(lab[40, 67]) for t, lab in enumerate(labels) if t != 3}) == 1


def test_a_piece_cut_off_a_cell_is_joined_again():
    # A third of a cell is cut off for one frame (unequal pieces: no division, the piece
    # starts a track of its own inside the cell's extent). When the cell is whole again the
    # piece's track came from the cell's: it is not split back out, whatever the neck.
    whole = (1, 40, 70, 24, 6)
    pieces = [(1, 40, 62, 16, 6), (2, 40, 87, 7, 6)]
    scenes = [[whole]] * 3 + [pieces] + [[whole]] * 4
    labels, parents = run(track_lap, [ellipses(SHAPE, c) for c in scenes])
    assert not any(parents)
    assert all(len(np.unique(lab)) == 2 for t, lab in enumerate(labels) if t != 3)
    assert len({int(lab[40, 62]) for lab in labels}) == 1


def test_the_rule_is_a_lap_parameter():
    assert LapParams().split_young_merges is True
    assert LapParams(split_young_merges=False).split_young_merges is False


def test_a_long_cell_cut_for_a_frame_keeps_its_id_when_whole_again():
    # A long rod is cut into equal halves for one frame (a proposed division). Whole again,
    # it is twice a half's area and half a rod from each half's centroid: no link is cheap
    # enough, so it started a new track (and the rejected division left the ID with no
    # cell). Left whole (no neck), it now continues the larger half, which the rejected
    # division renames to the rod's own ID.
    rod, halves = [(1, 40, 70, 28, 5)], [(1, 40, 56, 14, 5), (2, 40, 84, 14, 5)]
    scenes = [rod] * 3 + [halves] + [rod] * 4
    labels, parents = run(track_lap, [ellipses(SHAPE, c) for c in scenes])
    assert not any(parents)
    assert len({int(lab[40, 70]) for t, lab in enumerate(labels) if t != 3}) == 1
    # (``extent_links`` alone also keeps it: the whole rod lies inside a half's extent.)
    labels, _ = run(track_lap, [ellipses(SHAPE, c) for c in scenes], split_young_merges=False,
                    extent_links=False)
    assert len({int(lab[40, 70]) for t, lab in enumerate(labels) if t != 3}) == 2
    labels, _ = run(track_lap, [ellipses(SHAPE, c) for c in scenes], split_young_merges=False)
    assert len({int(lab[40, 70]) for t, lab in enumerate(labels) if t != 3}) == 1


def test_a_young_track_is_not_given_a_sliver_of_a_merge():
    # The object over A reaches only a little into where the young B was: split by nearness
    # to the previous masks, B's piece would be half of B. Such a split is not made for
    # young tracks (on B. subtilis it cut a halo piece off a cell and confirmed a false
    # division); the object stays A's.
    scenes = [[A]] * 3 + [[A, B]] + [[(1, 40, 64, 11, 6)]] + [[A]] * 3
    frames = [ellipses(SHAPE, c) for c in scenes]
    labels, _ = run(track_lap, frames)
    a, b = ids_at(labels[3], POINTS)
    assert set(np.unique(labels[4])) == {0, a}
    sliver = _merges.YOUNG_PIECE_RATIO
    try:
        _merges.YOUNG_PIECE_RATIO = 1e9  # without the area check B takes its sliver
        labels, _ = run(track_lap, frames)
        assert set(np.unique(labels[4])) == {0, a, b}
    finally:
        _merges.YOUNG_PIECE_RATIO = sliver
