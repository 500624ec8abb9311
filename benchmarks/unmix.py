"""``intensity_total`` against ``intensity_total_unmixed`` (PSF unmixing of touching cells).

Renders scenes of the independent rod renderer (``rods``), the growing colony (``colony``,
its densest frames 25, 32, 39) and the project's own generator with realistic optics
(``own``), segments them with the default segmenter, estimates the ``tiled_spline``
background and reports the signed error of each cell's total against the true blurred total
(median, p90 |error|), with the true masks and with the segmented ones (matched one-to-one,
> 50 % overlap both ways), for isolated and touching cells (a neighbour within 2 px).
The figures in docs/algorithms.md ("Unmixed totals") come from this script.

    python benchmarks/unmix.py                         # held-out seeds of docs/algorithms.md
    python benchmarks/unmix.py --kind rods --seeds 1,2 --sigma 1.0,1.5,2.0,2.5
    python benchmarks/unmix.py --kind rods --seeds 32 --psf 2.0
    python benchmarks/unmix.py --kind colony --seeds 1,2,3,4   # the colony seeds the auto sigma was chosen on
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import ndimage as ndi

from pyama_builtin.background.tiled_spline import estimate_background
from pyama_builtin.features.unmix import fit_psf_sigma, unmixed_totals
from pyama_framework.config import RunConfig
from pyama_framework.evaluation.overlap import mutual_match
from pyama_framework.registry import discover
from pyama_framework.stages.extract import cells_in_frame, grow_labels

HELD_OUT = [("rods", 11, None), ("rods", 12, None), ("colony", 11, None), ("colony", 12, None),
            ("own", 11, None), ("own", 12, None), ("rods", 31, 1.0), ("rods", 32, 2.0)]


def frames(kind: str, seed: int, psf: float | None):
    from pyama_framework.testing.colony import colony_scene
    from pyama_framework.testing.rodsim import RodScene
    from pyama_framework.testing.synthetic import REALISTIC_OPTICS, SyntheticScene

    extra = {} if psf is None else {"psf_sigma": psf}
    if kind == "rods":
        scene, times = RodScene(1024, 1024, n_frames=3, n_cells=150, seed=seed, **extra), (0, 1, 2)
    elif kind == "colony":
        scene, times = colony_scene(seed, **extra), (25, 32, 39)
    else:
        scene, times = SyntheticScene(1024, 1024, n_frames=3, n_cells=150, seed=seed, n_debris=50,
                                      **REALISTIC_OPTICS, **extra), (0, 1, 2)
    return [scene.frame(t) for t in times]


def touching(labels: np.ndarray) -> set[int]:
    near = grow_labels(labels, 2)
    found = set()
    for a, b in ((near[:, :-1], near[:, 1:]), (near[:-1], near[1:])):
        pair = (a != b) & (a > 0) & (b > 0)
        found |= set(a[pair].tolist()) | set(b[pair].tolist())
    return found


def errors(kind, seed, psf, sigmas):
    registry = discover()
    name = RunConfig.model_fields["segmentation"].default_factory().method
    segment = registry.get("segmenter", name).load()
    params = registry.get("segmenter", name).validate_params({}).model_dump()
    out = {}
    for frame in frames(kind, seed, psf):
        image, truth_labels = frame.fluorescence[0], frame.labels.astype(np.int32)
        segmented = segment(frame.phase, **params)
        segmented = getattr(segmented, "labels", segmented).astype(np.int32)
        near = touching(truth_labels)
        for masks, labels in (("true", truth_labels), ("seg", segmented)):
            corrected = image - estimate_background(image, labels)
            ids, bboxes, _, _ = cells_in_frame(labels)
            owner = {c: c for c in ids.tolist()} if masks == "true" else mutual_match(truth_labels, labels)
            keep = np.array([i for i, c in enumerate(ids.tolist()) if c in owner], dtype=np.intp)
            true_ids = np.array([owner[c] for c in ids[keep].tolist()], dtype=np.int64)
            truth = frame.intensity_total[0][true_ids - 1]
            is_touching = np.isin(true_ids, list(near))
            grown = grow_labels(labels, 4)
            fitted = fit_psf_sigma(corrected, None, labels, ids, bboxes)
            estimates = {"intensity_total": ndi.sum_labels(corrected, grown, ids)}
            for sigma in sigmas:
                estimates[f"unmixed {sigma}"] = unmixed_totals(corrected, None, labels, grown, ids, bboxes, sigma)
            estimates[f"unmixed auto"] = unmixed_totals(corrected, None, labels, grown, ids, bboxes, fitted)
            for method, values in estimates.items():
                row = out.setdefault((masks, method), ([], []))
                row[0].append((values[keep] - truth) / truth)
                row[1].append(is_touching)
            out.setdefault((masks, "fitted sigma"), []).append(round(fitted, 3))
    return out


def describe(e: np.ndarray) -> str:
    if e.size == 0:
        return "(none)"
    return f"{np.median(e) * 100:+6.2f} % / {np.percentile(np.abs(e), 90) * 100:5.2f} %"


def report(title: str, runs: list[dict]) -> None:
    print(f"== {title}: median / p90 |error| (all | isolated | touching)")
    for key in runs[0]:
        if key[1] == "fitted sigma":
            print(f"  {key[0]:4s} fitted sigma per frame: {sum((r[key] for r in runs), [])}")
            continue
        e = np.concatenate([x for r in runs for x in r[key][0]])
        t = np.concatenate([x for r in runs for x in r[key][1]])
        print(f"  {key[0]:4s} {key[1]:18s} n={e.size:4d} ({t.mean():3.0%} touching) {describe(e)} | "
              f"{describe(e[~t])} | {describe(e[t])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("rods", "colony", "own"))
    parser.add_argument("--seeds", default="11,12")
    parser.add_argument("--psf", type=float, default=None, help="the scene's PSF sigma (default: the renderer's 1.5)")
    parser.add_argument("--sigma", default="1.5", help="fixed sigmas to compare with auto")
    args = parser.parse_args()
    sigmas = [float(s) for s in args.sigma.split(",") if s]
    if args.kind is None:
        cases = {}
        for kind, seed, psf in HELD_OUT:
            cases.setdefault((kind, psf), []).append(seed)
    else:
        cases = {(args.kind, args.psf): [int(s) for s in args.seeds.split(",")]}
    for (kind, psf), seeds in cases.items():
        report(f"{kind} seeds {seeds}" + ("" if psf is None else f" PSF {psf}"),
               [errors(kind, seed, psf, sigmas) for seed in seeds])


if __name__ == "__main__":
    main()
