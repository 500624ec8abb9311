"""Tests of the synthetic time-lapse generator and its OME-TIFF writer."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from pyama_framework.testing import synthetic
from pyama_framework.testing.synthetic import SyntheticFrame, SyntheticScene, demo_scene, write_ome_tiff


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    return SyntheticScene(height=256, width=320, n_frames=8, n_cells=30, n_fluorescence=2, seed=3)


@pytest.fixture(scope="module")
def frames(scene) -> list[SyntheticFrame]:
    return list(scene.frames())


def _images(f: SyntheticFrame) -> tuple[np.ndarray, ...]:
    return (f.phase, f.labels, *f.fluorescence, *f.background)


def test_same_arguments_give_byte_identical_frames(scene):
    again = SyntheticScene(height=256, width=320, n_frames=8, n_cells=30, n_fluorescence=2, seed=3)
    assert again.cells == scene.cells
    for t in (4, 0):  # order of rendering must not matter
        a, b = scene.frame(t), again.frame(t)
        for x, y in zip(_images(a), _images(b)):
            assert x.tobytes() == y.tobytes()
        np.testing.assert_array_equal(a.intensity_total, b.intensity_total)
    other = SyntheticScene(height=256, width=320, n_frames=8, n_cells=30, n_fluorescence=2, seed=4)
    assert other.frame(0).phase.tobytes() != scene.frame(0).phase.tobytes()


def test_shapes_and_dtypes(scene, frames):
    assert len(frames) == 8 and len(scene.cells) == 30
    assert [c.track_id for c in scene.cells] == list(range(1, 31))
    for f in frames:
        assert f.phase.shape == f.labels.shape == (256, 320)
        assert f.phase.dtype == f.labels.dtype == np.uint16
        assert len(f.fluorescence) == len(f.background) == len(f.intensity_total) == 2
        assert all(im.dtype == np.uint16 and im.shape == (256, 320) for im in f.fluorescence)
        assert all(bg.dtype == np.float32 and bg.shape == (256, 320) for bg in f.background)
        assert all(tot.dtype == np.float64 and tot.shape == (30,) for tot in f.intensity_total)
        assert f.visible.dtype == bool and f.visible.shape == (30,)


def test_labels_visible_area_and_bboxes_agree(frames):
    for f in frames:
        present = np.unique(f.labels[f.labels > 0])
        np.testing.assert_array_equal(present, np.flatnonzero(f.visible) + 1)
        np.testing.assert_array_equal(np.bincount(f.labels.ravel(), minlength=31)[1:], f.area)
        for tot in f.intensity_total:
            assert np.all(np.isnan(tot) == ~f.visible)
        for i, sl in enumerate(ndimage.find_objects(f.labels, max_label=30)):
            if sl is not None:
                assert tuple(f.bboxes[i]) == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)


def test_background_is_smooth_and_in_range(frames):
    bg = frames[0].background[0]
    assert 300 <= bg.min() and bg.max() <= 1500
    assert bg.max() / bg.min() > 1.3  # not flat
    assert np.all(np.abs(np.diff(bg, axis=1)) < 0.01 * bg[:, 1:])  # smooth at the pixel scale
    assert np.all(np.abs(np.diff(bg, axis=0)) < 0.01 * bg[1:])


def test_cells_keep_the_minimum_gap_in_every_frame(scene, frames):
    radius = int(scene.min_gap)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = yy**2 + xx**2 <= radius**2
    for f in frames:
        labels = f.labels.astype(np.int64)
        largest = ndimage.maximum_filter(labels, footprint=disk, mode="constant")
        nonzero = np.where(labels > 0, labels, 2**20)
        smallest = ndimage.minimum_filter(nonzero, footprint=disk, mode="constant", cval=2**20)
        cell = labels > 0
        assert np.all(largest[cell] == labels[cell]) and np.all(smallest[cell] == labels[cell])


def test_dropout_cell_is_absent_for_exactly_one_inner_frame(scene, frames):
    dropped = [c for c in scene.cells if c.dropout_frame is not None]
    assert len(dropped) == 1
    cell = dropped[0]
    absent = [f.t for f in frames if not f.visible[cell.track_id - 1]]
    assert absent == [cell.dropout_frame] and 0 < cell.dropout_frame < scene.n_frames - 1
    gap = frames[cell.dropout_frame]
    assert not np.any(gap.labels == cell.track_id)


def test_cells_appear_mid_movie_and_cross_the_edge(scene, frames):
    visible = np.array([f.visible for f in frames])  # (T, n)
    first_seen = visible.argmax(axis=0)
    assert np.any(first_seen > 0)
    assert all(first_seen[c.track_id - 1] == c.first_frame for c in scene.cells if c.role == "appears")

    def touches_edge(f, i):
        y0, x0, y1, x1 = f.bboxes[i]
        return f.visible[i] and (y0 == 0 or x0 == 0 or y1 == 256 or x1 == 320)

    roles = {c.role for c in scene.cells}
    assert {"enters", "leaves"} <= roles
    for c in scene.cells:
        i = c.track_id - 1
        if c.role == "enters":
            assert not visible[0, i] and visible[-1, i] and not touches_edge(frames[-1], i)
            assert any(touches_edge(f, i) for f in frames)
        if c.role == "leaves":
            assert visible[0, i] and not visible[-1, i]


def test_intensity_total_is_the_signal_put_into_the_image(scene):
    exact = scene._render(5)  # float images before noise and rounding
    fluorescence, background, labels = exact.fluorescence, exact.background, exact.labels
    visible, totals = exact.visible, exact.intensity_total
    quiet = SyntheticScene(256, 320, n_frames=8, n_cells=30, n_fluorescence=2, seed=3, noise=False).frame(5)
    brightness = []
    for c in range(2):
        signal = fluorescence[c].astype(np.float64) - background[c]
        area = np.bincount(labels.ravel(), minlength=31)[1:]
        measured = np.bincount(labels.ravel(), weights=signal.ravel(), minlength=31)[1:]
        np.testing.assert_allclose(measured[visible], totals[c][visible], rtol=1e-5, atol=1e-2)
        assert np.all(signal[labels == 0] == 0)  # no signal outside the masks
        # Noise-free uint16 frames differ from the truth only by rounding (<= 0.5 per pixel).
        quiet_signal = quiet.fluorescence[c] - background[c]
        rounded = np.bincount(labels.ravel(), weights=quiet_signal.ravel(), minlength=31)[1:]
        assert np.all(np.abs(rounded - totals[c])[visible] <= 0.5 * area[visible] + 1e-6)
        brightness.append(totals[c][visible] / area[visible])
    brightness = np.concatenate(brightness)
    assert brightness.max() / brightness.min() > 5  # dim and bright cells


def test_noise_is_modest_and_nothing_clips(frames):
    f = frames[0]
    background = f.labels == 0
    residual = f.fluorescence[0][background].astype(np.float64) - f.background[0][background]
    assert abs(residual.mean()) < 1 and 15 < residual.std() < 40
    assert f.phase.max() < 65535 and f.phase.min() > 0
    assert all(im.max() < 65535 for im in f.fluorescence)


def test_demo_scene_differs_per_fov():
    a, b = demo_scene(0, n_frames=3), demo_scene(1, n_frames=3)
    assert (a.height, a.width, a.n_fluorescence, a.n_cells) == (256, 256, 1, 25)
    assert a.frame(0).labels.tobytes() != b.frame(0).labels.tobytes()


def test_too_many_cells_is_a_clear_error():
    with pytest.raises(ValueError, match="could not place"):
        SyntheticScene(height=64, width=64, n_frames=2, n_cells=60)


def test_ome_tiff_round_trip(tmp_path):
    scenes = [SyntheticScene(64, 96, n_frames=3, n_cells=4, n_fluorescence=1, seed=s) for s in (1, 2)]
    path = write_ome_tiff(
        tmp_path / "demo.ome.tif", scenes, channel_names=["PC", "GFP"], pixel_size_um=0.5, frame_interval_s=300.0
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and len(tif.series) == 2
        for scene, series in zip(scenes, tif.series):
            assert series.axes == "TCYX" and series.shape == (3, 2, 64, 96) and series.dtype == np.uint16
            data = series.asarray()
            for t in range(3):
                frame = scene.frame(t)
                np.testing.assert_array_equal(data[t, 0], frame.phase)
                np.testing.assert_array_equal(data[t, 1], frame.fluorescence[0])
        xml = tif.ome_metadata
    assert 'Name="PC"' in xml and 'Name="GFP"' in xml
    assert 'PhysicalSizeX="0.5"' in xml and 'PhysicalSizeY="0.5"' in xml
    assert 'DeltaT="600.0"' in xml  # frame 2


def test_ome_writer_renders_frames_lazily(tmp_path, monkeypatch):
    scene = SyntheticScene(height=64, width=64, n_frames=6, n_cells=3, seed=0)
    alive: list[weakref.ref] = []
    most_alive = 0
    render = SyntheticScene.frame

    def tracked_frame(self, t):
        nonlocal most_alive
        most_alive = max(most_alive, sum(ref() is not None for ref in alive))
        frame = render(self, t)
        alive.append(weakref.ref(frame))
        return frame

    monkeypatch.setattr(SyntheticScene, "frame", tracked_frame)
    write_ome_tiff(tmp_path / "lazy.ome.tif", [scene])
    assert len(alive) == 6 and most_alive == 0  # each frame is released before the next is made
    assert synthetic._planes(scene).__next__().shape == (64, 64)


# ------------------------------------------------------------------ optics options (issue 7)
def _optics_pair(**extra):
    kw = dict(height=256, width=256, n_frames=2, n_cells=30, seed=8, noise=False)
    optics = {**synthetic.REALISTIC_OPTICS, **extra}
    return SyntheticScene(**kw, min_gap=optics["min_gap"]), SyntheticScene(**kw, **optics)


def test_optics_change_light_not_layout_and_truth_is_the_signal():
    hard, soft = _optics_pair()
    for t in range(2):
        a, b = hard._render(t), soft._render(t)
        np.testing.assert_array_equal(a.labels, b.labels)  # same cells, same masks
        signal = b.fluorescence[0].astype(np.float64) - b.background[0]
        # the truth is each cell's whole signal; together they are the image's signal
        assert np.nansum(b.intensity_total[0]) == pytest.approx(signal.sum(), rel=1e-5)
        inside = ndimage.sum_labels(signal, b.labels, np.flatnonzero(b.visible) + 1)
        share = inside / b.intensity_total[0][b.visible]
        assert np.median(share) < 0.9  # the light reaches well past the mask ...
        # ... and the PSF and soft edge move it without losing any (cells clear of the edges)
        clear = np.all((b.bboxes[:, :2] >= 12) & (b.bboxes[:, 2:] <= 256 - 12), axis=1) & b.visible
        assert clear.sum() >= 10
        no_psf = SyntheticScene(256, 256, n_frames=2, n_cells=30, seed=8, noise=False,
                                            min_gap=1.0, edge_width=2.0)._render(t)
        np.testing.assert_allclose(b.intensity_total[0][clear], no_psf.intensity_total[0][clear],
                                   rtol=1e-5)


def test_debris_is_in_the_images_but_in_no_cell():
    _, clean = _optics_pair()
    _, dusty = _optics_pair(n_debris=20)
    a, b = clean._render(0), dusty._render(0)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.intensity_total[0], b.intensity_total[0])
    np.testing.assert_array_equal(a.background[0], b.background[0])
    assert np.any(b.fluorescence[0] > a.fluorescence[0] + 50)  # some specks glow
    assert (b.phase < a.phase - 500).sum() >= 20  # every speck is dark in phase


def test_optics_options_are_validated():
    with pytest.raises(ValueError, match="psf_sigma"):
        SyntheticScene(64, 64, n_cells=2, psf_sigma=-1)


def test_demo_scene_renders_realistic_optics():
    scene = demo_scene(0, n_frames=2)
    assert scene.psf_sigma == 1.5 and scene.edge_width == 2.0 and scene.min_gap == 1.0
