"""Config validation: every problem named before any pixel is read or output written."""

from __future__ import annotations

import json

import pytest
import yaml

from pyama_framework.config import load_config, parse_fovs, resolve_plugins
from pyama_framework.errors import ConfigError
from pyama_framework.registry import discover

from conftest import pyama, write_config


def _error(tmp_path, two_fov_file, **sections) -> str:
    config = write_config(tmp_path, two_fov_file, **sections)
    result = pyama("run", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    assert not (tmp_path / "out").exists(), "nothing may be written for a bad config"
    return result.stderr


def test_unknown_plugin_name(tmp_path, two_fov_file):
    stderr = _error(tmp_path, two_fov_file, segmentation={"method": "logstdd", "params": {}})
    assert "unknown segmenter 'logstdd'" in stderr and "did you mean 'logstd'" in stderr


@pytest.mark.parametrize("params, expected", [
    ({"min_iou": "high"}, "tracking.params.min_iou"),
    ({"min_iou": 1.5}, "less than or equal to 1"),
    ({"min_iouu": 0.2}, "tracking.params.min_iouu: unknown key"),
])
def test_bad_params(tmp_path, two_fov_file, params, expected):
    stderr = _error(tmp_path, two_fov_file, tracking={"method": "iou_hungarian", "params": params})
    assert expected in stderr


def test_unknown_top_level_key_and_bad_types(tmp_path, two_fov_file):
    assert "segmentaton: unknown key" in _error(tmp_path, two_fov_file, segmentaton={"method": "logstd"})
    assert "extraction.background_weight" in _error(tmp_path, two_fov_file, extraction={"background_weight": 2})


def test_unknown_feature_and_wrong_channel_kind(tmp_path, two_fov_file):
    stderr = _error(tmp_path, two_fov_file, channels={"pc": {"channel": 0, "features": ["intensity_total"]}})
    assert "'intensity_total' is a fluorescence feature" in stderr


def test_channel_missing_from_file(tmp_path, two_fov_file):
    stderr = _error(tmp_path, two_fov_file, channels={"pc": {"channel": 0}, "fl": [{"channel": 5}]})
    assert "channel 5 does not exist" in stderr and "2 channel(s)" in stderr


def test_fov_missing_from_file(tmp_path, two_fov_file):
    assert "FOV 7 does not exist" in _error(tmp_path, two_fov_file, fovs="0, 7")


def test_input_no_reader_opens(tmp_path, two_fov_file):
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    config = write_config(tmp_path, junk)
    result = pyama("run", str(config))
    assert result.returncode == 2
    assert "no reader claims the suffix" in result.stderr and "pyama plugins doctor" in result.stderr
    assert not (tmp_path / "out").exists()


def test_parse_fovs():
    assert parse_fovs("0-2, 5", 8) == [0, 1, 2, 5]
    assert parse_fovs("all", 3) == [0, 1, 2]
    with pytest.raises(ValueError, match="bad FOV selection"):
        parse_fovs("0-x")


def test_resolve_fills_defaults(tmp_path, two_fov_file):
    config = load_config(write_config(tmp_path, two_fov_file))
    resolved = resolve_plugins(config, discover())
    assert resolved.segmenter.kwargs()["window_size"] == 3
    assert resolved.tracker.registration.name == "lap" and resolved.tracker.kwargs()["max_gap"] >= 1


def test_config_commands(tmp_path, two_fov_file):
    template = tmp_path / "new.yaml"
    assert pyama("config", "init", str(template)).returncode == 0
    data = yaml.safe_load(template.read_text())
    assert data["segmentation"]["method"] == "logstd" and data["channels"]["pc"]["channel"] == 0
    assert pyama("config", "validate", str(template), "--no-check-input").returncode == 0
    schema = json.loads(pyama("config", "schema").stdout)
    assert {"input", "output", "channels", "segmentation", "execution"} <= set(schema["properties"])
    ok = pyama("config", "validate", str(write_config(tmp_path, two_fov_file)))
    assert ok.returncode == 0 and "2 FOV(s)" in ok.stdout


@pytest.mark.parametrize("sigma", ["wide", -1, 11])
def test_bad_psf_sigma_is_one_line(tmp_path, two_fov_file, sigma):
    message = _error(tmp_path, two_fov_file, extraction={"psf_sigma": sigma})
    assert len(message.strip().splitlines()) == 1, message
    assert "extraction.psf_sigma" in message and "give 'auto' or a number of px from 0 to 10" in message


def test_psf_sigma_accepts_auto_and_numbers(tmp_path, two_fov_file):
    for sigma in ("auto", 0, 1.5):
        config = load_config(write_config(tmp_path, two_fov_file, extraction={"psf_sigma": sigma}))
        assert config.extraction.psf_sigma == sigma
