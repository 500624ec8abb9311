"""FovStore.frames: frames decoded straight from their chunk files are zarr's values, and
every layout the direct path does not cover is read through zarr."""

from __future__ import annotations

import numpy as np
import pytest

from pyama_framework.config import StorageConfig
from pyama_framework.store import FovStore


def written(tmp_path, dtype, **storage) -> tuple[FovStore, np.ndarray]:
    store = FovStore(tmp_path, 0, StorageConfig(**storage))
    rng = np.random.default_rng(3)
    frames = rng.normal(100, 30, (4, 24, 20)).clip(0, 255).astype(dtype)
    stack = store.create_stack("fl_ch_1", frames.shape, dtype)
    for t in range(3):  # frame 3 is never written: zarr's fill value
        stack[t] = frames[t]
    return store, frames


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.int32, np.uint8])
@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_direct_reads_are_zarrs_values(tmp_path, dtype, codec):
    store, frames = written(tmp_path, dtype, codec=codec)
    stack, array = store.frames("fl_ch_1"), store.stack("fl_ch_1")
    assert stack._decode is not None  # the default layouts take the direct path
    assert stack.shape == array.shape and stack.dtype == array.dtype and len(stack) == 4
    for t in range(3):
        frame = stack[t]
        assert frame.dtype == np.dtype(dtype) and frame.flags.writeable and frame.flags.c_contiguous
        np.testing.assert_array_equal(frame, frames[t])
        np.testing.assert_array_equal(frame, array[t])
    np.testing.assert_array_equal(stack[3], np.zeros((24, 20), dtype))  # missing chunk: the fill value
    np.testing.assert_array_equal(stack[np.int64(1)], frames[1])
    np.testing.assert_array_equal(stack[-1], array[-1])  # anything but 0 <= t < T goes through zarr
    np.testing.assert_array_equal(stack[1:3], frames[1:3])


@pytest.mark.parametrize("storage", [{"codec": "gzip"}, {"codec": "lz4", "frames_per_shard": 2},
                                     {"codec": "bzip2"}])
def test_other_layouts_are_read_through_zarr(tmp_path, storage):
    store, frames = written(tmp_path, np.uint16, **storage)
    stack = store.frames("fl_ch_1")
    assert stack._decode is None
    for t in range(3):
        np.testing.assert_array_equal(stack[t], frames[t])


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.uint8])
@pytest.mark.parametrize("storage", [{"codec": "lz4"}, {"codec": "zstd", "level": 3}, {"codec": "none"},
                                     {"codec": "gzip"}, {"codec": "lz4", "frames_per_shard": 2}])
def test_frames_set_directly_are_the_files_zarr_writes(tmp_path, dtype, storage):
    store, frames = written(tmp_path, dtype, **storage)  # fl_ch_1: written by zarr
    direct = store.create_stack("pc_ch_0", frames.shape, dtype)
    set_frame = store.frame_setter(direct)
    assert (set_frame == direct.__setitem__) == ("gzip" in storage.values() or "frames_per_shard" in storage)
    for t in range(3):
        set_frame(t, frames[t])
    np.testing.assert_array_equal(store.stack("pc_ch_0")[:3], frames[:3])
    by_zarr = sorted(p.relative_to(store.images_path / "fl_ch_1") for p in (store.images_path / "fl_ch_1").rglob("*"))
    by_us = sorted(p.relative_to(store.images_path / "pc_ch_0") for p in (store.images_path / "pc_ch_0").rglob("*"))
    assert by_us == by_zarr  # no temporary file left behind
    for relative in by_zarr:
        if (store.images_path / "fl_ch_1" / relative).is_file():
            assert (store.images_path / "pc_ch_0" / relative).read_bytes() == \
                (store.images_path / "fl_ch_1" / relative).read_bytes(), relative
