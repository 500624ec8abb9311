"""Accuracy and speed of the ``tiled_spline`` background and the built-in features.

On synthetic FOVs (ground-truth labels, background and per-cell totals) it reports, per
frame size: background relative error (median, 99th percentile, maximum in the outer
128 px band), ``intensity_total`` relative error with the estimated background next to the
noise floor (the same with the true background), and seconds per frame of the background
and of every feature's fast path. ``--grid`` also sweeps tile size and knot spacing, which is
how the defaults were chosen.

    python benchmarks/background_features.py
    python benchmarks/background_features.py --grid
    python benchmarks/background_features.py --bias     # intensity_total bias vs measurement mask

``--bias`` runs the default segmenter and tracker (and the tiled_spline background) on scenes of the independent
rod simulator (:mod:`pyama_framework.testing.rodsim`) and of the project's own generator
with realistic optics, and reports the signed error of ``intensity_total`` for several
``extraction.measurement_dilation`` values, over every tracked object that matches one true
cell (> 50 % overlap both ways), split into cells that touch a neighbour and cells that do
not. This is how the default dilation was chosen (tuning seeds 1-2, held-out seeds >= 11).

pyama-core 0.1.0 (shared/spec/pyama-core-facts.md): background 1.3 s/frame at 2048 px,
99th percentile 3.8 % (8.8 % at 1024 px), up to 16.5 % in the outer band; extraction
8.8 s/frame; intensity_total median/90th percentile error 2.2 %/15 % (2048 px, 600 cells)
and 6.6 %/39 % (1024 px, 150 cells).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage as ndi

from pyama_builtin.background.tiled_spline import estimate_background
from pyama_framework.evaluation.overlap import mutual_match
from pyama_framework.registry import discover
from pyama_framework.testing.synthetic import SyntheticScene
from pyama_framework.types import CellFrame

SIZES = [(512, 40), (1024, 150), (2048, 600)]


def cell_frame(labels, image, background) -> CellFrame:
    ids = np.unique(labels)[1:].astype(np.int64)
    boxes = ndi.find_objects(labels)
    bboxes = np.array([[boxes[i - 1][0].start, boxes[i - 1][1].start, boxes[i - 1][0].stop,
                        boxes[i - 1][1].stop] for i in ids], dtype=np.int64).reshape(-1, 4)
    return CellFrame(labels, image, background, ids, bboxes)


def seconds(fn, repeat=5) -> float:
    fn()
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def total_error(frame, background) -> np.ndarray:
    from pyama_builtin.features.intensity import intensity_total_frame

    cells = cell_frame(frame.labels, frame.fluorescence[0], background)
    truth = frame.intensity_total[0][cells.cell_ids - 1]
    return np.abs(intensity_total_frame(cells) - truth) / truth


def accuracy(frames, **params) -> dict[str, float]:
    bg, total, floor = [], [], []
    for frame in frames:
        estimate = estimate_background(frame.fluorescence[0], frame.labels, **params)
        truth = frame.background[0]
        error = np.abs(estimate - truth) / truth
        band = np.ones(error.shape, dtype=bool)
        band[128:-128, 128:-128] = False
        bg.append((np.median(error), np.percentile(error, 99), error[band].max()))
        total.append(total_error(frame, estimate))
        floor.append(total_error(frame, truth.astype(np.float32)))
    bg = np.mean(bg, axis=0) * 100
    total, floor = np.concatenate(total) * 100, np.concatenate(floor) * 100
    return {"bg_median": bg[0], "bg_p99": bg[1], "bg_band_max": bg[2],
            "total_median": np.median(total), "total_p90": np.percentile(total, 90),
            "floor_median": np.median(floor), "floor_p90": np.percentile(floor, 90)}


def report(size, row, params="defaults") -> None:
    print(f"{size:5d} px {params:<32} background median {row['bg_median']:.3f} % "
          f"p99 {row['bg_p99']:.3f} % band max {row['bg_band_max']:.2f} % | intensity_total "
          f"median {row['total_median']:.2f} % p90 {row['total_p90']:.2f} % "
          f"(true background: {row['floor_median']:.2f} % / {row['floor_p90']:.2f} %)")


# (label, generator, seeds, size, cells, options); "rods" = the independent simulator
BIAS_SCENES = [
    ("rods, tuning", "rods", (1, 2), 1024, 150, {}),
    ("rods, held out", "rods", (11, 12, 13), 1024, 150, {}),
    ("rods, 300 cells, held out", "rods", (21, 22), 1024, 300, {}),
    ("rods, PSF sigma 1.0", "rods", (31,), 1024, 150, {"psf_sigma": 1.0}),
    ("rods, PSF sigma 2.0", "rods", (32,), 1024, 150, {"psf_sigma": 2.0}),
    ("own realistic, tuning", "own", (1, 2), 1024, 150, {}),
    ("own realistic, held out", "own", (11, 12, 13), 1024, 150, {}),
    ("own realistic, 300 cells, held out", "own", (21, 22), 1024, 300, {}),
    ("own defaults (hard edges), held out", "plain", (11, 12, 13), 1024, 150, {}),
]
DILATIONS = (0, 2, 3, 4, 5)


def _bias_scene(kind: str, seed: int, size: int, cells: int, options: dict):
    from pyama_framework.testing.rodsim import RodScene
    from pyama_framework.testing.synthetic import REALISTIC_OPTICS

    if kind == "rods":
        return RodScene(size, size, n_frames=3, n_cells=cells, seed=seed, **options)
    extra = {"n_debris": cells // 3, **REALISTIC_OPTICS} if kind == "own" else {}
    return SyntheticScene(size, size, n_frames=3, n_cells=cells, seed=seed, **extra, **options)


def bias(scene) -> tuple[dict, np.ndarray]:
    """Signed errors per dilation, and whether each matched cell touches a neighbour."""
    from pyama_framework.stages.extract import grow_labels
    from pyama_framework.types import TrackedFrame

    from pyama_framework.config import RunConfig

    registry = discover()
    default = {section: RunConfig.model_fields[section].default_factory().method
               for section in ("segmentation", "tracking")}  # the run defaults, whatever they are now
    plugins = {kind: (registry.get(kind, default[section]).load(),
                      registry.get(kind, default[section]).validate_params({}).model_dump())
               for kind, section in (("segmenter", "segmentation"), ("tracker", "tracking"))}
    frames = list(scene.frames())
    segment, seg_params = plugins["segmenter"]
    track, track_params = plugins["tracker"]
    segmented = [segment(f.phase, **seg_params) for f in frames]
    tracked = [t.labels if isinstance(t, TrackedFrame) else t for t in track(iter(segmented), **track_params)]
    errors, touching = {d: [] for d in DILATIONS}, []
    for frame, seg, labels in zip(frames, segmented, tracked):
        image = frame.fluorescence[0]
        corrected = image - estimate_background(image, seg)
        owner = mutual_match(frame.labels, labels)
        cells = np.array(sorted(owner), dtype=np.int64)
        truth = frame.intensity_total[0][np.array([owner[c] for c in cells], dtype=np.int64) - 1]
        near = grow_labels(frame.labels, 2)  # a true cell touches a neighbour within 2 px
        pairs = (near[:, :-1] != near[:, 1:]) & (near[:, :-1] > 0) & (near[:, 1:] > 0)
        touching_ids = set(near[:, :-1][pairs].tolist()) | set(near[:, 1:][pairs].tolist())
        touching.append([owner[c] in touching_ids for c in cells])
        for d in DILATIONS:
            grown = grow_labels(labels, d)
            sums = ndi.sum_labels(corrected, grown, cells)
            errors[d].append((sums - truth) / truth)
    return {d: np.concatenate(v) for d, v in errors.items()}, np.concatenate(touching)


def _describe(e: np.ndarray) -> str:
    if e.size == 0:
        return "(none)"
    p10, p50, p90 = np.percentile(e, [10, 50, 90]) * 100
    return f"{p50:+6.2f} % [{p10:+6.2f}, {p90:+6.2f}] p90|e| {np.percentile(np.abs(e), 90) * 100:5.2f} %"


def bias_report() -> None:
    print("intensity_total signed error: median [p10, p90], p90 |error|; rows = matched cells x frames")
    for label, kind, seeds, size, cells, options in BIAS_SCENES:
        runs = [bias(_bias_scene(kind, seed, size, cells, options)) for seed in seeds]
        touching = np.concatenate([t for _, t in runs])
        print(f"{label} (seeds {', '.join(map(str, seeds))}; {len(touching)} rows, {touching.mean():.0%} touching)")
        for d in DILATIONS:
            e = np.concatenate([r[d] for r, _ in runs])
            print(f"  dilation {d}: all {_describe(e)} | isolated {_describe(e[~touching])}"
                  f" | touching {_describe(e[touching])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="sweep tile_size and knot_spacing")
    parser.add_argument("--bias", action="store_true", help="intensity_total bias vs measurement_dilation")
    args = parser.parse_args()
    if args.bias:
        bias_report()
        return

    for size, n_cells in SIZES:
        scene = SyntheticScene(size, size, n_frames=3, n_cells=n_cells, seed=0)
        frames = [scene.frame(t) for t in (0, 2)]
        report(size, accuracy(frames))
        if args.grid:
            for tile in (8, 16, 32, 64):
                for knots in (64, 128, 256, 512):
                    report(size, accuracy(frames, tile_size=tile, knot_spacing=knots),
                           f"tile_size={tile} knot_spacing={knots}")

    frame = SyntheticScene(2048, 2048, n_frames=1, n_cells=600, seed=0).frame(0)
    image, labels = frame.fluorescence[0], frame.labels
    print(f"\n2048 px, {len(np.unique(labels)) - 1} cells, seconds per frame (best of 5):")
    print(f"  background tiled_spline   {seconds(lambda: estimate_background(image, labels)):.4f}")
    registry = discover()
    phase = cell_frame(labels, frame.phase, None)
    fluorescence = cell_frame(labels, image, estimate_background(image, labels))
    for registration in registry.available("feature"):
        cells = phase if registration.channel_kind == "phase" else fluorescence
        fast = registration.load_frame()
        print(f"  {registration.name:<24}  {seconds(lambda: fast(cells)):.4f}")
    core = [("area", phase), ("aspect_ratio", phase), ("intensity_total", fluorescence),
            ("intensity_mean", fluorescence)]
    fns = [(registry.get("feature", name).load_frame(), cells) for name, cells in core]
    combined = seconds(lambda: [fn(cells) for fn, cells in fns])
    print(f"  area + aspect_ratio + intensity_total + intensity_mean: {combined:.4f}")


if __name__ == "__main__":
    main()
