"""``pyama evaluate`` and the evaluation API: CTC measures equal to py-ctcmetrics', hand-computed
values, a real run scored against its scene's truth, real annotated movies, and bad truth input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from conftest import pyama, small_scene, write_config
from ctc_metrics import evaluate_sequence
from ctc_metrics.utils.representations import match as library_match
from scipy import ndimage as ndi
from typer.testing import CliRunner

from pyama_framework.cli import app
from pyama_framework.evaluation import EvaluationError, load_truth, score, write_ctc_result, write_ctc_truth
from pyama_framework.evaluation.overlap import LabelImageError, check_label_image, ctc_match, overlaps


def scene_truth(fov: int = 0) -> np.ndarray:
    scene = small_scene(fov)
    return np.stack([scene.frame(t).labels for t in range(scene.n_frames)])


def numbered_per_frame(labels: np.ndarray, seed: int = 3) -> np.ndarray:
    """The same masks with cells renumbered 1..n in a random order in every frame."""
    rng = np.random.default_rng(seed)
    out = np.zeros_like(labels)
    for t, frame in enumerate(labels):
        ids = np.unique(frame[frame != 0])
        lut = np.zeros(int(frame.max()) + 1, dtype=labels.dtype)
        lut[ids] = rng.permutation(len(ids)) + 1
        out[t] = lut[frame]
    return out


def perturbed(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """A deliberately imperfect "result": eroded, missed, swapped, false, gapped and divided cells."""
    found = labels.astype(np.uint16).copy()
    ids = [int(i) for i in np.unique(labels[0]) if i]
    a, b, c, d, e = ids[:5]
    for t in range(len(found)):
        eroded = ndi.binary_erosion(labels[t] == a, iterations=2)
        found[t][(labels[t] == a) & ~eroded] = 0  # a: under-segmented rim
    found[2][labels[2] == b] = 0  # b: missed once (a gap in its track)
    for t in range(3, len(found)):  # c and d swap identities from frame 3
        found[t][labels[t] == c], found[t][labels[t] == d] = d, c
    top = int(labels.max())
    found[1][-6:, -6:] = top + 1  # a false positive
    for t in range(3, len(found)):  # e: a false division into top + 2 and top + 3 at frame 3
        ys, xs = np.nonzero(labels[t] == e)
        if not xs.size:
            continue
        left = xs <= np.median(xs)
        found[t][ys[left], xs[left]], found[t][ys[~left], xs[~left]] = top + 2, top + 3
    return found, {top + 2: e, top + 3: e}


# ------------------------------------------------------------- CTC measures
def test_ctc_match_equals_the_library_match(tmp_path):
    """Our in-memory matching is py-ctcmetrics' file-based ``match``, list for list."""
    truth = scene_truth()
    found, _ = perturbed(truth)
    for t in (0, 3):
        tifffile.imwrite(tmp_path / "ref.tif", truth[t])
        tifffile.imwrite(tmp_path / "comp.tif", found[t])
        expected = library_match(str(tmp_path / "ref.tif"), str(tmp_path / "comp.tif"))
        ours = ctc_match(overlaps(truth[t], found[t]))
        assert list(ours[:4]) == [list(map(int, x)) for x in expected[:4]]
        np.testing.assert_allclose(ours[4], expected[4])


def test_seg_det_tra_by_hand(tmp_path):
    """Two squares in two frames; one found at 80 % (IoU 0.8), one at 40 % (no match), one false blob."""
    truth = np.zeros((2, 40, 40), np.uint16)
    truth[:, 0:10, 0:10], truth[:, 20:30, 20:30] = 1, 2
    found = np.zeros_like(truth)
    found[:, 0:10, 0:8], found[:, 20:30, 20:24], found[:, 35:40, 35:40] = 1, 2, 3
    s = score(found, truth)
    assert s["SEG"] == pytest.approx((0.8 + 0.0) / 2)
    assert s["DET"] == pytest.approx(1 - (10 * 2 + 1 * 4) / (10 * 4))  # FN 2, FP 4 of 4 true vertices
    assert s["TRA"] == pytest.approx(1 - (10 * 2 + 1 * 4 + 1.5 * 1) / (10 * 4 + 1.5 * 2))  # + 1 missing edge
    assert s["f1"] == pytest.approx(2 * 2 / (2 * 2 + 4 + 2))
    assert s["jaccard"] == pytest.approx(2 * 120 / (2 * 225))
    assert s["objects_truth"] == [2, 2] and s["objects_found"] == [3, 3]
    assert s["links_kept"] == pytest.approx(0.5) and s["identity_switches"] == 0
    # and the library, from files, agrees
    write_ctc_truth(truth, tmp_path / "gt")
    write_ctc_result(found, tmp_path / "res")
    lib = evaluate_sequence(str(tmp_path / "res"), str(tmp_path / "gt"),
                            metrics=["SEG", "DET", "TRA"], threads=1)
    assert (lib["SEG"], lib["DET"], lib["TRA"]) == pytest.approx((s["SEG"], s["DET"], s["TRA"]))


def test_truth_against_itself_scores_one():
    truth = scene_truth()
    s = score(truth, truth)
    assert (s["SEG"], s["DET"], s["f1"], s["jaccard"]) == (1.0, 1.0, 1.0, 1.0)
    # the scene's truth has a cell missing for one frame; overlap-derived truth cannot bridge
    # that gap, the same IDs on both sides of it can: one extra edge, nothing else
    assert s["TRA"] > 0.99 and s["AOGM"]["ED"] <= 1 and s["AOGM"]["FN"] == s["AOGM"]["FP"] == 0
    scrambled = numbered_per_frame(truth)
    assert score(scrambled, scrambled)["DET"] == 1.0  # numbering per frame is fine for the truth


def test_wrapper_equals_evaluate_sequence_on_a_perturbed_pair(tmp_path):
    """The same folders through ctc_metrics.evaluate_sequence give the same SEG, DET, TRA and BC(1)
    (fails loudly when the library changes what ``calculate_metrics`` expects)."""
    truth = scene_truth()
    found, parents = perturbed(truth)
    gt = write_ctc_truth(truth, tmp_path / "gt", seg_frames=[0, 2, 5])  # SEG on some frames, as in CTC
    write_ctc_result(found, tmp_path / "res", parents)
    lib = evaluate_sequence(str(tmp_path / "res"), str(gt), metrics=["SEG", "DET", "TRA", "BC"], threads=1)
    ours = score(found, load_truth(gt), found_tracks=parents)
    assert 0.3 < lib["TRA"] < 0.99 and lib["AOGM_ED"] > 0  # the perturbations register
    assert ours["SEG"] == pytest.approx(lib["SEG"])
    assert ours["DET"] == pytest.approx(lib["DET"])
    assert ours["TRA"] == pytest.approx(lib["TRA"])
    assert ours["divisions"]["fp"] == lib["fp_div(1)"] == 1
    assert ours["identity_switches"] == 2  # c and d swapped once each
    assert ours["f1_per_frame"][1] is None and ours["jaccard_per_frame"][2] is not None


def test_divisions_and_links_from_a_lineage(tmp_path):
    """A true division found as a division scores BC 1; found as a continuation it is missed."""
    truth = np.zeros((4, 40, 60), np.uint16)
    truth[0:2, 10:20, 10:40] = 1  # mother, frames 0-1
    truth[2:, 10:20, 10:24], truth[2:, 10:20, 26:40] = 2, 3  # daughters from frame 2
    gt = write_ctc_truth(truth, tmp_path / "gt", parents={2: 1, 3: 1})
    right = score(truth, load_truth(gt), found_tracks={2: 1, 3: 1})
    assert right["division_f1"] == 1.0 and right["links_kept"] == 1.0 and right["TRA"] == 1.0
    merged = truth.copy()
    merged[merged == 2] = 1  # daughter 2 keeps the mother's ID, no lineage
    wrong = score(merged, load_truth(gt))
    assert wrong["division_f1"] == 0.0 and wrong["divisions"]["fn"] == 1
    assert wrong["links_kept"] == pytest.approx(4 / 5)  # 1->1, 1->2 (same ID), 2->2, 3->3; 1->3 lost
    # a stack numbered per frame yields the same division by overlap
    derived = score(truth, numbered_per_frame(truth), found_tracks={2: 1, 3: 1})
    assert derived["division_f1"] == 1.0 and derived["TRA"] == 1.0


def test_label_image_checks():
    with pytest.raises(LabelImageError, match="float32"):
        check_label_image(np.zeros((4, 4), np.float32), "x")
    with pytest.raises(LabelImageError, match="negative"):
        check_label_image(np.full((4, 4), -1, np.int32), "x")
    phase = small_scene(0).frame(0).phase
    with pytest.raises(LabelImageError, match="intensity image"):
        check_label_image(phase, "x")
    check_label_image(scene_truth()[0], "x")  # real labels pass, touching cells included


# ------------------------------------------------------------- real movies
def test_real_bsubtilis_truth_against_itself(real_movie, tmp_path):
    movie = real_movie("bsubtilis")
    parents = {int(r[0]): int(r[3]) for r in movie.tracks if r[3]}
    gt = tmp_path / "gt"
    (gt / "TRA").mkdir(parents=True)
    (gt / "SEG").mkdir()
    for t, frame in enumerate(movie.truth):
        tifffile.imwrite(gt / "TRA" / f"man_track{t:03d}.tif", frame)
        tifffile.imwrite(gt / "SEG" / f"man_seg{t:03d}.tif", frame)
    np.savetxt(gt / "TRA" / "man_track.txt", movie.tracks, fmt="%d")
    ctc = score(movie.truth, load_truth(gt), found_tracks=parents)
    assert (ctc["SEG"], ctc["DET"], ctc["TRA"], ctc["division_f1"]) == (1.0, 1.0, 1.0, 1.0)
    assert ctc["divisions"]["tp"] == 5 and ctc["links_kept"] == 1.0
    tifffile.imwrite(tmp_path / "masks.tif", numbered_per_frame(movie.truth), photometric="minisblack")
    stack = score(movie.truth, load_truth(tmp_path / "masks.tif"), found_tracks=parents)
    # overlap-derived lineage: the 5 divisions, and all but a few links of these fast-moving rods
    assert (stack["SEG"], stack["DET"], stack["division_f1"]) == (1.0, 1.0, 1.0)
    assert stack["TRA"] > 0.995 and stack["links_kept"] > 0.98


def test_real_bsubtilis_perturbed_equals_the_library(real_movie, tmp_path):
    movie = real_movie("bsubtilis")
    parents = {int(r[0]): int(r[3]) for r in movie.tracks if r[3]}
    gt = write_ctc_truth(movie.truth, tmp_path / "gt", parents=parents)
    found, extra = perturbed(movie.truth)
    write_ctc_result(found, tmp_path / "res", {**parents, **extra})
    lib = evaluate_sequence(str(tmp_path / "res"), str(gt), metrics=["SEG", "DET", "TRA", "BC"], threads=1)
    ours = score(found, load_truth(gt), found_tracks={**parents, **extra})
    assert (ours["SEG"], ours["DET"], ours["TRA"]) == pytest.approx((lib["SEG"], lib["DET"], lib["TRA"]))
    assert ours["division_f1"] == pytest.approx(lib["BC(1)"])


# ------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def results(two_fov_file, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("evaluate")
    done = pyama("run", str(write_config(folder, two_fov_file)))
    assert done.returncode == 0, done.stderr
    return folder / "out"


@pytest.fixture(scope="module")
def truth_files(tmp_path_factory) -> dict[str, Path]:
    """FOV 0's true masks as a stack numbered per frame (+ true intensities) and as a CTC folder."""
    folder = tmp_path_factory.mktemp("truth")
    scene = small_scene(0)
    labels = scene_truth()
    stack = numbered_per_frame(labels)
    tifffile.imwrite(folder / "masks.tif", stack, photometric="minisblack")
    rows = []
    for t in range(scene.n_frames):  # the stack's own labels, per frame
        frame = scene.frame(t)
        for i in np.flatnonzero(frame.visible):
            label = int(np.bincount(stack[t][labels[t] == i + 1]).argmax())
            rows.append((t, label, frame.intensity_total[0][i]))
    pd.DataFrame(rows, columns=["frame", "label", "intensity_total_ch_1"]).to_csv(
        folder / "masks.traces.csv", index=False)
    zarr.save_array(str(folder / "masks.zarr"), stack)
    return {"stack": folder / "masks.tif", "ctc": write_ctc_truth(labels, folder / "ctc"),
            "zarr": folder / "masks.zarr"}


def _json(*args: str) -> dict:
    """``pyama evaluate ... --json`` in-process (the CLI, without a new interpreter per call)."""
    done = CliRunner().invoke(app, ["evaluate", *args, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_evaluate_a_run_against_stack_and_ctc_truth(results, truth_files):
    done = pyama("evaluate", str(results), "--truth", str(truth_files["stack"]), "--fov", "0", "--json")
    assert done.returncode == 0, done.stderr
    stack = json.loads(done.stdout)
    ctc = _json(str(results), "--truth", str(truth_files["ctc"]), "--fov", "0")
    zarr_truth = _json(str(results), "--truth", str(truth_files["zarr"]), "--fov", "0")
    for key in ("SEG", "DET", "TRA", "jaccard", "objects_truth", "objects_found", "f1", "links_kept",
                "identity_switches", "division_f1", "trace_error"):
        assert key in stack and key in ctc
    assert len(stack["objects_truth"]) == 6 and stack["objects_truth"] == ctc["objects_truth"]
    assert stack["SEG"] > 0.7 and stack["DET"] > 0.8 and stack["TRA"] > 0.7
    assert stack["jaccard"] > 0.85 and stack["f1"] > 0.85 and stack["links_kept"] > 0.8
    # segmentation measures do not depend on how the truth is stored
    for key in ("SEG", "DET", "jaccard", "f1", "objects_found"):
        assert stack[key] == pytest.approx(ctc[key]) and stack[key] == pytest.approx(zarr_truth[key])
    err = stack["trace_error"]["intensity_total_ch_1"]
    assert err["n"] >= 0.8 * err["n_truth"] and err["median_abs"] < 0.25
    assert ctc["trace_error"] is None  # no traces.csv in the CTC folder
    table = CliRunner().invoke(app, ["evaluate", str(results), "--truth", str(truth_files["stack"]), "--fov", "0"])
    assert table.exit_code == 0 and "TRA" in table.stdout and "links_kept" in table.stdout


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def _refused(*args: str, match: str) -> None:
    done = CliRunner().invoke(app, list(args))
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], done.stderr


def test_bad_truth_is_refused_in_one_line(results, truth_files, tmp_path):
    before = _snapshot(results)
    run = [str(results), "--fov", "0", "--truth"]
    labels = scene_truth()
    bad = {
        "missing": (tmp_path / "nowhere", "does not exist"),
        "frames.tif": (labels[:5], "is 6 frames"),
        "shape.tif": (labels[:, :100], "x 128"),
        "float.tif": (labels.astype(np.float32), "float32"),
        "negative.tif": (labels.astype(np.int32) - 1, "negative"),
        "phase.tif": (np.stack([f.phase for f in small_scene(0).frames()]), "intensity image"),
    }
    for name, (data, match) in bad.items():
        path = data if isinstance(data, Path) else tmp_path / name
        if not isinstance(data, Path):
            tifffile.imwrite(path, data, photometric="minisblack")
        _refused("evaluate", *run, str(path), match=match)
    no_lineage = write_ctc_truth(labels, tmp_path / "ctc")
    (no_lineage / "TRA" / "man_track.txt").unlink()
    _refused("evaluate", *run, str(no_lineage), match="man_track.txt")
    (tmp_path / "empty").mkdir()
    _refused("evaluate", *run, str(tmp_path / "empty"), match="without SEG/ or TRA/")
    assert _snapshot(results) == before and not (tmp_path / "nowhere").exists()


def test_bad_results_are_refused_in_one_line(results, truth_files, tmp_path):
    truth = ["--truth", str(truth_files["stack"])]
    _refused("evaluate", str(tmp_path), *truth, match="not a pyama output folder")
    _refused("evaluate", str(results), *truth, match="choose one with --fov")
    _refused("evaluate", str(results), "--fov", "7", *truth, match="no FOV 7")
    unfinished = tmp_path / "unfinished"
    shutil.copytree(results, unfinished)
    (unfinished / "fov_000" / ".pyama" / "track.json").unlink()
    _refused("evaluate", str(unfinished), "--fov", "0", *truth, match="not tracked yet")


def test_in_memory_errors_name_the_problem():
    truth = scene_truth()
    with pytest.raises(EvaluationError, match="is 6 frames"):
        score(truth[:5], truth)
    with pytest.raises(EvaluationError, match="no cells"):
        score(np.zeros_like(truth), np.zeros_like(truth))
