"""Run the real pipeline (the code behind ``pyama run``) on the fixture movie, with the
plugin under test selected by name, and return the traces."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ...types import ProvidedRegistration, Registration
from ._support import fail

#: Kind -> config section that selects a plugin of that kind by ``method``.
SECTIONS = {"segmenter": "segmentation", "tracker": "tracking", "background": "background"}


def fixture_config(input_path: str | Path, output: str | Path, **sections: Any) -> dict[str, Any]:
    """A run config (as a dict) for the fixture movie written at ``input_path``.

    Phase channel 0 with ``area``, fluorescence channel 1 with ``intensity_total``, cells
    kept from 2 frames on, no border margin, one worker. ``sections`` replace or (for
    mappings) update the defaults, e.g. ``segmentation={"method": "otsu"}``.
    """
    config: dict[str, Any] = {
        "input": str(Path(input_path).resolve()),
        "output": str(Path(output).resolve()),
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
    return config


def registry_with(*registrations: Registration):
    """The installed plugins, plus ``registrations`` where they are not installed (so a
    registration built in a test runs by name like an installed one)."""
    from ...registry import discover

    registry = discover(strict=False)
    for registration in registrations:
        bucket = registry.entries.setdefault(registration.kind, {})
        installed = bucket.get(registration.name, [])
        if not any(p.registration.implementation == registration.implementation for p in installed):
            bucket[registration.name] = [ProvidedRegistration(registration, "(under test)", "0")]
        else:
            bucket[registration.name] = [p for p in installed
                                         if p.registration.implementation == registration.implementation][:1]
    return registry


def run_pipeline(config: Any, registry: Any = None):
    """Run a config through the pipeline and return every FOV's traces in one table.

    Parameters
    ----------
    config : dict, RunConfig, or path of a YAML config
    registry : Registry, optional
        Plugins to resolve names against (default: the installed ones).

    Returns
    -------
    pandas.DataFrame
        The rows of each ``fov_NNN/*_traces.csv`` with a ``fov`` column first.

    Raises
    ------
    AssertionError
        When a FOV fails, with the FOV's error.
    """
    import pandas as pd

    from ...config import RunConfig, load_config
    from ...runner import run_config

    if isinstance(config, (str, Path)):
        config = load_config(Path(config))
    elif isinstance(config, dict):
        config = RunConfig.model_validate(config)
    summary = run_config(config, overwrite=True, registry=registry)
    failed = [f"FOV {o.fov}: {o.error}" for o in summary.outcomes if o.status != "done"]
    if failed or summary.interrupted:
        raise AssertionError("pipeline run failed: " + "; ".join(failed or ["interrupted"]))
    tables = []
    for outcome in summary.outcomes:
        for path in sorted(Path(config.output).glob(f"fov_{outcome.fov:03d}/*_traces.csv")):
            table = pd.read_csv(path)
            if "fov" not in table.columns:
                table.insert(0, "fov", outcome.fov)
            tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def _sections(registration: Registration, params: dict | None) -> dict[str, Any]:
    if registration.kind in SECTIONS:
        return {SECTIONS[registration.kind]: {"method": registration.name, "params": params or {}}}
    if registration.kind == "feature":
        if params:
            fail(registration, "end-to-end runs use a feature's default params (features take none in the "
                               "config); call with end_to_end=False to check other params")
        phase, fluorescence = ["area"], ["intensity_total"]
        listed = phase if registration.channel_kind == "phase" else fluorescence
        if registration.name not in listed:
            listed.append(registration.name)
        return {"channels": {"pc": {"channel": 0, "features": phase},
                             "fl": [{"channel": 1, "features": fluorescence}]}}
    raise ValueError(f"no end-to-end run for kind {registration.kind}")


def check_end_to_end(registration: Registration, params: dict | None = None, tmp_path: Path | None = None,
                     input_path: Path | None = None, **sections: Any):
    """Run FOV 0 of the fixture movie (or ``input_path``) with the plugin selected by name;
    return the traces. Raises a violation naming the failing FOV and its error."""
    from ._support import conformance_file

    with tempfile.TemporaryDirectory(prefix="pyama-conformance-") as scratch:
        folder = Path(tmp_path or scratch)
        if input_path is None:
            input_path = conformance_file()
        merged = {**_sections(registration, params), **sections} if registration.kind != "reader" else sections
        config = fixture_config(input_path, folder / "out", fovs="0", **merged)
        try:
            traces = run_pipeline(config, registry_with(registration))
        except Exception as exc:
            fail(registration, f"'pyama run' on the fixture movie failed: {' '.join(str(exc).split())}")
        if registration.kind == "feature":
            channel = 0 if registration.channel_kind == "phase" else 1
            column = f"{registration.column}_ch_{channel}"
            if column not in traces.columns:
                fail(registration, f"'pyama run' wrote no column {column} (columns: {', '.join(traces.columns)})")
        return traces
