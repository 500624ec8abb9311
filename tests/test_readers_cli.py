"""Each reader end to end through ``pyama run``, and bad input files through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _reader_files import movie, write_czi, write_nd2_movie, write_ome_p_axis
from conftest import pyama, read_frames, small_scene, write_config
from pyama_framework.testing.synthetic import write_ome_tiff

TRACES = "fov_{0:03d}/movie_fov_{0:03d}_traces.csv"
FOVS = (0, 1)


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """The synthetic 2-FOV movie as (P, T, Z, C, Y, X), phase + 1 fluorescence channel."""
    return np.stack([read_frames(small_scene(fov))[:, None] for fov in FOVS])


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[int, pd.DataFrame]:
    """Traces of the same pixels stored as OME-TIFF (one series per FOV)."""
    folder = tmp_path_factory.mktemp("ome")
    path = write_ome_tiff(folder / "movie.ome.tif", [small_scene(fov) for fov in FOVS], frame_interval_s=600.0)
    return run_traces(folder, path)


def run_traces(folder: Path, path: Path) -> dict[int, pd.DataFrame]:
    result = pyama("run", str(write_config(folder, path)))
    assert result.returncode == 0, result.stderr
    return {fov: pd.read_csv(folder / "out" / TRACES.format(fov)) for fov in FOVS}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["nd2", "czi", "ome_p_axis"])
def test_each_reader_gives_the_traces_of_the_same_pixels_as_ome_tiff(tmp_path, pixels, baseline, fmt):
    if fmt == "nd2":  # 10 min per frame, as the baseline's DeltaT
        path = write_nd2_movie(tmp_path / "movie.nd2", pixels, channel_names=("phase", "fl_1"),
                               frame_interval_ms=600_000)
    elif fmt == "czi":  # no timestamps: the config's frame_interval (10 min) gives the times
        path = write_czi(tmp_path / "movie.czi", pixels, channel_names=("phase", "fl_1"))
    else:
        path = write_ome_p_axis(tmp_path / "movie.ome.tif", pixels)
    traces = run_traces(tmp_path, path)
    for fov in FOVS:
        expected, got = baseline[fov], traces[fov]
        assert len(got) > 0
        pd.testing.assert_frame_equal(got.drop(columns="time"), expected.drop(columns="time"))
        np.testing.assert_allclose(got["time"], expected["time"], atol=1e-9)


@pytest.fixture(scope="module")
def good_nd2(tmp_path_factory) -> Path:
    return write_nd2_movie(tmp_path_factory.mktemp("nd2") / "movie.nd2", movie(n_fov=2, n_t=2))


def bad_inputs(folder: Path, good_nd2: Path) -> dict[str, tuple[Path, dict, str]]:
    """name -> (input path, config sections, expected message part)."""
    empty = folder / "empty.nd2"
    empty.write_bytes(b"")
    foreign = folder / "foreign.czi"
    foreign.write_bytes(b"%PDF-1.7 not a microscopy file" * 20)
    truncated = folder / "truncated.nd2"
    truncated.write_bytes(good_nd2.read_bytes()[:-5000])
    (folder / "folder.ome.tif").mkdir()
    sizes = write_czi(folder / "sizes.czi", movie(n_fov=2, n_t=2), crop_last_scene=3)
    return {
        "missing": (folder / "missing.nd2", {}, "not found"),
        "directory": (folder / "folder.ome.tif", {}, "directory"),
        "empty": (empty, {}, "empty"),
        "foreign": (foreign, {}, "not a CZI file"),
        "truncated": (truncated, {}, "truncated"),
        "fov": (good_nd2, {"fovs": "5"}, "FOV 5"),
        "channel": (good_nd2, {"channels": {"pc": {"channel": 7, "features": ["area"]}, "fl": []}}, "channel"),
        "shapes": (sizes, {}, "scenes differ in size"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "foreign", "truncated", "fov", "channel", "shapes"])
def test_bad_input_is_one_line_before_any_output(tmp_path, good_nd2, case):
    path, sections, expected = bad_inputs(tmp_path, good_nd2)[case]
    result = pyama("run", str(write_config(tmp_path, path, **sections)))
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0], lines[0]
    if case not in ("fov", "channel"):
        assert str(path) in lines[0].replace("\n", "")
    assert not (tmp_path / "out").exists()
