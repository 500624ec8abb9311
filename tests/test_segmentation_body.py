"""The top-hat body step of ``logstd`` (pyama_builtin.segmentation.body) and its fast parts:
each equals the float32 / scikit-image computation it replaces."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.filters import threshold_li

from pyama_builtin.segmentation import body
from pyama_builtin.segmentation.grey import black_tophat, white_tophat
from pyama_builtin.segmentation.morphology import fill_holes
from pyama_builtin.segmentation.objects import estimate_cell_width
from pyama_builtin.segmentation.tophat import noise_sigma
from pyama_framework.testing.synthetic import SyntheticScene


def _noise_sigma_float(image: np.ndarray) -> float:
    """The pixel-noise sigma as computed before the integer path (float32 differences)."""
    rows = np.asarray(image[::2], dtype=np.float32)
    diff = np.abs(rows[:, 1:] - rows[:, :-1])
    sigma = 1.4826 * float(np.median(diff)) / np.sqrt(2.0)
    if sigma == 0.0:
        sigma = float(diff.mean()) / np.sqrt(2.0)
    return max(sigma, 1e-6)


def _tophat_body_reference(image, sign, coarse_body, width, scale):
    """The body step as it was: scipy labels, float32 top-hat, skimage's float Li, float noise."""
    if width is None:
        labels, n = ndi.label(fill_holes(coarse_body), structure=np.ones((3, 3), dtype=bool))
        area = np.bincount(labels.ravel(), minlength=n + 1)
        width = 2.0 * estimate_cell_width(labels, ndi.find_objects(labels), area[1:])
    size = max(3, int(round(scale * width)) | 1)
    top = (white_tophat if sign > 0 else black_tophat)(image, size)
    sample = top[::2, ::2]
    if sample.max() <= sample.min():
        return np.zeros(image.shape, dtype=bool)
    return top > max(float(threshold_li(sample)), 3.0 * _noise_sigma_float(image))


def _bright_frame(seed: int = 4) -> np.ndarray:
    """A synthetic phase frame mirrored around its background: bright cells, dark rims."""
    frame = SyntheticScene(512, 512, n_frames=1, n_cells=40, seed=seed).frame(0).phase
    level = float(np.median(frame))
    return np.clip(np.rint(2 * level - frame.astype(np.float64)), 0, 65535).astype(np.uint16)


def _coarse_body(image: np.ndarray, sign: float) -> np.ndarray:
    """A body mask on the 2x-shrunk grid, as logstd hands it over (pixels on the cells' side)."""
    half = image[::2, ::2].astype(np.float32)
    return sign * (half - np.median(half)) > 3.0 * noise_sigma(image)


def _real_frames():
    datasets = pytest.importorskip("pyama_framework.testing.datasets")
    frames = []
    for name, ts in (("psc", (0, 25, 49)), ("bsubtilis", (0, 3)), ("c2c12", (0,))):
        try:
            movie = datasets.load_movie(name)
        except datasets.DatasetUnavailable as error:
            pytest.skip(f"real movie {name!r} unavailable (offline?): {error}")
        frames += [movie.images[t] for t in ts]
    return frames


# ------------------------------------------------------------------ pixel noise
@pytest.mark.parametrize("dtype,shape", [(np.uint16, (64, 81)), (np.uint16, (65, 80)), (np.uint8, (50, 33))])
def test_noise_sigma_of_integer_frames_equals_the_float_computation(dtype, shape):
    rng = np.random.default_rng(shape[1])
    top = np.iinfo(dtype).max
    image = np.clip(rng.normal(top * 0.4, top * 0.01, shape), 0, top).astype(dtype)
    assert noise_sigma(image) == _noise_sigma_float(image)
    assert noise_sigma(image[3:, 1:]) == _noise_sigma_float(image[3:, 1:])  # a view, odd counts


def test_noise_sigma_of_a_quantised_smooth_frame_falls_back_to_the_mean():
    # Most neighbours equal: the median difference is 0 and the mean takes over.
    image = np.zeros((40, 40), dtype=np.uint8)
    image[:, 30:] = 3
    assert noise_sigma(image) == _noise_sigma_float(image)
    assert noise_sigma(image) == pytest.approx(3 * 20 / (20 * 39) / np.sqrt(2.0))


def test_noise_sigma_on_real_frames_equals_the_float_computation():
    for image in _real_frames():
        assert noise_sigma(image) == _noise_sigma_float(image)


# ------------------------------------------------------------------ top-hat
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_integer_tophat_equals_the_float_tophat(dtype, sign):
    rng = np.random.default_rng(7)
    info = np.iinfo(dtype)
    image = rng.integers(info.min, int(info.max) + 1, size=(47, 61)).astype(dtype)  # full range
    top = body.integer_tophat(image, 9, sign)
    expected = (white_tophat if sign > 0 else black_tophat)(image, 9)
    assert top.dtype == (np.uint8 if dtype == np.uint8 else np.uint16)
    np.testing.assert_array_equal(top.astype(np.float32), expected)


def test_integer_tophat_leaves_float_frames_to_the_float_path():
    assert body.integer_tophat(np.zeros((8, 8), dtype=np.float32), 3, 1.0) is None
    assert body.integer_tophat(np.zeros((8, 8), dtype=np.int32), 3, 1.0) is None


# ------------------------------------------------------------------ Li's threshold
def test_li_threshold_of_integers_is_skimages_own():
    rng = np.random.default_rng(11)
    for _ in range(40):
        spread = int(rng.integers(2, 60_000))
        values = np.concatenate([rng.integers(0, spread // 3 + 1, 5_000),
                                 rng.integers(spread // 2, spread, int(rng.integers(10, 3_000)))])
        values = values.astype(np.uint8 if spread < 256 else np.uint16)
        if values.max() > values.min():
            assert body.li_threshold(values) == float(threshold_li(values))


def test_li_threshold_of_a_real_tophat_matches_skimages_float_iteration():
    """The body step's sample (every 2nd pixel of the top-hat) of real frames: the histogram
    path equals skimage's integer path exactly and its float path within 1e-3."""
    for image in _real_frames() + [_bright_frame()]:
        for sign in (1.0, -1.0):
            top = body.integer_tophat(image, 23, sign)[::2, ::2]
            fast = body.li_threshold(top)
            assert fast == float(threshold_li(top))
            assert abs(fast - float(threshold_li(top.astype(np.float32)))) < 1e-3


def test_li_threshold_edge_cases():
    assert body.li_threshold(np.full((4, 4), 7, dtype=np.uint16)) is None
    assert body.li_threshold(np.zeros(0, dtype=np.uint8)) is None
    values = np.array([1.5, 2.25, 9.0, 10.5], dtype=np.float32)  # floats: skimage's float path
    assert body.li_threshold(values) == float(threshold_li(values))
    # integer-valued floats on request take the histogram path
    floats = np.array([0, 1, 1, 2, 40, 41, 43], dtype=np.float32)
    assert body.li_threshold(floats, integer=True) == float(threshold_li(floats.astype(np.uint16)))


# ------------------------------------------------------------------ the whole step
def test_body_width_equals_the_scipy_labelling():
    image = _bright_frame()
    coarse = _coarse_body(image, 1.0)
    labels, n = ndi.label(fill_holes(coarse), structure=np.ones((3, 3), dtype=bool))
    area = np.bincount(labels.ravel(), minlength=n + 1)
    expected = 2.0 * estimate_cell_width(labels, ndi.find_objects(labels), area[1:])
    assert body.body_width(coarse) == expected
    assert 10 < expected < 40  # cells of semi-axes 6..12 px


def test_tophat_body_equals_the_float_computation_on_synthetic_and_real_frames():
    frames = [(_bright_frame(), 1.0), (_bright_frame(5), 1.0)]
    frames += [(image, sign) for image in _real_frames() for sign in (1.0, -1.0)]
    for image, sign in frames:
        coarse = _coarse_body(image, sign)
        fast = body.tophat_body(image, sign, coarse, None, 1.5)
        assert fast.dtype == bool and fast.shape == image.shape
        np.testing.assert_array_equal(fast, _tophat_body_reference(image, sign, coarse, None, 1.5))
        # a float frame takes the float path and gives the same mask
        np.testing.assert_array_equal(body.tophat_body(image.astype(np.float32), sign, coarse, None, 1.5), fast)


def test_tophat_body_keeps_bright_cells_and_drops_flat_frames():
    image = _bright_frame()
    truth = SyntheticScene(512, 512, n_frames=1, n_cells=40, seed=4).frame(0).labels > 0
    kept = body.tophat_body(image, 1.0, _coarse_body(image, 1.0), None, 1.5)
    # the bodies stand out; of the background only noise peaks above its local minimum do
    # (measured 99.8 % and 0.9 %; logstd keeps a pixel only if its deviation test passes too)
    assert np.count_nonzero(kept & truth) > 0.95 * np.count_nonzero(truth)
    assert np.count_nonzero(kept & ~truth) < 0.03 * np.count_nonzero(~truth)
    flat = np.full((64, 64), 1000, dtype=np.uint16)
    assert not body.tophat_body(flat, 1.0, np.zeros((32, 32), dtype=bool), 10.0, 1.5).any()


def test_logstd_auto_body_is_the_tophat_for_bright_cells_only():
    """``body="auto"`` (the default) takes the top-hat body when the frame's cells read bright
    and the block-background body when they read dark. On this scene (realistic optics:
    halos, blur, debris) the two bodies give different labels both ways round, so taking the
    wrong one would show; that the top-hat body is the better one on real bright cells is
    tests/test_segmentation_real.py's PSC test."""
    from pyama_builtin.segmentation.logstd import segment_logstd
    from pyama_framework.testing.synthetic import REALISTIC_OPTICS

    dark = SyntheticScene(512, 512, n_frames=1, n_cells=40, seed=4, n_debris=20, **REALISTIC_OPTICS).frame(0).phase
    level = float(np.median(dark))
    bright = np.clip(np.rint(2 * level - dark.astype(np.float64)), 0, 65535).astype(np.uint16)
    for frame, chosen, other in ((bright, "tophat", "background"), (dark, "background", "tophat")):
        auto = segment_logstd(frame)
        np.testing.assert_array_equal(auto, segment_logstd(frame, body=chosen))
        assert not np.array_equal(auto, segment_logstd(frame, body=other))
        assert auto.max() >= 36  # the 40 cells are found
