"""Pixel-noise sigma of the top-hat segmenter and logstd's top-hat body step: the integer
path equals the float32 computation it replaces."""

from __future__ import annotations

import numpy as np
import pytest

from pyama_builtin.segmentation.tophat import noise_sigma

def _noise_sigma_float(image: np.ndarray) -> float:
    """The pixel-noise sigma as computed before the integer path (float32 differences)."""
    rows = np.asarray(image[::2], dtype=np.float32)
    diff = np.abs(rows[:, 1:] - rows[:, :-1])
    sigma = 1.4826 * float(np.median(diff)) / np.sqrt(2.0)
    if sigma == 0.0:
        sigma = float(diff.mean()) / np.sqrt(2.0)
    return max(sigma, 1e-6)


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
