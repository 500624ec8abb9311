"""Issue 3's accuracy thresholds, measured end to end: ``pyama run`` on a synthetic OME-TIFF
with the built-in defaults (segmenter, tracker, tiled_spline, area + intensity_total),
scored against the scene's ground truth from the stored zarr arrays and the traces CSV.

Fair-comparison settings: ``extraction: {min_frames: 1, border_margin: 0}`` so that every
tracked object reaches the CSV (the default filters would drop short and edge cells, which
says nothing about accuracy). Everything else is the default.

Matching (CTC SEG rule): a ground-truth (GT) cell is matched by the predicted object that
covers more than half of its pixels (at most one can). Excluded from scoring, and counted:
GT objects cut by the image edge to fewer than the segmenter's ``min_size`` (50 px) pixels --
the pipeline is not meant to find them.

The scene renders what real optics add (issue 7): a soft fluorescence edge, a 1.5 px PSF,
blurred phase with strong halos, cells 1 px apart and debris, so the true ``intensity_total``
(the cell's whole signal) reaches past its mask. It is compared with that noise-free truth
and, to separate what the pipeline adds from the scene's own shot noise, with the sum of
(raw - true background) over the true mask grown like the measurement mask
(``extraction.measurement_dilation``) on the same noisy pixels.

The helpers also serve the larger-scene measurement (run this file as a script:
``python tests/test_accuracy_e2e.py 1024 150 10``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import pyama, write_config  # noqa: E402

from pyama_framework.config import ExtractionConfig  # noqa: E402
from pyama_framework.stages.extract import grow_labels  # noqa: E402
from pyama_framework.testing.synthetic import REALISTIC_OPTICS, SyntheticScene, write_ome_tiff  # noqa: E402

MIN_SIZE = 50  # logstd's default min_size
MAX_GAP = 2  # the trackers' default max_gap
DILATION = ExtractionConfig().measurement_dilation  # the default measurement mask


def _touches_edge(box: np.ndarray, shape: tuple[int, int]) -> bool:
    y0, x0, y1, x1 = box
    return y0 == 0 or x0 == 0 or y1 == shape[0] or x1 == shape[1]


def _overlaps(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(g, p, n) for every pair of GT label g > 0 and predicted label p > 0 sharing n pixels."""
    both = (gt > 0) & (pred > 0)
    pairs = gt[both].astype(np.int64) * (int(pred.max()) + 1) + pred[both].astype(np.int64)
    keys, counts = np.unique(pairs, return_counts=True)
    return keys // (int(pred.max()) + 1), keys % (int(pred.max()) + 1), counts


def match_frame(gt: np.ndarray, pred: np.ndarray) -> dict[int, tuple[int, float]]:
    """GT label -> (predicted label covering > 50 % of it, Jaccard); unmatched GT absent."""
    gt_area = np.bincount(gt.ravel(), minlength=int(gt.max()) + 1)
    pred_area = np.bincount(pred.ravel().astype(np.int64), minlength=int(pred.max()) + 1)
    out = {}
    for g, p, n in zip(*_overlaps(gt, pred)):
        if 2 * n > gt_area[g]:
            out[int(g)] = (int(p), n / (gt_area[g] + pred_area[p] - n))
    return out


@dataclass
class Scores:
    numbers: dict
    details: dict


def score(scene: SyntheticScene, out_fov: Path, traces_csv: Path) -> Scores:
    images = zarr.open_group(out_fov / "images.zarr", mode="r")
    labeled = images["pc_ch_0/labels/seg_labeled_ch_0/0"]
    tracked = images["pc_ch_0/labels/seg_tracked_ch_0/0"]
    background = images["fl_background_ch_1/0"]
    traces = pd.read_csv(traces_csv)
    shape = (scene.height, scene.width)

    jaccard, excluded, seg_rows = [], 0, []
    bg_errors = []
    tracked_match: list[dict[int, int]] = []  # per frame: GT label -> tracked ID
    tracked_owner: list[dict[int, int]] = []  # per frame: tracked ID -> GT label
    truth_total: list[np.ndarray] = []
    truth_noisy: list[np.ndarray] = []  # per frame: sum over the grown GT mask of raw - true background
    for t in range(scene.n_frames):
        frame = scene.frame(t)
        gt = frame.labels
        truth_total.append(frame.intensity_total[0])
        corrected = frame.fluorescence[0].astype(np.float64) - frame.background[0]
        grown = grow_labels(gt, DILATION)
        truth_noisy.append(np.bincount(grown.ravel(), weights=corrected.ravel(), minlength=scene.n_cells + 1)[1:])
        seg = match_frame(gt, labeled[t])
        for i in np.flatnonzero(frame.visible):
            g = i + 1
            edge = _touches_edge(frame.bboxes[i], shape)
            if edge and frame.area[i] < MIN_SIZE:
                excluded += 1
                continue
            j = seg[g][1] if g in seg else 0.0
            jaccard.append(j)
            seg_rows.append((t, g, frame.area[i], edge, frame.intensity_total[0][i], j))
        tr = match_frame(gt, tracked[t])
        tracked_match.append({g: p for g, (p, _) in tr.items()})
        tracked_owner.append({p: g for g, (p, _) in tr.items()})
        truth = frame.background[0]
        bg_errors.append((np.abs(background[t] - truth) / truth).ravel())

    # Tracking: GT links between consecutive appearances (the dropout gap counts as one).
    links = recovered = 0
    missed_links = []
    for cell in scene.cells:
        g = cell.track_id
        seen = [t for t in range(scene.n_frames) if g in tracked_match[t]]
        for a, b in zip(seen, seen[1:]):
            consecutive = b == a + 1 or (cell.dropout_frame is not None and a + 1 == cell.dropout_frame == b - 1)
            if not consecutive:
                continue
            links += 1
            if tracked_match[a][g] == tracked_match[b][g]:
                recovered += 1
            else:
                missed_links.append((g, a, b))
    ids_per_gt: dict[int, set] = {}
    gt_per_id: dict[int, set] = {}
    for t in range(scene.n_frames):
        for g, p in tracked_match[t].items():
            ids_per_gt.setdefault(g, set()).add(p)
            gt_per_id.setdefault(p, set()).add(g)
    merged_ids = {p: s for p, s in gt_per_id.items() if len(s) > 1}
    # A GT cell may change ID only across more than max_gap (1) frames in which it was
    # present but not segmented: the tracker cannot bridge that.
    split_gt = {}
    for g in ids_per_gt:
        seen = [(t, tracked_match[t][g]) for t in range(scene.n_frames) if g in tracked_match[t]]
        switches = [(a, b) for (a, p), (b, q) in zip(seen, seen[1:]) if p != q and b - a - 1 <= MAX_GAP]
        if switches:
            split_gt[g] = switches

    # intensity_total: every CSV row whose tracked object matches a GT cell.
    errors, signed, noisy, floor, unmatched_rows, rows = [], [], [], [], 0, []
    for row in traces.itertuples():
        owner = tracked_owner[row.frame].get(row.cell)
        if owner is None:
            unmatched_rows += 1
            continue
        truth = truth_total[row.frame][owner - 1]
        same_pixels = truth_noisy[row.frame][owner - 1]
        err = abs(row.intensity_total_ch_1 - truth) / truth
        errors.append(err)
        signed.append((row.intensity_total_ch_1 - truth) / truth)
        noisy.append(abs(row.intensity_total_ch_1 - same_pixels) / truth)
        floor.append(abs(same_pixels - truth) / truth)
        rows.append((row.frame, owner, row.cell, err))
    errors, signed, noisy, floor = (np.array(v) for v in (errors, signed, noisy, floor))
    bg_errors = np.concatenate(bg_errors)
    numbers = {
        "seg_mean_jaccard": float(np.mean(jaccard)),
        "seg_gt_objects": len(jaccard),
        "seg_unmatched": int(np.sum(np.array(jaccard) == 0)),
        "seg_excluded_edge_small": excluded,
        "track_links": links,
        "track_recovered": recovered,
        "track_fraction": recovered / links if links else 1.0,
        "track_ids_on_two_gt": len(merged_ids),
        "track_gt_on_two_ids": len(split_gt),
        "bg_median_pct": float(np.median(bg_errors) * 100),
        "bg_p99_pct": float(np.percentile(bg_errors, 99) * 100),
        "bg_max_pct": float(bg_errors.max() * 100),
        "total_rows": len(errors),
        "total_unmatched_rows": unmatched_rows,
        "total_median_pct": float(np.median(errors) * 100),
        "total_p90_pct": float(np.percentile(errors, 90) * 100),
        "total_signed_median_pct": float(np.median(signed) * 100),
        "noisy_median_pct": float(np.median(noisy) * 100),
        "noisy_p90_pct": float(np.percentile(noisy, 90) * 100),
        "floor_median_pct": float(np.median(floor) * 100),
        "floor_p90_pct": float(np.percentile(floor, 90) * 100),
    }
    details = {"seg": seg_rows, "missed_links": missed_links, "merged_ids": merged_ids,
               "split_gt": split_gt, "total": rows, "tracked_match": tracked_match}
    return Scores(numbers, details)


def run_and_score(folder: Path, scene: SyntheticScene) -> Scores:
    path = write_ome_tiff(folder / "movie.ome.tif", [scene])
    config = write_config(folder, path, extraction={"min_frames": 1, "border_margin": 0})
    result = pyama("run", str(config))
    assert result.returncode == 0, result.stderr
    out = folder / "out" / "fov_000"
    return score(scene, out, out / "movie_fov_000_traces.csv")


def report(n: dict) -> str:
    return (f"SEG mean Jaccard {n['seg_mean_jaccard']:.4f} over {n['seg_gt_objects']} GT objects "
            f"({n['seg_unmatched']} unmatched, {n['seg_excluded_edge_small']} edge-cut < {MIN_SIZE} px excluded)\n"
            f"tracking {n['track_recovered']}/{n['track_links']} links = {100 * n['track_fraction']:.2f} %, "
            f"IDs on 2+ GT cells {n['track_ids_on_two_gt']}, GT cells on 2+ IDs {n['track_gt_on_two_ids']}\n"
            f"background rel. error median {n['bg_median_pct']:.3f} %, p99 {n['bg_p99_pct']:.3f} %, "
            f"max {n['bg_max_pct']:.2f} %\n"
            f"intensity_total rel. error median {n['total_median_pct']:.3f} %, p90 {n['total_p90_pct']:.3f} % "
            f"(signed median {n['total_signed_median_pct']:+.2f} %) over {n['total_rows']} rows "
            f"({n['total_unmatched_rows']} rows match no GT cell)\n"
            f"  noise floor (grown GT mask, true background) median {n['floor_median_pct']:.3f} %, "
            f"p90 {n['floor_p90_pct']:.3f} %\n"
            f"  against the same noisy pixels (grown GT mask, true background) median {n['noisy_median_pct']:.3f} %, "
            f"p90 {n['noisy_p90_pct']:.3f} %")


def realistic_scene(size: int, cells: int, frames: int, seed: int) -> SyntheticScene:
    """The scene with what real optics add (issue 7): soft edges, PSF, halos, debris."""
    return SyntheticScene(size, size, n_frames=frames, n_cells=cells, seed=seed,
                          n_debris=cells // 4, **REALISTIC_OPTICS)


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> Scores:
    scene = realistic_scene(512, 40, 8, seed=3)
    s = run_and_score(tmp_path_factory.mktemp("accuracy"), scene)
    print("\n" + report(s.numbers))
    return s


def test_segmentation_jaccard(scores):
    assert scores.numbers["seg_mean_jaccard"] >= 0.85, report(scores.numbers)


def test_tracking_links_and_no_switches(scores):
    assert scores.numbers["track_fraction"] >= 0.99, scores.details["missed_links"]
    assert not scores.details["merged_ids"], "tracked IDs covering two GT cells"
    assert not scores.details["split_gt"], "GT cells changing ID across a bridgeable gap"


def test_background_p99(scores):
    assert scores.numbers["bg_p99_pct"] <= 3.0, report(scores.numbers)


def test_intensity_total_p90(scores):
    assert scores.numbers["total_p90_pct"] <= 5.0, report(scores.numbers)


def test_intensity_total_unbiased_against_noise_free_truth(scores):
    """Measured (512 px, seed 3): signed median +0.03 %, median |error| 0.98 % (shot noise
    alone gives ~0.9 % with perfect masks); with the tracked mask alone the bias is ~-18 %."""
    n = scores.numbers
    assert abs(n["total_signed_median_pct"]) <= 1.0 and n["total_median_pct"] <= 1.5, report(n)


def test_intensity_total_against_same_pixels(scores):
    """Against what a perfect mask and background would measure on the same noisy pixels,
    i.e. the error the pipeline adds (masks + background), both issue thresholds hold."""
    n = scores.numbers
    assert n["noisy_median_pct"] <= 1.0 and n["noisy_p90_pct"] <= 5.0, report(n)
    # and the pipeline stays within 1 % (median) of the noise floor against the noise-free truth
    assert n["total_median_pct"] <= n["floor_median_pct"] + 1.0, report(n)


if __name__ == "__main__":
    import tempfile

    size, cells, frames = (int(a) for a in sys.argv[1:4])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    with tempfile.TemporaryDirectory() as tmp:
        s = run_and_score(Path(tmp), realistic_scene(size, cells, frames, seed))
    print(report(s.numbers))
