"""Links inside a track's extent in the ``lap`` tracker (``extent_links``): a cell found
only in part for a frame keeps its ID although its centroid and area jump too far for the
gate. Small hand-built label stacks whose answer is known exactly."""

from __future__ import annotations

from pyama_builtin.tracking import LapParams
from pyama_builtin.tracking.lap import track_lap
from test_tracking_lap import ellipses, ids_at, run

SHAPE = (80, 200)
# Small round neighbours set the gate (one median cell diameter, ~12 px).
OTHERS = [(2, 15, 20, 6, 6), (3, 15, 60, 6, 6), (4, 15, 100, 6, 6), (5, 65, 20, 6, 6),
          (6, 65, 60, 6, 6)]
ROD = (1, 40, 120, 24, 6)  # a long rod
LEFT_HALF = (1, 40, 108, 12, 6)  # only its left half found: centroid 12 px off, half the area


def _rod_ids(frames, **params):
    labels, parents = run(track_lap, frames, **params)
    return [int(lab[40, 110]) for lab in labels], labels, parents


def test_a_rod_found_in_part_for_a_frame_keeps_its_id():
    scenes = [[ROD]] * 3 + [[LEFT_HALF]] + [[ROD]] * 3
    frames = [ellipses(SHAPE, OTHERS + c) for c in scenes]
    rod, labels, parents = _rod_ids(frames)
    assert len(set(rod)) == 1 and not any(parents)
    assert all(ids_at(lab, [(15, 20), (65, 60)]) == ids_at(labels[0], [(15, 20), (65, 60)])
               for lab in labels)
    # Without the rule the half rod is beyond the gate: it starts a new track for a frame
    # (gap closing gives the rod its ID back afterwards).
    rod, _, _ = _rod_ids(frames, extent_links=False)
    assert rod[3] != rod[0] and rod[4] == rod[0]


def test_a_small_fragment_in_a_lost_cell_does_not_take_its_track():
    # Only a fragment (a fifth of the rod) is found for a frame: too small to be the rod.
    fragment = (1, 40, 110, 5, 5)
    scenes = [[ROD]] * 3 + [[fragment]] + [[ROD]] * 3
    rod, _, _ = _rod_ids([ellipses(SHAPE, OTHERS + c) for c in scenes])
    assert rod[3] != rod[0] and rod[4] == rod[0] == rod[6]


def test_extent_links_is_a_parameter_on_by_default():
    assert LapParams().extent_links is True
    assert LapParams(extent_links=False).extent_links is False
