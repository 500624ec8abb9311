"""The /1 viewing levels are written by the stages while their stacks stream by, with the bytes
the cache stage's re-reading gives; the cache stage only fills levels that are missing."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
import yaml
import zarr

from conftest import write_config
from pyama_framework.config import RunConfig
from pyama_framework.runner import run_config
from pyama_framework.stages.frames import WorkBehind
from pyama_framework.store import stack_key
from pyama_framework.stages.viewing import half, half_labels, intensity_range, normalise, sample_frames, to_uint8

STACKS = ["fl_background_ch_1", "fl_ch_1", "pc_ch_0", "seg_labeled_ch_0", "seg_tracked_ch_0"]


def run(folder, movie, **sections):
    config = yaml.safe_load(write_config(folder, movie, fovs="0", **sections).read_text())
    summary = run_config(RunConfig.model_validate(config))
    assert summary.ok, summary.failed
    return folder / "out" / "fov_000"


def level_by_rereading(stack: zarr.Array, labels: bool) -> np.ndarray:
    """What the cache stage computes from the full-resolution stack."""
    frames = stack[:]
    if labels:
        scale = np.float32(255.0 / max(int(stack.attrs["max_label"]), 1))
        return np.stack([np.rint(half_labels(f) * scale).astype(np.uint8) for f in frames])
    lo, hi = intensity_range(frames[t] for t in sample_frames(len(frames)))
    return np.stack([to_uint8(normalise(half(f), lo, hi)) for f in frames])


@pytest.fixture(scope="module")
def fov(tmp_path_factory, two_fov_file):
    return run(tmp_path_factory.mktemp("levels"), two_fov_file)


def test_levels_written_while_streaming_match_rereading(fov):
    images = zarr.open_group(fov / "images.zarr", mode="r")
    for name in STACKS:
        level = images[stack_key(name, 1)]
        assert level.dtype == np.uint8 and level.shape == (6, 64, 64) and level.attrs["complete"], name
        np.testing.assert_array_equal(level[:], level_by_rereading(images[stack_key(name, 0)], name.startswith("seg_")))
    record = json.loads((fov / ".pyama" / "cache.json").read_text())
    assert record["levels_filled"] == 0  # nothing was read again
    assert not list((fov / ".pyama").glob("*.scratch"))


def test_cache_stage_fills_a_missing_level_on_resume(tmp_path, two_fov_file):
    fov = run(tmp_path, two_fov_file)
    images = zarr.open_group(fov / "images.zarr", mode="r")
    expected = images[stack_key("seg_tracked_ch_0", 1)][:]
    # an output from before the levels were streamed: the level is missing, the cache stage not done
    (fov / ".pyama" / "cache.json").unlink()
    shutil.rmtree(fov / "images.zarr" / stack_key("seg_tracked_ch_0", 1))
    run(tmp_path, two_fov_file)
    assert json.loads((fov / ".pyama" / "cache.json").read_text())["levels_filled"] == 1
    np.testing.assert_array_equal(zarr.open_array(fov / "images.zarr" / stack_key("seg_tracked_ch_0", 1))[:], expected)


def test_no_levels_when_caching_is_off(tmp_path, two_fov_file):
    fov = run(tmp_path, two_fov_file, caching={"enabled": False})
    images = zarr.open_group(fov / "images.zarr", mode="r")
    assert all((fov / "images.zarr" / stack_key(name, 0)).exists() for name in STACKS)
    assert not any((fov / "images.zarr" / stack_key(name, 1)).exists() for name in STACKS)
    assert not (fov / ".pyama" / "cache.json").exists() and not list((fov / ".pyama").glob("*.scratch"))


def test_levels_are_finished_before_the_run_returns(fov):
    # the stages hand their levels to a thread behind them; none is left running afterwards
    assert not [t for t in threading.enumerate() if t.name.startswith("pyama-behind")]
    assert not list((fov / ".pyama").glob("*.scratch"))


def test_work_behind_runs_in_order_and_reports_failures():
    behind, done = WorkBehind(), []
    behind.submit("level a", lambda: done.append("a"))
    behind.submit("level b", lambda: 1 / 0)
    behind.submit("level c", lambda: done.append("c"))
    assert behind.wait() == ["level b failed: ZeroDivisionError: division by zero"]
    assert done == ["a", "c"] and behind.pool is None
    assert behind.wait() == []  # nothing pending: returns at once
