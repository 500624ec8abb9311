"""What a results folder holds: its config, its FOVs, and which of them are complete, failed
or unfinished. Reads only the config and the small stage records (never pixels), so it is
cheap for any number of FOVs. :mod:`pyama_framework.results` builds on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .config import RunConfig, parse_fovs
from .errors import PyamaError
from .store import CONFIG_FILENAME, RECORDS_DIR, fov_dirname

FOV_INFO_KEY = "pyama"  # images.zarr root attribute written by the final (ome) stage
ERROR_LOG = "error.log"


class ResultsError(PyamaError):
    """A results folder (or a FOV, cell or channel in it) that cannot be opened; one line."""


def describe(fovs: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for fov in sorted(fovs):
        if runs and fov == runs[-1][1] + 1:
            runs[-1][1] = fov
        else:
            runs.append([fov, fov])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def required_stages(config: RunConfig) -> list[str]:
    """The stages whose records make a FOV complete (the critical ones this config runs)."""
    stages = ["copy"]
    if not config.copy_only and config.channels.pc is not None:
        stages += ["segment", "track"]
        if config.channels.fl:
            stages.append("background")
        stages.append("extract")
        if config.cropping.enabled:
            stages.append("crop")
    return stages


@dataclass
class FovStatus:
    """One FOV of a run: the stage records present, the required ones missing, the error."""

    fov: int
    root: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    error: str | None = None  # first line of error.log when a stage failed

    @property
    def state(self) -> str:
        if not self.missing:
            return "complete"
        return "failed" if self.error else ("not started" if not self.records else "unfinished")


def read_config(path: Path) -> RunConfig:
    """The run's ``processing_config.yaml``, or a :class:`ResultsError` saying what ``path`` is."""
    if not path.exists():
        raise ResultsError(f"{path} does not exist, so it is not a pyama output folder; "
                           "pass the output folder of a 'pyama run'")
    if not path.is_dir() or not (path / CONFIG_FILENAME).is_file():
        raise ResultsError(f"{path} is not a pyama output folder (no {CONFIG_FILENAME}); "
                           "pass the output folder of a 'pyama run'")
    try:
        return RunConfig.model_validate(yaml.safe_load((path / CONFIG_FILENAME).read_text()))
    except Exception as exc:  # yaml or pydantic: either way the folder cannot be trusted
        first = " ".join(str(exc).split())[:200]
        raise ResultsError(f"{path / CONFIG_FILENAME} is not a valid pyama config ({first}); "
                           "rerun 'pyama run' into a new folder") from None


def fov_info(root: Path) -> dict[str, Any]:
    """The per-FOV facts recorded at run time (pixel size, frame times), or {} for older runs."""
    try:
        meta = json.loads((root / "images.zarr" / "zarr.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return dict(meta.get("attributes", {}).get(FOV_INFO_KEY, {}))


def _records(root: Path) -> dict[str, dict[str, Any]]:
    records = {}
    for path in sorted((root / RECORDS_DIR).glob("*.json")):
        try:
            records[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError:  # a torn record is no record
            continue
    return records


def scan_fovs(path: Path, config: RunConfig) -> dict[int, FovStatus]:
    """Every FOV the run has a folder for or was asked to process, with its state."""
    found = sorted(int(p.name[4:]) for p in path.glob("fov_[0-9]*") if p.is_dir() and p.name[4:].isdigit())
    counts = (fov_info(path / fov_dirname(f)).get("n_fovs") for f in found)
    n_fovs = next((n for n in counts if n), None)
    try:
        expected = parse_fovs(config.fovs, n_fovs)
    except ValueError:  # 'all' without a recorded FOV count: the folders are all we know
        expected = []
    required = required_stages(config)
    status = {}
    for fov in sorted(set(found) | set(expected)):
        root = path / fov_dirname(fov)
        records = _records(root) if root.is_dir() else {}
        error = None
        if (root / ERROR_LOG).is_file():
            error = (root / ERROR_LOG).read_text().splitlines()[0] if (root / ERROR_LOG).stat().st_size else "failed"
        status[fov] = FovStatus(fov, root, records, [s for s in required if s not in records], error)
    return status


def unfinished_message(path: Path, status: dict[int, FovStatus]) -> str:
    """One line: what is complete, what stopped where, and how to finish."""
    complete = [f for f, s in status.items() if s.state == "complete"]
    parts = [f"FOV(s) {describe(complete)} complete"]
    for fov, s in status.items():
        if s.state == "unfinished":
            parts.append(f"FOV {fov} stopped before {s.missing[0]} (missing: {', '.join(s.missing)})")
        elif s.state == "not started":
            parts.append(f"FOV {fov} not started")
    return (f"{path} is a half-finished run: " + "; ".join(parts)
            + f"; run 'pyama run {path / CONFIG_FILENAME}' again to finish it, or open what is there "
            "with open_results(path, partial=True) / 'pyama report --partial'")
