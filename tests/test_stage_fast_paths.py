"""The fast paths of the track and extract stages give exactly what the direct computations
give: the pruned label growth, the sparse per-frame cell table, the one-scan label check,
the per-frame memo of the features' pixel table and the uint16 rendering of trackers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from pyama_builtin.features._pixels import _cell_pixels, cell_pixels
from pyama_builtin.tracking._confirm import CellFrame as TrackerFrame
from pyama_framework.stages.context import StageError, as_label_image, label_image_and_ids
from pyama_framework.stages.extract import _offsets_far_to_near, cells_in_frame, grow_labels
from pyama_framework.types import CellFrame


def random_labels(seed: int, dtype=np.uint16) -> np.ndarray:
    """Touching discs clipped by the frame edges, plus single pixels and thin lines."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(8, 70, 2)
    labels = np.zeros((h, w), dtype=np.int64)
    yy, xx = np.mgrid[:h, :w]
    for i in range(1, int(rng.integers(2, 25))):
        cy, cx, r = rng.uniform(-3, h + 3), rng.uniform(-3, w + 3), rng.uniform(0.5, 7)
        labels[((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (labels == 0)] = i
    labels[rng.integers(0, h, 5), rng.integers(0, w, 5)] = rng.integers(1, 30, 5)
    labels[int(rng.integers(0, h)), :] = np.where(rng.random(w) < 0.3, 31, labels[int(rng.integers(0, h)), :])
    return labels.astype(dtype)


def grow_every_pixel_by_every_offset(labels: np.ndarray, distance: float) -> np.ndarray:
    """The direct form of :func:`grow_labels`: every labelled pixel shifted by every offset,
    farthest first, onto background only; nearer offsets overwrite farther ones."""
    if distance < 1:
        return labels
    h, w = labels.shape
    ys, xs = np.nonzero(labels)
    grown = labels.copy()
    for dy, dx in zip(*_offsets_far_to_near(distance)):
        ty, tx = ys + dy, xs + dx
        inside = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
        src_y, src_x, ty, tx = ys[inside], xs[inside], ty[inside], tx[inside]
        free = labels[ty, tx] == 0
        grown[ty[free], tx[free]] = labels[src_y[free], src_x[free]]
    return grown


@pytest.mark.parametrize("distance", [1, 1.5, 2, 2.9, 4, 6.5])
def test_grow_labels_equals_growing_every_pixel(distance):
    for seed in range(40):
        labels = random_labels(seed, [np.uint16, np.int32, np.uint8, np.int64][seed % 4])
        grown = grow_labels(labels, distance)
        assert grown.dtype == labels.dtype
        np.testing.assert_array_equal(grown, grow_every_pixel_by_every_offset(labels, distance),
                                      err_msg=f"seed {seed}")


def test_grow_labels_on_empty_full_and_tiny_frames():
    for labels in (np.zeros((9, 7), np.uint16), np.full((5, 6), 3, np.uint16), np.array([[0, 2]], np.uint16),
                   np.array([[1]], np.uint16)):
        np.testing.assert_array_equal(grow_labels(labels, 3), grow_every_pixel_by_every_offset(labels, 3))


def test_cells_in_frame_equals_find_objects_and_bincount():
    for seed in range(60):
        labels = random_labels(seed, [np.uint16, np.int32, np.uint8][seed % 3])
        ids, boxes, areas, centroids = cells_in_frame(labels)
        slices = ndi.find_objects(labels)
        expected = [i + 1 for i, s in enumerate(slices) if s is not None]
        np.testing.assert_array_equal(ids, expected)
        assert ids.dtype == boxes.dtype == np.int64
        np.testing.assert_array_equal(
            boxes, [[slices[i - 1][0].start, slices[i - 1][1].start, slices[i - 1][0].stop, slices[i - 1][1].stop]
                    for i in expected])
        np.testing.assert_array_equal(areas, ndi.sum_labels(np.ones(labels.shape), labels, ids))
        np.testing.assert_allclose(centroids, np.array(ndi.center_of_mass(np.ones(labels.shape), labels, ids)),
                                   rtol=0, atol=1e-9)
    ids, boxes, areas, centroids = cells_in_frame(np.zeros((4, 5), np.uint16))
    assert ids.shape == areas.shape == (0,) and boxes.shape == (0, 4) and centroids.shape == (0, 2)


def test_label_image_and_ids_checks_once_and_lists_the_labels():
    labels = random_labels(3, np.int64)
    image, ids = label_image_and_ids(labels, labels.shape, "tracker 'x'")
    assert image.dtype == np.uint16 and np.array_equal(image, labels)
    np.testing.assert_array_equal(ids, np.unique(labels[labels != 0]))
    small = labels.astype(np.uint16)
    assert as_label_image(small, small.shape, "x") is small  # stored as is, no range pass needed
    assert np.array_equal(label_image_and_ids(labels > 0, labels.shape, "x")[1], [1])  # bool
    empty, none = label_image_and_ids(np.zeros((3, 3), np.uint32), (3, 3), "x")
    assert none.size == 0 and empty.dtype == np.uint16
    for bad in (np.array([[0, -1]]), np.array([[0, 70_000]]), np.array([[0, 2**40]], np.uint64)):
        for check in (as_label_image, label_image_and_ids):
            with pytest.raises(StageError, match="outside 0..65535"):
                check(bad, bad.shape, "x")
    with pytest.raises(StageError, match="dtype float64"):
        label_image_and_ids(np.zeros((2, 2)), (2, 2), "x")
    with pytest.raises(StageError, match="expected"):
        label_image_and_ids(np.zeros((2, 2), np.uint16), (2, 3), "x")


def test_cell_pixels_is_computed_once_per_frame_and_read_only():
    labels = random_labels(5)
    ids = np.unique(labels[labels != 0]).astype(np.int64)[::2]  # some cells not asked for
    frame = CellFrame(labels, labels, None, ids, np.zeros((ids.size, 4), np.int64))
    first, again = cell_pixels(frame), cell_pixels(frame)
    assert first[0] is again[0] and first[1] is again[1]
    for got, direct in zip(first, _cell_pixels(frame)):
        np.testing.assert_array_equal(got, direct)
        assert not got.flags.writeable
    other = CellFrame(labels, labels, None, ids[:1], np.zeros((1, 4), np.int64))
    assert len(cell_pixels(other)[0]) == np.count_nonzero(labels == ids[0])  # per frame, not global


def test_trackers_render_uint16_while_ids_fit():
    pixels, label = np.array([0, 5, 7]), np.array([0, 1, 1])
    small = TrackerFrame((3, 3), pixels, label, np.array([1, 65535], np.uint32), np.ones(2)).render()
    big = TrackerFrame((3, 3), pixels, label, np.array([1, 65536], np.uint32), np.ones(2)).render()
    assert small.labels.dtype == np.uint16 and big.labels.dtype == np.uint32
    np.testing.assert_array_equal(small.labels.ravel()[pixels], [1, 65535, 65535])
    np.testing.assert_array_equal(big.labels.ravel()[pixels], [1, 65536, 65536])
