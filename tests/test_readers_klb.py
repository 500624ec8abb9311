"""The ``klb`` reader: block decoding against independently written files and pyklb, lazy
slab reads, folder datasets, and every kind of bad KLB input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import pyama
from pyama_builtin.readers.klb import KlbReader
from pyama_builtin.readers.klb_format import parse_header
from pyama_framework.readers import ReaderError, feasibility_report, open_reader, select_reader
from pyama_framework.registry import discover
from pyama_framework.testing.lightsheet_files import pyklb_available, volume, write_klb, write_klb_spec

needs_pyklb = pytest.mark.skipif(not pyklb_available(), reason="pyklb is not installed (pip install pyklb; "
                                 "it builds the Keller lab C++ library from source)")


@pytest.fixture(scope="module")
def registry():
    return discover()


def one_line(info) -> str:
    text = str(info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("compression", ["bzip2", "zlib", "none"])
def test_decoder_equals_spec_written_file_with_cropped_edge_blocks(tmp_path, compression):
    data = volume(13, 70, 90, seed=3)  # 13 = 2 full Z blocks of 5 + a cropped one; same for Y and X
    path = write_klb_spec(tmp_path / "v.klb", data, (32, 32, 5, 1, 1), (1, 1, 2.5, 0.406, 0.406), compression)
    with KlbReader(path, decoder="python", threads=2) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.height, meta.width) == (1, 1, 13, 70, 90)
        assert meta.dtype == "uint16" and meta.z_step_um == 2.5 and meta.pixel_size_um == 0.406
        assert np.array_equal(reader.read_planes(0, 0, 0, 0, 13), data)
        assert np.array_equal(reader.read_planes(0, 0, 0, 4, 11), data[4:11])  # straddles block layers
        for z in (0, 4, 5, 12):
            assert np.array_equal(reader.read_frame(0, 0, 0, z), data[z])


def test_five_dimensional_file_maps_t_to_frames_and_c_to_views(tmp_path):
    data = np.stack([np.stack([volume(4, 20, 30, seed=10 * t + c, dtype="float32") for c in range(3)])
                     for t in range(2)])  # (t, c, z, y, x)
    path = write_klb_spec(tmp_path / "SPM00_TM000000_CM01_CHN00.klb", data, (16, 8, 3, 2, 1), (30.0, 1, 2, 1, 1))
    with KlbReader(path, decoder="python") as reader:
        meta = reader.metadata
        assert meta.n_frames == 2 and meta.dtype == "float32"
        assert [c.name for c in meta.channels] == ["cam1_ch0", "cam1_ch1", "cam1_ch2"]
        assert meta.timestamps_s == ((0.0, 30.0),)
        for t in range(2):
            for c in range(3):
                assert np.array_equal(reader.read_planes(0, t, c, 0, 4), data[t, c])
                assert np.array_equal(reader.read_frame(0, t, c, 2), data[t, c, 2])


def test_a_slab_reads_only_the_blocks_that_cover_it(tmp_path):
    """Damage a block of the last Z layer: slabs above it still read; the slab over it names it."""
    data = volume(12, 40, 40, seed=5)
    path = write_klb_spec(tmp_path / "v.klb", data, (40, 40, 4, 1, 1))  # one block per 4 planes
    with open(path, "rb") as fh:
        header = parse_header(fh, path.stat().st_size)
    start, stop = header.block_range(2)
    raw = bytearray(path.read_bytes())
    raw[start + 10:stop - 10] = bytes(len(raw[start + 10:stop - 10]))  # zero the middle of block 2
    path.write_bytes(bytes(raw))
    with KlbReader(path, decoder="python") as reader:  # opening reads no block
        assert np.array_equal(reader.read_planes(0, 0, 0, 0, 8), data[:8])
        assert np.array_equal(reader.read_frame(0, 0, 0, 7), data[7])
        with pytest.raises(ReaderError, match=r"corrupt KLB block 2 of 3 \(planes 8-11\)") as info:
            reader.read_planes(0, 0, 0, 6, 10)
    assert one_line(info).startswith(f"{path}: ")


def test_truncated_and_foreign_files_fail_at_open_with_one_line(tmp_path, registry):
    path = write_klb_spec(tmp_path / "v.klb", volume(8, 32, 32), (16, 16, 4, 1, 1))
    cut = tmp_path / "cut.klb"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ReaderError, match="file is truncated: block 7 of 8") as info:
        open_reader(cut, registry.get("reader", "klb"))
    assert one_line(info).startswith(f"{cut}: ")
    foreign = tmp_path / "text.klb"
    foreign.write_bytes(b"hello, this is not a KLB file" * 20)
    verdicts = {v.name: v for v in feasibility_report(foreign, registry)}
    assert not verdicts["klb"].accepted and "KLB header version" in verdicts["klb"].reason
    with pytest.raises(ReaderError, match="no reader can open this file"):
        select_reader(foreign, registry)


def write_tree(root: Path, n_t: int = 2, views=((0, 0), (1, 0)), shape=(6, 24, 32)) -> dict:
    data = {}
    for t in range(n_t):
        for cam, chan in views:
            folder = root / f"TM{t:06d}"
            folder.mkdir(parents=True, exist_ok=True)
            data[(t, cam, chan)] = volume(*shape, seed=100 * t + 10 * cam + chan)
            write_klb(folder / f"SPM00_TM{t:06d}_CM{cam:02d}_CHN{chan:02d}.klb", data[(t, cam, chan)],
                      (16, 16, 4, 1, 1), (1, 1, 2.0, 0.406, 0.406))
    return data


def test_folder_dataset_views_and_time_points(tmp_path, registry):
    data = write_tree(tmp_path / "SPM00", views=((0, 0), (1, 0), (2, 1)))
    root = tmp_path / "SPM00"
    assert select_reader(root, registry).name == "klb"
    with open_reader(root, registry.get("reader", "klb"), {"decoder": "python"}) as reader:
        meta = reader.metadata
        assert [c.name for c in meta.channels] == ["cam0_ch0", "cam1_ch0", "cam2_ch1"]
        assert (meta.n_frames, meta.n_z, meta.z_step_um) == (2, 6, 2.0)
        for t in range(2):
            for i, key in enumerate([(0, 0), (1, 0), (2, 1)]):
                assert np.array_equal(reader.read_planes(0, t, i, 0, 6), data[(t, *key)])
    with open_reader(root / "TM000001", registry.get("reader", "klb"), {"channels": [1]}) as one_tm:
        assert one_tm.metadata.n_frames == 1 and [c.name for c in one_tm.metadata.channels] == ["cam2_ch1"]
        assert np.array_equal(one_tm.read_frame(0, 0, 0, 3), data[(1, 2, 1)][3])


def test_folder_errors_missing_view_and_unknown_camera(tmp_path, registry):
    write_tree(tmp_path / "d")
    klb = registry.get("reader", "klb")
    with pytest.raises(ReaderError, match="camera index 5 does not exist \\(the data has cameras 0, 1\\)") as info:
        open_reader(tmp_path / "d", klb, {"cameras": [0, 5]})
    one_line(info)
    (tmp_path / "d" / "TM000001" / "SPM00_TM000001_CM01_CHN00.klb").unlink()
    with pytest.raises(ReaderError, match="time point 1 has no .klb file for camera 1 channel 0") as info:
        open_reader(tmp_path / "d", klb)
    one_line(info)
    result = pyama("plugins", "doctor", str(tmp_path / "d"))
    assert result.returncode != 0
    assert "klb" in result.stdout and "time point 1 has no .klb file" in " ".join(result.stdout.split())
    assert "isoview_stack" in result.stdout and "tiff" in result.stdout  # every reader's verdict


def test_empty_folders_stay_an_error(tmp_path, registry):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReaderError, match="is a directory, not an image file") as info:
        select_reader(tmp_path / "empty", registry)
    assert "klb: " in one_line(info) and "isoview_stack: " in str(info.value)


@needs_pyklb
def test_equal_to_pyklb_on_files_pyklb_writes(tmp_path):
    import pyklb

    data = volume(11, 75, 66, seed=9)
    path = tmp_path / "SPM00_TM000000_CM00_CHN00.klb"
    pyklb.writefull(data, str(path), numthreads=1, pixelspacing_tczyx=[2.0, 0.406, 0.406],
                    blocksize_xyzct=np.array([32, 32, 4, 1, 1], dtype=np.uint32))
    expected = pyklb.readfull(str(path))
    assert np.array_equal(expected, data)
    for decoder in ("python", "pyklb"):
        with KlbReader(path, decoder=decoder) as reader:
            assert reader.metadata.z_step_um == 2.0 and reader.metadata.pixel_size_um == 0.406
            assert np.array_equal(reader.read_planes(0, 0, 0, 0, 11), expected)
            assert np.array_equal(reader.read_planes(0, 0, 0, 3, 9), expected[3:9])
            assert np.array_equal(reader.read_frame(0, 0, 0, 10), expected[10])


@needs_pyklb
def test_pyklb_reads_the_independently_written_file(tmp_path):
    import pyklb

    data = volume(9, 50, 41, seed=2)
    path = write_klb_spec(tmp_path / "v.klb", data, (16, 16, 4, 1, 1))
    assert np.array_equal(pyklb.readfull(str(path)), data)


@needs_pyklb
def test_corrupt_block_is_named_even_with_the_pyklb_decoder(tmp_path):
    import pyklb

    data = volume(8, 32, 32, seed=4)
    path = tmp_path / "v.klb"
    pyklb.writefull(data, str(path), numthreads=1, blocksize_xyzct=np.array([32, 32, 4, 1, 1], dtype=np.uint32))
    with open(path, "rb") as fh:
        start, stop = parse_header(fh, path.stat().st_size).block_range(1)
    raw = bytearray(path.read_bytes())
    raw[start + 8:stop - 8] = b"\xff" * (stop - start - 16)
    path.write_bytes(bytes(raw))
    with KlbReader(path, decoder="pyklb") as reader:
        with pytest.raises(ReaderError, match="corrupt KLB block 1 of 2"):
            reader.read_planes(0, 0, 0, 0, 8)
