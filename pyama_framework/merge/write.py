"""Build the merged tables in memory and write them atomically."""

from __future__ import annotations

import csv
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .samples import MergePlan, ResultsFolder, SampleSpec, describe_fovs
from .traces import LONG_COLUMNS, MergeError, read_traces, to_long

if TYPE_CHECKING:
    import pandas as pd

LONG_NAME = "merged_long"


@dataclass
class Merged:
    """The merged tables in memory: one wide table per sample, the long table, and warnings."""

    plan: MergePlan
    good_only: bool
    wide: dict[str, Any]
    long: Any
    warnings: list[str] = field(default_factory=list)


def _read_fov(folder: ResultsFolder, fov: int) -> pd.DataFrame:
    path = folder.traces[fov]
    df = read_traces(path)
    if "good" not in df.columns:
        raise MergeError(f"{path} has no 'good' column; it is not a per-FOV traces file of 'pyama run'")
    if df.empty:
        raise MergeError(f"FOV {fov} in {folder.path} has no traces (its filters removed every cell); "
                         "drop it from the samples file")
    return df.drop(columns="sample")


def merge(plan: MergePlan, good_only: bool = True) -> Merged:
    """Read every assigned FOV and build the per-sample and long tables (nothing is written).

    Parameters
    ----------
    plan : MergePlan
        From :func:`plan_merge`.
    good_only : bool
        Keep only rows with ``good`` True (``--all`` sets False).
    """
    import pandas as pd

    wide: dict[str, pd.DataFrame] = {}
    warnings: list[str] = []
    longs = []
    for sample in plan.samples:
        frames = []
        columns: list[str] = []
        for folder, fov in plan.assignment[sample.name]:
            df = _read_fov(folder, fov)
            columns += [c for c in df.columns if c not in columns]
            if good_only:
                df = df[df["good"]]
                if df.empty:
                    warnings.append(f"sample {sample.name!r}: FOV {fov} of {folder.name} has no good rows; "
                                    "'--all' keeps them")
            df.insert(0, "results", folder.name)
            frames.append(df)
        table = pd.concat(frames, ignore_index=True)
        for folder_fov, df in zip(plan.assignment[sample.name], frames):
            absent = [c for c in columns if c not in df.columns]
            if absent:
                warnings.append(f"sample {sample.name!r}: FOV {folder_fov[1]} of {folder_fov[0].name} has no "
                                f"column(s) {', '.join(absent)} (left empty)")
        table = table[["results", *columns]]
        table.insert(0, "sample", sample.name)
        for key, value in sample.metadata.items():
            if key in table.columns:
                raise MergeError(f"sample {sample.name!r}: metadata key {key!r} is also a trace column; "
                                 "rename the key in the samples file")
            table[key] = value
        wide[sample.name] = table
        longs.append(to_long(table))
    long = pd.concat(longs, ignore_index=True)[LONG_COLUMNS]
    return Merged(plan, good_only, wide, long, warnings)


def _header_value(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True, sort_keys=False).strip()
    return text.removesuffix("...").strip()


def _sample_header(merged: Merged, sample: SampleSpec) -> str:
    pairs = merged.plan.assignment[sample.name]
    fovs: dict[str, list[int]] = {}
    for folder, fov in pairs:
        fovs.setdefault(folder.name, []).append(fov)
    entries = {"sample": sample.name, **sample.metadata,
               "results": [str(f.path.resolve()) for f in merged.plan.folders if f.name in fovs],
               "fovs": {name: describe_fovs(sorted(v)) for name, v in fovs.items()},
               "rows": "good" if merged.good_only else "all",
               "samples_file": str(merged.plan.samples_file.resolve())}
    return "".join(f"# {key}: {_header_value(value)}\n" for key, value in entries.items())


def _has_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def _write_csv(df: pd.DataFrame, handle: Any) -> None:
    """Append ``df`` as CSV to the binary ``handle``; text values are quoted, so a '#' in a
    value does not read as a comment under ``read_csv(comment="#")``."""
    if not _has_pyarrow():
        df.to_csv(handle, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n", encoding="utf-8")
        return
    # pyarrow writes ~10x faster than pandas (a 10 000-cell x 180-frame merge: 5 s instead of 55 s).
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    spelled = {c: df[c].map({True: "True", False: "False"}) for c in df.columns if df[c].dtype == bool}
    table = pa.Table.from_pandas(df.assign(**spelled) if spelled else df, preserve_index=False)
    pa_csv.write_csv(table, handle, pa_csv.WriteOptions(quoting_style="needed"))


def output_files(merged: Merged, output: Path) -> list[Path]:
    """The files :func:`write_merged` writes, in order."""
    names = [f"{name}_traces.csv" for name in merged.wide] + [f"{LONG_NAME}.csv"]
    if _has_pyarrow():
        names.append(f"{LONG_NAME}.parquet")
    return [Path(output) / n for n in names]


def write_merged(merged: Merged, output: Path) -> list[Path]:
    """Write ``<sample>_traces.csv`` per sample, ``merged_long.csv`` and (with pyarrow)
    ``merged_long.parquet`` into ``output``: all to temporary files first, renamed only when
    every file is complete, so a failure leaves the folder as it was."""
    output = Path(output)
    created = not output.exists()
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MergeError(f"cannot create output folder {output} ({exc.strerror}); "
                         "choose another with --output") from None
    targets = output_files(merged, output)
    temps: list[Path] = []
    done = False
    try:
        for target in targets:
            temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")  # plain open: the umask applies
            temps.append(temp)
            if target.suffix == ".parquet":
                merged.long.to_parquet(temp, index=False)
                continue
            sample = next((s for s in merged.plan.samples if target.name == f"{s.name}_traces.csv"), None)
            with open(temp, "wb") as handle:
                if sample is None:
                    _write_csv(merged.long, handle)
                else:
                    handle.write(_sample_header(merged, sample).encode("utf-8"))
                    _write_csv(merged.wide[sample.name], handle)
        for temp, target in zip(temps, targets):
            os.replace(temp, target)
        done = True
    except OSError as exc:
        raise MergeError(f"cannot write to {output} ({exc.strerror or exc}); "
                         "choose another folder with --output") from None
    finally:
        for temp in temps:
            if temp.is_file():
                temp.unlink()
        if created and not done and not any(output.iterdir()):
            output.rmdir()
    return targets
