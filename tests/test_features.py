"""The built-in features: per-cell and per-frame implementations agree, match scikit-image,
and ``intensity_total`` with the built-in background meets the accuracy targets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops

from pyama_builtin.background.tiled_spline import estimate_background
from pyama_framework.registry import discover
from pyama_framework.testing.synthetic import SyntheticScene
from pyama_framework.types import CellFrame

SHAPE = ["area", "aspect_ratio", "eccentricity", "perimeter", "circularity", "solidity"]
INTENSITY = ["intensity_total", "intensity_mean", "intensity_median", "intensity_max", "intensity_std"]


@pytest.fixture(scope="module")
def features():
    registry = discover()
    return {name: registry.get("feature", name) for name in SHAPE + INTENSITY}


def cell_frame(labels, image, background=None, cell_ids=None) -> CellFrame:
    """A CellFrame as the framework builds it: ascending IDs and tight half-open boxes."""
    present = np.unique(labels)
    present = present[present != 0]
    cell_ids = present if cell_ids is None else np.asarray(cell_ids)
    boxes = []
    for cell in cell_ids:
        ys, xs = np.nonzero(labels == cell)
        boxes.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return CellFrame(labels, image, background, np.asarray(cell_ids, dtype=np.int64),
                     np.asarray(boxes, dtype=np.int64).reshape(-1, 4))


def per_cell(registration, frame: CellFrame) -> np.ndarray:
    implementation = registration.load()
    return np.array([implementation(*frame.crops(i)) for i in range(len(frame.cell_ids))], dtype=np.float64)


def awkward_labels() -> np.ndarray:
    """Touching cells, a hole, a single pixel, lines, a two-piece label, cells on every edge."""
    labels = np.zeros((40, 50), dtype=np.uint16)
    yy, xx = np.indices(labels.shape)
    labels[(yy - 12) ** 2 / 49 + (xx - 12) ** 2 / 16 <= 1] = 1  # ellipse
    labels[5:20, 17:30] = 2  # rectangle touching cell 1
    labels[10:14, 21:25] = 0  # ... with a hole
    labels[30, 30] = 3  # single pixel
    labels[25, 5:15] = 4  # horizontal line
    labels[22:35, 40] = 5  # vertical line
    labels[0:4, 35:50] = 6  # top edge and right edge
    labels[36:40, 0:8] = 7  # bottom-left corner
    labels[28:32, 18:22] = 8  # two pieces of one label
    labels[34:37, 24:27] = 8
    labels[(np.abs(yy - xx - 5) <= 1) & (yy > 20)] = 0  # a diagonal cut
    return labels


def frames_to_check():
    rng = np.random.default_rng(0)
    labels = awkward_labels()
    image = rng.integers(0, 65536, size=labels.shape, dtype=np.uint16)
    background = rng.uniform(0, 1000, size=labels.shape).astype(np.float32)
    scene = SyntheticScene(256, 256, n_frames=1, n_cells=30, seed=4).frame(0)
    return [
        cell_frame(labels, image, background),
        cell_frame(labels, image, None),
        cell_frame(labels.astype(np.int32), image, background, cell_ids=[2, 3, 8]),  # subset
        cell_frame(scene.labels, scene.fluorescence[0], scene.background[0]),
    ]


# ------------------------------------------------------------------ registration
def test_all_features_registered_with_both_implementations(features):
    for name, registration in features.items():
        assert registration.channel_kind == ("phase" if name in SHAPE else "fluorescence")
        assert callable(registration.load()) and callable(registration.load_frame())
        assert registration.column == name


def test_registration_module_imports_nothing_heavy():
    code = (
        "import sys, pyama_builtin.features; "
        "assert not [m for m in sys.modules if m.startswith(('pyama_builtin.features.', 'skimage'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ fast path == per cell
@pytest.mark.parametrize("name", SHAPE + INTENSITY)
def test_frame_implementation_equals_per_cell(features, name):
    for frame in frames_to_check():
        expected = per_cell(features[name], frame)
        got = features[name].load_frame()(frame)
        assert got.shape == (len(frame.cell_ids),) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("name", SHAPE + INTENSITY)
def test_empty_frame_gives_no_values(features, name):
    labels = np.zeros((32, 32), dtype=np.uint16)
    frame = CellFrame(labels, np.ones((32, 32), np.uint16), None, np.zeros(0, np.int64), np.zeros((0, 4), np.int64))
    assert features[name].load_frame()(frame).shape == (0,)


@pytest.mark.parametrize("name", ["area", "perimeter", "intensity_total", "intensity_median"])
def test_large_sparse_cell_ids(features, name):
    """IDs beyond the lookup-table range take the binary-search path with the same result."""
    labels = awkward_labels().astype(np.int64)
    labels[labels > 0] += 2**31
    image = np.arange(labels.size, dtype=np.uint16).reshape(labels.shape)
    frame = cell_frame(labels, image)
    np.testing.assert_allclose(features[name].load_frame()(frame), per_cell(features[name], frame), rtol=1e-12)


# ------------------------------------------------------------------ definitions
def test_shape_features_match_regionprops(features):
    labels = awkward_labels()
    frame = cell_frame(labels, np.zeros(labels.shape, np.uint16))
    props = {p.label: p for p in regionprops(labels)}
    with np.errstate(divide="ignore"):
        expected = {
            "area": [props[i].area for i in frame.cell_ids],
            "perimeter": [props[i].perimeter for i in frame.cell_ids],
            "eccentricity": [props[i].eccentricity for i in frame.cell_ids],
            "solidity": [props[i].solidity for i in frame.cell_ids],
            "aspect_ratio": [props[i].axis_major_length / props[i].axis_minor_length
                             if props[i].axis_minor_length > 0 else np.nan for i in frame.cell_ids],
            "circularity": [4 * np.pi * props[i].area / props[i].perimeter**2
                            if props[i].perimeter > 0 else np.nan for i in frame.cell_ids],
        }
    for name, values in expected.items():
        np.testing.assert_allclose(features[name].load_frame()(frame), values, rtol=1e-9, equal_nan=True,
                                   err_msg=name)


def test_shape_values_of_simple_shapes(features):
    yy, xx = np.indices((101, 101))
    labels = np.zeros((101, 101), dtype=np.uint16)
    labels[(yy - 50) ** 2 + (xx - 50) ** 2 <= 40**2] = 1  # disk
    labels[5:9, 5:25] = 2  # 4 x 20 rectangle
    frame = cell_frame(labels, np.zeros(labels.shape, np.uint16))
    value = {name: features[name].load_frame()(frame) for name in SHAPE}
    assert value["area"][1] == 80
    # skimage's perimeter runs along the border pixels' centres, a little long for a disk
    assert 0.85 < value["circularity"][0] <= 1 and value["circularity"][1] < 0.6
    assert value["aspect_ratio"][0] == pytest.approx(1, abs=1e-3)
    assert value["eccentricity"][0] == pytest.approx(0, abs=0.05)
    # moment axes of a w x h rectangle are sqrt(12 var): ratio = sqrt((w^2 - 1)/(h^2 - 1))
    assert value["aspect_ratio"][1] == pytest.approx(np.sqrt((20**2 - 1) / (4**2 - 1)))
    assert value["solidity"][1] == 1


def test_intensity_definitions():
    labels = np.zeros((6, 6), dtype=np.uint16)
    labels[1:3, 1:4] = 7
    image = np.zeros((6, 6), dtype=np.uint16)
    image[1:3, 1:4] = [[10, 20, 30], [40, 50, 65535]]
    background = np.full((6, 6), 2.5, dtype=np.float32)
    values = np.array([10, 20, 30, 40, 50, 65535], dtype=np.float64) - 2.5
    registry = discover()
    expected = {"intensity_total": values.sum(), "intensity_mean": values.mean(),
                "intensity_median": np.median(values), "intensity_max": values.max(),
                "intensity_std": values.std()}
    for bg, shift in [(background, 0.0), (None, 2.5)]:
        frame = cell_frame(labels, image, bg)
        for name, value in expected.items():
            correction = shift * 6 if name == "intensity_total" else 0.0 if name == "intensity_std" else shift
            assert registry.get("feature", name).load_frame()(frame)[0] == pytest.approx(value + correction)


@pytest.mark.parametrize("value", [0, 65535])
def test_uint16_extremes_are_summed_exactly(value):
    labels = np.zeros((300, 300), dtype=np.uint16)
    labels[:, :200] = 1  # 60000 pixels
    image = np.full(labels.shape, value, dtype=np.uint16)
    frame = cell_frame(labels, image)
    from pyama_builtin.features.intensity import intensity_mean_frame, intensity_total_frame

    assert intensity_total_frame(frame)[0] == value * 60000
    assert intensity_mean_frame(frame)[0] == value


def test_inputs_are_not_modified(features):
    frame = frames_to_check()[0]
    copies = [frame.labels.copy(), frame.image.copy(), frame.background.copy()]
    for registration in features.values():
        registration.load_frame()(frame)
        per_cell(registration, frame)
    for before, after in zip(copies, [frame.labels, frame.image, frame.background]):
        np.testing.assert_array_equal(before, after)


# ------------------------------------------------------------------ accuracy with the built-in background
@pytest.mark.parametrize("size, n_cells", [(512, 40), (1024, 150)])
def test_intensity_total_with_estimated_background_meets_targets(features, size, n_cells):
    """pyama-core: median 6.6 %, 90th percentile 39 % at 1024 px / 150 cells."""
    scene = SyntheticScene(size, size, n_frames=4, n_cells=n_cells, seed=2)
    errors = []
    for t in (0, 3):
        frame = scene.frame(t)
        image, truth = frame.fluorescence[0], frame.intensity_total[0]
        background = estimate_background(image, frame.labels)
        cells = cell_frame(frame.labels, image, background)
        total = features["intensity_total"].load_frame()(cells)
        expected = truth[cells.cell_ids - 1]  # track_id = index + 1
        errors.append(np.abs(total - expected) / expected)
    errors = np.concatenate(errors)
    assert np.median(errors) <= 0.01
    assert np.percentile(errors, 90) <= 0.05
