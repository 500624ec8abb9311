"""The napari plugin, in a real headless napari (pytest-qt, Qt's offscreen platform): the
reader's layers, laziness on a 100-FOV result, the trace widget, the sample data."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

# No windows; OpenGL comes from the Xvfb display pytest-xvfb starts. Set before Qt starts.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
napari = pytest.importorskip("napari", reason="napari is not installed: pip install -e '.[napari]'")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")
da = pytest.importorskip("dask.array")


def _qt_start_error() -> str | None:
    """Why napari cannot draw here, or None. Tried in a child process: a Qt platform plugin
    that fails to load aborts the process that loads it. napari draws with OpenGL, which Qt's
    offscreen platform gets from an X server (pytest-xvfb starts Xvfb when it is installed)."""
    import subprocess

    probe = (
        "import sys\n"
        "from qtpy.QtGui import QOffscreenSurface, QOpenGLContext\n"
        "from qtpy.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "surface = QOffscreenSurface(); surface.create()\n"
        "context = QOpenGLContext()\n"
        "if not (context.create() and context.makeCurrent(surface)):\n"
        "    sys.exit('Qt starts but gives no OpenGL context (no X display: install xvfb)')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    if result.returncode == 0:
        return None
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {result.returncode}"


_QT_ERROR = _qt_start_error()
if _QT_ERROR:
    pytest.skip(f"napari cannot draw here: {_QT_ERROR}. Install xvfb, libGL and the xcb libraries "
                "(.ci/run does on Debian) and pytest-xvfb (the test extra)", allow_module_level=True)

from pyama_framework import open_results  # noqa: E402
from pyama_framework.napari_plugin.reader import get_reader, read_results  # noqa: E402
from pyama_framework.napari_plugin.sample import CACHE_ENV, demo_results  # noqa: E402
from pyama_framework.napari_plugin.tracks import tracks_from_traces  # noqa: E402
from pyama_framework.napari_plugin.widget import TraceWidget  # noqa: E402

PLUGIN = "pyama-framework"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The napari sample's demo result (1 FOV, 12 frames), generated once for the module."""
    cache = tmp_path_factory.mktemp("napari-demo")
    return demo_results(cache)


def layers_by_role(viewer) -> dict[str, list]:
    roles: dict[str, list] = {}
    for layer in viewer.layers:
        roles.setdefault(layer.metadata["pyama"]["role"], []).append(layer)
    return roles


def test_manifest_is_discovered_with_reader_widget_and_sample():
    from npe2 import PluginManager

    manager = PluginManager.instance()
    manager.discover()
    manifest = manager.get_manifest(PLUGIN)
    assert [r.command for r in manifest.contributions.readers] == [f"{PLUGIN}.get_reader"]
    assert [w.display_name for w in manifest.contributions.widgets] == ["Cell trace"]
    assert [s.key for s in manifest.contributions.sample_data] == ["demo"]


def test_reader_opens_results_as_images_labels_and_tracks(make_napari_viewer, demo):
    results = open_results(demo)
    images = results.images(0)
    traces = results.traces(0)
    viewer = make_napari_viewer()
    viewer.open(str(demo), plugin=PLUGIN)
    roles = layers_by_role(viewer)

    n, _, h, w = images.shape
    pixel_size = images.attrs["pixel_size_um"]
    assert pixel_size == pytest.approx(0.65)  # the demo file's PhysicalSizeX
    assert [layer.name for layer in roles["image"]] == ["pc_ch_0 [fov 0]", "fl_ch_1 [fov 0]"]
    assert [layer.name for layer in roles["segmented"] + roles["tracked"]] == ["segmented [fov 0]", "tracked [fov 0]"]
    for layer in roles["image"] + roles["segmented"] + roles["tracked"]:
        assert layer.data.shape == (n, h, w)
        assert isinstance(layer.data, da.Array), f"{layer.name} was read into memory"
        np.testing.assert_allclose(layer.scale, [1.0, pixel_size, pixel_size])
    tracked = roles["tracked"][0]
    np.testing.assert_array_equal(np.asarray(tracked.data[3]), results.labels(0).values[3])

    (tracks,) = roles["tracks"]
    np.testing.assert_allclose(tracks.scale, [1.0, pixel_size, pixel_size])
    assert len(np.unique(tracks.data[:, 0])) == traces["cell"].nunique() > 5
    assert len(tracks.data) == len(traces)
    # Each track point sits inside its cell's mask in the tracked labels.
    cell, frame, y, x = tracks.data[0]
    assert results.labels(0).values[int(frame), int(round(y)), int(round(x))] == cell


def test_reader_opens_one_fov_folder_and_declines_other_paths(demo, tmp_path):
    layers = get_reader(str(demo / "fov_000"))(str(demo / "fov_000"))
    assert {kind for _, _, kind in layers} == {"image", "labels", "tracks"}
    assert all(meta["metadata"]["pyama"]["fov"] == 0 for _, meta, _ in layers)
    assert get_reader(str(tmp_path)) is None                      # an empty folder
    assert get_reader(str(demo / "processing_config.yaml")) is None  # a file
    assert get_reader([str(demo), str(demo)]) is None
    with pytest.raises(Exception, match="not a pyama output folder"):
        read_results(str(tmp_path))


def test_reader_on_half_finished_and_empty_runs(demo, tmp_path):
    """A half-finished run opens its complete FOV; an unfinished FOV folder or a run with no
    complete FOV is a one-line error naming what is missing."""
    from pyama_framework import ResultsError

    run = _copy_fovs(demo, tmp_path / "half", 1)
    (run / "fov_001" / ".pyama").mkdir(parents=True)
    shutil.copy(demo / "fov_000" / ".pyama" / "copy.json", run / "fov_001" / ".pyama")
    layers = read_results(str(run))
    assert {meta["metadata"]["pyama"]["fov"] for _, meta, _ in layers} == {0}
    with pytest.raises(ResultsError, match="FOV 1 .* is unfinished") as error:
        read_results(str(run / "fov_001"))
    assert "\n" not in str(error.value)

    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(demo / "processing_config.yaml", empty)
    assert get_reader(str(empty)) is not None
    with pytest.raises(ResultsError, match="no complete FOV"):
        read_results(str(empty))


def test_tracks_follow_divisions_in_the_traces():
    import pandas as pd

    traces = pd.DataFrame({
        "cell": [1, 1, 2, 2, 3, 4], "parent": [0, 0, 1, 1, 1, 9], "frame": [0, 1, 2, 3, 2, 0],
        "time": [0.0, 10, 20, 30, 20, 0], "position_y": [5.0, 6, 7, 8, 9, 1],
        "position_x": [1.0, 2, 3, 4, 5, 6], "intensity_total_ch_1": [1.0, 2, 3, 4, 5, 6],
    })
    data, graph, features = tracks_from_traces(traces)
    assert data.shape == (6, 4) and list(data[:, 0]) == [1, 1, 2, 2, 3, 4]
    assert graph == {2: [1], 3: [1]}  # cell 4's mother (9) is not in the traces
    assert list(features.columns) == ["time", "intensity_total_ch_1"]


def _copy_fovs(demo: Path, target: Path, n_fovs: int) -> Path:
    """A results folder of ``n_fovs`` FOVs made of the demo's one: each FOV folder has its own
    records and traces, and links to the demo's images (no pixel copied; the per-cell crops,
    which napari does not show, left out)."""
    target.mkdir()
    shutil.copy(demo / "processing_config.yaml", target)
    source = demo / "fov_000"
    for fov in range(n_fovs):
        folder = target / f"fov_{fov:03d}"
        shutil.copytree(source / ".pyama", folder / ".pyama")
        shutil.copy(source / "tracks.csv", folder)
        shutil.copy(source / "demo_fov_000_traces.csv", folder / f"demo_fov_{fov:03d}_traces.csv")
        (folder / "images.zarr").symlink_to(source / "images.zarr", target_is_directory=True)
    return target


class ChunkReads:
    """Counts chunk files opened under a folder (zarr v3 chunks live under ``.../c/``), via
    Python's audit hooks: every file open in the process raises an ``open`` event."""

    active: "ChunkReads | None" = None
    installed = False

    def __init__(self, root: Path):
        self.root = str(root)
        self.paths: list[str] = []
        if not ChunkReads.installed:  # audit hooks cannot be removed: install one, switch it
            sys.addaudithook(ChunkReads._hook)
            ChunkReads.installed = True

    @staticmethod
    def _hook(event: str, args: tuple) -> None:
        counter = ChunkReads.active
        if counter is not None and event == "open" and isinstance(args[0], (str, Path)):
            path = str(args[0])
            if path.startswith(counter.root) and f"{os.sep}c{os.sep}" in path:
                counter.paths.append(path)

    def __enter__(self) -> "ChunkReads":
        ChunkReads.active = self
        return self

    def __exit__(self, *exc) -> None:
        ChunkReads.active = None


def test_opening_a_100_fov_result_reads_no_more_than_one_frame_per_channel(make_napari_viewer, demo, tmp_path):
    big = _copy_fovs(demo, tmp_path / "big", 100)
    assert len(open_results(big).fovs) == 100
    with ChunkReads(big) as reads:
        layers = read_results(str(big))
    # The reader reads frame 0 of each raw channel (contrast limits), nothing else.
    assert sorted(Path(p).relative_to(big).parts[:2] for p in reads.paths) == [
        ("fov_000", "images.zarr")] * 2
    assert all(isinstance(data, da.Array) for data, _, kind in layers if kind != "tracks")
    viewer = make_napari_viewer()
    with ChunkReads(big) as shown:
        viewer.open(str(big), plugin=PLUGIN)
    # napari reads what it displays (the current frame of each layer), not the 100 FOVs.
    assert 0 < len(shown.paths) <= 2 * len(viewer.layers)
    assert {Path(p).relative_to(big).parts[0] for p in shown.paths} == {"fov_000"}


def test_widget_plots_the_trace_of_the_selected_cell(make_napari_viewer, demo, qtbot):
    viewer = make_napari_viewer()
    viewer.open(str(demo), plugin=PLUGIN)
    widget = TraceWidget(viewer)
    viewer.window.add_dock_widget(widget)
    traces = open_results(demo).traces(0)
    assert widget.feature.currentText() == "intensity_total_ch_1"
    assert widget.cell is None and len(widget.line.get_xdata()) == 0

    tracked = layers_by_role(viewer)["tracked"][0]
    for cell in sorted(traces["cell"].unique())[:2]:
        tracked.selected_label = int(cell)
        rows = traces[traces["cell"] == cell].sort_values("frame")
        assert widget.cell == cell
        np.testing.assert_allclose(widget.line.get_xdata(), rows["time"])
        np.testing.assert_allclose(widget.line.get_ydata(), rows["intensity_total_ch_1"])
        assert f"cell {cell}:" in widget.status.text()

    widget.feature.setCurrentText("area_ch_0")
    np.testing.assert_allclose(widget.line.get_ydata(), rows["area_ch_0"])

    filtered = int(np.asarray(tracked.data).max()) + 1  # a label with no trace
    tracked.selected_label = filtered
    assert "not in the traces" in widget.status.text() and len(widget.line.get_ydata()) == 0


def test_widget_follows_the_cell_under_the_cursor(make_napari_viewer, demo, MouseEvent):
    """A mouse move as napari's canvas dispatches it (world position -> viewer callbacks)."""
    from napari.utils.interactions import mouse_move_callbacks

    viewer = make_napari_viewer()
    viewer.open(str(demo), plugin=PLUGIN)
    widget = TraceWidget(viewer)
    traces = open_results(demo).traces(0)
    tracked = layers_by_role(viewer)["tracked"][0]
    frame = 2
    viewer.dims.set_current_step(0, frame)
    row = traces[traces["frame"] == frame].iloc[-1]
    labels = np.asarray(tracked.data[frame])
    y, x = np.argwhere(labels == row["cell"])[0]       # a pixel of that cell in this frame
    position = (frame, y * tracked.scale[1], x * tracked.scale[2])
    mouse_move_callbacks(viewer, MouseEvent(type="mouse_move", position=position, dims_displayed=[1, 2]))
    assert widget.cell == row["cell"]
    assert widget.marker.get_visible() and widget.marker.get_xdata()[0] == row["time"]
    background = np.argwhere(labels == 0)[0]
    mouse_move_callbacks(viewer, MouseEvent(type="mouse_move", dims_displayed=[1, 2],
                                            position=(frame, *(background * tracked.scale[1:]))))
    assert widget.cell == row["cell"]  # leaving the cell keeps its trace on screen


def test_sample_data_opens_the_cached_demo_result(make_napari_viewer, demo, monkeypatch):
    """The sample resumes the demo run in its cache folder (here the module's, already complete)."""
    monkeypatch.setenv(CACHE_ENV, str(demo.parent))
    before = (demo / "fov_000" / ".pyama" / "extract.json").stat().st_mtime_ns
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "demo")
    roles = layers_by_role(viewer)
    assert len(roles["image"]) == 2 and len(roles["tracked"]) == 1 and len(roles["tracks"]) == 1
    assert roles["tracked"][0].metadata["pyama"]["results"] == str(demo)
    assert (demo / "fov_000" / ".pyama" / "extract.json").stat().st_mtime_ns == before  # not rerun
