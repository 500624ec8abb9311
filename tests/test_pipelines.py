"""Pipelines are plugins: the time-lapse table behind the hook gives the same traces as
before, and a lab extends a built-in table by registering its own pipeline."""

from __future__ import annotations

import hashlib

import pandas as pd

from conftest import make_distribution, pyama, write_config
from pyama_framework.config import load_config
from pyama_framework.demo import write_demo
from pyama_framework.registry import get_registry
from pyama_framework.runner import run_config

# sha256 of the demo's traces CSVs (write_demo(n_fovs=2, n_frames=8), in file order),
# computed on the code before the time-lapse stages moved behind the pyama_pipelines hook;
# updated for the round-7 segmenter defaults (outline_gap, growth between cells: the masks
# change), the same twice in a row (OPENBLAS_CORETYPE=Haswell).
DEMO_TRACES_SHA256 = "32d03a12f125b4fba123ca5f449a1c1abf84ea614ec8db213f2f07e0aaa2e846"


def test_time_lapse_traces_are_byte_identical_behind_the_hook(tmp_path):
    config = write_demo(tmp_path, n_fovs=2, n_frames=8, workers=1)
    summary = run_config(load_config(config))
    assert summary.ok, summary.outcomes
    digest = hashlib.sha256()
    files = sorted((tmp_path / "results").rglob("*_traces.csv"))
    assert len(files) == 2
    for path in files:
        digest.update(path.read_bytes())
    assert digest.hexdigest() == DEMO_TRACES_SHA256
    assert "pipeline: timelapse" in (tmp_path / "results" / "processing_config.yaml").read_text()


def test_built_in_pipelines_are_registered_lazily():
    registry = get_registry()
    assert registry.names("pipeline") == ["lightsheet", "timelapse"]
    timelapse = registry.get("pipeline", "timelapse")
    assert isinstance(timelapse.implementation, str)  # the table is imported only when a run uses it
    assert [s.name for s in timelapse.load()] == ["copy", "segment", "track", "background", "extract", "crop", "cache", "ome"]
    assert [s.name for s in registry.get("pipeline", "lightsheet").load()] == ["calibrate", "correct", "diagnostics"]


LAB_PIPELINE = '''
from pyama_framework import PipelineRegistration, hookimpl


@hookimpl
def pyama_pipelines():
    yield PipelineRegistration(
        name="timelapse_summary",
        summary="The time-lapse pipeline plus a per-FOV cell count",
        implementation="lab_pipeline_stages:STAGES",
        check="pyama_builtin.pipelines.timelapse:check",
    )
'''

LAB_STAGES = '''
import pandas as pd

from pyama_builtin.pipelines.timelapse import STAGES as TIMELAPSE
from pyama_framework.pipeline import Stage


def summarise(ctx):
    traces = pd.read_csv(ctx.store.root / f"{ctx.basename}_fov_{ctx.fov:03d}_traces.csv")
    (ctx.store.root / "summary.txt").write_text(f"cells {traces['cell'].nunique()}\\n")
    return {"cells": int(traces["cell"].nunique())}


STAGES = TIMELAPSE + (Stage("summary", summarise, depends=("extract",), settings=lambda ctx: {"version": 1}),)
'''


def test_a_lab_pipeline_extends_the_time_lapse_table(tmp_path, two_fov_file):
    site = make_distribution(tmp_path / "site", "lab-pipeline", "1.0",
                             {"lab_pipeline": "lab_pipeline"},
                             {"lab_pipeline.py": LAB_PIPELINE, "lab_pipeline_stages.py": LAB_STAGES})
    env = {"PYTHONPATH": str(site)}
    config = write_config(tmp_path, two_fov_file, pipeline="timelapse_summary")
    result = pyama("run", str(config), env=env)
    assert result.returncode == 0, result.stderr
    for fov in (0, 1):
        folder = tmp_path / "out" / f"fov_{fov:03d}"
        cells = pd.read_csv(folder / f"movie_fov_{fov:03d}_traces.csv")["cell"].nunique()
        assert (folder / "summary.txt").read_text() == f"cells {cells}\n" and cells > 0
        assert (folder / ".pyama" / "summary.json").exists()
    again = pyama("run", str(config), env=env)  # resumes: every stage, the lab's too, is complete
    assert again.returncode == 0 and "summary already complete" in again.stderr, again.stderr

