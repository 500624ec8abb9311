"""The built-in trackers on synthetic time-lapses (with and without the segmenter in front),
and ``iou_hungarian``'s gap closing, laziness and edge cases. Lineage, large motion and the
``lap`` tracker's own behaviour: ``test_tracking_lap.py``; real movies: ``test_tracking_real.py``."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from pydantic import ValidationError

from pyama_builtin.segmentation.logstd import segment_logstd
from pyama_builtin.tracking import IouHungarianParams
from pyama_builtin.tracking.iou_hungarian import track_iou_hungarian as _track_iou_hungarian
from pyama_builtin.tracking.lap import track_lap
from pyama_framework.registry import discover
from pyama_framework.testing.synthetic import SyntheticScene


def track_iou_hungarian(frames, **params):
    """The tracker's label images (its lineage is tested in test_tracking_lap.py)."""
    for tracked in _track_iou_hungarian(frames, **params):
        yield tracked.labels


def labels_of(tracker, frames, **params):
    return [tracked.labels for tracked in tracker(frames, **params)]


TRACKERS = {"iou_hungarian": _track_iou_hungarian, "lap": track_lap}


def disks(shape, cells):
    """Label image with filled disks: ``cells`` is [(label, y, x, radius), ...]."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, dtype=np.uint16)
    for label, y, x, r in cells:
        labels[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = label
    return labels


def id_at(tracked, y, x):
    return int(tracked[y, x])


def true_to_tracked(truth: np.ndarray, tracked: np.ndarray) -> dict[int, int]:
    """True cell -> tracked ID of the object covering more than half of it."""
    t, p = truth.ravel().astype(np.int64), tracked.ravel().astype(np.int64)
    inside = t > 0
    t, p = t[inside], p[inside]
    n_p = int(p.max()) + 1 if p.size else 1
    keys, counts = np.unique(t * n_p + p, return_counts=True)
    cell, tid = np.divmod(keys, n_p)
    ok = (tid > 0) & (counts > 0.5 * np.bincount(t)[cell])
    return dict(zip(cell[ok].tolist(), tid[ok].tolist()))


def link_report(scene, tracked_frames, frames, min_area=0, roles=None):
    """(true links, recovered links, tracked IDs reused for a second true cell).

    A true link joins consecutive appearances of a cell (across its dropout gap too); it is
    recovered when both appearances carry the same tracked ID. Links with an end smaller
    than ``min_area`` pixels, or of cells whose role is not in ``roles``, are not counted.
    """
    maps = [true_to_tracked(f.labels, tr) for f, tr in zip(frames, tracked_frames)]
    links = recovered = 0
    for cell in scene.cells:
        if roles is not None and cell.role not in roles:
            continue
        i = cell.track_id - 1
        seen = [t for t, f in enumerate(frames) if f.visible[i]]
        for a, b in zip(seen[:-1], seen[1:]):
            if min(frames[a].area[i], frames[b].area[i]) < min_area:
                continue
            links += 1
            ida, idb = maps[a].get(cell.track_id), maps[b].get(cell.track_id)
            recovered += ida is not None and ida == idb
    owner, reused = {}, 0
    for m in maps:
        for cell_id, tid in m.items():
            reused += owner.setdefault(tid, cell_id) != cell_id
    return links, recovered, reused


@pytest.fixture(scope="module")
def scene():
    return SyntheticScene(height=384, width=384, n_frames=12, n_cells=30, seed=7)


@pytest.fixture(scope="module")
def frames(scene):
    return list(scene.frames())


def shuffled_truth(frames):
    """True labels renumbered at random in every frame (the tracker must not rely on them)."""
    rng = np.random.default_rng(0)
    for f in frames:
        lut = np.concatenate([[0], rng.permutation(int(f.labels.max())) + 1]).astype(np.uint16)
        yield lut[f.labels]


# ------------------------------------------------------------------ accuracy
@pytest.mark.parametrize("name", TRACKERS)
def test_true_masks_are_tracked_perfectly(scene, frames, name):
    tracked = labels_of(TRACKERS[name], shuffled_truth(frames))
    links, recovered, reused = link_report(scene, tracked, frames)
    assert links > 300
    assert recovered == links
    assert reused == 0


@pytest.mark.parametrize("name", TRACKERS)
def test_drifting_scene_is_tracked_perfectly_by_lap_only(name):
    """The whole scene drifts 25 px per frame (about twice the cells' width). Cells that
    enter or leave through the edge are left out: the scene makes them cross the field
    against the drift, i.e. move ~25 px/frame on their own, beyond the default gate."""
    scene = SyntheticScene(height=384, width=384, n_frames=8, n_cells=30, seed=11, drift=(9.0, 23.0))
    frames = list(scene.frames())
    tracked = labels_of(TRACKERS[name], shuffled_truth(frames))
    links, recovered, reused = link_report(scene, tracked, frames, min_area=50,
                                           roles=("regular", "appears"))
    assert links > 100
    if name == "lap":
        assert recovered == links and reused == 0
    else:
        assert recovered < 0.2 * links


def test_dropout_keeps_its_id_only_with_gap_closing(scene, frames):
    dropped = [c for c in scene.cells if c.dropout_frame is not None]
    assert len(dropped) == 1
    cell = dropped[0]
    t = cell.dropout_frame
    for max_gap, same in ((1, True), (0, False)):
        tracked = list(track_iou_hungarian(shuffled_truth(frames), max_gap=max_gap))
        before = true_to_tracked(frames[t - 1].labels, tracked[t - 1])[cell.track_id]
        after = true_to_tracked(frames[t + 1].labels, tracked[t + 1])[cell.track_id]
        assert (before == after) is same


@pytest.mark.parametrize("name", TRACKERS)
def test_segmented_scene_links(scene, frames, name):
    """Segmenter + tracker: >= 99 % of the links between cells big enough to segment
    (>= the segmenter's min_size of 50 px; smaller ones are slivers entering or leaving
    through the edge) are recovered, no ID ever jumps to another cell, and no division is
    invented (the scene has none)."""
    out = list(TRACKERS[name](segment_logstd(f.phase) for f in frames))
    tracked = [o.labels for o in out]
    links, recovered, reused = link_report(scene, tracked, frames, min_area=50)
    assert recovered >= 0.99 * links
    assert reused == 0
    assert not any(o.parents for o in out)


# ------------------------------------------------------------------ behaviour
def test_new_cells_get_new_ids_in_any_frame():
    a = disks((64, 64), [(1, 15, 15, 6)])
    b = disks((64, 64), [(5, 16, 15, 6), (9, 45, 45, 6)])
    c = disks((64, 64), [(2, 45, 46, 6), (1, 17, 15, 6)])
    out = list(track_iou_hungarian([a, b, c]))
    assert id_at(out[0], 15, 15) == id_at(out[1], 16, 15) == id_at(out[2], 17, 15) == 1
    assert id_at(out[1], 45, 45) == id_at(out[2], 45, 46) == 2


def test_single_frame_and_empty_frames():
    labels = disks((40, 50), [(7, 10, 10, 4), (3, 30, 30, 4)])
    (only,) = track_iou_hungarian([labels])
    assert only.shape == labels.shape
    assert sorted(np.unique(only)) == [0, 1, 2]
    empty = np.zeros((40, 50), dtype=np.uint16)
    out = list(track_iou_hungarian([empty, labels, empty, empty, labels], max_gap=1))
    assert not out[0].any() and not out[2].any() and not out[3].any()
    assert sorted(np.unique(out[1])) == [0, 1, 2]
    assert sorted(np.unique(out[4])) == [0, 3, 4]  # gap of 2 > max_gap: new tracks
    bridged = list(track_iou_hungarian([empty, labels, empty, empty, labels]))  # default max_gap 2
    np.testing.assert_array_equal(bridged[4], bridged[1])


def test_mask_iou_does_not_link_cells_whose_boxes_overlap():
    """pyama-core's bbox IoU gave a cell's ID to a neighbour whose box overlapped; mask IoU
    only links cells whose pixels overlap."""
    ring = disks((60, 60), [(1, 30, 30, 14)]) - disks((60, 60), [(1, 30, 30, 11)])
    centre = disks((60, 60), [(1, 30, 30, 7)])
    by_mask = list(track_iou_hungarian([ring, centre], iou="mask"))
    by_box = list(track_iou_hungarian([ring, centre], iou="bbox"))
    assert id_at(by_mask[1], 30, 30) == 2
    assert id_at(by_box[1], 30, 30) == 1


def test_assignment_is_one_to_one_and_prefers_the_best_overlap():
    prev = disks((60, 80), [(1, 30, 30, 10)])
    # Two cells replace it, only one lying mostly on it (not a division): the one that
    # overlaps it more inherits the ID.
    cur = disks((60, 80), [(4, 30, 24, 8), (8, 30, 41, 5)])
    out = list(track_iou_hungarian([prev, cur]))
    assert id_at(out[1], 30, 24) == 1
    assert id_at(out[1], 30, 41) == 2


def test_min_iou():
    a = disks((60, 60), [(1, 30, 20, 8)])
    b = disks((60, 60), [(1, 30, 32, 8)])  # shifted by 12 px: IoU ~0.05
    assert id_at(list(track_iou_hungarian([a, b]))[1], 30, 32) == 2
    assert id_at(list(track_iou_hungarian([a, b], min_iou=0.01))[1], 30, 32) == 1


def test_size_filters_drop_cells():
    labels = disks((60, 60), [(1, 15, 15, 2), (2, 40, 40, 8)])  # 13 px and 197 px
    (out,) = track_iou_hungarian([labels], min_size=20)
    assert out[15, 15] == 0 and out[40, 40] == 1
    (out,) = track_iou_hungarian([labels], max_size=100)
    assert out[15, 15] == 1 and out[40, 40] == 0


def test_arbitrary_label_values_and_dtypes():
    labels = disks((50, 50), [(1, 10, 10, 4), (2, 35, 35, 4)]).astype(np.int64)
    labels[labels == 2] = 2**40  # sparse, huge label values
    first, second = track_iou_hungarian([labels, labels.astype(np.uint64)])
    assert first.dtype == np.uint16  # the smallest unsigned type that holds the IDs
    np.testing.assert_array_equal(first, second)
    assert sorted(np.unique(first)) == [0, 1, 2]


def test_consumes_lazily_and_leaves_inputs_untouched():
    frames = [disks((32, 32), [(1, 10, 10 + t, 4)]) for t in range(5)]
    copies = [f.copy() for f in frames]
    pulled = []

    def source():
        for t, f in enumerate(frames):
            pulled.append(t)
            yield f

    # Divisions are confirmed by the next 2 frames: the output lags by exactly that much
    # (memory stays constant); without divisions it does not lag at all.
    tracker = track_iou_hungarian(source())
    next(tracker)
    assert pulled == [0, 1, 2]
    next(track_iou_hungarian(source(), divisions=False))
    assert pulled == [0, 1, 2, 0]
    rest = list(tracker)
    assert len(rest) == 4 and all(id_at(r, 10, 12 + t) == 1 for t, r in enumerate(rest))
    for f, c in zip(frames, copies):
        np.testing.assert_array_equal(f, c)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), dtype=np.float32), np.zeros((2, 4, 4), dtype=np.uint16),
                                 np.full((4, 4), -1, dtype=np.int32)])
def test_rejects_non_label_frames(bad):
    with pytest.raises(ValueError):
        list(track_iou_hungarian([bad]))


def test_rejects_changing_frame_shape():
    with pytest.raises(ValueError):
        list(track_iou_hungarian([np.zeros((4, 4), np.uint16), np.zeros((4, 5), np.uint16)]))


# -------------------------------------------------------------- registration
def test_registration_is_lazy_and_params_match_the_function():
    registration = discover().get("tracker", "iou_hungarian")
    assert isinstance(registration.implementation, str)
    function = registration.load()
    assert function is _track_iou_hungarian
    signature = inspect.signature(function)
    for name, value in registration.validate_params({}).model_dump().items():
        assert signature.parameters[name].default == value


@pytest.mark.parametrize("bad", [{"min_iou": 1.5}, {"iou": "centroid"}, {"max_gap": -1},
                                 {"min_size": 100, "max_size": 10}, {"typo": 1}])
def test_invalid_params_are_rejected(bad):
    with pytest.raises(ValidationError):
        IouHungarianParams.model_validate(bad)
