"""The built-in plugins keep their contracts: every one passes its kind's conformance suite,
and the pytest plugin's fixtures give a movie, its files and a pipeline run."""

from __future__ import annotations

import numpy as np
import pytest

from pyama_framework.registry import discover
from pyama_framework.testing.conformance import CHECKS, check_reader

REGISTRY = discover()
# One plugin per kind also runs end to end through the pipeline (the defaults of `pyama config init`).
END_TO_END = {"logstd", "lap", "tiled_spline", "area", "intensity_mean", "maturation"}
BUILTINS = [(kind, reg) for kind in CHECKS for reg in REGISTRY.available(kind)
            if REGISTRY.provider(kind, reg.name).distribution == "pyama-framework"]


@pytest.mark.parametrize("kind, registration", BUILTINS, ids=[f"{k}-{r.name}" for k, r in BUILTINS])
def test_builtin_keeps_its_contract(kind, registration, tmp_path):
    CHECKS[kind](registration, end_to_end=registration.name in END_TO_END,
                 **({"tmp_path": tmp_path} if kind != "fitting_model" else {}))


@pytest.mark.parametrize("name, fixture, end_to_end", [
    ("tiff", "pyama_ome_tiff", False), ("nd2", "pyama_nd2", True), ("czi", "pyama_czi", False),
    ("bioio", "pyama_ome_tiff", False),
])
def test_builtin_reader_keeps_its_contract(name, fixture, end_to_end, request, tmp_path):
    check_reader(REGISTRY.get("reader", name), request.getfixturevalue(fixture), end_to_end=end_to_end,
                 tmp_path=tmp_path)


def test_every_builtin_kind_is_covered():
    kinds = {kind for kind, _ in BUILTINS} | {"reader"}
    assert kinds == set(CHECKS) | {"reader"}
    assert len(BUILTINS) >= 15


def test_fixture_movie_has_ground_truth(pyama_movie):
    n_fovs, n_frames, height, width = pyama_movie.shape
    assert (n_fovs, n_frames, height, width) == (2, 6, 128, 128)
    assert pyama_movie.phase.dtype == np.uint16 and pyama_movie.labels.dtype == np.uint16
    assert pyama_movie.background.dtype == np.float32
    assert not pyama_movie.phase.flags.writeable  # one movie serves every test of a session
    ids = set(np.unique(pyama_movie.labels[0, 0])) - {0}
    assert len(ids) >= 4 and ids & set(np.unique(pyama_movie.labels[0, -1]))  # cells persist: track IDs


@pytest.mark.parametrize("fixture, reader", [("pyama_ome_tiff", "tiff"), ("pyama_nd2", "nd2"), ("pyama_czi", "czi")])
def test_fixture_files_hold_the_movie(fixture, reader, request, pyama_movie):
    from pyama_framework.readers import open_reader, select_reader

    path = request.getfixturevalue(fixture)
    assert select_reader(path, REGISTRY).name == reader
    with open_reader(path, REGISTRY.get("reader", reader)) as opened:
        assert (opened.metadata.n_fovs, opened.metadata.n_frames, opened.metadata.n_channels) == (2, 6, 2)
        np.testing.assert_array_equal(opened.read_frame(1, 5, 0), pyama_movie.phase[1, 5])
        np.testing.assert_array_equal(opened.read_frame(0, 2, 1), pyama_movie.fluorescence[0, 2])


def test_run_pipeline_returns_every_fovs_traces(pyama_run_config, run_pipeline, pyama_movie):
    traces = run_pipeline(pyama_run_config(tracking={"method": "iou_hungarian"}))
    assert set(traces["fov"]) == {0, 1}
    assert {"cell", "frame", "area_ch_0", "intensity_total_ch_1"} <= set(traces.columns)
    assert traces.groupby("fov")["cell"].nunique().min() >= 3
