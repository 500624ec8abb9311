"""Zeiss CZI reader built on ``czifile``.

A CZI file is a directory of subblocks; each subblock is one 2D tile (or a whole plane)
placed at a scene ``S``, time ``T``, channel ``C`` and plane ``Z`` and at X/Y coordinates in
a global stage frame. A FOV is a scene; a frame is the union of the full-resolution tiles
of one (S, T, C, Z) inside the scene's bounding box. Frames are decoded subblock by
subblock; the whole file is never read.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import czifile
import imagecodecs
import numpy as np

from pyama_framework.readers import ImageMetadata, Reader, describe_exception, file_error, read_head

from ._common import channel_layout, check_within_file

_MAGIC = b"ZISRAWFILE"
_PLANE_AXES = "STCZ"
_IGNORED_AXES = {"M", "X", "Y", "0"}  # tile index and frame axes; '0' is czifile's sample axis
_ZSTD0, _ZSTD1 = 5, 6  # ZEN 3 compressions that czifile 2019 does not decode


class CziReader(Reader):
    """Read a Zeiss ``.czi`` file frame by frame.

    Parameters
    ----------
    path : Path
        The CZI file.
    split_rgb : bool
        Read the red, green and blue samples of an RGB file as separate channels.
    """

    library = f"czifile {czifile.__version__}"

    @classmethod
    def check(cls, path: Path) -> str | None:
        head = read_head(path, 16)
        if head.startswith(_MAGIC):
            return None
        return f"not a CZI file (starts with {head[:10]!r}, expected {_MAGIC!r})"

    def __init__(self, path: Path, split_rgb: bool = False) -> None:
        self.path = Path(path)
        try:
            self._czi = czifile.CziFile(str(self.path), detectmosaic=False)
            entries = list(self._czi.subblock_directory)
            xml = self._czi.metadata() or ""
        except Exception as exc:
            raise file_error(self.path, f"cannot open as CZI ({describe_exception(exc)})",
                             "the file may be truncated or damaged; copy it again") from None
        try:
            self._open(entries, xml, split_rgb)
        except BaseException:
            self._czi.close()
            raise

    def _open(self, entries: list, xml: str, split_rgb: bool) -> None:
        # Pyramid levels repeat the data at lower resolution (stored size < logical size).
        entries = [e for e in entries if all(d.stored_size == d.size for d in e.dimension_entries if d.dimension in "XY")]
        if not entries:
            raise file_error(self.path, "the CZI file contains no image subblocks", "check the export")
        self._check_complete(entries)

        starts = {axis: sorted({_start(e, axis) for e in entries}) for axis in _PLANE_AXES}
        for axis, values in starts.items():
            if values != list(range(values[0], values[0] + len(values))):
                raise file_error(self.path, f"{axis} indices {values} are not consecutive",
                                 "export the file without gaps")
        other_axes = {d.dimension for e in entries for d in e.dimension_entries} - _IGNORED_AXES - set(_PLANE_AXES)
        extra_axes = {axis for axis in other_axes if _span(entries, axis) > 1}
        if extra_axes:
            raise file_error(self.path, f"unsupported CZI dimension(s) {sorted(extra_axes)}",
                             "export positions as scenes and a single phase/rotation/illumination")
        origin = {axis: values[0] for axis, values in starts.items()}
        counts = {axis: len(values) for axis, values in starts.items()}

        # Tiles of each frame, and each scene's bounding box in the stage frame.
        self._tiles: dict[tuple[int, int, int, int], list] = defaultdict(list)
        boxes: dict[int, list[int]] = {}
        for e in entries:
            key = tuple(_start(e, axis) - origin[axis] for axis in _PLANE_AXES)
            self._tiles[key].append(e)
            y0, x0 = _start(e, "Y"), _start(e, "X")
            y1, x1 = y0 + _size(e, "Y"), x0 + _size(e, "X")
            box = boxes.setdefault(key[0], [y0, x0, y1, x1])
            box[:] = [min(box[0], y0), min(box[1], x0), max(box[2], y1), max(box[3], x1)]
        expected = counts["S"] * counts["T"] * counts["C"] * counts["Z"]
        if len(self._tiles) != expected:
            raise file_error(self.path, f"{expected - len(self._tiles)} of {expected} scene/time/channel/Z "
                             "planes are missing (acquisition stopped early?)", "export the complete part again")
        shapes = {s: (b[2] - b[0], b[3] - b[1]) for s, b in boxes.items()}
        if len(set(shapes.values())) > 1:
            raise file_error(self.path, f"scenes differ in size {dict(sorted(shapes.items()))} (height, width); "
                             "every FOV must have the same frame shape", "crop the scenes to one size in ZEN")
        self._origins = {s: (b[0], b[1]) for s, b in boxes.items()}
        height, width = shapes[0]

        # Pixel type: grayscale '<u2' or RGB '<3u1' (czifile already returns R, G, B order).
        dtypes = {np.dtype(e.dtype) for e in entries}
        samples = {dt.shape[0] if dt.shape else 1 for dt in dtypes}
        if len(samples) > 1:
            raise file_error(self.path, "channels mix RGB and grayscale pixels", "export them separately")
        self._samples = samples.pop()
        self._dtype = np.result_type(*(dt.base for dt in dtypes))
        names, pixel_size = _names_and_pixel_size(xml, counts["C"])
        channels, self._sources = channel_layout(self.path, names, self._samples, split_rgb)
        self._frame_shape = (height, width)
        self.metadata = ImageMetadata(
            n_fovs=counts["S"],
            n_frames=counts["T"],
            n_z=counts["Z"],
            channels=channels,
            height=height,
            width=width,
            dtype=str(self._dtype),
            pixel_size_um=pixel_size,
            timestamps_s=self._timestamps(counts["S"], counts["T"]),
            extra={"czi_version": ".".join(map(str, self._czi.header.version))},
        )

    def _check_complete(self, entries: list) -> None:
        """The last subblock must end inside the file (a cut-off copy otherwise)."""
        last = max(entries, key=lambda e: e.file_position)
        try:
            segment = last.data_segment()
        except Exception as exc:
            raise file_error(self.path, f"file is truncated: the last subblock cannot be read "
                             f"({describe_exception(exc)})", "copy the file again") from None
        end = segment.data_offset + segment.data_size + max(segment.attachment_size, 0)
        check_within_file(self.path, end, "the last subblock")

    def _timestamps(self, n_scenes: int, n_frames: int) -> tuple | None:
        """Times of the T indices from the ``TimeStamps`` attachment, in seconds from the first
        time point, if present."""
        try:
            if not self._czi.header.attachment_directory_position:
                return None
            for entry in self._czi.attachment_directory:
                if entry.name == "TimeStamps":
                    times = np.asarray(entry.data_segment().data(), dtype=np.float64)
                    if times.shape != (n_frames,) or not np.isfinite(times).all():
                        return None
                    row = tuple(float(v - times[0]) for v in times)
                    return (row,) * n_scenes  # ZEN records one time per T for all scenes
        except Exception:
            return None
        return None

    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        """Return frame ``(fov, t, z)`` of ``channel`` as a new (H, W) array."""
        self.check_indices(fov, t, channel, z)
        plane, sample = self._sources[channel]
        tiles = self._tiles[(fov, t, plane, z)]
        y_origin, x_origin = self._origins[fov]
        frame = None
        for entry in tiles:
            tile = self._decode(entry)[..., sample]
            y, x = _start(entry, "Y") - y_origin, _start(entry, "X") - x_origin
            if len(tiles) == 1 and tile.shape == self._frame_shape:
                return np.ascontiguousarray(tile, dtype=self._dtype)
            if frame is None:
                frame = np.zeros(self._frame_shape, self._dtype)
            frame[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        return frame

    def _decode(self, entry) -> np.ndarray:
        """Pixels of one subblock as (h, w, samples)."""
        try:
            segment = entry.data_segment()
            if entry.compression in (_ZSTD0, _ZSTD1):
                data = _decode_zstd(segment.data(raw=True), entry.compression, np.dtype(entry.dtype))
                data = data.reshape(entry.stored_shape)
                if data.shape[-1] == 3:  # stored as BGR
                    data = data[..., ::-1]
            else:
                data = segment.data()
        except Exception as exc:
            raise file_error(self.path, f"cannot decode subblock at byte {entry.file_position} "
                             f"({describe_exception(exc)})", "the file may be damaged") from None
        return data.reshape(_size(entry, "Y"), _size(entry, "X"), -1)

    def close(self) -> None:
        self._czi.close()


def _start(entry, axis: str) -> int:
    for d in entry.dimension_entries:
        if d.dimension == axis:
            return int(d.start)
    return 0


def _size(entry, axis: str) -> int:
    for d in entry.dimension_entries:
        if d.dimension == axis:
            return int(d.size)
    return 1


def _span(entries: list, axis: str) -> int:
    return len({_start(e, axis) for e in entries})


def _decode_zstd(raw: bytes, compression: int, dtype: np.dtype) -> np.ndarray:
    """Decode ZEN's zstd subblocks: zstd0 is plain zstd; zstd1 has a small header whose
    flag says whether 16-bit pixels were split into a low-byte and a high-byte half."""
    hilo = False
    if compression == _ZSTD1:
        header_size = raw[0]
        hilo = header_size >= 3 and raw[1] == 1 and bool(raw[2] & 1)
        raw = raw[header_size:]
    data = np.frombuffer(imagecodecs.zstd_decode(raw), np.uint8)
    if hilo:
        half = data.size // 2
        data = np.stack([data[:half], data[half:]], axis=-1).reshape(-1)
    return data.view(dtype.base)


def _names_and_pixel_size(xml: str, n_channels: int) -> tuple[list[str], float | None]:
    """Channel names and X pixel size (µm) from the CZI XML metadata."""
    names = [f"Channel {i}" for i in range(n_channels)]
    pixel_size = None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return names, pixel_size
    found = [c.get("Name") or c.get("Id") or "" for c in root.iterfind(".//Information/Image/Dimensions/Channels/Channel")]
    if len(found) == n_channels and all(found):
        names = found
    for distance in root.iterfind(".//Scaling/Items/Distance"):
        value = distance.findtext("Value")
        if distance.get("Id") == "X" and value:
            metres = float(value)
            pixel_size = metres * 1e6 if metres > 0 else None
    return names, pixel_size
