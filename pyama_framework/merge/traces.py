"""Reading pyama traces files: per-FOV (``pyama run``) and merged (``pyama merge``).

:func:`read_traces` is what ``pyama fit`` and ``pyama plot`` read any traces file with;
:func:`read_header` parses the ``# key: value`` lines a merged or fitted CSV starts with;
:func:`to_long` gives the tidy long form of a traces table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import PyamaError

if TYPE_CHECKING:
    import pandas as pd

IDENTITY_COLUMNS = ("sample", "results", "fov", "cell", "frame", "time")
FEATURE_COLUMN = re.compile(r"^(?P<feature>.+)_ch_(?P<channel>\d+)$")
FLOAT_COLUMNS = ("time", "position_x", "position_y", "value")
LONG_COLUMNS = ["sample", "results", "fov", "cell", "frame", "time", "feature", "channel", "value"]


class MergeError(PyamaError):
    """The samples file, a results folder or a traces file cannot be merged or read."""


def header_lines(path: Path) -> int:
    """Number of leading ``#`` lines of a CSV file."""
    count = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            count += 1
    return count


def read_header(path: Path) -> dict[str, Any]:
    """The ``# key: value`` lines at the top of a merged (or fitted) CSV, values parsed as YAML."""
    header: dict[str, Any] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, sep, value = line[1:].strip().partition(":")
            if sep:
                try:
                    header[key.strip()] = yaml.safe_load(value.strip()) if value.strip() else None
                except yaml.YAMLError:
                    header[key.strip()] = value.strip()
    return header


def read_traces(path: Path) -> pd.DataFrame:
    """Read a per-FOV or merged traces CSV.

    Leading ``# key: value`` lines are skipped (by count, so a ``#`` inside a value is kept)
    and returned parsed in ``df.attrs["header"]``. A per-FOV file gets a ``sample`` column of
    missing values, so callers can always group by ``sample``; ``good`` is boolean; ``time``,
    positions and every ``{feature}_ch_{channel}`` (or ``value``) column are float64.

    Raises
    ------
    MergeError
        The file is missing, empty, or lacks the trace columns fov, cell, frame, time.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MergeError(f"traces file {path} does not exist; give a '*_traces.csv' of 'pyama run' or 'pyama merge'")
    try:
        df = pd.read_csv(path, skiprows=header_lines(path))
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise MergeError(f"{path} is not a readable traces CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in ("fov", "cell", "frame", "time") if c not in df.columns]
    if missing:
        raise MergeError(f"{path} is not a traces file: no column(s) {', '.join(missing)}; give a "
                         "'*_traces.csv' of 'pyama run' or 'pyama merge'")
    # Measurements are floats even when a writer spelled 10.0 as "10" (pyarrow's CSV writer does).
    measured = [c for c in df.columns if c in FLOAT_COLUMNS or FEATURE_COLUMN.match(c)]
    df[measured] = df[measured].apply(pd.to_numeric, errors="coerce").astype("float64")
    if "good" in df.columns and df["good"].dtype != bool:
        df["good"] = df["good"].astype(str).str.lower().isin(("true", "1"))
    if "sample" not in df.columns:
        df.insert(0, "sample", pd.Series([None] * len(df), dtype=object))
    df.attrs["header"] = read_header(path)
    return df


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """The tidy long form of a traces table: one row per row of ``wide`` and feature column
    ``{feature}_ch_{channel}``, ordered by feature and channel, then as the rows of ``wide``.

    Columns: the identity columns of ``wide`` among sample, results, fov, cell, frame, time,
    then feature, channel, value.
    """
    import numpy as np
    import pandas as pd

    value_columns = [c for c in wide.columns if FEATURE_COLUMN.match(c)]
    parts = [FEATURE_COLUMN.match(c) for c in value_columns]
    n, k = len(wide), len(value_columns)
    # Repeated with take(), which keeps each column's dtype (text stays pyarrow-backed):
    # going through numpy object arrays and back costs ~5x more for millions of rows.
    rows = np.tile(np.arange(n), k)
    columns = {c: wide[c].take(rows).reset_index(drop=True) for c in IDENTITY_COLUMNS if c in wide.columns}
    which = np.repeat(np.arange(k), n)
    columns["feature"] = pd.Series([m["feature"] for m in parts], dtype="str").take(which).reset_index(drop=True)
    columns["channel"] = np.array([int(m["channel"]) for m in parts], dtype=np.int64)[which]
    values = [pd.to_numeric(wide[c], errors="coerce").to_numpy(dtype=np.float64) for c in value_columns]
    columns["value"] = np.concatenate(values) if values else np.empty(0)
    return pd.DataFrame(columns)
