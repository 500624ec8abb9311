"""The lineage contract: a lab's tracker yields TrackedFrame parents; the framework writes
``tracks.csv`` and the traces' ``parent`` column, and refuses parents that cannot be true."""

from __future__ import annotations

import numpy as np
import pandas as pd
import tifffile

from conftest import make_distribution, pyama, write_config

# A tracker that pretends the cell in the left half divides at frame 2: its pixels get ID 1
# before and IDs 2 (top) and 3 (bottom) from frame 2 on, with parent 1. ``bad`` names a
# parent that never existed.
TRACKER = """
import numpy as np
from pyama_framework import TrackedFrame, TrackerRegistration, hookimpl
from pyama_framework.types import PluginParams

class Params(PluginParams):
    bad: bool = False

def split_left(label_frames, bad=False):
    for t, labels in enumerate(label_frames):
        out = np.zeros(labels.shape, dtype=np.uint16)
        h, w = labels.shape
        if t < 2:
            out[:, : w // 2][labels[:, : w // 2] > 0] = 1
            yield out
            continue
        top, bottom = out[: h // 2, : w // 2], out[h // 2 :, : w // 2]
        top[labels[: h // 2, : w // 2] > 0] = 2
        bottom[labels[h // 2 :, : w // 2] > 0] = 3
        yield TrackedFrame(out, {2: 99 if bad else 1, 3: 1} if t == 2 else {})

@hookimpl
def pyama_trackers():
    yield TrackerRegistration(name="split_left", summary="test lineage", implementation=split_left, params=Params)
"""


def _movie(path):
    """Four 64 x 64 frames: a dark square in each quadrant of the left half (phase + fluorescence)."""
    phase = np.full((4, 64, 64), 3000, dtype=np.uint16)
    phase[:, 8:24, 8:24] = 1500
    phase[:, 40:56, 8:24] = 1500
    phase += np.random.default_rng(0).integers(0, 60, phase.shape, dtype=np.uint16)
    fluorescence = np.full_like(phase, 200)
    tifffile.imwrite(path, np.stack([phase, fluorescence], axis=1), ome=True, metadata={"axes": "TCYX"})
    return path


def test_tracker_parents_reach_tracks_csv_and_traces(tmp_path):
    site = make_distribution(tmp_path / "site", "lab-lineage", "0.1", {"lineage": "lab_lineage"},
                             {"lab_lineage.py": TRACKER})
    config = write_config(tmp_path, _movie(tmp_path / "m.ome.tif"),
                          segmentation={"method": "logstd", "params": {"polarity": "none"}},
                          tracking={"method": "split_left", "params": {}}, extraction={"min_frames": 1})
    result = pyama("run", str(config), env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    lineage = pd.read_csv(tmp_path / "out" / "fov_000" / "tracks.csv")
    assert lineage.to_dict("list") == {"cell": [1, 2, 3], "first_frame": [0, 2, 2], "last_frame": [1, 3, 3],
                                       "parent": [0, 1, 1]}
    traces = pd.read_csv(tmp_path / "out" / "fov_000" / "m_fov_000_traces.csv")
    assert dict(zip(traces["cell"], traces["parent"])) == {1: 0, 2: 1, 3: 1}


def test_impossible_parent_fails_the_fov_with_a_clear_message(tmp_path):
    site = make_distribution(tmp_path / "site", "lab-lineage", "0.1", {"lineage": "lab_lineage"},
                             {"lab_lineage.py": TRACKER})
    config = write_config(tmp_path, _movie(tmp_path / "m.ome.tif"),
                          segmentation={"method": "logstd", "params": {"polarity": "none"}},
                          tracking={"method": "split_left", "params": {"bad": True}}, extraction={"min_frames": 1})
    result = pyama("run", str(config), env={"PYTHONPATH": str(site)})
    assert result.returncode == 1
    assert "tracker 'split_left' gave track 2 the parent 99" in result.stderr
    assert not (tmp_path / "out" / "fov_000" / "tracks.csv").exists()
    assert not (tmp_path / "out" / "fov_000" / ".pyama" / "track.json").exists()
