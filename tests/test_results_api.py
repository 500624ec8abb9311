"""open_results: the lazy results API on a real run (real OME-TIFF in, real zarr stores out)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from pyama_framework import ResultsError, open_results
from pyama_framework.config import load_config
from pyama_framework.runner import run_config
from pyama_framework.store import stack_key

from conftest import small_scene, write_config

from pyama_framework.testing.synthetic import write_ome_tiff

PIXEL_UM, FRAME_S = 0.5, 300.0


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A finished 2-FOV run of a file that records 0.5 µm pixels and 5-minute frames."""
    folder = tmp_path_factory.mktemp("results_api")
    movie = write_ome_tiff(folder / "movie.ome.tif", [small_scene(0), small_scene(1)],
                           pixel_size_um=PIXEL_UM, frame_interval_s=FRAME_S)
    summary = run_config(load_config(write_config(folder, movie)))
    assert summary.ok, [o.error for o in summary.outcomes]
    return folder / "out"


@pytest.fixture
def copy_of(results, tmp_path):
    def make() -> Path:
        return Path(shutil.copytree(results, tmp_path / "copy"))
    return make


def test_images_are_lazy_xarray_in_minutes_and_micrometres(results):
    r = open_results(results)
    assert r.fovs == [0, 1] and r.failed == {} and r.channels == {"pc_ch_0": 0, "fl_ch_1": 1}
    images = r.images(1)
    assert images.dims == ("t", "c", "y", "x") and images.shape == (6, 2, 128, 128)
    assert type(images.data).__module__.startswith("dask")
    assert list(images["c"].values) == ["pc_ch_0", "fl_ch_1"]
    np.testing.assert_allclose(images["t"].values, np.arange(6) * FRAME_S / 60)
    assert images["t"].attrs["units"] == "min" and images["x"].attrs["units"] == "µm"
    np.testing.assert_allclose(images["x"].values[:3], [0, PIXEL_UM, 2 * PIXEL_UM])
    stored = zarr.open_array(results / "fov_001" / "images.zarr" / "fl_ch_1" / "0", mode="r")
    np.testing.assert_array_equal(images.sel(c="fl_ch_1").isel(t=3).values, stored[3])
    # The /1 viewing level: half size, pixel centres between two full-resolution pixels.
    small = r.images(1, level=1)
    assert small.shape == (6, 2, 64, 64) and small.dtype == np.uint8
    np.testing.assert_allclose(small["y"].values[:2], [0.5 * PIXEL_UM, 2.5 * PIXEL_UM])


def test_labels_traces_and_crops_agree(results):
    r = open_results(results)
    traces = r.traces()
    assert sorted(traces["fov"].unique()) == [0, 1]
    assert len(traces) == len(r.traces(0)) + len(r.traces(1))
    tracked = r.labels(0).values
    assert r.labels(0).dims == ("t", "y", "x") and tracked.dtype == np.uint16
    row = r.traces(0).iloc[0]
    cell, frame = int(row["cell"]), int(row["frame"])
    ys, xs = np.nonzero(tracked[frame] == cell)
    assert ys.size and np.isclose(xs.mean(), row["position_x"]) and np.isclose(ys.mean(), row["position_y"])
    assert set(np.unique(r.labels(0, tracked=False).values[frame])) != {0}
    crop = r.crops(0, cell)
    assert crop.dims == ("t", "c", "y", "x") and list(crop["c"].values) == ["pc_ch_0", "fl_ch_1"]
    y0, x0, y1, x1 = crop.attrs["window"]
    assert crop.shape[2:] == (y1 - y0, x1 - x0) and crop["present"].values[frame]
    assert np.isclose(crop["x"].values[0], x0 * PIXEL_UM)
    assert 0.0 <= float(crop.min()) and float(crop.max()) <= 1.0
    assert r.tracks(0)["cell"].isin(traces["cell"]).any()


def test_config_and_provenance(results):
    r = open_results(results)
    assert r.config.channels.pc.channel == 0
    prov = r.provenance
    assert prov["plugins"]["segmenter"]["name"] == "logstd"
    assert {"copy", "segment", "track", "extract", "ome"} <= set(prov["stages"][0])
    assert r.records(0)["extract"]["seconds"] >= 0


def test_opening_reads_no_pixels(copy_of):
    """With every chunk of every array deleted, opening and building the arrays still works:
    only metadata is read until values are asked for."""
    folder = copy_of()
    for chunks in folder.glob("fov_*/**/c"):
        shutil.rmtree(chunks)
    r = open_results(folder)
    images, labels = r.images(0), r.labels(1)
    assert images.shape == (6, 2, 128, 128) and labels.shape == (6, 128, 128)
    assert not labels.values.any()  # missing chunks read as the fill value only when computed


def test_not_a_results_folder(tmp_path):
    with pytest.raises(ResultsError, match="not a pyama output folder"):
        open_results(tmp_path)
    with pytest.raises(ResultsError, match="does not exist"):
        open_results(tmp_path / "missing")


def test_half_finished_run_says_what_is_there_and_what_is_missing(copy_of):
    folder = copy_of()
    (folder / "fov_001" / ".pyama" / "extract.json").unlink()
    with pytest.raises(ResultsError) as caught:
        open_results(folder)
    message = str(caught.value)
    assert "\n" not in message and "half-finished" in message
    assert "FOV(s) 0 complete" in message and "FOV 1 stopped before extract" in message
    r = open_results(folder, partial=True)
    assert r.fovs == [0] and r.unfinished == {1: ["extract"]}
    with pytest.raises(ResultsError, match="FOV 1 .* is unfinished"):
        r.traces(1)


def test_failed_fov_and_unknown_fov(copy_of):
    folder = copy_of()
    (folder / "fov_001" / ".pyama" / "track.json").unlink()
    (folder / "fov_001" / "error.log").write_text("stage track: tracker 'lap' failed: boom\n\ntraceback")
    r = open_results(folder)  # a failed FOV is part of a finished run, not a half-finished one
    assert r.fovs == [0] and r.failed == {1: "stage track: tracker 'lap' failed: boom"}
    with pytest.raises(ResultsError, match="FOV 1 .* failed"):
        r.images(1)
    with pytest.raises(ResultsError, match="has no FOV 7; it holds FOV\\(s\\) 0"):
        r.images(7)
    with pytest.raises(ResultsError, match="no crop of cell 9999"):
        r.crops(0, 9999)
    with pytest.raises(ResultsError, match="choose one of: pc_ch_0, fl_ch_1"):
        r.images(0, channels=["gfp"])


def test_label_arrays_live_in_the_ngff_labels_group(results):
    images = zarr.open_group(results / "fov_000" / "images.zarr", mode="r")
    assert stack_key("seg_tracked_ch_0") == "pc_ch_0/labels/seg_tracked_ch_0/0"
    assert images[stack_key("seg_tracked_ch_0")].shape == (6, 128, 128)
