"""CZI: files written by pylibCZIrw (libCZI) read back exactly through our reader."""

from __future__ import annotations

import numpy as np
import pytest

from _reader_files import PIXEL_SIZE_UM, add_czi_timestamps, all_frames_equal, movie, write_czi
from pyama_builtin.readers.czi import CziReader
from pyama_framework.readers import ReaderError

pytest.importorskip("pylibCZIrw")


@pytest.mark.parametrize("compression", [None, "zstd0:ExplicitLevel=1",
                                         "zstd1:ExplicitLevel=1;PreProcess=HiLoByteUnpack"])
def test_scenes_times_channels_every_pixel_and_metadata(tmp_path, compression):
    data = movie(n_fov=3, n_t=4, n_z=1, n_c=2)
    path = write_czi(tmp_path / "m.czi", data, compression=compression)
    with CziReader(path) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.height, meta.width) == (3, 4, 1, 24, 32)
        assert [(c.index, c.name) for c in meta.channels] == [(0, "Phase"), (1, "GFP")]
        assert meta.dtype == "uint16" and meta.pixel_size_um == pytest.approx(PIXEL_SIZE_UM)
        assert meta.timestamps_s is None  # libCZI writes no TimeStamps attachment
        assert all_frames_equal(reader, data)


def test_z_planes(tmp_path):
    data = movie(n_fov=2, n_t=2, n_z=3, n_c=2)
    with CziReader(write_czi(tmp_path / "z.czi", data)) as reader:
        assert reader.metadata.n_z == 3
        assert all_frames_equal(reader, data)


def test_frames_made_of_tiles_are_assembled(tmp_path):
    from pylibCZIrw import czi as pyczi

    data = movie(n_fov=2, n_t=2, n_c=1, height=20, width=30)
    path = tmp_path / "tiles.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for p in range(2):
            for t in range(2):
                frame = data[p, t, 0, 0]
                x0, y0 = 5000 * p, 100
                # a left and a right tile of one plane (libCZI gives them mosaic indices 0, 1)
                czi.write(np.ascontiguousarray(frame[:, :12]), plane={"T": t}, scene=p, location=(x0, y0))
                czi.write(np.ascontiguousarray(frame[:, 12:]), plane={"T": t}, scene=p, location=(x0 + 12, y0))
    with CziReader(path) as reader:
        assert (reader.metadata.height, reader.metadata.width) == (20, 30)
        assert all_frames_equal(reader, data)


def test_rgb_needs_split_rgb(tmp_path):
    from pylibCZIrw import czi as pyczi

    rgb = movie(n_fov=1, n_t=2, n_c=3, dtype="uint8")[0, :, 0]  # (T, 3, Y, X)
    path = tmp_path / "rgb.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for t in range(2):  # libCZI takes and stores pixels in B, G, R order
            czi.write(np.ascontiguousarray(np.moveaxis(rgb[t], 0, -1)[..., ::-1]), plane={"T": t})
    with pytest.raises(ReaderError, match="RGB image.*split_rgb"):
        CziReader(path)
    with CziReader(path, split_rgb=True) as reader:
        assert [c.name[-2:] for c in reader.metadata.channels] == [" R", " G", " B"]
        assert reader.metadata.n_channels == 3 and reader.metadata.dtype == "uint8"
        for t in range(2):
            for s in range(3):
                np.testing.assert_array_equal(reader.read_frame(0, t, s), rgb[t, s])


def test_scenes_of_different_size_are_refused_at_open(tmp_path):
    path = write_czi(tmp_path / "sizes.czi", movie(n_fov=2, n_t=2), crop_last_scene=4)
    with pytest.raises(ReaderError, match="scenes differ in size") as info:
        CziReader(path)
    assert str(info.value).startswith(f"{path}: ")


def test_timestamps_from_the_timestamps_attachment(tmp_path):
    data = movie(n_fov=2, n_t=4)
    path = add_czi_timestamps(write_czi(tmp_path / "t.czi", data), [5.0, 65.0, 125.5, 185.0])
    with CziReader(path) as reader:
        # one time per T for all scenes, relative to the first time point
        assert reader.metadata.timestamps_s == ((0.0, 60.0, 120.5, 180.0),) * 2
        assert all_frames_equal(reader, data)
