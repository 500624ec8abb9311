"""pyama report: the demo's QC page parses, has its pictures, shows the traces' numbers,
refuses bad input in one line, and opens in a real headless browser with nothing fetched."""

from __future__ import annotations

import base64
import io
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_scene, write_config
from typer.testing import CliRunner

from pyama_framework.cli import app
from pyama_framework.config import load_config
from pyama_framework.demo import write_demo
from pyama_framework.report.qc import background_above_cells, count_jumps, fov_qc
from pyama_framework.runner import run_config
from pyama_framework.testing.synthetic import write_ome_tiff

runner = CliRunner()


class Page(HTMLParser):
    """Images and table rows of the report, by FOV section (``<h2 id="fovN">``)."""

    def __init__(self, text: str):
        super().__init__()
        self.section, self.images, self.rows = "top", {}, {}
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h2":
            self.section = attrs.get("id") or "run"
        elif tag == "img":
            self.images.setdefault(self.section, []).append(attrs["src"])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append("".join(self._cell or []).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self.section, []).append(self._row)
            self._row = None


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report_demo")
    config = write_demo(folder, n_fovs=2, n_frames=8, workers=1)
    assert run_config(load_config(config)).ok
    return folder / "results"


@pytest.fixture(scope="module")
def report(demo, tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("report") / "qc.html"
    done = runner.invoke(app, ["report", str(demo), "--output", str(path)])
    assert done.exit_code == 0, done.output
    assert done.stdout.strip() == str(path)
    return path, path.read_text()


def test_report_has_pictures_per_fov_and_the_numbers_of_the_traces(demo, report):
    _, text = report
    page = Page(text)
    traces = pd.concat(pd.read_csv(p) for p in sorted(demo.glob("fov_*/*_traces.csv")))
    for fov, rows in traces.groupby("fov"):
        section = f"fov{fov}"
        # first, middle and last frame, the background map and the plots; every one a real PNG
        assert len(page.images[section]) == 5
        for src in page.images[section]:
            assert src.startswith("data:image/png;base64,")
            from PIL import Image

            assert Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).size[0] >= 128
        table = {row[0]: row[1:] for row in page.rows[section]}
        assert table["border_margin"] == [str(rows["cell"].nunique())]  # cells left after the last filter
        per_frame = rows.groupby("frame")["cell"].nunique().reindex(range(8), fill_value=0)
        assert table["in traces"] == [str(n) for n in per_frame]
        assert int(table["tracked"][0]) >= per_frame[0]
    assert len(page.images["top"]) == 2  # the grid: one tile per FOV
    assert "http://" not in text and "https://" not in text  # nothing to fetch


def test_report_of_a_run_whose_filters_removed_every_cell_flags_it(tmp_path):
    movie = write_ome_tiff(tmp_path / "movie.ome.tif", [small_scene(0, n_frames=4)])
    config = write_config(tmp_path, movie, extraction={"min_frames": 50})
    run_config(load_config(config))
    done = runner.invoke(app, ["report", str(tmp_path / "out")])
    assert done.exit_code == 0, done.output
    text = (tmp_path / "out" / "report.html").read_text()
    assert "no cells: every tracked cell was removed by the filters" in text
    assert "shorter than min_frames=50" in text  # the run's warning, kept in the extract record
    assert 'class="tile flag"' in text


@pytest.mark.parametrize("case", ["not a folder", "no config", "half-finished", "unknown fov"])
def test_bad_input_is_one_line_and_exit_2(demo, tmp_path, case):
    target, extra, match = demo, [], ""
    if case == "not a folder":
        target, match = tmp_path / "nothing", "not a pyama output folder"
    elif case == "no config":
        target, match = tmp_path, "not a pyama output folder"
    elif case == "half-finished":
        target = Path(shutil.copytree(demo, tmp_path / "copy"))
        (target / "fov_001" / ".pyama" / "extract.json").unlink()
        match = "half-finished run: FOV(s) 0 complete; FOV 1 stopped before extract"
    else:
        extra, match = ["--fovs", "7"], "has no FOV 7"
    output = tmp_path / "out.html"
    done = runner.invoke(app, ["report", str(target), "--output", str(output), *extra])
    assert done.exit_code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and match in lines[0], lines
    assert not output.exists()
    if case == "half-finished":  # what is there can still be reported
        done = runner.invoke(app, ["report", str(target), "--output", str(output), "--partial"])
        assert done.exit_code == 0 and "fov1" not in Page(output.read_text()).images


def test_anomaly_rules():
    assert count_jumps(np.array([10, 12, 8, 8, 0, 3])) == [(2, 12, 8), (4, 8, 0), (5, 0, 3)]
    assert count_jumps(np.array([10, 13, 10])) == []  # 30 % exactly is not a jump
    traces = pd.DataFrame({"cell": [1, 1, 2], "frame": [0, 1, 0], "time": [0.0, 1.0, 0.0],
                           "intensity_total_ch_1": [5.0, 6.0, 7.0], "intensity_mean_ch_1": [-1.0, -2.0, 0.5],
                           "intensity_total_ch_2": [1.0, 2.0, 3.0]})
    assert background_above_cells(traces) == [(1, "intensity_mean_ch_1", -1.0)]
    qc = fov_qc(0, traces, {"cells_per_frame": [2, 1], "filters": {"tracked": 3, "after_min_frames": 2,
                                                                    "after_border_margin": 2}}, 2)
    assert qc.filters == [("tracked", 3), ("min_frames", 2), ("border_margin", 2)]
    assert [f.split(":")[0] for f in qc.flags] == ["count jump", "background above cells"]
    empty = fov_qc(1, traces.iloc[:0], {"cells_per_frame": [0, 0]}, 2)
    assert empty.flags == ["no cells: nothing was segmented in any frame"]


def test_report_opens_in_a_headless_browser_with_nothing_fetched(report):
    """Chromium (a system package) through playwright: every image decodes, and the page asks
    for no resource besides itself, so it reads offline."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (test extra)")
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser_path is None:
        pytest.skip("no system chromium (apt-get install chromium); playwright's own browser "
                    "download is not used")
    path, _ = report
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(path.as_uri())
            loaded = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            flagged = page.locator(".tile").count()
        finally:
            browser.close()
    assert len(loaded) == 12 and all(loaded)
    assert flagged == 2
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []


def test_long_movies_get_the_range_of_the_counts_not_a_column_per_frame():
    from pyama_framework.report.build import FovSection
    from pyama_framework.report.html import TABLE_FRAMES, _fov
    from pyama_framework.report.qc import FovQC

    n = TABLE_FRAMES + 1
    qc = FovQC(0, np.arange(n), np.arange(n) // 2, "extract record", [("tracked", 3)], 3)
    rows = {row[0]: row[1:] for row in Page(_fov(FovSection(0, qc))).rows["fov0"]}
    assert rows["tracked"] == ["0", f"{np.median(np.arange(n)):g}", str(n - 1)]
    assert rows["in traces"][2] == str((n - 1) // 2)
