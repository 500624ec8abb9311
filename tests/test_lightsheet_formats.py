"""``pipeline: lightsheet`` on the light-sheet formats: an IsoView ``.stack`` + XML tree and a
KLB dataset (both written by the tests), through the CLI, with a kill and a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import pyama
from pyama_builtin.lightsheet import corrections, foreground
from pyama_builtin.lightsheet.results import open_lightsheet_results
from pyama_framework.testing.lightsheet_files import write_isoview_tree, write_klb
from pyama_framework.testing.lightsheet_volume import DeadPixels, SyntheticVolume, write_background_tiff

VIEWS = ((0, 0), (1, 0))  # (camera, channel)
SHAPE = (10, 48, 64)


def make_volumes(n_t: int = 2) -> tuple[dict, dict]:
    synthetic = SyntheticVolume(*SHAPE, seed=21)
    dead = {cam: DeadPixels.plant(SHAPE[1:], 0.005, seed=30 + cam) for cam, _ in VIEWS}
    volumes = {(t, cam, chan): np.stack(list(synthetic.planes(t, cam, dead[cam])))
               for t in range(n_t) for cam, chan in VIEWS}
    return volumes, dead


def write_run(folder: Path, data: Path, **params) -> Path:
    config = {"input": str(data), "output": str(folder / "out"), "pipeline": "lightsheet",
              "pipeline_params": {"sample_every": 1, "output": {"chunks": [2, 16, 32], "shards": [4, 48, 64]}, **params},
              "execution": {"workers": 1}}
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def check_outputs(out: Path, volumes: dict, dead: dict, backgrounds: dict) -> None:
    results = open_lightsheet_results(out)
    assert results.views == ["cam0_ch0", "cam1_ch0"] and results.shape == (2, SHAPE[0], 2, *SHAPE[1:])
    assert results.spacing == {"z_step_um": 2.0, "pixel_size_um": 0.406}
    for (t, cam, _), raw in volumes.items():
        v = [c for c, _ in VIEWS].index(cam)
        background = results.calibration("background")[t, v]
        assert np.array_equal(background, backgrounds[cam])  # each camera's Background_N.tif
        found = results.calibration("dead_pixels")[t, v]
        truth = dead[cam].map(SHAPE[1:])
        assert (found & truth).sum() >= 0.99 * truth.sum() and (found & ~truth).sum() <= 0.001 * truth.size
        expected = corrections.correct_dead_pixels(corrections.subtract_background(raw, background), found)
        assert np.array_equal(results.volume(t, v)[:], expected)
        mask = foreground.foreground_mask(expected, float(results.calibration("threshold")[t, v]), 4)
        assert np.array_equal(results.mask(t, v)[:], mask)
        assert np.array_equal(results.projection(t, v, "yz"), expected.max(2))
    assert len(list((out / "fov_000" / "diagnostics").glob("*.png"))) == 12


@pytest.fixture(scope="module")
def stack_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("isoview") / "SPM00"
    volumes, dead = make_volumes()
    write_isoview_tree(root, volumes, z_step=2.0, pixel_size=0.406)
    backgrounds = {cam: write_background_tiff(root / f"Background_{cam}.tif", SHAPE[1:], 100.0, seed=cam)
                   for cam, _ in VIEWS}
    return root, volumes, dead, backgrounds


def test_stack_tree_run_writes_volumes_masks_projections_and_figures(tmp_path, stack_tree):
    root, volumes, dead, backgrounds = stack_tree
    result = pyama("run", str(write_run(tmp_path, root, slab=3)))
    assert result.returncode == 0, result.stderr
    assert "reader 'isoview_stack'" in result.stderr
    check_outputs(tmp_path / "out", volumes, dead, backgrounds)


def test_klb_dataset_run_writes_the_same_layout(tmp_path):
    root = tmp_path / "SPM00"
    volumes, dead = make_volumes()
    for (t, cam, chan), data in volumes.items():
        folder = root / f"TM{t:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_klb(folder / f"SPM00_TM{t:06d}_CM{cam:02d}_CHN{chan:02d}.klb", data, (32, 16, 4, 1, 1),
                  (1, 1, 2.0, 0.406, 0.406))
    backgrounds = {cam: write_background_tiff(root / f"Background_{cam}.tif", SHAPE[1:], 100.0, seed=cam)
                   for cam, _ in VIEWS}
    result = pyama("run", str(write_run(tmp_path, root, slab=4)))
    assert result.returncode == 0, result.stderr
    assert "reader 'klb'" in result.stderr
    check_outputs(tmp_path / "out", volumes, dead, backgrounds)


def test_stack_tree_run_resumes_after_a_kill(tmp_path, stack_tree):
    root, volumes, dead, backgrounds = stack_tree
    config = write_run(tmp_path, root, slab=1)
    proc = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "out" / "fov_000" / ".pyama"
    deadline = time.time() + 120
    while time.time() < deadline and not (records / "correct.units" / "t00000_cam0_ch0.json").exists():
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (records / "diagnostics.json").exists(), "the run should have been killed before the end"
    resumed = pyama("run", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert "calibrate already complete" in resumed.stderr
    check_outputs(tmp_path / "out", volumes, dead, backgrounds)
