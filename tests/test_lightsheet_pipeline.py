"""``pipeline: lightsheet`` end to end on OME-TIFF volumes: outputs, slab independence, resume
after Ctrl-C (a kill and resume on an IsoView tree: test_lightsheet_formats.py)."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from conftest import pyama
from pyama_builtin.lightsheet import corrections, foreground
from pyama_builtin.lightsheet.results import open_lightsheet_results
from pyama_framework.config import load_config
from pyama_framework.errors import ConfigError
from pyama_framework.runner import execute, plan_run, prepare_output, run_config
from pyama_framework.testing.lightsheet_volume import (
    DeadPixels,
    SyntheticVolume,
    write_background_tiff,
    write_volume_tiff,
)

VIEWS = ["cam0_ch0", "cam1_ch0"]
SHAPE = (12, 64, 80)  # Z, Y, X


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """T=2, two views; camera 0 has a Background_0.tif next to the data, camera 1 none."""
    folder = tmp_path_factory.mktemp("lightsheet")
    volume = SyntheticVolume(*SHAPE, seed=11)
    dead = [DeadPixels.plant(SHAPE[1:], 0.004, seed) for seed in (1, 2)]
    path = write_volume_tiff(folder / "specimen.ome.tif", volume, 2, VIEWS, dead)
    background = write_background_tiff(folder / "Background_0.tif", SHAPE[1:], volume.offset)
    return {"path": path, "dead": dead, "background": background, "volume": volume}


def write_run(folder: Path, data: Path, **params) -> Path:
    pipeline_params = {"sample_every": 2, "output": {"chunks": [2, 32, 32], "shards": [4, 64, 64]}, **params}
    config = {"input": str(data), "output": str(folder / "out"), "pipeline": "lightsheet",
              "pipeline_params": pipeline_params, "execution": {"workers": 1}}
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_outputs_are_the_corrected_volumes_masks_projections_and_figures(tmp_path, dataset):
    summary = run_config(load_config(write_run(tmp_path, dataset["path"], slab=5)))
    assert summary.ok, summary.outcomes
    results = open_lightsheet_results(tmp_path / "out")
    assert results.shape == (2, *SHAPE[:1], 2, *SHAPE[1:]) and results.views == VIEWS
    assert results.corrected.shards == (1, 4, 1, 64, 64) and results.corrected.chunks == (1, 2, 1, 32, 32)

    raw = tifffile.imread(dataset["path"])  # (T, Z, C, Y, X): small enough to check against
    for t in range(2):
        for v in range(2):
            background = results.calibration("background")[t, v]
            dead = results.calibration("dead_pixels")[t, v]
            truth = dataset["dead"][v].map(SHAPE[1:])
            assert (dead & truth).sum() >= 0.99 * truth.sum() and (dead & ~truth).sum() <= 0.001 * truth.size
            if v == 0:  # the camera's background file
                assert np.array_equal(background, dataset["background"])
            else:  # no file: one percentile level
                assert np.unique(background).size == 1 and 80 <= background[0, 0] <= 110
            expected = corrections.correct_dead_pixels(corrections.subtract_background(raw[t, :, v], background), dead)
            volume = results.volume(t, VIEWS[v])
            assert np.array_equal(volume[:], expected)
            assert np.array_equal(results[t, 3, v], expected[3])
            threshold = float(results.calibration("threshold")[t, v])
            mask = foreground.foreground_mask(expected, threshold, block=4)
            lazy = results.mask(t, v)
            assert lazy.shape == mask.shape and np.array_equal(lazy[:], mask) and 0.1 < mask.mean() < 0.9
            assert np.array_equal(lazy[2, 5:37:3, 61], mask[2, 5:37:3, 61]) and lazy[4, 33, 7] == mask[4, 33, 7]
            assert np.array_equal(lazy[:, 10, 3:70], mask[:, 10, 3:70])
            assert results.masks.shape == (2, SHAPE[0], 2, SHAPE[1] // 4, SHAPE[2] // 4)  # stored per 4 x 4 block
            assert np.array_equal(results.projection(t, v, "xy"), expected.max(0))
            assert np.array_equal(results.projection(t, v, "xz"), expected.max(1))
            assert np.array_equal(results.projection(t, v, "yz"), expected.max(2))
            assert np.array_equal(results.projection(t, v, "mask_xy"), mask.any(0))
    figures = sorted(p.name for p in (tmp_path / "out" / "fov_000" / "diagnostics").iterdir())
    assert len(figures) == 12 and "t00001_cam1_ch0_histogram.png" in figures
    assert all((tmp_path / "out" / "fov_000" / "diagnostics" / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    if importlib.util.find_spec("dask") is not None:  # the 'dask' extra
        stack = results.to_dask()
        assert stack.shape == results.shape and np.array_equal(stack[1, :, 1].compute(), results.volume(1, 1)[:])
    with pytest.raises(KeyError, match="choose one of: cam0_ch0, cam1_ch0"):
        results.volume(0, "cam3_ch0")


def test_output_bytes_do_not_depend_on_the_slab_size(tmp_path, dataset):
    digests = []
    for slab in (1, 5, 12):
        folder = tmp_path / f"slab{slab}"
        folder.mkdir()
        summary = run_config(load_config(write_run(folder, dataset["path"], slab=slab, diagnostics=False)))
        assert summary.ok, summary.outcomes
        digests.append(tree_digest(folder / "out" / "fov_000" / "lightsheet.zarr"))
    assert digests[0] == digests[1] == digests[2]
    assert any("corrected/c/" in name for name in digests[0])  # shard files, not an empty tree


def test_cancelled_run_resumes_and_redoes_only_unfinished_volumes(tmp_path, dataset):
    reference = tmp_path / "ref"
    reference.mkdir()
    assert run_config(load_config(write_run(reference, dataset["path"], diagnostics=False))).ok

    config = load_config(write_run(tmp_path, dataset["path"], diagnostics=False))
    plan = plan_run(config)
    prepare_output(plan)
    seen = []

    def progress(fov, stage, done, total):
        seen.append((stage, done))
        if stage == "correct" and done > SHAPE[0] + 2:  # into the second volume
            raise KeyboardInterrupt

    summary = execute(plan, progress)
    assert summary.interrupted
    records = tmp_path / "out" / "fov_000" / ".pyama"
    first = records / "correct.units" / "t00000_cam0_ch0.json"
    assert first.exists() and not (records / "correct.json").exists()
    stamp = first.stat().st_mtime_ns

    summary = execute(plan_run(config))
    assert summary.ok and summary.outcomes[0].ran == ["correct"]
    assert first.stat().st_mtime_ns == stamp  # the finished volume was not redone
    assert tree_digest(tmp_path / "out" / "fov_000" / "lightsheet.zarr") == \
        tree_digest(reference / "out" / "fov_000" / "lightsheet.zarr")


def test_bad_background_fails_the_run_with_one_line(tmp_path, dataset):
    folder = tmp_path / "data"
    folder.mkdir()
    data = folder / "specimen.ome.tif"
    data.write_bytes(dataset["path"].read_bytes())
    tifffile.imwrite(folder / "Background_1.tif", np.zeros((10, 10), np.uint16))
    result = pyama("run", str(write_run(tmp_path, data, diagnostics=False)))
    assert result.returncode == 1
    assert "Background_1.tif: background is 10 x 10 but the volume planes are 64 x 80" in result.stderr


def test_config_errors_name_the_choices(tmp_path, dataset):
    config = load_config(write_run(tmp_path, dataset["path"]))
    with pytest.raises(ConfigError, match=r"unknown pipeline 'lightshet'; did you mean 'lightsheet'\?; choose one of: lightsheet, timelapse"):
        plan_run(config.model_copy(update={"pipeline": "lightshet"}))
    with pytest.raises(ConfigError, match="view 'cam5_ch0' does not exist .* choose from: cam0_ch0, cam1_ch0"):
        plan_run(config.model_copy(update={"pipeline_params": {"views": ["cam5_ch0"]}}))
    with pytest.raises(ConfigError, match="shards .* must be positive multiples of chunks"):
        plan_run(config.model_copy(update={"pipeline_params": {"output": {"chunks": [3, 32, 32], "shards": [4, 64, 64]}}}))
