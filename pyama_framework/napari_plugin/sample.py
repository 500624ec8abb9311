"""napari sample data: the demo result, generated on first use into a cache folder."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PYAMA_NAPARI_CACHE"


def demo_results_dir() -> Path:
    """Where the demo result is kept (``$PYAMA_NAPARI_CACHE``, else ``~/.cache/pyama-framework/napari-demo``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pyama-framework" / "napari-demo")


def demo_results(out_dir: Path | None = None, n_frames: int = 12) -> Path:
    """Write the one-FOV synthetic demo and run the pipeline on it, unless already done;
    return the results folder. A run interrupted half-way is resumed, not trusted."""
    from ..config import load_config
    from ..demo import write_demo
    from ..runner import run_config

    out_dir = Path(out_dir) if out_dir is not None else demo_results_dir()
    config_path = write_demo(out_dir, n_fovs=1, n_frames=n_frames, workers=1)
    config = load_config(config_path)
    summary = run_config(config, overwrite=True)
    if summary.failed:
        raise RuntimeError(f"the demo run failed: {summary.failed[0].error}")
    return config.output


def demo_sample() -> list:
    """npe2 sample-data command: the demo result's layers."""
    from .reader import read_results

    return read_results(demo_results())
