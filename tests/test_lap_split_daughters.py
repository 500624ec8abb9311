"""Divisions whose daughter is cut again within the lookahead (``split_daughters``, ``lap``):
a rod cut a frame before it divides, one of whose pieces the segmenter cuts again while
the daughters part, keeps its division. Small hand-built label stacks."""

from __future__ import annotations

from pyama_builtin.tracking import LapParams
from pyama_builtin.tracking.lap import track_lap
from test_tracking_lap import ellipses, ids_at, run

SHAPE = (80, 140)
WHOLE = (1, 40, 67.5, 15, 6)  # the mother rod
A, B = (1, 40, 60, 7, 6), (2, 40, 75, 7, 6)  # her daughters
B_CUT = [(2, 40, 71.5, 2.5, 6), (3, 40, 78.5, 2.5, 6)]  # B cut in two for a frame
POINTS = [(40, 60), (40, 75)]


def _scenes():
    return [[WHOLE]] * 3 + [[A, B]] * 2 + [[A] + B_CUT] + [[A, B]] * 3


def test_a_division_stands_when_a_daughter_is_cut_again_within_the_lookahead():
    labels, parents = run(track_lap, [ellipses(SHAPE, c) for c in _scenes()])
    mother = int(labels[0][40, 67])
    a, b = ids_at(labels[3], POINTS)
    assert parents[3] == {a: mother, b: mother}
    assert sum(bool(p) for p in parents) == 1  # B's cut is no division
    # both daughters keep their IDs through the cut (the larger piece keeps B's)
    assert all(ids_at(lab, POINTS) == [a, b] for t, lab in enumerate(labels[3:]) if t + 3 != 5)
    assert int(labels[5][40, 60]) == a


def test_without_the_rule_the_cut_rejects_the_division():
    labels, parents = run(track_lap, [ellipses(SHAPE, c) for c in _scenes()],
                          split_daughters=False)
    assert not any(parents)
    mother = int(labels[0][40, 67])
    assert mother in ids_at(labels[4], POINTS)  # one daughter took the mother's ID


def test_split_daughters_is_a_parameter_on_by_default():
    assert LapParams().split_daughters is True
    assert LapParams(split_daughters=False).split_daughters is False
