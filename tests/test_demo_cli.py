"""`pyama demo` (the README's first command) and the terminal progress display."""

from __future__ import annotations

import pandas as pd

from conftest import pyama


def test_demo_runs_the_full_pipeline_and_checks_ground_truth(tmp_path):
    out = tmp_path / "demo"
    result = pyama("demo", str(out), "--fovs", "2", "--frames", "8", "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert (out / "data" / "demo.ome.tif").exists() and (out / "pyama-demo.yaml").exists()
    for fov in (0, 1):
        traces = pd.read_csv(out / "results" / f"fov_{fov:03d}" / f"demo_fov_{fov:03d}_traces.csv")
        assert traces["cell"].nunique() >= 10
    lines = [line for line in result.stdout.splitlines() if line.startswith("FOV")]
    assert len(lines) == 2 and all("identity switches: 0" in line for line in lines)
    medians = [float(line.split("median ")[1].split(" %")[0]) for line in lines]
    assert max(medians) < 3.0  # intensity_total vs ground truth, segmented masks

    # Running the demo again reuses the data and resumes: nothing is recomputed.
    again = pyama("demo", str(out), "--fovs", "2", "--frames", "8", "--workers", "1")
    assert again.returncode == 0 and "segment done" not in again.stderr


def test_progress_bars_on_a_terminal(tmp_path):
    out = tmp_path / "demo"
    result = pyama("demo", str(out), "--fovs", "1", "--frames", "4", "--workers", "1",
                   env={"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "0"})
    assert result.returncode == 0, result.stderr
    assert "fov 000 segment" in result.stderr and "━" in result.stderr
