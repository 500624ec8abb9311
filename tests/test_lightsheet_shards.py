"""Shards encoded by ``shard_encoding`` are the bytes zarr writes for the same planes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, GzipCodec

from pyama_builtin.lightsheet.shard_encoding import morton_order, shard_plan
from pyama_builtin.lightsheet.volume_store import ShardWriter


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _create(path: Path, dtype, shape, chunks, shards, compressors) -> zarr.Array:
    zarr.create_array(path, shape=shape, dtype=dtype, chunks=chunks, shards=shards, compressors=compressors,
                      fill_value=0, config={"write_empty_chunks": True})
    return zarr.open_array(path, mode="r+").with_config({"write_empty_chunks": True})


LAYOUTS = [
    # (dtype, (T, Z, V, Y, X), chunks, shards, compressors)
    (np.uint16, (1, 21, 1, 64, 48), (1, 1, 1, 32, 48), (1, 4, 1, 64, 48), (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)),
    # Y/X not multiples of the chunk (padded edge chunks), several shards per plane, a last
    # Z shard that is cut by the volume (its missing chunks left out), two views and times
    (np.uint16, (2, 11, 2, 100, 70), (1, 2, 1, 32, 32), (1, 4, 1, 64, 64), (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),)),
    (np.uint8, (1, 9, 1, 40, 40), (1, 1, 1, 16, 16), (1, 8, 1, 48, 48), (BloscCodec(cname="lz4", clevel=1, shuffle="bitshuffle"),)),
    (bool, (1, 13, 1, 25, 30), (1, 1, 1, 25, 30), (1, 4, 1, 25, 30), (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)),
    (np.uint16, (1, 10, 1, 33, 33), (1, 1, 1, 16, 16), (1, 5, 1, 48, 48), ()),
]


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
def test_shard_writer_files_equal_zarr_files(tmp_path, layout):
    dtype, shape, chunks, shards, compressors = LAYOUTS[layout]
    rng = np.random.default_rng(layout)
    data = (rng.integers(0, 2, size=shape).astype(bool) if dtype is bool
            else (rng.poisson(50, size=shape) * rng.integers(1, 3, size=shape)).astype(dtype))
    reference = _create(tmp_path / "zarr", dtype, shape, chunks, shards, compressors)
    reference[...] = data
    fast = _create(tmp_path / "fast", dtype, shape, chunks, shards, compressors)
    assert shard_plan(fast) is not None
    with ThreadPoolExecutor(max_workers=1) as writer:
        for t in range(shape[0]):
            for v in range(shape[2]):
                shard_writer = ShardWriter(fast, t, v, writer)
                for z0 in range(0, shape[1], 3):
                    shard_writer.add(data[t, z0:z0 + 3, v].copy())
                shard_writer.close()
    assert _files(tmp_path / "fast") == _files(tmp_path / "zarr")
    assert np.array_equal(zarr.open_array(tmp_path / "fast", mode="r")[...], data)


def test_layouts_outside_the_encoder_go_through_zarr(tmp_path):
    gzip = _create(tmp_path / "gzip", np.uint16, (1, 4, 1, 8, 8), (1, 1, 1, 8, 8), (1, 4, 1, 8, 8), (GzipCodec(level=1),))
    assert shard_plan(gzip) is None
    shard_writer = ShardWriter(gzip, 0, 0)
    shard_writer.add(np.arange(256, dtype=np.uint16).reshape(4, 8, 8))
    shard_writer.close()
    assert np.array_equal(gzip[0, :, 0], np.arange(256).reshape(4, 8, 8))


def test_morton_order_interleaves_bits_and_skips_exhausted_dimensions():
    assert morton_order((2, 2)).tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]
    # dimension 0 has one bit, dimension 1 two: after bit 0, only dimension 1 goes on
    assert morton_order((2, 4)).tolist() == [[0, 0], [1, 0], [0, 1], [1, 1], [0, 2], [1, 2], [0, 3], [1, 3]]
    # a 3-long axis: the codes of the 4th position are skipped, the order stays a permutation
    order = morton_order((3, 3))
    assert sorted(map(tuple, order.tolist())) == [(y, x) for y in range(3) for x in range(3)]
    assert order.tolist()[:4] == [[0, 0], [1, 0], [0, 1], [1, 1]]
