"""KLB (Keller Lab Block) volumes, read lazily block by block.

The input is one ``.klb`` file (its t and c axes become pyama frames and views) or a
light-sheet tree of them (``TMxxxxxx/SPM00_TM000000_CM00_CHN00.klb``: one volume per file;
time points from the ``TM`` folders, views from the ``CM``/``CHN`` tags).

Only the header and block table are read when the file is opened. A Z slab reads only the
blocks that cover it; bzip2/zlib blocks are decompressed on a small thread pool (Python's
``bz2`` and ``zlib`` release the GIL). With ``pyklb`` installed and ``decoder: auto`` the
slab is read by ``pyklb.readroi`` instead; its errors are re-read with the Python decoder so
that a corrupt block is still named.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pyama_framework.readers import ChannelInfo, ImageMetadata, Reader, file_error

from ._volume_layout import discover_series, opening_problem, select_views, view_name
from .klb_format import KlbBlockError, KlbFormatError, KlbHeader, decode_block, parse_header, zslab_blocks

SUFFIX = ".klb"


def pyklb_module():
    """The installed ``pyklb`` module, or None."""
    try:
        import pyklb
    except ImportError:
        return None
    return pyklb


def open_header(path: Path) -> KlbHeader:
    """Parse ``path``'s header, as a one-line ReaderError when it is not a valid KLB file."""
    try:
        with open(path, "rb") as fh:
            return parse_header(fh, path.stat().st_size)
    except KlbFormatError as exc:
        raise file_error(path, f"not a readable KLB file: {exc}", "copy the file again from the acquisition computer") from None


@dataclass(frozen=True)
class _Source:
    """Where one (frame, view) volume lives: a file and its t, c indices."""

    path: Path
    header: KlbHeader
    t: int
    c: int


class KlbReader(Reader):
    """Read KLB volumes by Z slab (contract: views as channels, time points as frames).

    Parameters
    ----------
    path : Path
        A ``.klb`` file, a ``TM`` folder, or a folder of ``TM`` folders.
    cameras, channels : list of int, optional
        Read only these cameras / channels of a folder dataset.
    decoder : {"auto", "python", "pyklb"}
        ``auto`` uses pyklb when installed, otherwise the numpy/bz2 decoder.
    threads : int
        Decompression threads (0: the number of CPUs, at most 8).
    """

    @classmethod
    def check(cls, path: Path) -> str | None:
        """Accept a KLB file or a TM folder tree of them whose headers parse (no pixels read)."""
        path = Path(path)
        return opening_problem(cls, path)

    @classmethod
    def library_version(cls) -> str:
        module = pyklb_module()
        version = getattr(module, "__version__", "installed") if module else None
        return f"pyklb {version}" if module else "numpy/bz2 KLB decoder"

    def __init__(self, path: Path, cameras: list[int] | None = None, channels: list[int] | None = None,
                 decoder: str = "auto", threads: int = 0) -> None:
        self.path = Path(path)
        self._pool: ThreadPoolExecutor | None = None
        self._threads = threads or min(8, os.cpu_count() or 1)
        self._pyklb = pyklb_module() if decoder in ("auto", "pyklb") else None
        if decoder == "pyklb" and self._pyklb is None:
            raise file_error(self.path, "decoder 'pyklb' requested but pyklb is not installed",
                             "pip install pyklb, or set 'reader_params: {decoder: python}'")
        self._layer: tuple[tuple, np.ndarray] | None = None  # last decoded Z block layer, for read_frame
        if self.path.is_file():
            self._open_file(cameras, channels)
        else:
            self._open_tree(cameras, channels)

    def _open_file(self, cameras: list[int] | None, channels: list[int] | None) -> None:
        header = open_header(self.path)
        x, y, z, n_c, n_t = header.xyzct
        series = discover_series(self.path, SUFFIX)
        cam, chan = series.views[0]
        views = [(cam, c if n_c > 1 else chan) for c in range(n_c)]
        for what, wanted, have in (("camera", cameras, [cam]), ("channel", channels, [v[1] for v in views])):
            bad = [i for i in wanted or () if i not in have]
            if bad:
                raise file_error(self.path, f"{what} index {bad[0]} does not exist (the file has {what}s "
                                 f"{', '.join(map(str, have))})", f"set 'reader_params: {{{what}s: [...]}}' accordingly")
        keep = [i for i, v in enumerate(views) if channels is None or v[1] in channels]
        self._sources = [[_Source(self.path, header, t, c) for c in keep] for t in range(n_t)]
        self._set_metadata([views[i] for i in keep], header, n_t, list(range(n_t)))

    def _open_tree(self, cameras: list[int] | None, channels: list[int] | None) -> None:
        series = select_views(discover_series(self.path, SUFFIX), cameras, channels)
        first: KlbHeader | None = None
        self._sources = []
        for row in series.files:
            sources = []
            for file in row:
                header = open_header(file)
                if header.xyzct[3:] != (1, 1):
                    raise file_error(file, f"holds {header.xyzct[4]} time points x {header.xyzct[3]} channels, "
                                     "but a TM folder file must hold one volume", "open the file on its own instead")
                first = first or header
                if header.xyzct[:3] != first.xyzct[:3] or header.dtype != first.dtype:
                    raise file_error(file, f"volume {'x'.join(map(str, header.xyzct[:3]))} {header.dtype.name} differs "
                                     f"from {series.files[0][0].name} ({'x'.join(map(str, first.xyzct[:3]))} "
                                     f"{first.dtype.name})", "select views of one size with 'reader_params: {cameras: [...]}'")
                sources.append(_Source(file, header, 0, 0))
            self._sources.append(sources)
        self._set_metadata(list(series.views), first, len(series.timepoints), list(series.timepoints))

    def _set_metadata(self, views: list, header: KlbHeader, n_t: int, timepoints: list[int]) -> None:
        x, y, z = header.xyzct[:3]
        px, _, pz, _, pt = header.pixel_size
        single = self.path.is_file()
        self.metadata = ImageMetadata(
            n_fovs=1, n_frames=n_t, channels=tuple(ChannelInfo(i, view_name(v)) for i, v in enumerate(views)),
            height=y, width=x, dtype=header.dtype.name, n_z=z,
            pixel_size_um=float(str(np.float32(px))) if px > 0 else None,
            timestamps_s=(tuple(float(t * pt) for t in range(n_t)),) if single and n_t > 1 and pt > 0 else None,
            z_step_um=float(str(np.float32(pz))) if pz > 0 else None,
            extra={"timepoints": timepoints, "views": [list(v) for v in views],
                   "block_size_xyzct": list(header.block_size), "compression": header.compression},
        )

    # ----------------------------------------------------------------- reading
    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        src = self._sources[t][channel]
        bsz = src.header.block_size[2]
        layer = self._decoded_layer(src, z // bsz)
        return layer[z - (z // bsz) * bsz].copy()

    def read_planes(self, fov: int, t: int, channel: int, z_start: int, z_stop: int) -> np.ndarray:
        src = self._sources[t][channel]
        if self._pyklb is not None:
            try:
                box = self._pyklb.readroi(str(src.path), [src.t, src.c, z_start, 0, 0],
                                          [src.t, src.c, z_stop - 1, self.metadata.height - 1,
                                           self.metadata.width - 1], self._threads)
                return box.reshape(z_stop - z_start, self.metadata.height, self.metadata.width)
            except (OSError, IndexError, TypeError):
                pass  # re-read with the Python decoder, which names the failing block
        out = np.empty((z_stop - z_start, self.metadata.height, self.metadata.width), dtype=src.header.dtype)
        bsz, nz = src.header.block_size[2], src.header.xyzct[2]
        first, last = z_start // bsz, (z_stop - 1) // bsz
        # block layers wholly inside the slab are decoded in place, in one pass over the pool;
        # a partly covered layer at either end goes through the one-layer cache
        inner_lo = first if first * bsz >= z_start else first + 1
        inner_hi = last if min((last + 1) * bsz, nz) <= z_stop else last - 1
        if inner_lo <= inner_hi:
            lo, hi = inner_lo * bsz, min((inner_hi + 1) * bsz, nz)
            self._decode_planes(src, lo, hi, out[lo - z_start:hi - z_start])
        for bz in {first, last} - set(range(inner_lo, inner_hi + 1)):
            lo, layer = bz * bsz, self._decoded_layer(src, bz)
            a, b = max(lo, z_start), min(lo + layer.shape[0], z_stop)
            out[a - z_start:b - z_start] = layer[a - lo:b - lo]
        return out

    def _decoded_layer(self, src: _Source, bz: int) -> np.ndarray:
        key = (src.path, src.t, src.c, bz)
        if self._layer is None or self._layer[0] != key:
            bsz, nz = src.header.block_size[2], src.header.xyzct[2]
            lo, hi = bz * bsz, min((bz + 1) * bsz, nz)
            layer = np.empty((hi - lo, self.metadata.height, self.metadata.width), src.header.dtype)
            self._decode_planes(src, lo, hi, layer)
            self._layer = (key, layer)
        return self._layer[1]

    def _decode_planes(self, src: _Source, z_lo: int, z_hi: int, out: np.ndarray) -> None:
        """Decode whole block layers covering planes ``z_lo:z_hi`` of volume (t, c) into ``out``.

        ``z_lo`` and ``z_hi`` lie on block layer boundaries (or the volume's end). Each worker
        reads its own block with ``os.pread`` and decompresses it (the GIL is released).
        """
        header = src.header
        bsx, bsy, bsz, bsc, bst = header.block_size
        blocks = zslab_blocks(header, src.t, src.c, z_lo, z_hi)
        fd = os.open(src.path, os.O_RDONLY)

        def place(job: tuple) -> None:
            index, bx, by, bz = job
            start, stop = header.block_range(index)
            payload = os.pread(fd, stop - start, start)
            data = decode_block(header, index, payload, header.block_shape(bx, by, bz, src.c // bsc, src.t // bst))
            # a block may span several t / c; take this volume's slice
            block = data[src.t - (src.t // bst) * bst, src.c - (src.c // bsc) * bsc]
            z0 = bz * bsz - z_lo
            out[z0:z0 + block.shape[0], by * bsy:by * bsy + block.shape[1],
                bx * bsx:bx * bsx + block.shape[2]] = block

        try:
            if self._threads > 1 and len(blocks) > 1:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="klb")
                list(self._pool.map(place, blocks))
            else:
                for job in blocks:
                    place(job)
        except KlbBlockError as exc:
            bz = next(b[3] for b in blocks if b[0] == exc.block)
            raise file_error(src.path, f"corrupt KLB block {exc.block} of {len(header.block_ends)} (planes "
                             f"{bz * bsz}-{min((bz + 1) * bsz, header.xyzct[2]) - 1}): {exc.problem}",
                             "copy the file again") from None
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._layer = None

