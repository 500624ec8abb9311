"""Kernels of the built-in plugins (OpenCV, pixel lists) equal the numpy / scipy results they replace."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from pyama_builtin import cvops
from pyama_builtin.segmentation import morphology
from pyama_builtin.segmentation.logstd import _box_sum, _line_sum


@pytest.mark.parametrize("radius,iterations", [(1, 2), (3, 1), (10, 1), (12, 2)])
def test_disk_morphology_on_both_paths_matches_scipy(radius, iterations):
    # radius <= 10 goes through OpenCV, larger disks through the row runs
    mask = np.random.default_rng(radius).random((90, 70)) < 0.05
    np.testing.assert_array_equal(morphology.dilate(mask, radius, iterations),
                                  ndi.binary_dilation(mask, disk(radius), iterations=iterations))
    np.testing.assert_array_equal(morphology.erode(~mask, radius, iterations),
                                  ndi.binary_erosion(~mask, disk(radius), iterations=iterations,
                                                     border_value=1))


def test_morphology_accepts_strided_masks_and_leaves_them_alone():
    mask = np.random.default_rng(5).random((80, 80)) < 0.4
    view = mask[::2, 1::2]
    before = view.copy()
    np.testing.assert_array_equal(cvops.dilate_disk(view, 1), ndi.binary_dilation(before, disk(1)))
    np.testing.assert_array_equal(cvops.fill_holes(view), ndi.binary_fill_holes(before))
    np.testing.assert_array_equal(view, before)


def test_fill_holes_with_background_split_along_the_border():
    # Two background regions touch the border (a wall cuts the frame) and one ring holds a hole.
    mask = np.zeros((30, 40), dtype=bool)
    mask[:, 20] = True
    mask[5:12, 5:12] = True
    mask[7:10, 7:10] = False
    filled = cvops.fill_holes(mask)
    np.testing.assert_array_equal(filled, ndi.binary_fill_holes(mask))
    assert filled[8, 8] and not filled[0, 0] and not filled[0, 39]


def test_box_sum_equals_slice_sums_on_integer_frames():
    # Window sums of integers below 2**24 are exact in float32, whatever the order.
    rng = np.random.default_rng(6)
    x = (rng.integers(0, 1024, (64, 48)) - 512).astype(np.float32)  # 49 squares < 2**24
    for size in (3, 5, 7):
        expected = _line_sum(_line_sum(x, size, axis=0), size, axis=1)
        np.testing.assert_array_equal(cvops.box_sum(x, size), expected)
        np.testing.assert_array_equal(cvops.box_sum(x * x, size), _box_sum(x * x, size))
    # and both are the exact integer sums, the border mirrored (numpy's "symmetric")
    padded = np.pad(x.astype(np.int64), 2, mode="symmetric")
    exact = sum(padded[dy:dy + 64, dx:dx + 48] for dy in range(5) for dx in range(5))
    np.testing.assert_array_equal(cvops.box_sum(x, 5), exact.astype(np.float32))


@pytest.mark.parametrize("radius", [5.0, 3.5, 1.0])
def test_background_exclusion_dilation_matches_scipy(radius):
    from pyama_builtin.background.tiled_spline import _dilate_disk

    mask = np.random.default_rng(int(radius * 2)).random((120, 90)) < 0.01
    r = int(radius)
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    footprint = np.abs(dx) <= np.floor(np.sqrt(radius * radius - dy * dy))
    np.testing.assert_array_equal(_dilate_disk(mask, radius), ndi.binary_dilation(mask, footprint))


def test_object_slices_equal_find_objects():
    from pyama_builtin.segmentation.objects import object_slices

    mask = np.random.default_rng(8).random((70, 90)) < 0.3
    labels, n = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    pixels = np.flatnonzero(labels)
    assert object_slices(pixels, labels.ravel()[pixels], n, 90) == ndi.find_objects(labels)
