"""The bioio reader delegates to installed bioio plugins (extra [bioio]); skipped without them."""

from __future__ import annotations

import pytest

from _reader_files import PIXEL_SIZE_UM, all_frames_equal, movie, write_ome_series
from pyama_framework.readers import ReaderError

pytest.importorskip("bioio")
pytest.importorskip("bioio_ome_tiff")

from pyama_builtin.readers.bioio import BioioReader  # noqa: E402


def test_scenes_channels_and_pixels_through_bioio(tmp_path):
    data = movie(n_fov=2, n_t=3, n_z=2)
    path = write_ome_series(tmp_path / "m.ome.tif", data)
    assert BioioReader.check(path) is None
    with BioioReader(path, plugin="bioio-ome-tiff") as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.height, meta.width) == (2, 3, 2, 24, 32)
        assert [c.name for c in meta.channels] == ["Phase", "GFP"]
        assert meta.pixel_size_um == pytest.approx(PIXEL_SIZE_UM)
        assert all_frames_equal(reader, data)


def test_unknown_plugin_and_unsupported_file(tmp_path):
    path = write_ome_series(tmp_path / "m.ome.tif", movie(n_fov=1, n_t=1))
    with pytest.raises(ReaderError, match="bioio plugin 'bioio-nope' is not installed"):
        BioioReader(path, plugin="bioio-nope")
    other = tmp_path / "notes.xyz"
    other.write_text("not an image")
    assert "no installed bioio plugin" in BioioReader.check(other)
