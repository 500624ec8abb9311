"""The example lab plugin in examples/ installs with pip, is discovered and runs by name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, pyama, write_config

EXAMPLE = ROOT / "examples" / "pyama-otsu-plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """pip-install the example into a private target folder (a real wheel build + install)."""
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target


def test_lab_plugin_is_listed(installed):
    result = pyama("plugins", "list", "--json", env={"PYTHONPATH": str(installed)})
    assert result.returncode == 0, result.stderr
    rows = {(r["kind"], r["name"]): r for r in __import__("json").loads(result.stdout)}
    assert rows[("segmenter", "otsu")]["distribution"] == "pyama-otsu-plugin"
    assert rows[("segmenter", "otsu")]["version"] == "0.2.0"
    assert rows[("feature", "major_axis")]["status"] == "ok"
    info = pyama("plugins", "info", "otsu", env={"PYTHONPATH": str(installed)})
    assert "sigma" in info.stdout and "Gaussian smoothing" in info.stdout


def test_lab_plugin_runs_by_name(installed, tmp_path, two_fov_file):
    config = write_config(tmp_path, two_fov_file,
                          segmentation={"method": "otsu", "params": {"sigma": 1.0}},
                          channels={"pc": {"channel": 0, "features": ["area", "major_axis"]},
                                    "fl": [{"channel": 1, "features": ["intensity_total"]}]})
    result = pyama("run", str(config), env={"PYTHONPATH": str(installed)})
    assert result.returncode == 0, result.stderr
    traces = pd.read_csv(tmp_path / "out" / "fov_000" / "movie_fov_000_traces.csv")
    assert traces["major_axis_ch_0"].notna().all() and (traces["major_axis_ch_0"] > 0).all()
    assert (tmp_path / "out" / "processing_config.yaml").read_text().count("pyama-otsu-plugin") >= 2

    # Without the plugin installed, the same config fails up front naming the problem.
    missing = pyama("run", str(config), "--output", str(tmp_path / "other"))
    assert missing.returncode == 2 and "unknown segmenter 'otsu'" in missing.stderr
