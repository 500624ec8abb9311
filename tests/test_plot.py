"""`pyama plot`: figures from a results folder, merged traces and fitted results (real CLI runs
on the output of `pyama demo`), reproducible bytes, what the figures show, and bad input."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from conftest import pyama

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory) -> Path:
    """`pyama demo` output (2 FOVs, 8 frames) and its merge into two samples."""
    root = tmp_path_factory.mktemp("plot_demo")
    result = pyama("demo", str(root / "demo"), "--fovs", "2", "--frames", "8", "--workers", "2")
    assert result.returncode == 0, result.stderr
    return root / "demo" / "results"


@pytest.fixture(scope="session")
def merged(demo_results) -> Path:
    folder = demo_results.parent.parent / "merged"
    samples = demo_results.parent.parent / "samples.yaml"
    samples.write_text(f"results: {demo_results}\nsamples:\n"
                       "  - {name: ctrl, fovs: '0', condition: untreated}\n"
                       "  - {name: drug, fovs: '1', condition: treated}\n")
    result = pyama("merge", str(samples), "--output", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


def write_fitted(traces: pd.DataFrame, path: Path, blank_sample: bool = False) -> pd.DataFrame:
    """A small fitted CSV of ``exponential_decay`` (a registered model) in the layout of
    ``pyama fit``, one row per cell of ``traces``: R² spread over [0.5, 1], quality by
    pyama-core's thresholds, the last fit failed (labelled poor, as ``pyama fit`` does)."""
    cells = traces[["sample", "fov", "cell"]].drop_duplicates().reset_index(drop=True)
    n = len(cells)
    first = traces.groupby(["sample", "fov", "cell"], sort=False)["intensity_total_ch_1"].first()
    r2 = np.linspace(1.0, 0.5, n)
    fitted = cells.assign(model="exponential_decay", success=True, r_squared=r2,
                          quality=np.where(r2 > 0.9, "good", np.where(r2 >= 0.7, "fair", "poor")),
                          n_points=8, amplitude=first.to_numpy() / 2, rate=np.linspace(0.05, 0.5, n),
                          offset=first.to_numpy() / 2, amplitude_se=1.0, rate_se=0.01, offset_se=1.0)
    fitted.loc[n - 1, ["success", "quality", "amplitude", "rate", "offset"]] = [False, "poor", np.nan, np.nan, np.nan]
    if blank_sample:
        fitted["sample"] = ""
    path.write_text("# model: exponential_decay\n# feature: intensity_total\n# channel: 1\n"
                    "# fixed: (none)\n# units: amplitude=a.u.; rate=1/h; offset=a.u.\n"
                    + fitted.to_csv(index=False))
    return fitted


@pytest.fixture(scope="session")
def fitted_csv(merged) -> Path:
    traces = pd.concat([pd.read_csv(f, comment="#") for f in sorted(merged.glob("*_traces.csv"))])
    path = merged / "fitted.csv"
    write_fitted(traces, path)
    return path


def check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    assert image[..., :3].std() > 0.01  # something is drawn


def check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<dc:date>" not in path.read_text()


def test_plot_results_folder_writes_png_and_svg(demo_results, tmp_path):
    result = pyama("plot", str(demo_results), "--output", str(tmp_path / "plots"))
    assert result.returncode == 0, result.stderr
    written = result.stdout.split()
    assert [Path(p).name for p in written] == ["traces_intensity_total_ch_1.png", "traces_intensity_total_ch_1.svg"]
    check_png(Path(written[0]))
    check_svg(Path(written[1]))


def test_merge_fit_plot_end_to_end_with_identical_bytes(merged, tmp_path):
    fitted = []  # pyama fit takes one traces file; several fitted CSVs (one per sample) combine
    for sample in ("drug",):
        fitted += ["--fitted", str(tmp_path / f"{sample}_fitted.csv")]
        fit = pyama("fit", str(merged / f"{sample}_traces.csv"), "--model", "logistic", "--feature",
                    "intensity_total", "--channel", "1", "--output", fitted[-1], "--workers", "1")
        assert fit.returncode == 0, fit.stderr
    for name in ("a", "b"):
        result = pyama("plot", str(merged), *fitted, "--output", str(tmp_path / name), "--cells", "3")
        assert result.returncode == 0, result.stderr
    stems = ["traces_intensity_total_ch_1", "fits_logistic_intensity_total_ch_1", "parameters_logistic",
             "quality_logistic"]
    expected = sorted(f"{s}.{e}" for s in stems for e in ("png", "svg"))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == expected
    for stem in stems:
        check_png(tmp_path / "a" / f"{stem}.png")
        check_svg(tmp_path / "a" / f"{stem}.svg")
    for name in expected:  # a fixed seed, SVG hash salt and no dates: byte-reproducible
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_one_merged_sample_file_and_another_feature(merged, demo_results):
    from pyama_framework.plot_inputs import load_traces

    traces = load_traces(merged / "drug_traces.csv", feature="area")
    assert (traces.feature, traces.channel, traces.merged) == ("area", 0, True)
    raw = pd.read_csv(merged / "drug_traces.csv", comment="#")
    assert set(traces.table["sample"]) == {"drug"} and len(traces.table) == len(raw)
    np.testing.assert_array_equal(traces.table["value"], raw["area_ch_0"])
    # per-FOV traces: each FOV is a sample; --all keeps the rows flagged good = False
    every = load_traces(demo_results, include_all=True)
    good = load_traces(demo_results)
    n_rows = sum(len(pd.read_csv(f)) for f in demo_results.glob("fov_*/*_traces.csv"))
    assert len(every.table) == n_rows >= len(good.table) and not good.merged
    assert list(dict.fromkeys(every.table["sample"])) == ["fov_000", "fov_001"]


def test_traces_figure_shows_mean_and_seeded_cells(demo_results):
    from pyama_framework.plot_inputs import load_traces
    from pyama_framework.plotting import traces_figure

    traces = load_traces(demo_results)
    fig = traces_figure(traces, n_cells=5)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title().split(" ")[0] for ax in axes] == ["fov_000", "fov_001"]
    for fov, ax in enumerate(axes):
        csv = pd.read_csv(demo_results / f"fov_{fov:03d}" / f"demo_fov_{fov:03d}_traces.csv")
        good = csv[csv["good"]]
        expected = good.groupby("frame")["intensity_total_ch_1"].mean().to_numpy()
        lines = ax.get_lines()
        assert len(lines) == 5 + 1  # 5 sampled cells, then the mean
        np.testing.assert_allclose(lines[-1].get_ydata(), expected)
        # each thin line is one real cell's good rows
        sampled = [tuple(line.get_ydata()) for line in lines[:-1]]
        per_cell = {tuple(g["intensity_total_ch_1"]) for _, g in good.groupby("cell")}
        assert set(sampled) <= per_cell and len(set(sampled)) == 5
    # the same cells every time
    again = traces_figure(load_traces(demo_results), n_cells=5)
    assert [tuple(l.get_ydata()) for l in again.axes[0].get_lines()] == [
        tuple(l.get_ydata()) for l in fig.axes[0].get_lines()]


def test_fits_figure_draws_the_registered_model_curve(merged, fitted_csv):
    from pyama_framework.fitting import evaluate_model
    from pyama_framework.plot_inputs import check_fitted_matches, load_fitted, load_traces
    from pyama_framework.plotting import choose_fitted_cells, fits_figure

    traces = load_traces(merged)
    fitted = load_fitted(fitted_csv)
    rows = check_fitted_matches(fitted, traces)
    chosen = choose_fitted_cells(rows, 3)
    # evenly spaced over the R² ranks of the successful fits: best, middle, worst
    ok = fitted.table[fitted.table["success"]]["r_squared"]
    assert chosen["r_squared"].iloc[0] == ok.max() and chosen["r_squared"].iloc[-1] == ok.min()
    fig = fits_figure(traces, rows, fitted.model, fitted.parameters, evaluate_model, n_cells=3)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 3
    for ax, row in zip(axes, chosen.itertuples(index=False)):
        data_line, curve_line = ax.get_lines()
        t = np.linspace(*traces.table.query("sample == @row.sample and cell == @row.cell and fov == @row.fov")
                        ["time"].agg(["min", "max"]), 400)
        expected = evaluate_model("exponential_decay", t, amplitude=row.amplitude, rate=row.rate, offset=row.offset)
        np.testing.assert_allclose(curve_line.get_ydata(), expected)
        assert f"R² = {row.r_squared:.3f}" in ax.get_title()


def test_quality_split_counts_failed_fits_apart(merged, fitted_csv, tmp_path):
    from pyama_framework.plot_inputs import load_fitted
    from pyama_framework.plotting import quality_counts

    fitted = load_fitted(fitted_csv)
    counts = quality_counts(fitted)
    raw = pd.read_csv(fitted_csv, comment="#")
    assert list(counts.index) == ["ctrl", "drug"]
    assert counts.to_numpy().sum() == len(raw)
    assert counts.loc["drug", "failed"] == 1  # the last row failed; its "poor" label is not counted
    ok = raw[raw["success"]]
    for quality in ("good", "fair", "poor"):
        assert counts[quality].sum() == (ok["quality"] == quality).sum()


def test_fitted_csvs_of_several_samples_combine(fitted_csv, tmp_path):
    from pyama_framework.plot_inputs import PlotInputError, combine_fitted, load_fitted

    lines = fitted_csv.read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    table = pd.read_csv(fitted_csv, comment="#")
    paths = []
    for sample, rows in table.groupby("sample"):
        paths.append(tmp_path / f"{sample}.csv")
        paths[-1].write_text("".join(header) + rows.to_csv(index=False))
    combined = combine_fitted([load_fitted(p) for p in paths], paths)
    whole = load_fitted(fitted_csv)
    pd.testing.assert_frame_equal(combined.table, whole.table)
    assert combined.parameters == whole.parameters == ("amplitude", "rate", "offset")
    with pytest.raises(PlotInputError, match="is in more than one fitted CSV"):
        combine_fitted([load_fitted(paths[0])] * 2, [paths[0]] * 2)
    other = tmp_path / "other.csv"
    other.write_text(paths[1].read_text().replace("exponential_decay", "logistic"))
    with pytest.raises(PlotInputError, match="differ in model"):
        combine_fitted([load_fitted(paths[0]), load_fitted(other)], [paths[0], other])


def test_fitted_on_per_fov_traces_without_sample_names(demo_results, tmp_path):
    from pyama_framework.plot_inputs import check_fitted_matches, load_fitted, load_traces

    traces = pd.concat([pd.read_csv(f) for f in sorted(demo_results.glob("fov_*/*_traces.csv"))])
    written = write_fitted(traces[traces["good"]].assign(sample=""), tmp_path / "fitted.csv", blank_sample=True)
    fitted = load_fitted(tmp_path / "fitted.csv")
    assert set(fitted.table["sample"]) == {"fov_000", "fov_001"}  # as the traces name them
    rows = check_fitted_matches(fitted, load_traces(demo_results))
    assert len(rows) == len(written)


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "does not exist"),
    (["{results}", "--feature", "volume"], "feature 'volume' is not in the traces; choose one of: area"),
    (["{results}", "--fitted", "{fitted}"], "no cell of the fitted results is in the traces"),
])
def test_bad_input_is_one_line_and_exit_2(demo_results, fitted_csv, tmp_path, args, message):
    names = {"missing": tmp_path / "nope", "results": demo_results, "fitted": fitted_csv}
    result = pyama("plot", *[a.format(**names) for a in args], "--output", str(tmp_path / "plots"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert not (tmp_path / "plots").exists()


def test_bad_input_messages(demo_results, merged, fitted_csv, tmp_path):
    from pyama_framework.plot_inputs import PlotInputError
    from pyama_framework.plotting import make_plots

    (tmp_path / "empty").mkdir()
    header_only = tmp_path / "header_only"
    (header_only / "fov_000").mkdir(parents=True)
    csv = next(demo_results.glob("fov_000/*_traces.csv"))
    (header_only / "fov_000" / csv.name).write_text(csv.read_text().splitlines()[0] + "\n")
    failed = tmp_path / "failed.csv"
    failed.write_text(fitted_csv.read_text().replace(",True,", ",False,"))
    cases = [
        (dict(path=tmp_path / "empty"), "no traces found in"),
        (dict(path=header_only), "every traces file is empty"),
        (dict(path=demo_results, channel=3), "channel 3 has no 'intensity_total' in the traces; choose one of: 1"),
        (dict(path=merged, fitted_path=tmp_path / "nope.csv"), "fitted results"),
        (dict(path=merged, fitted_path=fitted_csv, feature="area"),
         "the fitted results are of feature 'intensity_total', not 'area'"),
        (dict(path=merged, fitted_path=fitted_csv, channel=0), "the fitted results are of channel 1, not 0"),
        (dict(path=merged, fitted_path=demo_results / "fov_000" / "tracks.csv"), "is not a fitted-results CSV"),
        (dict(path=merged, fitted_path=failed), "no fit in the fitted results succeeded"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PlotInputError, match=re.escape(message)):
            make_plots(output=tmp_path / "plots", **kwargs)
    assert not (tmp_path / "plots").exists()  # nothing written before the input checks out
