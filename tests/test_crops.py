"""cells.zarr: one (N, T, H, W) array per channel and level, a chunk per cell in shards, and
``read_crop`` giving back each cell's crop exactly as the stage defines it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
import zarr

from conftest import write_config
from pyama_framework.cells import cell_ids, read_crop
from pyama_framework.config import RunConfig
from pyama_framework.runner import run_config
from pyama_framework.stages import crop as crop_stage
from pyama_framework.stages.viewing import half, intensity_range, normalise, sample_frames, to_uint8


@pytest.fixture(scope="module")
def cropped(tmp_path_factory, two_fov_file):
    folder = tmp_path_factory.mktemp("crops")
    config = yaml.safe_load(write_config(folder, two_fov_file, fovs="0").read_text())
    patch = pytest.MonkeyPatch()
    patch.setattr(crop_stage, "SHARD_BYTES", 3 * 6 * 40 * 40 * 4)  # a few cells per shard: several shards
    try:
        summary = run_config(RunConfig.model_validate(config))
    finally:
        patch.undo()
    assert summary.ok, summary.failed
    return folder / "out" / "fov_000"


def expected_crops(fov, name, is_fl, windows):
    """The stage's definition: the channel's frames (fluorescence minus background),
    normalised by the percentile range of sampled frames, cut to each window."""
    images = zarr.open_group(fov / "images.zarr", mode="r")
    frames = images[f"{name}/0"][:].astype(np.float32)
    if is_fl:
        frames = frames - np.float32(1.0) * images["fl_background_ch_1/0"][:]
    lo, hi = intensity_range(frames[t] for t in sample_frames(len(frames)))
    unit = np.stack([normalise(f, lo, hi) for f in frames])
    return [unit[:, y0:y1, x0:x1] for y0, x0, y1, x1 in windows]


@pytest.mark.parametrize("name, is_fl", [("pc_ch_0", False), ("fl_ch_1", True)])
def test_every_cell_reads_back_exactly(cropped, name, is_fl):
    cells = zarr.open_group(cropped / "cells.zarr", mode="r")
    ids, windows = cells["metadata/cell_ids"][:], cells["metadata/windows"][:]
    assert len(ids) >= 3 and list(cell_ids(cropped)) == list(ids)
    for cell, window, expected in zip(ids, windows, expected_crops(cropped, name, is_fl, windows)):
        crop = read_crop(cropped, name, int(cell))
        assert crop.dtype == np.float32 and crop.shape == expected.shape
        np.testing.assert_array_equal(crop, expected)
        small = read_crop(cropped, name, int(cell), level=1)
        np.testing.assert_array_equal(small, to_uint8(half(expected)))


def test_one_array_per_channel_a_chunk_per_cell_in_shards(cropped):
    cells = zarr.open_group(cropped / "cells.zarr", mode="r")
    ids, windows = cells["metadata/cell_ids"][:], cells["metadata/windows"][:]
    heights, widths = windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1]
    assert sorted(cells.group_keys()) == ["fl_ch_1", "metadata", "pc_ch_0"]
    full = cells["fl_ch_1/0"]
    assert full.shape == (len(ids), 6, heights.max(), widths.max())
    assert full.chunks == (1, 6, heights.max(), widths.max())  # one chunk per cell
    per_shard = full.shards[0]
    assert 1 < per_shard < len(ids)
    shard_files = [p for p in (cropped / "cells.zarr" / "fl_ch_1" / "0").rglob("*") if p.is_file() and p.name != "zarr.json"]
    assert len(shard_files) == -(-len(ids) // per_shard)  # files scale with shards, not cells
    # beyond each cell's own window the row is zero padding
    row = int(np.argmin(heights * widths))
    assert not full[row, :, heights[row]:, :].any() and not full[row, :, :, widths[row]:].any()


def test_read_crop_names_what_exists(cropped):
    some = int(cell_ids(cropped)[0])
    with pytest.raises(KeyError, match="choose one of: fl_ch_1, pc_ch_0"):
        read_crop(cropped, "fl_ch_7", some)
    with pytest.raises(KeyError, match="cell 99999 has no crop"):
        read_crop(cropped, "fl_ch_1", 99999)
    with pytest.raises(KeyError, match="no level 2"):
        read_crop(cropped, "fl_ch_1", some, level=2)
    with pytest.raises(FileNotFoundError, match="cropping enabled"):
        read_crop(cropped.parent, "fl_ch_1", some)
