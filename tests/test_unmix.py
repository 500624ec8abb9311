"""PSF unmixing of touching cells (``intensity_total_unmixed``, issue 7 section 5).

A dim cell touching a bright one collects part of the bright one's blurred light in its own
mask; the unmixed total removes it with a Gaussian PSF model of every cell's mask.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import pyama, write_config  # noqa: E402

from pyama_builtin.features.intensity import intensity_total_frame, intensity_total_unmixed_frame  # noqa: E402
from pyama_builtin.features.unmix import fit_psf_sigma, unmixed_totals  # noqa: E402
from pyama_framework.evaluation.overlap import mutual_match  # noqa: E402
from pyama_framework.stages.extract import cells_in_frame, grow_labels, grown_boxes  # noqa: E402
from pyama_framework.testing.rodsim import RodScene  # noqa: E402
from pyama_framework.testing.synthetic import write_ome_tiff  # noqa: E402
from pyama_framework.types import CellFrame  # noqa: E402

BACKGROUND = 200.0


def touching_pair(noise: bool, soft_edge: bool = True, seed: int = 3):
    """Two rods side by side with no gap, the second 20x brighter; blurred by a Gaussian
    PSF of sigma 1.5 px with scipy (not the code under test). Returns the frame, the labels
    and each cell's true total (its blurred light inside the frame)."""
    shape = (64, 96)
    yy, xx = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    labels = np.zeros(shape, dtype=np.uint16)
    image = np.full(shape, BACKGROUND)
    totals = []
    for label, (cy, brightness) in enumerate([(26.0, 40.0), (37.0, 800.0)], start=1):
        # a rod: distance to the segment from x = 30 to 66 minus a 5.5 px radius
        d = np.hypot(yy - cy, xx - np.clip(xx, 30, 66)) - 5.5
        labels[d <= 0] = label
        weight = np.clip(0.5 - d / 2, 0, 1) if soft_edge else (d <= 0).astype(np.float64)
        signal = ndi.gaussian_filter(brightness * weight * (1 + 0.2 * (xx - 48) / 18), 1.5, mode="constant")
        image += signal
        totals.append(signal.sum())
    if noise:
        image = np.random.default_rng(seed).poisson(image).astype(np.float64)
    return image, labels, np.array(totals)


def frame_of(image, labels, sigma, dilation=4.0):
    ids, bboxes, _, _ = cells_in_frame(labels)
    grown = grow_labels(labels, dilation)
    background = np.full(labels.shape, BACKGROUND, dtype=np.float32)
    return CellFrame(grown, image, background, ids, grown_boxes(bboxes, dilation, labels.shape),
                     labels, bboxes, sigma)


@pytest.mark.parametrize("sigma, soft_edge", [("auto", True), ("auto", False), (1.5, False)])
def test_dim_cell_next_to_a_bright_one(sigma, soft_edge):
    """The plain total of the dim cell is far off (its neighbour's light, about +100 %);
    unmixed within 2 %. With soft edges the PSF's own sigma is not the right one (+12 % at
    1.5, see docs/algorithms.md): the fitted effective sigma (1.65) is."""
    image, labels, truth = touching_pair(noise=True, soft_edge=soft_edge)
    frame = frame_of(image, labels, sigma)
    plain = intensity_total_frame(frame)
    unmixed = intensity_total_unmixed_frame(frame)
    plain_error, unmixed_error = np.abs(plain - truth) / truth, np.abs(unmixed - truth) / truth
    assert plain_error[0] > 0.5, plain_error
    assert np.all(unmixed_error < 0.02), unmixed_error


def test_exact_recovery_of_a_noiseless_convolution():
    """An image that *is* the model (uniform cells blurred by a Gaussian of the given sigma)
    gives back every cell's light exactly, with or without a grown measurement mask, and
    the fit finds the sigma."""
    rng = np.random.default_rng(0)
    labels = np.zeros((80, 80), dtype=np.int32)
    labels[10:30, 10:22] = 1
    labels[10:30, 22:30] = 2  # touches 1
    labels[30:40, 12:40] = 3  # touches 1 and 2
    labels[50:70, 50:75] = 4  # alone
    amplitude = rng.uniform(10, 1000, 4)
    image = np.zeros(labels.shape)
    truth = []
    for i, a in enumerate(amplitude, start=1):
        blurred = ndi.gaussian_filter(a * (labels == i), 1.5, mode="constant", truncate=4.0)
        image += blurred
        truth.append(blurred.sum())
    ids, bboxes, _, _ = cells_in_frame(labels)
    for measured in (None, grow_labels(labels, 4)):
        totals = unmixed_totals(image, None, labels, measured, ids, bboxes, 1.5)
        np.testing.assert_allclose(totals, truth, rtol=1e-9)
    assert fit_psf_sigma(image, None, labels, ids, bboxes) == pytest.approx(1.5, rel=0.02)


def rod_grid(gap: int, seed: int = 1):
    """20 rectangular cells in a 5 x 4 grid, ``gap`` px apart, random brightness, blurred by a
    Gaussian of sigma 1.5 (scipy), shot noise on a flat background of 100."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((120, 160), dtype=np.int32)
    for k in range(20):
        r, c = divmod(k, 4)
        labels[15 + 18 * r:33 - gap + 18 * r, 20 + 30 * c:50 - gap + 30 * c] = k + 2  # label 1: free
    image = np.zeros(labels.shape)
    for k, a in zip(range(2, 22), rng.uniform(50, 500, 20)):
        image += ndi.gaussian_filter(a * (labels == k), 1.5, mode="constant", truncate=4.0)
    return rng.poisson(image + 100) - 100.0, labels


def test_fit_ignores_the_light_of_missed_cells():
    """A segmentation that misses 5 of 20 touching cells: their light, with no mask to hold
    it, was best "explained" by widening the neighbours' PSF, and the fit ran to its 4 px
    bound (as in colony seed 4, frames 32 and 39, segmented). Blanking that light keeps the fit near the
    1.5 px of the complete masks."""
    image, labels = rod_grid(gap=2)
    ids, bboxes, _, _ = cells_in_frame(labels)
    assert fit_psf_sigma(image, None, labels, ids, bboxes) == pytest.approx(1.5, rel=0.03)
    labels[np.isin(labels, [7, 8, 11, 12, 15])] = 0
    ids, bboxes, _, _ = cells_in_frame(labels)
    assert fit_psf_sigma(image, None, labels, ids, bboxes, threshold=np.inf) > 3.5  # no blanking
    assert fit_psf_sigma(image, None, labels, ids, bboxes) < 2.0


def test_fit_is_not_left_to_a_speck():
    """A sharp speck first in label order and a cluster larger than ``max_cells``: the fit
    takes the cluster crossing ``max_cells`` whole; it used to skip it and fit the speck
    alone (here sigma at the lower bound; in colony seeds 2 and 11 a speck sent it to the upper
    one)."""
    image, labels = rod_grid(gap=1)
    image = np.hstack([image, np.random.default_rng(2).poisson(100, (120, 80)) - 100.0])
    labels = np.hstack([labels, np.zeros((120, 80), dtype=labels.dtype)])
    labels[50:53, 200:203] = 1  # a sharp speck of debris, far from the cells
    image[50:53, 200:203] += 300.0
    ids, bboxes, _, _ = cells_in_frame(labels)
    assert fit_psf_sigma(image, None, labels, ids, bboxes, max_cells=10) == pytest.approx(1.5, rel=0.03)


def test_sigma_zero_is_the_plain_total():
    image, labels, _ = touching_pair(noise=True)
    frame = frame_of(image, labels, 0.0)
    np.testing.assert_array_equal(intensity_total_unmixed_frame(frame), intensity_total_frame(frame))


def test_deterministic():
    image, labels, _ = touching_pair(noise=True, seed=5)
    first = intensity_total_unmixed_frame(frame_of(image, labels, "auto"))
    second = intensity_total_unmixed_frame(frame_of(image.copy(), labels.copy(), "auto"))
    assert first.tobytes() == second.tobytes()


def test_cell_cut_by_the_frame_edge_and_cells_not_asked_for():
    """A cell cut by the edge keeps a finite total (the light inside the frame); asking for a
    subset of cells gives one value per asked cell."""
    image, labels, truth = touching_pair(noise=False, soft_edge=False)
    cut = slice(24, 64)  # the dim rod is cut by the top edge
    frame = frame_of(image[cut], labels[cut], 1.5)
    values = intensity_total_unmixed_frame(frame)
    assert values.shape == (2,) and np.all(np.isfinite(values))
    ids, bboxes, _, _ = cells_in_frame(labels)
    grown = grow_labels(labels, 4)
    subset = CellFrame(grown, image, np.full(labels.shape, BACKGROUND, np.float32), ids[:1],
                       grown_boxes(bboxes, 4, labels.shape)[:1], labels, bboxes[:1], 1.5)
    assert intensity_total_unmixed_frame(subset).shape == (1,)


@pytest.mark.slow
def test_unmixed_total_through_pyama_run(tmp_path):
    """End to end on the independent rod renderer (seed 43: used for no choice): touching
    cells' p90 |error| drops well below the plain total's, the median stays unbiased."""
    scene = RodScene(512, 512, n_frames=2, n_cells=60, seed=43)
    path = write_ome_tiff(tmp_path / "movie.ome.tif", [scene])
    config = write_config(tmp_path, path, extraction={"min_frames": 1, "border_margin": 0},
                          channels={"pc": {"channel": 0, "features": ["area"]},
                                    "fl": [{"channel": 1, "features": ["intensity_total", "intensity_total_unmixed"]}]})
    done = pyama("run", str(config))
    assert done.returncode == 0, done.stderr
    import zarr
    from pyama_framework.store import stack_key

    out = tmp_path / "out" / "fov_000"
    traces = pd.read_csv(out / "movie_fov_000_traces.csv")
    tracked = zarr.open_group(out / "images.zarr", mode="r")[stack_key("seg_tracked_ch_0")]
    errors = {"intensity_total_ch_1": [], "intensity_total_unmixed_ch_1": []}
    for t, rows in traces.groupby("frame"):
        frame = scene.frame(int(t))
        owner = mutual_match(frame.labels, np.asarray(tracked[t]))
        for _, row in rows.iterrows():
            if row["cell"] in owner:
                truth = frame.intensity_total[0][owner[row["cell"]] - 1]
                for column in errors:
                    errors[column].append((row[column] - truth) / truth)
    plain, unmixed = (np.array(errors[c]) for c in errors)
    assert len(unmixed) >= 80
    assert abs(np.median(unmixed)) <= 0.01
    assert np.percentile(np.abs(unmixed), 90) <= 0.06
    assert np.percentile(np.abs(unmixed), 90) < 0.7 * np.percentile(np.abs(plain), 90)
