"""OME-TIFF and TIFF stacks written by tifffile read back exactly through our reader."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile

from _reader_files import (PIXEL_SIZE_UM, all_frames_equal, movie, write_ome_multifile, write_ome_p_axis,
                           write_ome_series, write_plain_stack)
from pyama_builtin.readers.tiff import TiffReader
from pyama_framework.readers import ReaderError


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_ome_positions_as_series(tmp_path, compression):
    data = movie(n_fov=3, n_t=4, n_z=2)
    path = write_ome_series(tmp_path / "m.ome.tif", data, interval_s=60.0, compression=compression)
    with TiffReader(path) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.height, meta.width) == (3, 4, 2, 24, 32)
        assert [(c.index, c.name) for c in meta.channels] == [(0, "Phase"), (1, "GFP")]
        assert meta.dtype == "uint16" and meta.pixel_size_um == PIXEL_SIZE_UM
        assert meta.timestamps_s == tuple(tuple(60.0 * t + p for t in range(4)) for p in range(3))
        assert all_frames_equal(reader, data)


def test_ome_positions_as_p_axis(tmp_path):
    data = movie(n_fov=3, n_t=2)
    with TiffReader(write_ome_p_axis(tmp_path / "p.ome.tif", data)) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.n_channels) == (3, 2, 1, 2)
        assert meta.pixel_size_um == PIXEL_SIZE_UM and meta.timestamps_s is None
        assert all_frames_equal(reader, data)


def test_multifile_ome_tiff(tmp_path):
    data = movie(n_fov=1, n_t=3, n_z=2)
    with TiffReader(write_ome_multifile(tmp_path, data)) as reader:
        assert (reader.metadata.n_frames, reader.metadata.n_z, reader.metadata.n_channels) == (3, 2, 2)
        assert [c.name for c in reader.metadata.channels] == ["Phase", "GFP"]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "reading array from closed file"
            assert all_frames_equal(reader, data)


def test_imagej_hyperstack(tmp_path):
    data = movie(n_fov=1, n_t=3, n_z=2)
    path = tmp_path / "ij.tif"
    tifffile.imwrite(path, data[0], imagej=True, resolution=(1 / PIXEL_SIZE_UM, 1 / PIXEL_SIZE_UM),
                     metadata={"axes": "TZCYX", "unit": "um"})
    with TiffReader(path) as reader:
        assert (reader.metadata.n_frames, reader.metadata.n_z, reader.metadata.n_channels) == (3, 2, 2)
        assert reader.metadata.pixel_size_um == pytest.approx(PIXEL_SIZE_UM)
        assert all_frames_equal(reader, data)


def test_plain_stack_needs_axes_and_sizes(tmp_path):
    data = movie(n_fov=2, n_t=3, n_z=1)
    path = write_plain_stack(tmp_path / "plain.tif", data)
    with pytest.raises(ReaderError, match=r"axes IYX .* include I.*reader_params: \{axes") as info:
        TiffReader(path)
    assert str(info.value).startswith(f"{path}: ")
    with TiffReader(path, axes="PTCYX", sizes={"P": 2, "C": 2}) as reader:  # T inferred: 12 / (2 * 2)
        assert (reader.metadata.n_fovs, reader.metadata.n_frames, reader.metadata.n_channels) == (2, 3, 2)
        assert all_frames_equal(reader, data)
    with pytest.raises(ReaderError, match="do not fit the 12 pages"):
        TiffReader(path, axes="PTCYX", sizes={"P": 5, "C": 2})
    with pytest.raises(ReaderError, match="must end in YX"):
        TiffReader(path, axes="PTCYXS")


def test_shaped_tiff_only_needs_axis_names(tmp_path):
    data = movie(n_fov=2, n_t=3)
    path = tmp_path / "shaped.tif"
    tifffile.imwrite(path, data[:, :, 0])  # tifffile records the shape, axes unknown ('QQQYX')
    with TiffReader(path, axes="PTCYX") as reader:
        assert all_frames_equal(reader, data)


def test_rgb_needs_split_rgb(tmp_path):
    rgb = movie(n_fov=1, n_t=2, n_c=3, dtype="uint8")[0, :, 0]  # (T, 3, Y, X)
    path = tmp_path / "rgb.ome.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, 1, -1), photometric="rgb", metadata={"axes": "TYXS"})
    with pytest.raises(ReaderError, match="RGB image.*split_rgb"):
        TiffReader(path)
    with TiffReader(path, split_rgb=True) as reader:
        assert reader.metadata.n_channels == 3 and reader.metadata.n_frames == 2
        for t in range(2):
            for s in range(3):
                np.testing.assert_array_equal(reader.read_frame(0, t, s), rgb[t, s])


def test_series_of_different_shape_are_refused_at_open(tmp_path):
    data = movie(n_fov=2, n_t=2)
    path = tmp_path / "sizes.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(data[0, :, 0], metadata={"axes": "TCYX"})
        tif.write(data[1, :, 0, :, :20], metadata={"axes": "TCYX"})
    with pytest.raises(ReaderError, match="series differ in shape") as info:
        TiffReader(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_big_endian_bigtiff(tmp_path):
    data = movie(n_fov=1, n_t=3)
    path = tmp_path / "be.tif"
    tifffile.imwrite(path, data[0, :, 0], bigtiff=True, byteorder=">", metadata={"axes": "TCYX"})
    with TiffReader(path, axes="TCYX") as reader:
        assert reader.metadata.dtype == "uint16"
        assert all_frames_equal(reader, data)
