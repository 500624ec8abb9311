"""``pyama export ctc``: CTC result folders that py-ctcmetrics validates and scores 1.0 against themselves."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from conftest import pyama, write_config
from ctc_metrics import evaluate_sequence, validate_sequence
from typer.testing import CliRunner

from pyama_framework.cli import app
from pyama_framework.evaluation import RunFov, export_ctc, load_truth, mask_name, open_run, score


@pytest.fixture(scope="module")
def results(two_fov_file, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    done = pyama("run", str(write_config(folder, two_fov_file)))
    assert done.returncode == 0, done.stderr
    return folder / "out"


def as_ground_truth(result: Path, gt: Path) -> Path:
    """A CTC result folder laid out as ground truth (TRA + SEG), to score it against itself."""
    (gt / "TRA").mkdir(parents=True)
    (gt / "SEG").mkdir()
    for mask in sorted(result.glob("mask*.tif")):
        shutil.copy(mask, gt / "TRA" / mask.name.replace("mask", "man_track"))
        shutil.copy(mask, gt / "SEG" / mask.name.replace("mask", "man_seg"))
    shutil.copy(result / "res_track.txt", gt / "TRA" / "man_track.txt")
    return gt


def test_export_validates_and_scores_one_against_itself(results, tmp_path):
    out = tmp_path / "01_RES"
    done = pyama("export", "ctc", str(results), str(out), "--fov", "1")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"mask{t:03d}.tif" for t in range(6)] + ["res_track.txt"]
    tracked = open_run(results, 1).tracked
    first = tifffile.imread(out / "mask000.tif")
    assert first.dtype == np.uint16 and np.array_equal(first, tracked[0])
    assert validate_sequence(str(out), threads=1)["Valid"] == 1
    gt = as_ground_truth(out, tmp_path / "01_GT")
    lib = evaluate_sequence(str(out), str(gt), metrics=["SEG", "DET", "TRA"], threads=1)
    assert (lib["SEG"], lib["DET"], lib["TRA"]) == (1.0, 1.0, 1.0)
    run = open_run(results, 1)
    ours = score(run.tracked, load_truth(gt), run.parents)
    assert (ours["SEG"], ours["DET"], ours["TRA"], ours["links_kept"]) == (1.0, 1.0, 1.0, 1.0)


def test_gaps_become_child_tracks_and_divisions_keep_their_parent(tmp_path):
    """Cell 1 is missing in frame 2 (gap closing kept its ID); cell 2 divides into 3 and 4."""
    labels = np.zeros((5, 30, 60), np.uint16)
    for t in (0, 1, 3, 4):
        labels[t, 2:8, 2:8] = 1
    labels[0:2, 10:20, 10:40] = 2
    labels[2:, 10:20, 10:24], labels[2:, 10:20, 26:40] = 3, 4
    tracked = zarr.create_array(str(tmp_path / "seg_tracked.zarr"), shape=labels.shape, dtype=np.uint16,
                                chunks=(1, 30, 60))
    tracked[:] = labels
    run = RunFov(tmp_path, 0, tracked, parents={3: 2, 4: 2}, traces_path=None)
    info = export_ctc(run, tmp_path / "res")
    table = np.loadtxt(tmp_path / "res" / "res_track.txt", dtype=int, ndmin=2)
    assert table.tolist() == [[1, 0, 1, 0], [2, 0, 1, 0], [3, 2, 4, 2], [4, 2, 4, 2], [5, 3, 4, 1]]
    assert info == {"frames": 5, "tracks": 5, "split": 1}
    assert set(np.unique(tifffile.imread(tmp_path / "res" / "mask003.tif"))) == {0, 3, 4, 5}
    assert validate_sequence(str(tmp_path / "res"), threads=1)["Valid"] == 1
    # the split track still scores perfectly against the unsplit truth it came from
    assert score(labels, load_truth(as_ground_truth(tmp_path / "res", tmp_path / "gt")), {3: 2, 4: 2})["TRA"] == 1.0


def test_mask_names_follow_ctc_digits():
    assert mask_name(7, 1000) == "mask007.tif"
    assert mask_name(7, 1001) == "mask0007.tif"


def test_export_refuses_bad_input_without_writing(results, tmp_path):
    runner = CliRunner()
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "res_track.txt").write_text("1 0 0 0\n")
    for args, match in (([str(tmp_path / "nothing"), str(tmp_path / "new")], "not a pyama output folder"),
                        ([str(results), str(tmp_path / "new")], "choose one with --fov"),
                        ([str(results), str(taken), "--fov", "0"], "already holds a CTC result")):
        done = runner.invoke(app, ["export", "ctc", *args])
        assert done.exit_code == 2, done.output
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and match in lines[0]
    assert not (tmp_path / "new").exists() and (taken / "res_track.txt").read_text() == "1 0 0 0\n"
    replaced = runner.invoke(app, ["export", "ctc", str(results), str(taken), "--fov", "0", "--overwrite"])
    assert replaced.exit_code == 0 and (taken / "mask005.tif").is_file()
