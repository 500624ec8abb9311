"""End-to-end runs through the CLI: layout, provenance, resume, failures, reproducibility."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import yaml
import zarr

from conftest import make_distribution, pyama, read_frames, small_scene, write_config
from pyama_framework.cells import read_crop

TRACES = "fov_{0:03d}/movie_fov_{0:03d}_traces.csv"


def test_full_run_layout_and_provenance(tmp_path, two_fov_file):
    config = write_config(tmp_path, two_fov_file, execution={"workers": 2})
    result = pyama("run", str(config))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    for fov in (0, 1):
        images = zarr.open_group(out / f"fov_{fov:03d}" / "images.zarr", mode="r")
        raw = images["pc_ch_0/0"]
        assert raw.shape == (6, 128, 128) and raw.dtype == np.uint16 and raw.chunks == (1, 128, 128)
        assert images["fl_ch_1/0"].dtype == np.uint16
        assert images["pc_ch_0/labels/seg_labeled_ch_0/0"].dtype == np.uint16
        assert images["pc_ch_0/labels/seg_tracked_ch_0/0"].shape == (6, 128, 128)
        assert images["fl_background_ch_1/0"].dtype == np.float32
        assert images["pc_ch_0/1"].shape == (6, 64, 64) and images["pc_ch_0/1"].dtype == np.uint8
        # the stored frames are exactly the file's pixels
        np.testing.assert_array_equal(raw[:], read_frames(small_scene(fov))[:, 0])
        traces = pd.read_csv(out / TRACES.format(fov))
        assert list(traces.columns[:12]) == ["fov", "cell", "parent", "frame", "time", "good", "position_x",
                                             "position_y", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
        # the lineage lists every tracked cell with its frame span; the traces carry its parent column
        lineage = pd.read_csv(out / f"fov_{fov:03d}" / "tracks.csv")
        assert list(lineage.columns) == ["cell", "first_frame", "last_frame", "parent"]
        assert set(traces["cell"]) <= set(lineage["cell"])
        spans = traces.groupby("cell")["frame"].agg(["min", "max"])
        merged = lineage.set_index("cell").loc[spans.index]
        assert (merged["first_frame"] == spans["min"]).all() and (merged["last_frame"] == spans["max"]).all()
        assert (traces["parent"] == traces["cell"].map(lineage.set_index("cell")["parent"])).all()
        assert {"area_ch_0", "intensity_total_ch_1"} <= set(traces.columns)
        assert len(traces) > 0 and (traces["fov"] == fov).all()
        # the cell column is the label value in seg_tracked at the cell's pixels
        tracked = images["pc_ch_0/labels/seg_tracked_ch_0/0"]
        for row in traces.sample(5, random_state=0).itertuples():
            box = tracked[row.frame, row.bbox_y0:row.bbox_y1, row.bbox_x0:row.bbox_x1]
            assert (box == row.cell).sum() == row.area_ch_0
        cells = zarr.open_group(out / f"fov_{fov:03d}" / "cells.zarr", mode="r")
        ids = cells["metadata/cell_ids"][:]
        assert sorted(ids) == sorted(traces["cell"].unique())
        assert cells["metadata/bboxes"].shape == (len(ids), 6, 4)
        crop = read_crop(out / f"fov_{fov:03d}", "fl_ch_1", ids[0])
        assert crop.dtype == np.float32 and 0 <= crop.min() and crop.max() <= 1
        # a phase crop is the raw window, linearly normalised (exact where not clipped)
        y0, x0, y1, x1 = cells["metadata/windows"][len(ids) // 2]
        pc_crop = read_crop(out / f"fov_{fov:03d}", "pc_ch_0", ids[len(ids) // 2])
        window = raw[:, y0:y1, x0:x1].astype(np.float64)
        inside = (pc_crop > 0) & (pc_crop < 1)
        slope, intercept = np.polyfit(window[inside], pc_crop[inside], 1)
        np.testing.assert_allclose(slope * window[inside] + intercept, pc_crop[inside], atol=1e-5)
        assert read_crop(out / f"fov_{fov:03d}", "pc_ch_0", ids[0], level=1).dtype == np.uint8
    saved = yaml.safe_load((out / "processing_config.yaml").read_text())
    assert saved["reader"] == "tiff" and saved["segmentation"]["params"]["window_size"] == 3
    plugins = saved["provenance"]["plugins"]
    assert plugins["segmenter"] == {"name": "logstd", "distribution": "pyama-framework", "version": "0.1.0"}
    assert "tifffile" in plugins["reader"]["library"]

    # The saved config reproduces the run: into a new folder, byte-identical traces.
    saved["output"] = str(tmp_path / "again")
    saved["execution"]["workers"] = 1
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(saved))
    assert pyama("run", str(again)).returncode == 0
    for fov in (0, 1):
        assert (tmp_path / "again" / TRACES.format(fov)).read_bytes() == (out / TRACES.format(fov)).read_bytes()

    # Rerunning the same config resumes: every stage is already complete.
    rerun = pyama("run", str(config))
    assert rerun.returncode == 0 and "2 of 2 FOV(s) complete" in rerun.stderr


def test_incompatible_output_needs_overwrite(tmp_path, two_fov_file):
    config = write_config(tmp_path, two_fov_file, fovs="0")
    assert pyama("run", str(config)).returncode == 0
    changed = write_config(tmp_path, two_fov_file, fovs="0", tracking={"method": "iou_hungarian", "params": {"min_iou": 0.3}})
    refused = pyama("run", str(changed))
    assert refused.returncode == 2 and "different config (changed: tracking)" in refused.stderr
    assert pyama("run", str(changed), "--overwrite").returncode == 0
    saved = yaml.safe_load((tmp_path / "out" / "processing_config.yaml").read_text())
    assert saved["tracking"]["params"]["min_iou"] == 0.3


def test_copy_only_and_no_fluorescence(tmp_path, two_fov_file):
    config = write_config(tmp_path, two_fov_file, copy_only=True)
    assert pyama("run", str(config)).returncode == 0
    images = zarr.open_group(tmp_path / "out" / "fov_000" / "images.zarr", mode="r")
    assert sorted(images.group_keys()) == ["fl_ch_1", "pc_ch_0"]
    assert not list((tmp_path / "out" / "fov_000").glob("*.csv"))

    (tmp_path / "pc").mkdir()
    pc_only = write_config(tmp_path / "pc", two_fov_file, channels={"pc": {"channel": 0, "features": []}, "fl": []})
    assert pyama("run", str(pc_only)).returncode == 0
    images = zarr.open_group(tmp_path / "pc" / "out" / "fov_000" / "images.zarr", mode="r")
    assert "fl_background_ch_1" not in images
    traces = pd.read_csv(tmp_path / "pc" / "out" / TRACES.format(0))
    assert list(traces.columns) == ["fov", "cell", "parent", "frame", "time", "good", "position_x", "position_y",
                                    "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
    assert len(traces) > 0


FAULTY = """
import numpy as np
from pyama_framework import SegmenterRegistration, hookimpl

def segment_or_fail(image):
    if image.max() == image.min():
        raise ValueError("phase frame has no contrast")
    from pyama_builtin.segmentation.logstd import segment_logstd
    from pyama_builtin.segmentation import LogStdParams
    return segment_logstd(image, **LogStdParams().model_dump())

@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="fragile", summary="fails on blank frames", implementation=segment_or_fail)
"""


def test_plugin_failure_fails_one_fov_only(tmp_path):
    frames = [read_frames(small_scene(f)) for f in (0, 1, 2)]
    frames[1][:, 0] = 1000  # FOV 1: blank phase contrast
    path = tmp_path / "three.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        for data in frames:
            tif.write(data, metadata={"axes": "TCYX"})
    site = make_distribution(tmp_path / "site", "lab-fragile", "0.1", {"fragile": "lab_fragile"},
                             {"lab_fragile.py": FAULTY})
    config = write_config(tmp_path, path, segmentation={"method": "fragile", "params": {}},
                          execution={"workers": 2})
    result = pyama("run", str(config), env={"PYTHONPATH": str(site)})
    assert result.returncode == 1, result.stderr
    assert "FOV 1 failed" in result.stderr and "no contrast" in result.stderr
    assert "2 of 3 FOV(s) complete" in result.stderr
    out = tmp_path / "out"
    assert (out / "fov_000" / "three_fov_000_traces.csv").exists()
    assert (out / "fov_002" / "three_fov_002_traces.csv").exists()
    assert not (out / "fov_001" / "three_fov_001_traces.csv").exists()
    assert "ValueError" in (out / "fov_001" / "error.log").read_text()


def test_killed_run_resumes_to_identical_traces(tmp_path):
    scenes = [small_scene(f, n_frames=30) for f in (0, 1)]
    from pyama_framework.testing.synthetic import write_ome_tiff

    path = write_ome_tiff(tmp_path / "movie.ome.tif", scenes)
    (tmp_path / "ref").mkdir()
    reference = write_config(tmp_path / "ref", path)
    assert pyama("run", str(reference)).returncode == 0

    (tmp_path / "killed").mkdir()
    config = write_config(tmp_path / "killed", path)
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    records = tmp_path / "killed" / "out" / "fov_000" / ".pyama"
    deadline = time.time() + 120
    while time.time() < deadline and not (records / "segment.json").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (records / "segment.json").exists(), "the run should have been killed after segmentation"
    assert not (tmp_path / "killed" / "out" / TRACES.format(1)).exists(), "killed before the end"

    resumed = pyama("run", str(config))
    assert resumed.returncode == 0, resumed.stderr
    for fov in (0, 1):
        a = (tmp_path / "ref" / "out" / TRACES.format(fov)).read_bytes()
        b = (tmp_path / "killed" / "out" / TRACES.format(fov)).read_bytes()
        assert a == b
    record = json.loads((records / "segment.json").read_text())
    assert "fingerprint" in record


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    from pyama_framework.testing.synthetic import write_ome_tiff

    path = write_ome_tiff(tmp_path / "movie.ome.tif", [small_scene(f, n_frames=30) for f in (0, 1)])
    config = write_config(tmp_path, path, execution={"workers": 2})
    proc = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    records = tmp_path / "out" / "fov_000" / ".pyama"
    deadline = time.time() + 120
    while time.time() < deadline and not (records / "copy.json").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    assert not (records / "cache.json").exists()

    resumed = pyama("run", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "out" / TRACES.format(1)).exists()
