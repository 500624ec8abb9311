"""Kernels of the built-in plugins (OpenCV, pixel lists) equal the numpy / scipy results they replace."""

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.morphology import disk

from pyama_builtin import cvops
from pyama_builtin.segmentation import morphology
from pyama_builtin.segmentation.variance import _box_sum, _line_sum


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


def _blobs(seed: int, shape=(120, 97), level=0.53) -> np.ndarray:
    """Touching and separate objects, some on the border, some one pixel across."""
    return ndi.gaussian_filter(np.random.default_rng(seed).random(shape), 1.5) > level


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_equals_ndi_label_with_its_numbering(seed):
    for mask in (_blobs(seed), _blobs(seed)[::-1, ::2], np.zeros((5, 7), bool), np.ones((4, 3), bool)):
        expected, n = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
        labels, count = cvops.label(mask)
        assert count == n and labels.dtype == np.int32
        np.testing.assert_array_equal(labels, expected)
        labels, count = cvops.label(mask, np.flatnonzero(mask))
        np.testing.assert_array_equal(labels, expected)


def test_raster_order_is_restored_from_any_numbering():
    # OpenCV's block-based scans number objects otherwise: the fallback must renumber them
    mask = _blobs(4)
    expected, n = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    assert n > 10
    shuffled = np.random.default_rng(0).permutation(n) + 1
    scrambled = np.concatenate([[0], shuffled]).astype(np.int32)[expected]
    assert (scrambled != expected).any()
    np.testing.assert_array_equal(cvops.in_raster_order(scrambled, n), expected)


def test_clip_negative_equals_maximum():
    x = np.random.default_rng(9).normal(size=(50, 70)).astype(np.float32)
    expected = np.maximum(x, 0.0)
    assert cvops.clip_negative(x) is x
    np.testing.assert_array_equal(x, expected)


def test_inscribed_radii_from_one_mosaic_equal_one_transform_per_object():
    from pyama_builtin.segmentation.objects import _inscribed_radii, _inscribed_radius

    labels, n = ndi.label(_blobs(5, (160, 140), 0.5), structure=np.ones((3, 3), dtype=bool))
    slices = ndi.find_objects(labels)
    picked = np.arange(n)
    expected = [_inscribed_radius(labels[slices[i]] == i + 1) for i in picked]
    np.testing.assert_array_equal(_inscribed_radii(labels, slices, picked), expected)


def test_renumber_in_place_equals_a_new_frame():
    from pyama_builtin.segmentation.objects import renumber

    labels, n = ndi.label(_blobs(6), structure=np.ones((3, 3), dtype=bool))
    labels = labels.astype(np.int32)
    number = np.where(np.arange(n + 1) % 3 == 1, 0, np.arange(n + 1)).astype(np.int32)
    pixels = np.flatnonzero(labels)
    expected = number[labels]
    np.testing.assert_array_equal(renumber(labels, number, pixels), expected)
    same = labels.copy()
    assert renumber(same, number, pixels, overwrite=True) is same
    np.testing.assert_array_equal(same, expected)


@pytest.mark.parametrize("shape", [(8, 10), (7, 9), (1, 1), (6, 5)])
def test_or_pool_equals_or_of_the_four_subgrids(shape):
    from pyama_builtin.segmentation.blocks import or_pool, set_blocks

    mask = np.random.default_rng(sum(shape)).random(shape) < 0.3
    for m in (mask, mask[:, ::-1]):  # C-contiguous (uint16 pairs) and strided
        p = np.pad(m, ((0, shape[0] % 2), (0, shape[1] % 2)))
        np.testing.assert_array_equal(or_pool(m), p[::2, ::2] | p[1::2, ::2] | p[::2, 1::2] | p[1::2, 1::2])
    blocks = np.random.default_rng(1).random(or_pool(mask).shape) < 0.3
    expected = mask | np.kron(blocks, np.ones((2, 2), bool))[: shape[0], : shape[1]]
    set_blocks(mask, blocks)
    np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("shape", [(130, 200), (64, 64), (65, 1)])
def test_deviation_at_pixels_and_on_the_half_grid_equal_the_full_frame(shape):
    from pyama_builtin.segmentation.polarity import deviation_at, signed_deviation

    rng = np.random.default_rng(shape[0])
    levels = (rng.random((-(-shape[0] // 64), -(-shape[1] // 64))) * 1000).astype(np.float32)
    at = np.flatnonzero(rng.random(shape) < 0.3)
    for image in (rng.integers(0, 60000, shape).astype(np.uint16),
                  np.asfortranarray(rng.random(shape) * 5000)):  # float64, not C-contiguous
        full = signed_deviation(image, levels)
        np.testing.assert_array_equal(deviation_at(image, levels, at), full.ravel()[at])
        np.testing.assert_array_equal(signed_deviation(image[::2, ::2], levels, 32), full[::2, ::2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reconstruction_and_h_maxima_equal_skimage(seed):
    from skimage.morphology import h_maxima as skimage_h_maxima
    from skimage.morphology import reconstruction

    from pyama_builtin.segmentation.objects import h_maxima

    rng = np.random.default_rng(seed)
    # the split step's input: a smoothed distance map of touching blobs (plateaus, ties, zeros)
    distance = ndi.gaussian_filter(ndi.distance_transform_edt(_blobs(seed, (90, 110), 0.5)), 1.0)
    noisy = ndi.gaussian_filter(rng.random((60, 80)), 2.0) * 10
    steps = np.round(noisy)  # wide flat plateaus
    for image in (distance, noisy, steps):
        for h in (0.5, 1.4, 3.0, 1e9):
            found = h_maxima(image, h)
            expected = skimage_h_maxima(image, h)
            assert found.dtype == expected.dtype
            np.testing.assert_array_equal(found, expected)
        seed_image = image - 1.0
        expected = reconstruction(seed_image, image, method="dilation")
        np.testing.assert_array_equal(cvops.reconstruct_by_dilation(seed_image, image), expected)
        # stopped early, skimage finishes from the partial result: the same values
        np.testing.assert_array_equal(cvops.reconstruct_by_dilation(seed_image, image, max_steps=2), expected)
    assert h_maxima(distance, 0.5).any()
