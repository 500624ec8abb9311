"""Nikon ND2 reader built on the ``nd2`` library.

An ND2 file stores one image per acquisition event (a combination of the experiment loops:
time, XY position, Z); every event holds all channels interleaved pixel by pixel. The
library memory-maps the file, so reading a frame copies one channel of one event and
nothing else.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import nd2
import numpy as np

from pyama_framework.readers import ImageMetadata, Reader, describe_exception, file_error, read_head

from ._common import channel_layout, check_within_file

_MODERN_MAGIC = b"\xda\xce\xbe\n"
_LEGACY_MAGIC = b"\x00\x00\x00\x0c"  # JPEG2000-based ND2 from NIS-Elements < 4
_CHUNKMAP_SIGNATURE = b"ND2 CHUNK MAP SIGNATURE 0000001!"
_SUPPORTED_AXES = {"P", "T", "Z", "C", "Y", "X", "S"}


class ND2Reader(Reader):
    """Read a Nikon ``.nd2`` file frame by frame.

    Parameters
    ----------
    path : Path
        The ND2 file.
    split_rgb : bool
        Read an RGB camera file's red, green and blue components as separate channels.
    """

    library = f"nd2 {nd2.__version__}"

    @classmethod
    def check(cls, path: Path) -> str | None:
        head = read_head(path, 4)
        if head in (_MODERN_MAGIC, _LEGACY_MAGIC):
            return None
        return f"not an ND2 file (starts with {head!r}, expected {_MODERN_MAGIC!r})"

    def __init__(self, path: Path, split_rgb: bool = False) -> None:
        self.path = Path(path)
        _check_chunk_map(self.path)
        self._handle = _UnmappedFile(self.path)
        try:
            self._file = nd2.ND2File(self._handle)
        except Exception as exc:
            self._handle.close()
            raise file_error(self.path, f"cannot open as ND2 ({describe_exception(exc)})",
                             "the file may be truncated or damaged; copy it again") from None
        try:
            self._open(split_rgb)
        except BaseException:
            self.close()
            raise

    def _open(self, split_rgb: bool) -> None:
        f = self._file
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. "failed to load frame times" -> None below
                sizes = dict(f.sizes)
                attributes = f.attributes
                names = [ch.channel.name or f"Channel {i}" for i, ch in enumerate(f.metadata.channels or [])]
                calibrated = bool(f.metadata.channels and f.metadata.channels[0].volume.axesCalibrated[0])
                pixel_size = f.voxel_size().x if calibrated else None
                loop_indices = f.loop_indices
        except Exception as exc:
            raise file_error(self.path, f"cannot read the ND2 metadata ({describe_exception(exc)})",
                             "the file may be truncated or damaged; copy it again") from None

        unknown = set(sizes) - _SUPPORTED_AXES
        if unknown:
            raise file_error(self.path, f"unsupported ND2 loop(s) {sorted(unknown)} (sizes {sizes})",
                             "export the positions/time points as a standard ND acquisition")
        # The file stores all channels of an event side by side: (Y, X, channels, samples).
        n_file_channels = attributes.channelCount or 1
        n_samples = attributes.componentCount // n_file_channels
        if len(names) != n_file_channels:
            names = [f"Channel {i}" for i in range(n_file_channels)]
        if n_samples not in (1, 3):  # the library reads odd component counts as channels
            names = [f"Component {i}" for i in range(attributes.componentCount)]
            n_file_channels, n_samples = attributes.componentCount, 1
        self._frame_shape = (n_file_channels, attributes.heightPx, attributes.widthPx, n_samples)
        channels, self._sources = channel_layout(self.path, names, n_samples, split_rgb)

        n_fovs, n_frames, n_z = sizes.get("P", 1), sizes.get("T", 1), sizes.get("Z", 1)
        # Event (sequence) index of every (fov, t, z); loop_indices lists the loops of each event.
        self._seq = np.full((n_fovs, n_frames, n_z), -1, dtype=np.int64)
        for seq, index in enumerate(loop_indices):
            self._seq[index.get("P", 0), index.get("T", 0), index.get("Z", 0)] = seq
        if (self._seq < 0).any():
            raise file_error(self.path, "the experiment loops do not cover every position, time point "
                             "and Z plane", "re-export the file from NIS-Elements")
        self._check_frames_present()

        self.metadata = ImageMetadata(
            n_fovs=n_fovs,
            n_frames=n_frames,
            n_z=n_z,
            channels=channels,
            height=attributes.heightPx,
            width=attributes.widthPx,
            dtype=str(f.dtype),
            pixel_size_um=pixel_size,
            timestamps_s=self._timestamps(),
            extra={"sizes": sizes, "nd2_version": ".".join(map(str, f.version))},
        )

    def _check_frames_present(self) -> None:
        """The library returns zeros for events missing from the file; refuse such files."""
        offsets = getattr(self._file._rdr, "_frame_offsets", None)  # modern (v2/v3) files only
        if offsets is None:
            return
        expected = int(self._seq.max()) + 1
        present = sum(1 for seq in range(expected) if seq in offsets)
        if present < expected:
            raise file_error(self.path, f"only {present} of {expected} images are in the file "
                             "(acquisition stopped early or file damaged)",
                             "re-export the acquired part from NIS-Elements")
        if self._file.attributes.compressionType is not None:
            return  # compressed images have no fixed size; the chunk map check above suffices
        last = max(offsets[seq] for seq in range(expected))
        frame_bytes = self._file.attributes.heightPx * (self._file.attributes.widthBytes or 0)
        check_within_file(self.path, last + frame_bytes, "the last image")

    def _timestamps(self) -> tuple[tuple[float, ...], ...] | None:
        """Acquisition time of (fov, t) at the first Z plane, in seconds, if recorded."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                columns = self._file.events(orient="list")
        except Exception:  # legacy files have no event table
            return None
        times = columns.get("Time [s]")
        index = columns.get("Index")
        if not times or not index:
            return None
        by_seq = {int(i): float(t) for i, t in zip(index, times) if isinstance(i, (int, float)) and not math.isnan(i)}
        try:
            table = tuple(tuple(by_seq[int(seq)] for seq in row) for row in self._seq[:, :, 0])
        except KeyError:
            return None
        return table if all(math.isfinite(v) for row in table for v in row) else None

    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        """Return frame ``(fov, t, z)`` of ``channel`` as a new (H, W) array."""
        self.check_indices(fov, t, channel, z)
        plane, sample = self._sources[channel]
        # read_frame returns a squeezed view of (channels, Y, X, samples); restore the axes.
        event = self._file.read_frame(int(self._seq[fov, t, z])).reshape(self._frame_shape)
        return np.array(event[plane, :, :, sample])

    def close(self) -> None:
        self._file.close()
        self._handle.close()


class _UnmappedFile:
    """A binary file the nd2 library reads with seek/read instead of memory-mapping it.

    Given a path (or a real file object) the library maps the whole file; every page it
    touches then counts as resident memory of the process, so copying a 4 GB file would show
    4 GB resident. Through this wrapper each frame is one ``read`` into a fresh buffer.
    """

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")
        self.name = str(path)

    def read(self, size: int = -1) -> bytes:
        return self._fh.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()

    @property
    def closed(self) -> bool:
        return self._fh.closed


def _check_chunk_map(path: Path) -> None:
    """Modern ND2 files end with the chunk map's signature; a cut-off copy does not."""
    if read_head(path, 4) != _MODERN_MAGIC:
        return
    with open(path, "rb") as fh:
        fh.seek(max(path.stat().st_size - 40, 0))
        if not fh.read(40).startswith(_CHUNKMAP_SIGNATURE):
            raise file_error(path, "file is truncated: the ND2 chunk map that closes the file is missing",
                             "copy the file again from the acquisition computer")
