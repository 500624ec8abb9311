"""The built-in ``tiled_spline`` background estimator."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pyama_builtin.background import TiledSplineParams
from pyama_builtin.background.tiled_spline import estimate_background
from pyama_framework.registry import discover
from pyama_framework.testing.synthetic import SyntheticScene


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.abs(estimate.astype(np.float64) - truth) / truth


def disk_labels(shape, centres, radius=8) -> np.ndarray:
    yy, xx = np.indices(shape)
    labels = np.zeros(shape, dtype=np.uint16)
    for i, (cy, cx) in enumerate(centres, start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i
    return labels


def smooth_scene(shape=(256, 320), seed=0):
    """A curved, tilted background with bright disks on top (cells) and Poisson-like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape, dtype=np.float64)
    y, x = yy / shape[0] - 0.4, xx / shape[1] - 0.6
    background = 800 * (1 + 0.2 * x - 0.1 * y) * (1 - 0.4 * (x * x + y * y))
    centres = rng.uniform(10, np.array(shape) - 10, size=(25, 2))
    labels = disk_labels(shape, centres)
    image = background + np.where(labels > 0, 500.0, 0.0)
    image = np.rint(image + rng.normal(size=shape) * np.sqrt(image)).astype(np.uint16)
    return image, labels, background


# ------------------------------------------------------------------ contract
def test_output_is_float32_frame_and_inputs_untouched():
    image, labels, _ = smooth_scene()
    image_copy, labels_copy = image.copy(), labels.copy()
    background = estimate_background(image, labels)
    assert background.dtype == np.float32 and background.shape == image.shape
    assert np.isfinite(background).all()
    np.testing.assert_array_equal(image, image_copy)
    np.testing.assert_array_equal(labels, labels_copy)


def test_deterministic():
    image, labels, _ = smooth_scene()
    np.testing.assert_array_equal(estimate_background(image, labels), estimate_background(image, labels))


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        estimate_background(np.zeros((10, 10)), np.zeros((10, 11), dtype=np.uint16))


# ------------------------------------------------------------------ accuracy
def test_constant_background_is_reproduced_exactly_under_cells():
    image = np.full((200, 300), 1234, dtype=np.uint16)
    labels = disk_labels(image.shape, [(50, 50), (150, 250), (0, 299)], radius=15)
    image[labels > 0] = 5000  # bright cells must not leak into the background
    np.testing.assert_allclose(estimate_background(image, labels), 1234, rtol=1e-5)


def test_curved_background_recovered_including_edges_and_under_cells():
    image, labels, truth = smooth_scene()
    error = relative_error(estimate_background(image, labels), truth)
    assert np.percentile(error, 99) < 0.01
    assert error.max() < 0.02  # corners and edges included
    assert error[labels > 0].mean() < 0.005


def test_unsegmented_bright_object_is_ignored():
    image, labels, truth = smooth_scene()
    image = image.copy()
    image[100:130, 100:130] = 20000  # debris the segmentation missed
    error = relative_error(estimate_background(image, labels), truth)
    assert np.percentile(error, 99) < 0.01


def test_pixels_near_cells_are_excluded_by_dilation_radius():
    """A cell's blur (a bright ring outside its mask) must not raise the background, even
    where the ring covers most of the cell-free pixels (so a median alone would not help)."""
    shape = (272, 272)
    centres = [(y, x) for y in range(17, 272, 34) for x in range(17, 272, 34)]
    labels = disk_labels(shape, centres, radius=4)
    yy, xx = np.indices(shape)
    distance = np.min([np.hypot(yy - cy, xx - cx) for cy, cx in centres], axis=0)
    ring = (distance > 4) & (distance <= 15)
    image = (500 + np.where(ring, 2000, 0) + np.where(labels > 0, 3000, 0)).astype(np.uint16)
    wide = estimate_background(image, labels, dilation_radius=12)
    np.testing.assert_allclose(wide, 500, atol=1)
    narrow = estimate_background(image, labels, dilation_radius=0)
    assert narrow.mean() > 600  # the ring is taken for background when nothing is excluded


def test_disk_dilation_matches_scipy():
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    from pyama_builtin.background.tiled_spline import _dilate_disk

    mask = np.random.default_rng(0).random((90, 70)) > 0.995
    for radius in (1, 2.5, 5, 10):
        expected = ndi.binary_dilation(mask, disk(int(radius)) if radius == int(radius) else
                                       np.hypot(*np.mgrid[-2:3, -2:3]) <= radius)
        np.testing.assert_array_equal(_dilate_disk(mask, radius), expected)


@pytest.mark.parametrize("size, n_cells", [(512, 40), (1024, 150)])
def test_synthetic_scene_error_below_3_percent_at_99th_percentile(size, n_cells):
    scene = SyntheticScene(size, size, n_frames=3, n_cells=n_cells, seed=1)
    for t in (0, 2):
        frame = scene.frame(t)
        error = relative_error(estimate_background(frame.fluorescence[0], frame.labels), frame.background[0])
        band = np.ones(error.shape, dtype=bool)
        band[128:-128, 128:-128] = False
        assert np.median(error) < 0.005
        assert np.percentile(error, 99) < 0.03
        assert error[band].max() < 0.05  # pyama-core: up to 16 % in the outer band


# ------------------------------------------------------------------ edge cases
def test_frame_without_cells():
    image, _, truth = smooth_scene()
    background = estimate_background(image, np.zeros(image.shape, dtype=np.uint16))
    assert np.percentile(relative_error(background, truth), 99) < 0.01


def test_frame_covered_by_cells_falls_back_to_the_frame_median():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 200, size=(128, 128)).astype(np.uint16)
    background = estimate_background(image, np.ones(image.shape, dtype=np.uint16))
    assert np.isfinite(background).all()
    np.testing.assert_array_equal(background, np.float32(np.median(image)))


def test_single_cell_and_cell_touching_the_border():
    _, _, truth = smooth_scene()
    noise = np.random.default_rng(1).normal(size=truth.shape) * np.sqrt(truth)
    for centre in [(128, 160), (0, 0), (255, 150)]:
        labels = disk_labels(truth.shape, [centre], radius=12)
        image = np.rint(truth + noise + np.where(labels > 0, 3000, 0)).astype(np.uint16)
        error = relative_error(estimate_background(image, labels), truth)
        assert error.max() < 0.01, centre


@pytest.mark.parametrize("shape", [(64, 64), (2, 2), (3, 7), (63, 130), (100, 17)])
def test_any_frame_size(shape):
    yy, xx = np.indices(shape)
    image = (300 + yy + 2 * xx).astype(np.uint16)  # plane: exactly representable
    labels = np.zeros(shape, dtype=np.uint16)
    if min(shape) >= 20:
        labels[5:12, 5:12] = 1
    background = estimate_background(image, labels, tile_size=4)
    assert background.shape == shape and np.isfinite(background).all()
    np.testing.assert_allclose(background, image, rtol=0.01)


def test_frame_smaller_than_a_bin_is_rejected():
    with pytest.raises(ValueError, match="at least"):
        estimate_background(np.zeros((1, 50)), np.zeros((1, 50), dtype=np.uint16))


@pytest.mark.parametrize("value", [0, 65535])
def test_uint16_extremes(value):
    image = np.full((128, 128), value, dtype=np.uint16)
    labels = disk_labels(image.shape, [(60, 60)], radius=10)
    np.testing.assert_allclose(estimate_background(image, labels), value, atol=0.05)


def test_saturated_and_dark_pixels_mixed():
    rng = np.random.default_rng(3)
    image = np.where(rng.random((128, 128)) < 0.5, 0, 65535).astype(np.uint16)
    background = estimate_background(image, np.zeros(image.shape, dtype=np.uint16))
    assert np.isfinite(background).all() and background.min() >= -1 and background.max() <= 65536


# ------------------------------------------------------------------ registration
def test_registered_with_validated_parameters():
    registration = discover().get("background", "tiled_spline")
    assert registration.params is TiledSplineParams
    params = registration.validate_params({"tile_size": 32})
    assert registration.load() is estimate_background
    image, labels, _ = smooth_scene()
    assert registration.load()(image, labels, **params.model_dump()).shape == image.shape
    with pytest.raises(Exception):
        registration.validate_params({"tile_size": 0})
    with pytest.raises(Exception):
        registration.validate_params({"tile": 16})


def test_registration_module_does_not_import_the_algorithm():
    code = "import sys, pyama_builtin.background; assert 'pyama_builtin.background.tiled_spline' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8, np.int16, np.float32])
@pytest.mark.parametrize("shape", [(64, 48), (65, 51)])
def test_binning_equals_the_sum_of_the_four_subgrids_in_order(dtype, shape):
    from pyama_builtin.background.tiled_spline import _bin

    rng = np.random.default_rng(shape[1])
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    image = (rng.integers(info.min, info.max, shape, endpoint=True) if info else rng.random(shape) * 1e4).astype(dtype)
    foreground = rng.random(shape) < 0.05
    h, w = shape[0] // 2 * 2, shape[1] // 2 * 2
    expected = np.zeros((h // 2, w // 2), np.float32)
    touched = np.zeros((h // 2, w // 2), bool)
    for dy in (0, 1):
        for dx in (0, 1):  # the definition: summed in this order, then / 4
            expected += image[dy:h:2, dx:w:2]
            touched |= foreground[dy:h:2, dx:w:2]
    binned, found = _bin(image, foreground)
    np.testing.assert_array_equal(binned, expected / 4)
    np.testing.assert_array_equal(found, touched)
