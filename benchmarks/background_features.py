"""Accuracy and speed of the ``tiled_spline`` background and the built-in features.

On synthetic FOVs (ground-truth labels, background and per-cell totals) it reports, per
frame size: background relative error (median, 99th percentile, maximum in the outer
128 px band), ``intensity_total`` relative error with the estimated background next to the
noise floor (the same with the true background), and seconds per frame of the background
and of every feature's fast path. ``--grid`` also sweeps tile size and knot spacing, which is
how the defaults were chosen.

    python benchmarks/background_features.py
    python benchmarks/background_features.py --grid

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", action="store_true", help="sweep tile_size and knot_spacing")
    args = parser.parse_args()

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
