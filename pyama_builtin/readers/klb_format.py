"""The KLB (Keller Lab Block) file format: header parsing and block decoding, numpy + bz2/zlib.

Layout (header version 2, as the Keller lab's C++ library and ``pyklb`` write it; all
little-endian)::

    uint8    headerVersion          (2)
    uint32   xyzct[5]               image size, x fastest
    float32  pixelSize[5]           spacing per dimension (µm, a.u., s)
    uint8    dataType               0..9: u8 u16 u32 u64 i8 i16 i32 i64 f32 f64
    uint8    compressionType        0 none, 1 bzip2, 2 zlib
    char     metadata[256]
    uint32   blockSize[5]
    uint64   blockEnd[Nb]           Nb = prod(ceil(xyzct / blockSize)); cumulative END offset
                                    of each compressed block, counted from the end of the header

Blocks are numbered with x fastest (then y, z, c, t). A block holds its pixels contiguous in
x-fastest order; blocks on the far edges are cropped to the image (their buffer is smaller).
These functions do no file handling of their own beyond reading the bytes they are given
or a file object's ranges; the reader owns the file.
"""

from __future__ import annotations

import bz2
import math
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

HEADER_VERSION = 2
FIXED_HEADER_BYTES = 1 + 20 + 20 + 1 + 1 + 256 + 20  # everything before the block table
DTYPES = ("uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64")
COMPRESSIONS = ("none", "bzip2", "zlib")


class KlbFormatError(ValueError):
    """The bytes do not follow the KLB layout; the message says what is wrong."""


class KlbBlockError(ValueError):
    """One block cannot be decoded; ``block`` is its index in the block table."""

    def __init__(self, block: int, problem: str) -> None:
        super().__init__(f"block {block}: {problem}")
        self.block = block
        self.problem = problem


@dataclass(frozen=True)
class KlbHeader:
    """A parsed KLB header.

    Attributes
    ----------
    xyzct : tuple of int
        Image size along x, y, z, c, t.
    pixel_size : tuple of float
        Spacing along x, y, z, c, t as recorded.
    dtype : numpy.dtype
        Little-endian pixel type.
    compression : str
        ``"none"``, ``"bzip2"`` or ``"zlib"``.
    block_size : tuple of int
        Block shape along x, y, z, c, t.
    block_ends : numpy.ndarray
        uint64 cumulative end offset of each block, relative to :attr:`header_bytes`.
    metadata : bytes
        The 256-byte user metadata field.
    """

    xyzct: tuple[int, int, int, int, int]
    pixel_size: tuple[float, float, float, float, float]
    dtype: np.dtype
    compression: str
    block_size: tuple[int, int, int, int, int]
    block_ends: np.ndarray
    metadata: bytes

    @property
    def blocks_per_dim(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / b) for n, b in zip(self.xyzct, self.block_size))

    @property
    def header_bytes(self) -> int:
        return FIXED_HEADER_BYTES + 8 * len(self.block_ends)

    @property
    def file_bytes(self) -> int:
        """Size the file must have: header plus every compressed block."""
        return self.header_bytes + (int(self.block_ends[-1]) if len(self.block_ends) else 0)

    def block_range(self, index: int) -> tuple[int, int]:
        """Absolute (start, stop) byte offsets of block ``index`` in the file."""
        start = 0 if index == 0 else int(self.block_ends[index - 1])
        return self.header_bytes + start, self.header_bytes + int(self.block_ends[index])

    def block_index(self, bx: int, by: int, bz: int, bc: int, bt: int) -> int:
        nx, ny, nz, nc, _ = self.blocks_per_dim
        return bx + nx * (by + ny * (bz + nz * (bc + nc * bt)))

    def block_shape(self, bx: int, by: int, bz: int, bc: int = 0, bt: int = 0) -> tuple[int, ...]:
        """(t, c, z, y, x) shape of one block, cropped at the image edges."""
        coords = (bx, by, bz, bc, bt)
        sizes = [min(b, n - i * b) for i, b, n in zip(coords, self.block_size, self.xyzct)]
        return tuple(reversed(sizes))


def fixed_header(head: bytes) -> tuple[int, tuple, tuple, int, int, bytes, tuple]:
    """Unpack the fixed part of a header (everything before the block table)."""
    if len(head) < FIXED_HEADER_BYTES:
        raise KlbFormatError(f"file is shorter ({len(head)} bytes) than a KLB header ({FIXED_HEADER_BYTES} bytes)")
    version = head[0]
    xyzct = struct.unpack_from("<5I", head, 1)
    pixel = struct.unpack_from("<5f", head, 21)
    dtype_code, comp_code = head[41], head[42]
    metadata = bytes(head[43:299])
    block = struct.unpack_from("<5I", head, 299)
    return version, xyzct, pixel, dtype_code, comp_code, metadata, block


def parse_header(fh: BinaryIO, file_size: int) -> KlbHeader:
    """Read and validate the header of an open KLB file.

    Parameters
    ----------
    fh : binary file object
        Positioned anywhere; read from offset 0.
    file_size : int
        Size of the file in bytes, to check the block table against.

    Raises
    ------
    KlbFormatError
        If the bytes are not a version-2 KLB header, or the blocks end beyond the file.
    """
    fh.seek(0)
    version, xyzct, pixel, dtype_code, comp_code, metadata, block = fixed_header(fh.read(FIXED_HEADER_BYTES))
    if version != HEADER_VERSION:
        raise KlbFormatError(f"KLB header version {version} is not supported (expected {HEADER_VERSION})")
    if min(xyzct) < 1 or min(block) < 1:
        raise KlbFormatError(f"invalid image size {xyzct} or block size {block} (must be >= 1)")
    if dtype_code >= len(DTYPES):
        raise KlbFormatError(f"unknown data type code {dtype_code} (KLB knows 0..{len(DTYPES) - 1})")
    if comp_code >= len(COMPRESSIONS):
        raise KlbFormatError(f"compression code {comp_code} is not supported (none=0, bzip2=1, zlib=2)")
    n_blocks = math.prod(math.ceil(n / b) for n, b in zip(xyzct, block))
    table_bytes = 8 * n_blocks
    if FIXED_HEADER_BYTES + table_bytes > file_size:
        raise KlbFormatError(f"file is truncated: its block table ({n_blocks} blocks) ends at byte "
                             f"{FIXED_HEADER_BYTES + table_bytes} but the file has {file_size} bytes")
    ends = np.frombuffer(fh.read(table_bytes), dtype="<u8")
    if n_blocks > 1 and np.any(np.diff(ends.astype(np.int64)) < 0):
        raise KlbFormatError("block offset table is not increasing (damaged header)")
    header = KlbHeader(tuple(xyzct), tuple(float(p) for p in pixel), np.dtype(DTYPES[dtype_code]).newbyteorder("<"),
                       COMPRESSIONS[comp_code], tuple(block), ends, metadata)
    if header.file_bytes > file_size:
        last = int(np.searchsorted(ends, file_size - header.header_bytes, side="right"))
        raise KlbFormatError(f"file is truncated: block {last} of {n_blocks} ends beyond the end of the file "
                             f"(needs {header.file_bytes} bytes, has {file_size})")
    return header


def decode_block(header: KlbHeader, index: int, payload: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Decompress one block's bytes into an array of ``shape`` (t, c, z, y, x).

    Raises
    ------
    KlbBlockError
        If the compressed stream is corrupt or decodes to the wrong number of bytes.
    """
    try:
        if header.compression == "bzip2":
            raw = bz2.decompress(payload)
        elif header.compression == "zlib":
            raw = zlib.decompress(payload)
        else:
            raw = payload
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise KlbBlockError(index, f"corrupt {header.compression} data ({type(exc).__name__}: {exc})") from None
    expected = math.prod(shape) * header.dtype.itemsize
    if len(raw) != expected:
        raise KlbBlockError(index, f"decodes to {len(raw)} bytes, expected {expected}")
    return np.frombuffer(raw, dtype=header.dtype).reshape(shape)


def zslab_blocks(header: KlbHeader, t: int, c: int, z_start: int, z_stop: int) -> list[tuple[int, int, int, int]]:
    """Blocks covering planes ``z_start:z_stop`` of volume (t, c): (index, bx, by, bz) each.

    Only these blocks are read for a slab; blocks are listed in file order so that reads
    move forward through the file.
    """
    bsx, bsy, bsz, bsc, bst = header.block_size
    nx, ny, _, _, _ = header.blocks_per_dim
    bc, bt = c // bsc, t // bst
    out = []
    for bz in range(z_start // bsz, (z_stop - 1) // bsz + 1):
        for by in range(ny):
            for bx in range(nx):
                out.append((header.block_index(bx, by, bz, bc, bt), bx, by, bz))
    return out
