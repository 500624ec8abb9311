"""Edge cases through ``pyama run``: empty movies, an all-foreground frame, a single cell, a
cell on the border, tiny frames, a single time point and uint16 extremes.

Every input is a small hand-drawn OME-TIFF (uint16, TCYX, phase + one fluorescence channel)
with known cell positions. All runs start together in one module-scoped fixture (each
``pyama run`` is a fresh process), and the tests then read their outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from pyama_framework.config import ExtractionConfig
from pyama_framework.stages.extract import grow_labels

from conftest import write_config

MAX = np.iinfo(np.uint16).max


@dataclass(frozen=True)
class Cell:
    y: float
    x: float
    radius: float
    brightness: float = 400.0


def draw(shape: tuple[int, int], cells_per_frame: list[list[Cell]], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Phase + fluorescence frames (float64, (T, 2, H, W)) and true labels ((T, H, W))
    of round textured cells: dark body with a bright halo in phase contrast (what LOG-STD
    segments), a dome of ``brightness`` above a flat 1000-count background in fluorescence,
    shot noise in both."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    frames, labels = [], []
    for cells in cells_per_frame:
        phase = np.full(shape, 3000.0)
        fl = np.full(shape, 1000.0)
        lab = np.zeros(shape, dtype=np.uint16)
        for k, c in enumerate(cells, start=1):
            r = np.hypot(yy - c.y, xx - c.x)
            rho2 = (r / c.radius) ** 2
            mask = rho2 <= 1
            texture = np.sin(1.3 * xx + 0.4 * yy) + np.sin(0.5 * xx - 1.1 * yy + 1.0)
            phase += np.where(mask, -1000 * (1 - 0.35 * rho2) + 120 * texture, 0)
            phase += 600 * np.exp(-0.5 * ((r - c.radius - 0.5) / 0.8) ** 2)
            fl += np.where(mask, c.brightness * (1 - 0.4 * rho2), 0)
            lab[mask] = k
        frames.append(np.stack([phase + rng.normal(0, 1, shape) * np.sqrt(phase),
                                fl + rng.normal(0, 1, shape) * np.sqrt(fl)]))
        labels.append(lab)
    return np.stack(frames), np.stack(labels)


def to_uint16(data: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(data), 0, MAX).astype(np.uint16)


def write(path: Path, fovs: np.ndarray) -> Path:
    """One OME-TIFF image series (FOV) per entry of ``fovs`` (uint16, (T, 2, H, W) each)."""
    assert fovs.dtype == np.uint16 and fovs.ndim == 5 and fovs.shape[2] == 2
    with tifffile.TiffWriter(path, ome=True) as tif:
        for data in fovs:
            tif.write(data, metadata={"axes": "TCYX"})
    return path


def moving(cell: Cell, n_frames: int, step=(0.3, 0.2)) -> list[Cell]:
    return [Cell(cell.y + t * step[0], cell.x + t * step[1], cell.radius, cell.brightness) for t in range(n_frames)]


# FOVs of the shared 96 x 96, 3-frame movie
EMPTY, ALL_FOREGROUND, SINGLE, BORDER, EXTREMES = range(5)


def shared_movie() -> np.ndarray:
    """(FOV, T, 2, H, W): the cases that fit one 96 x 96, 3-frame movie, one FOV each."""
    fovs = [np.stack([np.full((3, 96, 96), 3000), np.full((3, 96, 96), 1000)], axis=1).astype(np.uint16)]

    data, _ = draw((96, 96), [[Cell(48, 48, 9)]] * 3, seed=1)
    data = to_uint16(data)
    checker = ((np.indices((96, 96)) // 2).sum(axis=0) % 2).astype(np.uint16)
    data[1, 0] = 2000 + 2000 * checker  # 2 px checkerboard: logstd calls (nearly) all of it a cell
    fovs.append(data)

    data, _ = draw((96, 96), [[c] for c in moving(Cell(45, 46, 9), 3)], seed=2)
    fovs.append(to_uint16(data))

    inner, edge = moving(Cell(55, 60, 9), 3), moving(Cell(4, 25, 8), 3, step=(0.0, 0.3))
    data, _ = draw((96, 96), [[a, b] for a, b in zip(inner, edge)], seed=3)
    fovs.append(to_uint16(data))

    # a cell saturated to 65535 in fluorescence (its dome peaks far above the range)
    data, _ = draw((96, 96), [[Cell(48, 48, 10, brightness=500_000)]] * 3, seed=6)
    data = to_uint16(data)
    rng = np.random.default_rng(7)
    for value in (0, MAX):  # dead and hot pixels in both channels, away from the cell
        ys, xs = rng.integers(0, 30, 20), rng.integers(0, 96, 20)
        data[:, :, ys, xs] = value
    fovs.append(data)
    return np.stack(fovs)


def tiny_movie() -> np.ndarray:
    data, _ = draw((64, 64), [[c] for c in moving(Cell(30, 33, 8), 3)], seed=4)
    return to_uint16(data)[None]


def single_frame_movie() -> np.ndarray:
    data, _ = draw((96, 96), [[Cell(30, 30, 9), Cell(65, 62, 10, brightness=150)]], seed=5)
    return to_uint16(data)[None]


@dataclass
class Run:
    returncode: int
    stderr: str
    data: np.ndarray  # (FOV, T, 2, H, W)
    out: Path

    def fov(self, fov: int) -> "Fov":
        """The FOV's outputs, after checking that its stages all completed."""
        folder = self.out / f"fov_{fov:03d}"
        error = folder / "error.log"
        assert not error.exists(), error.read_text()
        assert f"FOV {fov} failed" not in self.stderr, self.stderr
        assert (folder / f"movie_fov_{fov:03d}_traces.csv").exists(), self.stderr
        return Fov(self.data[fov], folder)


@dataclass
class Fov:
    data: np.ndarray  # (T, 2, H, W)
    folder: Path

    def images(self):
        return zarr.open_group(self.folder / "images.zarr", mode="r")

    def traces(self) -> pd.DataFrame:
        return pd.read_csv(self.folder / f"{self.folder.name.replace('fov', 'movie_fov')}_traces.csv")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Four ``pyama run`` processes, started together: the shared movie (border_margin 0),
    its border FOV again with border_margin 5, the 64 px movie and the 1-frame movie."""
    root = tmp_path_factory.mktemp("edge")
    every = {"min_frames": 1, "border_margin": 0}
    shared = shared_movie()
    plan = {
        "shared": (shared, {"extraction": every}),
        "border_margin": (shared, {"extraction": {"min_frames": 1, "border_margin": 5}, "fovs": str(BORDER)}),
        "tiny": (tiny_movie(), {"extraction": every}),
        "single_frame": (single_frame_movie(), {"extraction": every}),
    }
    env = {**os.environ, "COLUMNS": "200"}
    started = {}
    for name, (data, sections) in plan.items():
        folder = root / name
        folder.mkdir()
        path = write(folder / "movie.ome.tif", data)
        config = write_config(folder, path, **sections)
        proc = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        started[name] = (proc, data, folder / "out")
    done = {}
    for name, (proc, data, out) in started.items():
        _, stderr = proc.communicate(timeout=300)
        done[name] = Run(proc.returncode, stderr, data, out)
    return done


def test_every_run_exits_zero(runs):
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}: {run.stderr}"
        assert "FOV(s) complete" in run.stderr


def check_arrays(fov: Fov) -> None:
    """Stored arrays: raw pixels unchanged, every product (T, H, W) with its dtype."""
    n_t, _, h, w = fov.data.shape
    images = fov.images()
    for key, dtype in [("pc_ch_0/0", np.uint16), ("fl_ch_1/0", np.uint16), ("pc_ch_0/labels/seg_labeled_ch_0/0", np.uint16),
                       ("pc_ch_0/labels/seg_tracked_ch_0/0", np.uint16), ("fl_background_ch_1/0", np.float32)]:
        assert images[key].shape == (n_t, h, w) and images[key].dtype == dtype, key
    for key in ("pc_ch_0/1", "pc_ch_0/labels/seg_tracked_ch_0/1"):
        assert images[key].shape == (n_t, h // 2, w // 2) and images[key].dtype == np.uint8, key
    np.testing.assert_array_equal(images["pc_ch_0/0"][:], fov.data[:, 0])
    np.testing.assert_array_equal(images["fl_ch_1/0"][:], fov.data[:, 1])
    assert np.isfinite(images["fl_background_ch_1/0"][:]).all()


def check_traces(fov: Fov) -> pd.DataFrame:
    """CSV rows agree with the stored arrays (area, bbox, centroid and intensity_total over the
    tracked mask), and cells.zarr holds exactly the CSV's cells."""
    traces = fov.traces()
    images = fov.images()
    tracked, raw = images["pc_ch_0/labels/seg_tracked_ch_0/0"][:], images["fl_ch_1/0"][:].astype(np.float64)
    background = images["fl_background_ch_1/0"][:].astype(np.float64)
    # fluorescence features measure the tracked mask grown by the default measurement_dilation
    grown = [grow_labels(labels, ExtractionConfig().measurement_dilation) for labels in tracked]
    for row in traces.itertuples():
        mask = tracked[row.frame] == row.cell
        assert mask.sum() == row.area_ch_0
        measured = grown[row.frame] == row.cell
        expected = (raw[row.frame][measured] - background[row.frame][measured]).sum()
        assert row.intensity_total_ch_1 == pytest.approx(expected, rel=1e-9, abs=1e-6)
        ys, xs = np.nonzero(mask)
        assert (row.bbox_y0, row.bbox_x0, row.bbox_y1, row.bbox_x1) == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
        assert row.position_x == pytest.approx(xs.mean()) and row.position_y == pytest.approx(ys.mean())
    cells = zarr.open_group(fov.folder / "cells.zarr", mode="r")
    ids = sorted(traces["cell"].unique())
    assert list(cells["metadata/cell_ids"][:]) == ids
    assert cells["metadata/bboxes"].shape == (len(ids), fov.data.shape[0], 4)
    return traces


def near(traces: pd.DataFrame, y: float, x: float, tol: float = 2.0) -> pd.DataFrame:
    return traces[(traces["position_y"] - y).abs().lt(tol) & (traces["position_x"] - x).abs().lt(tol)]


def test_empty_movie_header_only(runs):
    fov = runs["shared"].fov(EMPTY)
    check_arrays(fov)
    images = fov.images()
    assert not images["pc_ch_0/labels/seg_labeled_ch_0/0"][:].any() and not images["pc_ch_0/labels/seg_tracked_ch_0/0"][:].any()
    np.testing.assert_allclose(images["fl_background_ch_1/0"][:], 1000, rtol=1e-6)
    traces = check_traces(fov)
    assert traces.empty
    assert list(traces.columns[:6]) == ["fov", "cell", "parent", "frame", "time", "good"]
    assert {"area_ch_0", "intensity_total_ch_1"} <= set(traces.columns)


def test_all_foreground_frame(runs):
    fov = runs["shared"].fov(ALL_FOREGROUND)
    check_arrays(fov)
    # the segmenter makes one frame-sized object of frame 1 (no background pixels left)
    assert (fov.images()["pc_ch_0/labels/seg_labeled_ch_0/0"][1] > 0).mean() > 0.95
    traces = check_traces(fov)
    big = traces[traces["frame"] == 1]
    assert len(big) == 1 and big["area_ch_0"].item() > 0.95 * 96 * 96
    # the ordinary frames around it still find their cell
    for t in (0, 2):
        cell = near(traces[traces["frame"] == t], 48, 48)
        assert len(cell) == 1 and abs(cell["area_ch_0"].item() - np.pi * 81) < 0.2 * np.pi * 81


def test_single_cell(runs):
    fov = runs["shared"].fov(SINGLE)
    check_arrays(fov)
    traces = check_traces(fov)
    assert traces["cell"].nunique() == 1 and list(traces["frame"]) == [0, 1, 2]
    assert traces["good"].all() and (traces["fov"] == SINGLE).all()
    assert set(np.unique(fov.images()["pc_ch_0/labels/seg_tracked_ch_0/0"][:])) == {0, traces["cell"][0]}
    for row in traces.itertuples():
        assert abs(row.position_y - (45 + 0.3 * row.frame)) < 0.5
        assert abs(row.position_x - (46 + 0.2 * row.frame)) < 0.5
        assert abs(row.area_ch_0 - np.pi * 81) < 0.15 * np.pi * 81
    # a dome of 400 counts falling to 60 % at the edge sums to 0.8 x 400 x area
    assert traces["intensity_total_ch_1"].median() == pytest.approx(0.8 * 400 * np.pi * 81, rel=0.1)


def test_border_cell_kept_without_margin(runs):
    fov = runs["shared"].fov(BORDER)
    check_arrays(fov)
    traces = check_traces(fov)
    assert traces["cell"].nunique() == 2 and len(traces) == 6
    edge = traces[traces["bbox_y0"] == 0]
    assert edge["cell"].nunique() == 1 and list(edge["frame"]) == [0, 1, 2]


def test_border_cell_dropped_with_margin(runs):
    kept = runs["shared"].fov(BORDER).traces()
    fov = runs["border_margin"].fov(BORDER)
    check_arrays(fov)
    traces = check_traces(fov)
    assert traces["cell"].nunique() == 1 and (traces["bbox_y0"] >= 5).all()
    pd.testing.assert_frame_equal(traces, kept[kept["bbox_y0"] > 0].reset_index(drop=True))
    # the filter acts on the CSV only: the tracked labels still hold the border cell
    assert len(np.unique(fov.images()["pc_ch_0/labels/seg_tracked_ch_0/0"][0])) == 3


def test_64_pixel_frames(runs):
    fov = runs["tiny"].fov(0)
    check_arrays(fov)
    traces = check_traces(fov)
    assert traces["cell"].nunique() == 1 and list(traces["frame"]) == [0, 1, 2]
    assert (traces["position_y"] - (30 + 0.3 * traces["frame"])).abs().max() < 0.5
    assert (traces["position_x"] - (33 + 0.2 * traces["frame"])).abs().max() < 0.5


def test_single_time_point(runs):
    fov = runs["single_frame"].fov(0)
    check_arrays(fov)
    traces = check_traces(fov)
    assert len(traces) == 2 and (traces["frame"] == 0).all() and (traces["time"] == 0).all()
    assert traces["good"].all()
    dim = near(traces, 65, 62)
    assert dim["intensity_total_ch_1"].item() == pytest.approx(0.8 * 150 * np.pi * 100, rel=0.1)


def test_uint16_extremes(runs):
    fov = runs["shared"].fov(EXTREMES)
    check_arrays(fov)  # 0 and 65535 stored unchanged in both channels
    for c in (0, 1):
        assert fov.data[:, c].min() == 0 and fov.data[:, c].max() == MAX
    traces = check_traces(fov)
    cell = near(traces, 48, 48)
    assert list(cell["frame"]) == [0, 1, 2]
    area = cell["area_ch_0"].to_numpy()
    assert np.all(np.abs(area - np.pi * 100) < 0.15 * np.pi * 100)
    # every pixel of the saturated cell is 65535, the background about 1000
    assert (fov.data[:, 1][fov.images()["pc_ch_0/labels/seg_tracked_ch_0/0"][:] == cell["cell"].iloc[0]] == MAX).all()
    # intensity_total sums the measurement mask (tracked mask grown by measurement_dilation),
    # which holds the whole saturated disc, whatever the segmented area
    tracked = fov.images()["pc_ch_0/labels/seg_tracked_ch_0/0"][:]
    grown = [grow_labels(labels, ExtractionConfig().measurement_dilation) for labels in tracked]
    saturated = [np.count_nonzero(fov.data[t, 1][grown[t] == cell["cell"].iloc[0]] == MAX) for t in range(3)]
    np.testing.assert_allclose(cell["intensity_total_ch_1"], np.array(saturated) * (MAX - 1000), rtol=0.01)
    background = fov.images()["fl_background_ch_1/0"][:]
    assert np.abs(background - 1000).max() < 50  # hot and dead pixels do not drag the background
