"""``pyama merge``: per-sample tables and the long table from two real runs, and every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from conftest import pyama, write_config
from pyama_framework.cli import app
from pyama_framework.merge import read_header, read_traces


@pytest.fixture(scope="session")
def runs(tmp_path_factory, two_fov_file) -> Path:
    """Two results folders, ``day1`` and ``day2``, of the 2-FOV file (one experiment imaged
    in two runs). day2 flags frames whose area is 5 % off the median as not good, so it has
    rows with good = False."""
    root = tmp_path_factory.mktemp("merge")
    for name, ratio in (("day1", 2.0), ("day2", 1.05)):
        folder = root / f"cfg_{name}"
        folder.mkdir()
        config = write_config(folder, two_fov_file, output=str(root / name),
                              extraction={"good_area_ratio": ratio})
        result = pyama("run", str(config))
        assert result.returncode == 0, result.stderr
    return root


def per_fov(runs: Path, run: str, fov: int) -> pd.DataFrame:
    return pd.read_csv(next((runs / run / f"fov_{fov:03d}").glob("*_traces.csv")))


def write_samples(folder: Path, data: dict, name: str = "samples.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


TWO_RUNS = {
    "results": ["../day1", "../day2"],  # relative to the samples file
    "samples": [
        {"name": "control", "fovs": {"day1": "0", "day2": "0"}, "condition": "untreated #1", "concentration": 0},
        {"name": "drug", "fovs": {"day1": 1, "day2": [1]}, "condition": "drug", "concentration": 1.5},
    ],
}


@pytest.fixture(scope="session")
def merged(runs) -> Path:
    samples = write_samples(runs / "analysis", TWO_RUNS)
    result = pyama("merge", str(samples), cwd=runs)  # default output: 'merged' next to the file
    assert result.returncode == 0, result.stderr
    assert "control: 2 FOV(s)" in result.stdout
    return runs / "analysis" / "merged"


def test_merge_across_two_results_folders(runs, merged):
    assert sorted(p.name for p in merged.iterdir()) == [
        "control_traces.csv", "drug_traces.csv", "merged_long.csv", "merged_long.parquet"]
    header = read_header(merged / "control_traces.csv")
    assert header["sample"] == "control" and header["condition"] == "untreated #1"
    assert header["concentration"] == 0 and header["rows"] == "good"
    assert header["fovs"] == {"day1": "0", "day2": "0"}
    assert header["results"] == [str((runs / "day1").resolve()), str((runs / "day2").resolve())]

    control = read_traces(merged / "control_traces.csv")
    trace_columns = list(per_fov(runs, "day1", 0).columns)
    assert list(control.columns) == ["sample", "results", *trace_columns, "condition", "concentration"]
    assert set(control["sample"]) == {"control"} and set(control["condition"]) == {"untreated #1"}
    # the rows are the good rows of day1 FOV 0, then of day2 FOV 0, unchanged
    expected = pd.concat([per_fov(runs, run, 0).query("good").assign(results=run) for run in ("day1", "day2")],
                         ignore_index=True)
    pd.testing.assert_frame_equal(control[["results", *trace_columns]], expected[["results", *trace_columns]])
    # a FOV is identified by results folder and index: both days hold FOV 0
    assert sorted(control.groupby("results")["fov"].unique().map(list)) == [[0], [0]]
    drug = read_traces(merged / "drug_traces.csv")
    assert set(zip(drug["results"], drug["fov"])) == {("day1", 1), ("day2", 1)}
    assert drug["concentration"].eq(1.5).all()


def test_long_table_equals_the_wide_tables(merged):
    long = read_traces(merged / "merged_long.csv")
    assert list(long.columns) == ["sample", "results", "fov", "cell", "frame", "time", "feature", "channel", "value"]
    wide = pd.concat([read_traces(merged / f"{s}_traces.csv") for s in ("control", "drug")], ignore_index=True)
    features = [c for c in wide.columns if "_ch_" in c]
    assert len(long) == len(wide) * len(features)
    keys = ["sample", "results", "fov", "cell", "frame"]
    back = long.assign(column=long["feature"] + "_ch_" + long["channel"].astype(str)).pivot(
        index=keys, columns="column", values="value")
    expected = wide.set_index(keys)[features].sort_index()
    pd.testing.assert_frame_equal(back[features].sort_index(), expected, check_names=False, rtol=1e-12)
    times = long.drop_duplicates(keys).set_index(keys)["time"].sort_index()
    pd.testing.assert_series_equal(times, wide.set_index(keys)["time"].sort_index())


def test_parquet_round_trip_equals_the_csv(merged):
    parquet = pd.read_parquet(merged / "merged_long.parquet")
    csv = read_traces(merged / "merged_long.csv")
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)


def test_a_hash_in_metadata_survives_a_plain_comment_reader(merged):
    plain = pd.read_csv(merged / "control_traces.csv", comment="#")
    assert set(plain["condition"]) == {"untreated #1"}


def test_all_keeps_every_row_and_default_only_good(runs, merged):
    samples = runs / "analysis" / "samples.yaml"
    out = runs / "merged_all"
    result = pyama("merge", str(samples), "--all", "--output", str(out))
    assert result.returncode == 0, result.stderr
    everything = read_traces(out / "drug_traces.csv")
    good = read_traces(merged / "drug_traces.csv")
    total = sum(len(per_fov(runs, run, 1)) for run in ("day1", "day2"))
    assert len(everything) == total
    assert (~everything["good"]).sum() > 0, "day2 should flag some rows as not good"
    assert len(good) == everything["good"].sum() and good["good"].all()
    assert read_header(out / "drug_traces.csv")["rows"] == "all"


def test_pyama_core_samples_file_with_results_option(runs, tmp_path):
    """pyama-core's files have no 'results:'; --results gives the folder (relative to the cwd)."""
    samples = write_samples(tmp_path, {"samples": [{"name": "a", "fovs": "0-1"}]})
    result = pyama("merge", str(samples), "--results", "day2", "-o", str(tmp_path / "out"), cwd=runs)
    assert result.returncode == 0, result.stderr
    table = read_traces(tmp_path / "out" / "a_traces.csv")
    assert set(table["fov"]) == {0, 1} and set(table["results"]) == {"day2"}
    # --results overrides the file's folders; 'all' takes every FOV of the folder
    samples = write_samples(tmp_path, {"results": "nowhere", "samples": [{"name": "b", "fovs": "all"}]}, "b.yaml")
    result = pyama("merge", str(samples), "--results", str(runs / "day1"), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert set(read_traces(tmp_path / "out" / "b_traces.csv")["fov"]) == {0, 1}


def test_read_traces_of_a_per_fov_file(runs):
    path = next((runs / "day1" / "fov_000").glob("*_traces.csv"))
    table = read_traces(path)
    assert table["sample"].isna().all() and table["good"].dtype == bool
    assert table.attrs["header"] == {}
    pd.testing.assert_frame_equal(table.drop(columns="sample"), pd.read_csv(path))


@pytest.fixture(scope="session")
def empty_run(tmp_path_factory, two_fov_file) -> Path:
    """A real run whose filters remove every cell: FOV traces files with only the header."""
    folder = tmp_path_factory.mktemp("empty")
    config = write_config(folder, two_fov_file, fovs="0", extraction={"min_frames": 100})
    result = pyama("run", str(config))
    assert result.returncode == 0, result.stderr
    return folder / "out"


GOOD = {"name": "a", "fovs": "0"}
DAY1, DAY2 = "{runs}/day1", "{runs}/day2"
BAD_INPUTS = {
    "missing file": (None, "does not exist"),
    "unknown top-level key": ({"results": DAY1, "sample": [GOOD], "samples": [GOOD]},
                              "unknown top-level key(s) 'sample'"),
    "empty sample list": ({"results": DAY1, "samples": []}, "lists no samples"),
    "FOV not in the results": ({"results": DAY1, "samples": [{"name": "a", "fovs": "0-3"}]},
                               "FOV 2 is not in results folder"),
    "FOV in two samples": ({"results": [DAY1, DAY2],
                            "samples": [{"name": "a", "fovs": {"day1": "0-1"}},
                                        {"name": "b", "fovs": {"day2": 0, "day1": 1}}]},
                           "FOV 1 of day1 is in samples 'a' and 'b'"),
    "missing results folder": ({"results": "nowhere", "samples": [GOOD]}, "does not exist"),
    "no results at all": ({"samples": [GOOD]}, "pass --results DIR"),
    "several folders, plain fovs": ({"results": [DAY1, DAY2], "samples": [GOOD]}, "give fovs per folder"),
    "unknown folder in fovs": ({"results": [DAY1, DAY2], "samples": [{"name": "a", "fovs": {"day3": 0}}]},
                               "not among the results folders"),
    "bad FOV selection": ({"results": DAY1, "samples": [{"name": "a", "fovs": "0-x"}]},
                          "bad FOV selection '0-x'"),
    "duplicate sample name": ({"results": DAY1, "samples": [GOOD, {"name": "a", "fovs": "1"}]},
                              "two samples are named 'a'"),
    "not a results folder": ({"results": "{runs}", "samples": [GOOD]}, "is not a pyama results folder"),
    "no traces in a FOV": ({"results": "{empty}", "samples": [GOOD]}, "has no traces"),
}


def _fill(value, **paths):
    if isinstance(value, str):
        return value.format(**paths)
    if isinstance(value, list):
        return [_fill(v, **paths) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, **paths) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, runs, empty_run, tmp_path):
    """Through the CLI in-process (typer's runner), so each case costs no interpreter start."""
    data, message = BAD_INPUTS[case]
    if data is None:
        samples = tmp_path / "missing.yaml"
    else:
        samples = write_samples(tmp_path, _fill(data, runs=runs, empty=empty_run))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["merge", str(samples), "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in lines[0]
    assert not out.exists(), "a failed merge must write nothing"


def test_bad_input_through_a_real_process(runs, tmp_path):
    samples = write_samples(tmp_path, {"results": str(runs / "day1"), "samples": [{"name": "a", "fovs": "7"}]})
    result = pyama("merge", str(samples), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "FOV 7 is not in results folder" in result.stderr and not (tmp_path / "out").exists()


def test_without_pyarrow_the_same_tables_and_no_parquet(merged, runs, tmp_path, monkeypatch):
    """Without pyarrow (it is optional) pandas writes the CSVs: same content, no Parquet."""
    from pyama_framework.merge import merge, plan_merge, write
    from pyama_framework.merge import write_merged

    monkeypatch.setattr(write, "_has_pyarrow", lambda: False)
    written = write_merged(merge(plan_merge(runs / "analysis" / "samples.yaml")), tmp_path)
    assert sorted(p.name for p in written) == ["control_traces.csv", "drug_traces.csv", "merged_long.csv"]
    for name in ("control_traces.csv", "merged_long.csv"):
        pd.testing.assert_frame_equal(read_traces(tmp_path / name), read_traces(merged / name), check_dtype=False)
    assert read_header(tmp_path / "control_traces.csv") == read_header(merged / "control_traces.csv")


def test_a_failed_write_leaves_the_previous_merge_untouched(merged, runs, tmp_path):
    """A file that cannot be written (here: a folder in the way of its temporary file) fails
    the merge after other files were written to temporary names: none replaces an old one."""
    import os

    from pyama_framework.merge import MergeError, merge, plan_merge, write_merged

    out = tmp_path / "out"
    shutil.copytree(merged, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    blocker = out / f".merged_long.csv.{os.getpid()}.tmp"
    blocker.mkdir()
    data = {**TWO_RUNS, "samples": [{**TWO_RUNS["samples"][0], "condition": "changed"}, TWO_RUNS["samples"][1]]}
    plan = plan_merge(write_samples(runs / "analysis", data, "changed.yaml"))
    with pytest.raises(MergeError, match="cannot write to"):
        write_merged(merge(plan), out)
    blocker.rmdir()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
