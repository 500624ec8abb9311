"""``pyama demo``: a small synthetic multi-FOV time-lapse with ground truth, and its check.

The demo writes an OME-TIFF (opened by the built-in ``tiff`` reader), the scene's ground truth
(``truth/fov_XXX.tif`` label stacks and ``truth/fov_XXX.traces.csv`` true intensities) and a
config that uses the built-in defaults, so it exercises the same path as a real experiment.
Afterwards :func:`report_accuracy` scores the run against the truth with the same code as
``pyama evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .testing.synthetic import SyntheticScene, demo_scene, write_ome_tiff

DEMO_FILE = "demo.ome.tif"
DEMO_CONFIG = "pyama-demo.yaml"
DEMO_INFO = "demo.json"
SAMPLES_FILE = "samples.yaml"
TRUTH_DIR = "truth"
TRACE_COLUMN = "intensity_total_ch_1"


def truth_path(out_dir: Path, fov: int) -> Path:
    return Path(out_dir) / TRUTH_DIR / f"fov_{fov:03d}.tif"


def write_truth(scene: SyntheticScene, path: Path) -> None:
    """The scene's true labels as a (T, H, W) TIFF stack and its true per-cell totals next to it
    (``<stem>.traces.csv``, the convention ``pyama evaluate`` reads)."""
    import tifffile

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tifffile.TiffWriter(path) as tif:
        for frame in scene.frames():
            tif.write(frame.labels, contiguous=True)
            rows += [(frame.t, i + 1, frame.intensity_total[0][i]) for i in np.flatnonzero(frame.visible)]
    pd.DataFrame(rows, columns=["frame", "label", TRACE_COLUMN]).to_csv(
        path.with_name(path.name.split(".")[0] + ".traces.csv"), index=False)


def write_demo(out_dir: Path, n_fovs: int = 3, n_frames: int = 16, workers: int = 2,
               kinetics: str | None = None) -> Path:
    """Write the demo data, its ground truth, a samples file and the config into ``out_dir``;
    return the config path. With ``kinetics`` (a fitting model's name) each cell's
    fluorescence follows that model with known parameters, imaged every 45 min so that the
    curves are resolved; otherwise frames are 10 min apart."""
    out_dir = Path(out_dir)
    data = out_dir / "data" / DEMO_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    info = {"n_fovs": n_fovs, "n_frames": n_frames, "kinetics": kinetics}
    info_path = out_dir / DEMO_INFO
    if not data.exists() or not info_path.exists() or json.loads(info_path.read_text()) != info:
        interval = 45.0 if kinetics else 10.0
        scenes = [demo_scene(f, n_frames, kinetics=kinetics, frame_interval_min=interval) for f in range(n_fovs)]
        write_ome_tiff(data, scenes, frame_interval_s=interval * 60)
        for fov, scene in enumerate(scenes):
            write_truth(scene, truth_path(out_dir, fov))
        info_path.write_text(json.dumps(info))
    # One sample per FOV, for `pyama merge` (any further keys are free metadata).
    samples = {"results": "results",
               "samples": [{"name": f"fov{f}", "fovs": str(f), "kinetics": kinetics or "none"} for f in range(n_fovs)]}
    (out_dir / SAMPLES_FILE).write_text(yaml.safe_dump(samples, sort_keys=False))
    config = {
        "input": f"data/{DEMO_FILE}",
        "output": "results",
        "channels": {"pc": {"channel": 0, "features": ["area", "aspect_ratio"]},
                     "fl": [{"channel": 1, "features": ["intensity_total", "intensity_mean"]}]},
        # The demo movie is short and small: keep cells seen in most frames, near edges too.
        "extraction": {"min_frames": max(2, n_frames // 2), "border_margin": 5},
        "execution": {"workers": workers},
    }
    config_path = out_dir / DEMO_CONFIG
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def report_accuracy(out_dir: Path) -> list[str]:
    """Two lines per FOV from :func:`pyama_framework.evaluation.score`: cells traced, CTC SEG
    and TRA and identity switches, then the ``intensity_total`` error against the true totals
    (median |error| and median signed error over the traced cells matched at IoU >= 0.5)."""
    from .evaluation import load_truth, open_run, score

    out_dir = Path(out_dir)
    info = json.loads((out_dir / DEMO_INFO).read_text())
    results = out_dir / "results"
    lines = []
    for fov in range(info["n_fovs"]):
        run = open_run(results, fov)
        traces = run.traces()
        if traces is None:
            lines.append(f"FOV {fov}: no traces")
            continue
        scores = score(run.tracked, load_truth(truth_path(out_dir, fov)), run.parents, traces)
        error = scores["trace_error"][TRACE_COLUMN]
        # Two short lines: the console wraps at 80 columns when not a terminal.
        lines.append(f"FOV {fov}: {traces['cell'].nunique()} cells traced; SEG {scores['SEG']:.3f}, "
                     f"TRA {scores['TRA']:.3f}; identity switches: {scores['identity_switches']}")
        lines.append(f"  intensity_total vs ground truth: median error {100 * error['median_abs']:.2f} %, "
                     f"bias {100 * error['median']:+.2f} %")
    lines.append(f"score a run yourself: pyama evaluate {results} --fov 0 --truth {truth_path(out_dir, 0)}")
    return lines


def next_steps(out_dir: Path) -> list[str]:
    """Write the demo's QC report and say where it is and how to look at the run in napari."""
    from .errors import PyamaError
    from .report import write_report

    results = Path(out_dir) / "results"
    try:
        report = write_report(results)
    except PyamaError as exc:
        return [f"no QC report: {exc}"]
    return [f"QC report: {report}",
            f"view in napari: napari {results}   (reader plugin: pip install -e \".[napari]\")"]
