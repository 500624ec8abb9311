"""``pyama demo``: a small synthetic multi-FOV time-lapse with ground truth, and its check.

The demo writes an OME-TIFF (opened by the built-in ``tiff`` reader) and a config that uses
the built-in defaults, so it exercises the same path as a real experiment. Afterwards
:func:`report_accuracy` compares the traces with the scene's ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .testing.synthetic import demo_scene, write_ome_tiff

DEMO_FILE = "demo.ome.tif"
DEMO_CONFIG = "pyama-demo.yaml"
DEMO_INFO = "demo.json"


def write_demo(out_dir: Path, n_fovs: int = 3, n_frames: int = 16, workers: int = 2) -> Path:
    """Write the demo data and config into ``out_dir``; return the config path."""
    out_dir = Path(out_dir)
    data = out_dir / "data" / DEMO_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    info = {"n_fovs": n_fovs, "n_frames": n_frames}
    info_path = out_dir / DEMO_INFO
    if not data.exists() or not info_path.exists() or json.loads(info_path.read_text()) != info:
        write_ome_tiff(data, [demo_scene(f, n_frames) for f in range(n_fovs)], frame_interval_s=600.0)
        info_path.write_text(json.dumps(info))
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
    """Two lines per FOV: cells traced and identity switches, then the intensity_total error
    against the scene's true total (median of |error| and median signed error, over every CSV
    row whose centroid lies in a true cell)."""
    out_dir = Path(out_dir)
    info = json.loads((out_dir / DEMO_INFO).read_text())
    lines = []
    for fov in range(info["n_fovs"]):
        traces = out_dir / "results" / f"fov_{fov:03d}" / f"demo_fov_{fov:03d}_traces.csv"
        if not traces.exists():
            lines.append(f"FOV {fov}: no traces")
            continue
        table = pd.read_csv(traces)
        scene = demo_scene(fov, info["n_frames"])
        errors, signed, matched = [], [], set()
        for t, rows in table.groupby("frame"):
            truth = scene.frame(int(t))
            ys = np.rint(rows["position_y"].to_numpy()).astype(int)
            xs = np.rint(rows["position_x"].to_numpy()).astype(int)
            track = truth.labels[ys.clip(0, scene.height - 1), xs.clip(0, scene.width - 1)]
            for cell, tid, measured in zip(rows["cell"], track, rows["intensity_total_ch_1"]):
                if tid == 0:
                    continue
                matched.add((int(cell), int(tid)))
                true = truth.intensity_total[0][tid - 1]
                signed.append((measured - true) / true)
                errors.append(abs(signed[-1]))
        cells = table["cell"].nunique()
        switches = len(matched) - len({c for c, _ in matched})
        median = 100 * float(np.median(errors)) if errors else float("nan")
        bias = 100 * float(np.median(signed)) if signed else float("nan")
        # Two short lines: the console wraps at 80 columns when not a terminal.
        lines.append(f"FOV {fov}: {cells} cells traced; identity switches: {switches}")
        lines.append(f"  intensity_total vs ground truth: median error {median:.2f} %, bias {bias:+.2f} %")
    return lines
