"""The samples file of ``pyama merge``: which FOVs of which results folders form each sample.

See :mod:`pyama_framework.merge` for the format. :func:`plan_merge` reads the file and the
results folders and checks every assignment before anything is read or written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import parse_fovs
from ..store import CONFIG_FILENAME, fov_dirname
from .traces import MergeError

TOP_LEVEL_KEYS = ("results", "samples")
REQUIRED_TRACE_COLUMNS = ("fov", "cell", "frame", "time", "good")
# Header keys written by the merge itself; sample metadata may not reuse them.
PROVENANCE_KEYS = ("sample", "results", "fovs", "rows", "samples_file")
_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SAMPLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")

FovSpec = int | str | list[int]


class SampleSpec(BaseModel):
    """One sample: a name, its FOVs and free metadata (every other key)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Sample name (also the output file name)")
    fovs: FovSpec | dict[str, FovSpec] = Field(
        description="'0-5, 7', a list or 'all'; with several results folders {folder name: selection}")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _SAMPLE_NAME.match(value):
            raise ValueError(f"sample name {value!r} must start with a letter or digit and use only letters, "
                             "digits and _ . + - (it names the output file)")
        return value

    @field_validator("fovs")
    @classmethod
    def _check_fovs(cls, value: Any) -> Any:
        for selection in (value.values() if isinstance(value, dict) else [value]):
            _fov_list(selection, None)
        return value

    @property
    def metadata(self) -> dict[str, Any]:
        """The free keys (condition, construct, ...) in file order."""
        return dict(self.model_extra or {})


class SamplesFile(BaseModel):
    """A whole samples file."""

    model_config = ConfigDict(extra="forbid")

    results: str | list[str] | None = Field(None, description="Results folder(s) of 'pyama run'")
    samples: list[SampleSpec] = Field(description="The samples")


@dataclass(frozen=True)
class ResultsFolder:
    """The output folder of one ``pyama run``: its name (used in ``fovs`` and the ``results``
    column), path, and the traces CSV of each FOV (None when the FOV has none yet)."""

    name: str
    path: Path
    traces: dict[int, Path | None]


@dataclass
class MergePlan:
    """What to merge: each sample with its (results folder, FOV) pairs, in output order."""

    samples_file: Path
    samples: list[SampleSpec]
    folders: list[ResultsFolder]
    assignment: dict[str, list[tuple[ResultsFolder, int]]]


def _fov_list(selection: FovSpec, n_fovs: int | None) -> list[int]:
    if isinstance(selection, int) and not isinstance(selection, bool):
        selection = [selection]
    if isinstance(selection, str) and selection.strip().lower() == "all" and n_fovs is None:
        return []  # expanded once the results folder is known
    return parse_fovs(selection, n_fovs)


def _first_error(exc: ValidationError, data: dict[str, Any]) -> str:
    error = exc.errors()[0]
    loc = list(error["loc"])
    where = ".".join(str(part) for part in loc)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        message = "is missing"
    if len(loc) >= 2 and loc[0] == "samples" and isinstance(loc[1], int):
        sample = data["samples"][loc[1]]
        name = sample.get("name") if isinstance(sample, dict) else None
        where = f"sample {loc[1] + 1}" + (f" ({name!r})" if isinstance(name, str) else "")
        if len(loc) > 2:
            where += f", key '{loc[2]}'"
        if len(loc) > 3 and loc[2] == "fovs":  # a union of forms reports one error per form
            message = "use '0-5, 7', a list of FOV indices, 'all', or {results folder name: selection}"
    return f"{where}: {message}"


def load_samples(path: Path) -> SamplesFile:
    """Read and validate a samples file; raise MergeError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise MergeError(f"samples file {path} does not exist; write one with 'results:' and 'samples:' "
                         "(see docs/outputs.md, 'Merged traces')")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MergeError(f"{path} is not valid YAML ({where}{problem}); fix the file") from None
    if not isinstance(data, dict):
        raise MergeError(f"{path} must be a mapping with 'results:' and 'samples:' at the top level")
    unknown = [str(k) for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise MergeError(f"{path}: unknown top-level key(s) {', '.join(map(repr, unknown))}; allowed: "
                         f"{', '.join(TOP_LEVEL_KEYS)} (sample metadata goes inside each sample)")
    if not data.get("samples"):
        raise MergeError(f"{path} lists no samples; add at least one under 'samples:' "
                         "as {name: ..., fovs: '0-5, 7'}")
    if not isinstance(data["samples"], list) or not all(isinstance(s, dict) for s in data["samples"]):
        raise MergeError(f"{path}: 'samples' must be a list of mappings like {{name: ..., fovs: '0-5, 7'}}")
    try:
        loaded = SamplesFile.model_validate(data)
    except ValidationError as exc:
        raise MergeError(f"{path}: {_first_error(exc, data)}") from None
    seen: set[str] = set()
    for sample in loaded.samples:
        if sample.name in seen:
            raise MergeError(f"{path}: two samples are named {sample.name!r}; sample names must be unique")
        seen.add(sample.name)
        for key, value in sample.metadata.items():
            if not _METADATA_KEY.match(key):
                raise MergeError(f"{path}: sample {sample.name!r}: metadata key {key!r} must use only letters, "
                                 "digits and _ (it becomes a column name)")
            if key in PROVENANCE_KEYS or key in REQUIRED_TRACE_COLUMNS:
                raise MergeError(f"{path}: sample {sample.name!r}: metadata key {key!r} clashes with a column or "
                                 "header line of the merged file; rename it")
            if value is not None and not isinstance(value, (str, int, float, bool)):
                raise MergeError(f"{path}: sample {sample.name!r}: metadata {key!r} must be a single value "
                                 "(text or number), not a list or mapping")
    return loaded


def open_results(path: Path) -> ResultsFolder:
    """Index the FOVs and traces files of the output folder of a ``pyama run``."""
    path = Path(path)
    if not path.is_dir():
        raise MergeError(f"results folder {path} does not exist; give the 'output' folder of a 'pyama run'")
    if not (path / CONFIG_FILENAME).is_file():
        raise MergeError(f"{path} is not a pyama results folder (no {CONFIG_FILENAME}); "
                         "give the 'output' folder of a 'pyama run'")
    traces: dict[int, Path | None] = {}
    for fov_dir in sorted(path.glob("fov_[0-9]*")):
        if fov_dir.is_dir() and fov_dir.name[4:].isdigit():
            fov = int(fov_dir.name[4:])
            found = sorted(fov_dir.glob(f"*_{fov_dirname(fov)}_traces.csv"))
            traces[fov] = found[0] if found else None
    return ResultsFolder(path.resolve().name, path, traces)


def describe_fovs(fovs: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for fov in fovs:
        if runs and fov == runs[-1][1] + 1:
            runs[-1][1] = fov
        else:
            runs.append([fov, fov])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs) or "none"


def plan_merge(samples_path: Path, results: list[Path] | None = None) -> MergePlan:
    """Read the samples file and results folders and assign every FOV to its sample.

    Parameters
    ----------
    samples_path : Path
        The samples YAML.
    results : list of Path, optional
        Results folders replacing the file's ``results:`` (``--results``; relative to the
        current directory). The file's entries are relative to the file's folder.

    Raises
    ------
    MergeError
        Any problem, with the fix: unknown keys, no samples, missing folders, a FOV not in
        its results folder or without traces, a FOV named by two samples.
    """
    samples_path = Path(samples_path)
    spec = load_samples(samples_path)
    if results:
        paths = [Path(p) for p in results]
    elif spec.results is not None:
        entries = [spec.results] if isinstance(spec.results, str) else spec.results
        paths = [p if p.is_absolute() else samples_path.parent / p for p in map(Path, entries)]
    else:
        paths = []
    if not paths:
        raise MergeError(f"no results folder: add 'results: DIR' to {samples_path} or pass --results DIR")
    folders = [open_results(p) for p in paths]
    by_name: dict[str, ResultsFolder] = {}
    for folder in folders:
        if folder.name in by_name:
            raise MergeError(f"results folders {by_name[folder.name].path} and {folder.path} have the same name "
                             f"{folder.name!r}; a sample's fovs name folders by their name, so rename one")
        by_name[folder.name] = folder

    owner: dict[tuple[str, int], str] = {}
    assignment: dict[str, list[tuple[ResultsFolder, int]]] = {}
    for sample in spec.samples:
        if isinstance(sample.fovs, dict):
            selections = sample.fovs
        elif len(folders) == 1:
            selections = {folders[0].name: sample.fovs}
        else:
            names = [f.name for f in folders]
            raise MergeError(f"sample {sample.name!r}: with several results folders give fovs per folder, "
                             f"e.g. fovs: {{{names[0]}: '0-3', {names[1]}: '0-1'}}")
        pairs: list[tuple[ResultsFolder, int]] = []
        for folder_name, selection in selections.items():
            folder = by_name.get(str(folder_name))
            if folder is None:
                raise MergeError(f"sample {sample.name!r}: fovs name results folder {folder_name!r}, which is "
                                 f"not among the results folders ({', '.join(by_name)})")
            held = sorted(folder.traces)
            is_all = isinstance(selection, str) and selection.strip().lower() == "all"
            try:
                fovs = held if is_all else _fov_list(selection, None)
            except ValueError as exc:  # pragma: no cover - checked when the file was loaded
                raise MergeError(f"sample {sample.name!r}: {exc}") from None
            for fov in fovs:
                if fov not in folder.traces:
                    raise MergeError(f"sample {sample.name!r}: FOV {fov} is not in results folder {folder.path} "
                                     f"(it holds FOV {describe_fovs(held)}); fix the sample's fovs")
                if folder.traces[fov] is None:
                    raise MergeError(f"FOV {fov} in {folder.path} has no traces CSV yet; run 'pyama run' on it "
                                     f"to completion or drop it from sample {sample.name!r}")
                key = (folder.name, fov)
                if key in owner:
                    where = f" of {folder.name}" if len(folders) > 1 else ""
                    raise MergeError(f"FOV {fov}{where} is in samples {owner[key]!r} and {sample.name!r}; "
                                     "a FOV belongs to one sample")
                owner[key] = sample.name
                pairs.append((folder, fov))
        if not pairs:
            raise MergeError(f"sample {sample.name!r} selects no FOVs; give it fovs such as '0-5, 7'")
        assignment[sample.name] = pairs
    return MergePlan(samples_path, spec.samples, folders, assignment)
