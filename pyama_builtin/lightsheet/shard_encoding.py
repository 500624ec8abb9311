"""Encode whole zarr v3 shards in one pass, the bytes zarr itself writes for them.

zarr-python encodes a shard chunk by chunk through its asyncio codec pipeline: for the
default light-sheet layout (1 x 256 x 256 chunks, 16 x 2048 x 2048 shards, Blosc-lz4) that
is 1 024 tasks per shard, each allocating a fill-value chunk, copying into it and hopping
to a thread for Blosc. Measured on 16 planes of 2048 x 2048 uint16: 0.77 s per shard
through ``array[...] = planes``, of which Blosc itself is 0.13 s. The correct stage is
bounded by that write, so :func:`encode_shard` does the same work directly:

- inner chunks in zarr's order (Morton order over the shard's chunk grid, :func:`morton_order`);
- a chunk whose origin lies outside the array is left out (index entry all ones), a chunk
  that crosses the array's edge is padded with the fill value, as zarr does;
- each chunk: little-endian bytes, then the array's Blosc codec (or none);
- the index, ``(offset, nbytes)`` uint64 pairs, little-endian, then its CRC32C, at the end.

This follows the zarr v3 sharding specification; :func:`shard_plan` accepts only the
layouts it covers (anything else is written through zarr), and the tests compare the
files byte for byte with the ones zarr writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import google_crc32c
import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec

EMPTY = np.uint64(2**64 - 1)
_SHUFFLE = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE,
            "bitshuffle": numcodecs.Blosc.BITSHUFFLE}


def morton_order(grid: tuple[int, ...]) -> np.ndarray:
    """Coordinates of a chunk grid in zarr's Morton order.

    Bits of the coordinates are interleaved, lowest first and dimension 0 first within a
    bit; a dimension stops contributing once its own bits are used up (the "compressed"
    Morton code of Neuroglancer, which zarr-python uses to order chunks in a shard).

    Parameters
    ----------
    grid : tuple of int
        Chunks per shard along each dimension.

    Returns
    -------
    (prod(grid), len(grid)) intp ndarray
        Chunk coordinates, in the order their bytes follow each other in the shard.
    """
    coords = np.indices(grid).reshape(len(grid), -1).T
    bits = [(n - 1).bit_length() for n in grid]
    codes = np.zeros(len(coords), np.int64)
    out_bit = 0
    for bit in range(max(bits, default=0)):
        for dim, n_bits in enumerate(bits):
            if bit < n_bits:
                codes |= ((coords[:, dim] >> bit) & 1) << out_bit
                out_bit += 1
    return coords[np.argsort(codes, kind="stable")]


def encode_shard(data: np.ndarray, chunk_shape: tuple[int, ...], shard_shape: tuple[int, ...],
                 encode_chunk: Callable[[np.ndarray], bytes], fill_value: object) -> list[bytes]:
    """The bytes of one shard whose chunks are all written (``write_empty_chunks``).

    Parameters
    ----------
    data : ndarray
        The shard's part of the array: ``shard_shape`` clipped at the array's edge.
    chunk_shape, shard_shape : tuple of int
        Inner chunk and shard shapes (the shard a multiple of the chunk).
    encode_chunk : callable
        Encodes one C-contiguous little-endian chunk to bytes (the inner codecs after
        ``bytes``); the identity gives an uncompressed shard.
    fill_value
        Pads chunks that cross the array's edge.

    Returns
    -------
    list of bytes
        The shard's bytes in pieces: encoded chunks in :func:`morton_order`, then the
        index and its CRC32C (written one after the other, without joining them first:
        a join copies the whole shard once more).
    """
    grid = tuple(s // c for s, c in zip(shard_shape, chunk_shape))
    index = np.full((*grid, 2), EMPTY, np.uint64)
    parts: list[bytes] = []
    offset = 0
    little = data.dtype.newbyteorder("<")
    for coords in morton_order(grid):
        origin = coords * chunk_shape
        if np.any(origin >= data.shape):
            continue  # outside the array: zarr writes no chunk there
        region = tuple(slice(o, o + c) for o, c in zip(origin, chunk_shape))
        block = data[region]
        if block.shape != tuple(chunk_shape):
            padded = np.full(chunk_shape, fill_value, little)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        encoded = encode_chunk(np.ascontiguousarray(block, dtype=little))
        parts.append(encoded)
        index[tuple(coords)] = (offset, len(encoded))
        offset += len(encoded)
    index_bytes = index.astype("<u8").tobytes()
    parts.append(index_bytes)
    parts.append(google_crc32c.value(index_bytes).to_bytes(4, "little"))
    return parts


@dataclass(frozen=True)
class ShardPlan:
    """How to encode and store the shards of one array (see :func:`shard_plan`)."""

    chunk_shape: tuple[int, ...]
    shard_shape: tuple[int, ...]
    encode_chunk: Callable[[np.ndarray], bytes]
    fill_value: object


def shard_plan(array: zarr.Array) -> ShardPlan | None:
    """A :class:`ShardPlan` when :func:`encode_shard` writes ``array``'s shards exactly as
    zarr would, else None.

    Covered: zarr v3, one ``sharding_indexed`` codec with the index at the end, inner codecs
    ``bytes`` (little-endian) plus at most one ``blosc``, index codecs ``bytes`` + ``crc32c``,
    and a writable local store (the caller writes the shard files into its folder).
    """
    metadata = array.metadata
    store = array.store
    if metadata.zarr_format != 3 or not isinstance(store, zarr.storage.LocalStore) or store.read_only:
        return None
    if len(metadata.codecs) != 1 or not isinstance(metadata.codecs[0], ShardingCodec):
        return None
    sharding = metadata.codecs[0]
    if sharding.index_location.value != "end" or not _is_little_bytes_then_crc(sharding.index_codecs):
        return None
    inner = list(sharding.codecs)
    if not inner or not _is_little_bytes(inner[0]):
        return None
    if len(inner) == 1:
        encode = _raw_bytes
    elif len(inner) == 2 and isinstance(inner[1], BloscCodec):
        blosc = inner[1]
        # The numcodecs configuration zarr's BloscCodec uses for the same settings.
        codec = numcodecs.Blosc(cname=blosc.cname.value, clevel=blosc.clevel, shuffle=_SHUFFLE[blosc.shuffle.value],
                                blocksize=blosc.blocksize, typesize=blosc.typesize)
        encode = codec.encode
    else:
        return None
    return ShardPlan(tuple(sharding.chunk_shape), tuple(array.shards), encode, metadata.fill_value)


def _raw_bytes(chunk: np.ndarray) -> bytes:
    return chunk.tobytes()


def _is_little_bytes(codec: object) -> bool:
    return isinstance(codec, BytesCodec) and (codec.endian is None or codec.endian.value == "little")


def _is_little_bytes_then_crc(codecs: tuple[object, ...]) -> bool:
    return len(codecs) == 2 and _is_little_bytes(codecs[0]) and isinstance(codecs[1], Crc32cCodec)
