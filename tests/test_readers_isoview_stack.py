"""The ``isoview_stack`` reader: TM folder trees and single ``.stack`` files with their channel
XML, the XML's attributes wherever they sit, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import pyama
from pyama_framework.readers import ReaderError, feasibility_report, open_reader, select_reader
from pyama_framework.registry import discover
from pyama_framework.testing.lightsheet_files import isoview_xml, volume, write_isoview_tree

VIEWS = [(0, 0), (1, 0), (2, 1), (3, 1)]  # (camera, channel) as the IsoView notes record them


@pytest.fixture(scope="module")
def registry():
    return discover()


@pytest.fixture()
def tree(tmp_path) -> tuple[Path, dict]:
    vols = {(t, cam, chan): volume(5, 24, 36, seed=10 * t + cam) for t in range(3) for cam, chan in VIEWS}
    return write_isoview_tree(tmp_path / "SPM00", vols), vols


def opened(path: Path, registry, **params):
    return open_reader(path, registry.get("reader", "isoview_stack"), params)


def test_tree_views_time_points_spacing_and_timestamps(tree, registry):
    root, vols = tree
    assert select_reader(root, registry).name == "isoview_stack"
    with opened(root, registry) as reader:
        meta = reader.metadata
        assert [c.name for c in meta.channels] == ["cam0_ch0", "cam1_ch0", "cam2_ch1", "cam3_ch1"]
        assert (meta.n_fovs, meta.n_frames, meta.n_z, meta.height, meta.width) == (1, 3, 5, 24, 36)
        assert (meta.dtype, meta.pixel_size_um, meta.z_step_um) == ("uint16", 0.406, 2.0)
        assert meta.timestamps_s == ((0.0, 30.0, 60.0),)
        for t in range(3):
            for i, key in enumerate(VIEWS):
                assert np.array_equal(reader.read_planes(0, t, i, 0, 5), vols[(t, *key)])
                assert np.array_equal(reader.read_planes(0, t, i, 2, 4), vols[(t, *key)][2:4])
                assert np.array_equal(reader.read_frame(0, t, i, 4), vols[(t, *key)][4])


def test_one_tm_folder_and_one_stack_file(tree, registry):
    root, vols = tree
    with opened(root / "TM00001", registry, cameras=[2, 3]) as reader:
        assert reader.metadata.n_frames == 1
        assert [c.name for c in reader.metadata.channels] == ["cam2_ch1", "cam3_ch1"]
        assert np.array_equal(reader.read_planes(0, 0, 1, 0, 5), vols[(1, 3, 1)])
    stack = root / "TM00002" / "ANG000" / "SPC00_TM00002_ANG000_CM1_CHN00_PH0.stack"
    assert select_reader(stack, registry).name == "isoview_stack"
    with opened(stack, registry) as reader:  # its XML is found in the TM folder above
        assert [c.name for c in reader.metadata.channels] == ["cam1_ch0"]
        assert np.array_equal(reader.read_planes(0, 0, 0, 0, 5), vols[(2, 1, 0)])


def test_attributes_anywhere_and_unknown_ones_ignored(tmp_path, registry):
    folder = tmp_path / "TM00007"
    folder.mkdir()
    vol = volume(3, 10, 12, seed=1)
    vol.astype("<u2").tofile(folder / "SPC00_TM00007_ANG000_CM0_CHN00_PH0.stack")
    (folder / "ch00_spec00.xml").write_text(
        '<push_config><info specimen_name="x" dimensions="12x10x3"/><group><info z_step="1.5" '
        'magic="42"/></group><info pixel_size="0.65"/><info timestamp="not a time"/></push_config>')
    with opened(folder, registry) as reader:
        meta = reader.metadata
        assert (meta.width, meta.height, meta.n_z, meta.z_step_um, meta.pixel_size_um) == (12, 10, 3, 1.5, 0.65)
        assert meta.timestamps_s is None and meta.extra["timepoints"] == [7]
        assert np.array_equal(reader.read_planes(0, 0, 0, 0, 3), vol)


def one_line_error(path: Path, registry, match: str, **params) -> str:
    with pytest.raises(ReaderError, match=match) as info:
        opened(path, registry, **params)
    text = str(info.value)
    assert "\n" not in text and text.count(": ") >= 1
    return text


def test_truncated_or_oversized_stack(tree, registry):
    root, _ = tree
    stack = root / "TM00001" / "ANG000" / "SPC00_TM00001_ANG000_CM2_CHN01_PH0.stack"
    stack.write_bytes(stack.read_bytes()[:-7])
    text = one_line_error(root, registry, r"file is truncated: 8633 bytes, but ch1.xml gives 36x24x5 uint16 = 8640")
    assert text.startswith(str(stack))
    stack.write_bytes(b"\0" * 9000)
    one_line_error(root, registry, "file is larger than its XML says")


def test_missing_xml(tree, registry):
    root, _ = tree
    (root / "TM00002" / "ch1.xml").unlink()
    text = one_line_error(root, registry, r"missing XML for channel 1 \(ch1.xml")
    assert text.startswith(str(root / "TM00002"))
    single = root / "TM00002" / "ANG000" / "SPC00_TM00002_ANG000_CM3_CHN01_PH0.stack"
    one_line_error(single, registry, "missing XML for channel 1")


def test_camera_index_that_does_not_exist(tree, registry):
    root, vols = tree
    one_line_error(root, registry, r"camera index 7 does not exist \(the data has cameras 0, 1, 2, 3\)", cameras=[7])
    # a .stack of camera 5 whose channel XML describes cameras 0 and 1 only
    stray = root / "TM00000" / "ANG000" / "SPC00_TM00000_ANG000_CM5_CHN00_PH0.stack"
    vols[(0, 0, 0)].astype("<u2").tofile(stray)
    text = one_line_error(stray, registry, r"camera index 5 does not exist in ch0.xml \(it describes cameras 0, 1\)")
    assert text.startswith(str(stray))


def test_views_of_different_sizes_need_a_selection(tmp_path, registry):
    vols = {(0, 0, 0): volume(4, 16, 16), (0, 1, 1): volume(6, 16, 16)}
    root = write_isoview_tree(tmp_path / "d", vols)
    one_line_error(root, registry, r"views have different volume sizes .*cam0_ch0 16x16x4; cam1_ch1 16x16x6.*cameras")
    with opened(root, registry, channels=[1]) as reader:
        assert reader.metadata.n_z == 6


def test_doctor_shows_the_verdicts(tree, tmp_path, registry):
    root, _ = tree
    (root / "TM00001" / "ch0.xml").write_text(isoview_xml("36x24x5"))  # cameras 0 only: camera 1 missing
    verdicts = {v.name: v for v in feasibility_report(root, registry)}
    assert not verdicts["isoview_stack"].accepted
    assert "camera index 1 does not exist in ch0.xml" in verdicts["isoview_stack"].reason
    assert "no .klb files" in verdicts["klb"].reason
    assert verdicts["tiff"].reason.startswith("suffix not claimed")
    result = pyama("plugins", "doctor", str(root / "TM00002"))
    assert result.returncode == 0, result.stderr
    assert "chosen reader: isoview_stack" in result.stdout and "klb" in result.stdout
