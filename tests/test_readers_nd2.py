"""ND2: the test encoder's files parse with the nd2 library, and our reader reads them exactly."""

from __future__ import annotations

import nd2
import numpy as np
import pytest

from _reader_files import CHANNELS, PIXEL_SIZE_UM, all_frames_equal, movie, write_nd2_movie
from pyama_builtin.readers.nd2 import ND2Reader
from pyama_framework.readers import ReaderError
from pyama_framework.testing.nd2_writer import write_nd2


@pytest.mark.parametrize("loop_order", ["TPZ", "PTZ", "ZPT"])
@pytest.mark.parametrize("compress", [False, True])
def test_encoder_output_is_parsed_by_the_nd2_library(tmp_path, loop_order, compress):
    data = movie(n_fov=3, n_t=4, n_z=2)
    path = write_nd2_movie(tmp_path / "m.nd2", data, loop_order=loop_order, compress=compress,
                           frame_interval_ms=5000)
    with nd2.ND2File(path) as f:
        assert f.sizes == {**{a: {"T": 4, "P": 3, "Z": 2}[a] for a in loop_order}, "C": 2, "Y": 24, "X": 32}
        assert [c.channel.name for c in f.metadata.channels] == list(CHANNELS)
        assert f.voxel_size().x == PIXEL_SIZE_UM
        axes = "".join(f.sizes)
        np.testing.assert_array_equal(f.asarray(), data.transpose(["PTZCYX".index(a) for a in axes]))
        times = f.events(orient="list")["Time [s]"]
        assert len(times) == 24 and max(times) == pytest.approx(3 * 5 + 0.021)


@pytest.mark.parametrize("loop_order", ["TPZ", "ZTP"])
def test_reader_reads_every_pixel_and_the_metadata(tmp_path, loop_order):
    data = movie(n_fov=3, n_t=4, n_z=2)
    path = write_nd2_movie(tmp_path / "m.nd2", data, loop_order=loop_order, frame_interval_ms=60_000)
    with ND2Reader(path) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.height, meta.width) == (3, 4, 2, 24, 32)
        assert [(c.index, c.name) for c in meta.channels] == [(0, "Phase"), (1, "GFP")]
        assert meta.dtype == "uint16" and meta.pixel_size_um == PIXEL_SIZE_UM
        # the encoder stamps event (p, t, z) at t * interval + 10 p + z ms; we report z = 0
        assert meta.timestamps_s == tuple(tuple(60.0 * t + 0.01 * p for t in range(4)) for p in range(3))
        assert all_frames_equal(reader, data)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_other_pixel_types_and_a_single_frame(tmp_path, dtype):
    data = movie(n_fov=1, n_t=1, n_c=3, dtype="uint8").astype(dtype)
    path = write_nd2(tmp_path / "one.nd2", data[:, :, 0], channel_names=["a", "b", "c"], pixel_size_um=None)
    with ND2Reader(path) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.n_channels, meta.dtype) == (1, 1, 1, 3, dtype)
        assert meta.pixel_size_um is None
        assert all_frames_equal(reader, data)


def test_frames_are_independent_copies(tmp_path):
    data = movie(n_fov=1, n_t=2)
    path = write_nd2_movie(tmp_path / "m.nd2", data[:, :, 0])
    with ND2Reader(path) as reader:
        frame = reader.read_frame(0, 1, 1)
    frame[0, 0] += 1  # the file is closed and the frame still belongs to us
    assert frame.flags.c_contiguous and frame.flags.writeable


def test_rgb_needs_split_rgb(tmp_path):
    data = movie(n_fov=1, n_t=2, n_c=3, dtype="uint8")
    path = write_nd2(tmp_path / "rgb.nd2", data[:, :, 0], channel_names=["Brightfield"], rgb=True)
    with pytest.raises(ReaderError, match="RGB image.*split_rgb") as info:
        ND2Reader(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with ND2Reader(path, split_rgb=True) as reader:
        assert [c.name for c in reader.metadata.channels] == ["Brightfield R", "Brightfield G", "Brightfield B"]
        assert all_frames_equal(reader, data)


def test_index_outside_the_file_is_a_one_line_error(tmp_path):
    path = write_nd2_movie(tmp_path / "m.nd2", movie(n_fov=2, n_t=2))
    with ND2Reader(path) as reader:
        with pytest.raises(ReaderError, match=r"FOV index 2 is out of range \(the file has 2\)"):
            reader.read_frame(2, 0, 0)
        with pytest.raises(ReaderError, match=r"channel index 5 is out of range"):
            reader.read_frame(0, 0, 5)
