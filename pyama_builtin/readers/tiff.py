"""OME-TIFF and multi-page TIFF reader built on ``tifffile``.

A TIFF stores images as pages; format-specific metadata (OME-XML, ImageJ, tifffile's own
shape) groups pages into series with named axes. Each frame pyama reads is one page. FOVs
are either the series of the file (OME-TIFF with one Image per position) or a position axis
inside a single series (``P``, or ``R`` as tifffile names Micro-Manager positions). Plain
page stacks carry no axes; the ``axes`` (and ``sizes``) parameters name them.

Times: OME plane ``DeltaT`` when every frame has one; otherwise frame ``t`` is at
``t * interval`` when the file records only a frame interval (OME ``TimeIncrement``, ImageJ
``finterval``, as Fiji and the DeLTA mother-machine TIFFs write it).
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

from pyama_framework.readers import ImageMetadata, Reader, describe_exception, file_error, read_head

from ._common import channel_layout, check_within_file

_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
_FOV_AXES = "PR"  # tifffile: P as written by tifffile users, R = Micro-Manager positions
_KNOWN_AXES = set("PRTCZ")
_LENGTH_UM = {"pm": 1e-6, "Å": 1e-4, "nm": 1e-3, "µm": 1.0, "um": 1.0, "mm": 1e3, "cm": 1e4, "m": 1e6}
_TIME_S = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0,
           "hr": 3600.0, "hour": 3600.0}
# tifffile logs (and then skips) structures that point outside the file or do not parse
_DAMAGE = re.compile(r"invalid .*offset|corrupted|truncated|suspicious number|beyond end", re.IGNORECASE)
_AXES_FIX = "set 'reader_params: {axes: ...}' (e.g. 'TCYX') and, for a plain page stack, 'sizes'"


class TiffReader(Reader):
    """Read an OME-TIFF or a multi-page TIFF frame by frame.

    Parameters
    ----------
    path : Path
        The TIFF file.
    axes : str, optional
        Axis order of the data, outermost first, ending in ``YX`` (``YXS`` for RGB), e.g.
        ``"PTCYX"``. Replaces the axes the file records; needed for plain page stacks.
    sizes : dict, optional
        Sizes of the axes in ``axes`` when the file records no shape; one may be omitted.
    split_rgb : bool
        Read the red, green and blue samples of an RGB file as separate channels.
    """

    library = f"tifffile {tifffile.__version__}"

    @classmethod
    def check(cls, path: Path) -> str | None:
        head = read_head(path, 4)
        if head in _MAGIC:
            return None
        return f"not a TIFF file (starts with {head!r}, expected b'II*\\x00' or b'MM\\x00*')"

    def __init__(self, path: Path, axes: str | None = None, sizes: dict[str, int] | None = None,
                 split_rgb: bool = False) -> None:
        self.path = Path(path)
        self._fh = None
        self._other_files: list = []
        with _TifffileWarnings() as warned:
            try:
                self._tif = tifffile.TiffFile(self.path)
                series = list(self._tif.series)
            except Exception as exc:
                raise file_error(self.path, f"cannot open as TIFF ({describe_exception(exc)})",
                                 "the file may be truncated or damaged; copy it again") from None
            try:
                damage = next((m for m in warned.messages if _DAMAGE.search(m)), None)
                if damage:  # tifffile skips what it cannot parse; we refuse instead of guessing
                    raise file_error(self.path, f"file is truncated or damaged (tifffile: {damage})",
                                     "copy the file again")
                self._open(series, axes, dict(sizes or {}), split_rgb)
                self._fh = open(self.path, "rb")
            except BaseException:
                self._tif.close()
                raise

    # ------------------------------------------------------------------ opening
    def _open(self, series: list, axes: str | None, sizes: dict[str, int], split_rgb: bool) -> None:
        if not series:
            raise file_error(self.path, "the TIFF file contains no images", "check the export")
        keyframe = series[0].keyframe
        page_axes = keyframe.axes  # 'YX', 'YXS' or 'SYX'
        page_shape = keyframe.shape
        for s in series[1:]:
            if (s.keyframe.shape, s.dtype, s.shape) != (page_shape, series[0].dtype, series[0].shape):
                raise file_error(self.path, f"the series differ in shape or type ({series[0].shape} "
                                 f"{series[0].dtype} vs {s.shape} {s.dtype} in series {s.index}); "
                                 "every FOV must have the same frames",
                                 "export the positions with the same size, or split the file")
        lead_axes, lead_shape = self._lead_axes(series[0], page_axes, axes, sizes)

        fov_axes = [a for a in lead_axes if a in _FOV_AXES]
        if len(fov_axes) > 1 or (fov_axes and len(series) > 1):
            raise file_error(self.path, f"more than one position axis (series and {''.join(fov_axes)})",
                             _AXES_FIX)
        unknown = [a for a, n in zip(lead_axes, lead_shape) if a not in _KNOWN_AXES and n > 1]
        if unknown:
            raise file_error(self.path, f"axes {''.join(lead_axes) + page_axes} of shape "
                             f"{tuple(lead_shape) + tuple(page_shape)} include "
                             f"{''.join(unknown)}, which pyama does not know as position, time, "
                             "channel or Z", _AXES_FIX)
        size = dict(zip(lead_axes, lead_shape))
        self._lead_axes, self._lead_shape = lead_axes, lead_shape
        self._fov_axis = fov_axes[0] if fov_axes else None
        n_fovs = len(series) if len(series) > 1 else size.get(self._fov_axis, 1)
        n_pages = math.prod(lead_shape)
        self._series = series

        # Where a frame's bytes are: contiguous uncompressed data is read straight from the
        # file (also covers ImageJ hyperstacks > 4 GB that have a single IFD); otherwise
        # one page at a time through tifffile.
        self._frame_dtype = np.dtype(keyframe.dtype).newbyteorder(self._tif.byteorder)
        self._frame_bytes = math.prod(page_shape) * self._frame_dtype.itemsize
        # (pages of a multi-file OME-TIFF live in other files: always read those by page)
        self._offsets = [None if s.is_multifile else s.dataoffset for s in series]
        self._pages = [list(s.pages) for s in series]
        for i, s in enumerate(series):
            self._check_series_data(i, n_pages)

        samples = keyframe.samplesperpixel if "S" in page_axes else 1
        self._sample_axis = page_axes.index("S") if "S" in page_axes else None
        names, pixel_size, times = self._metadata_from_file(size.get("C", 1), n_fovs, size)
        channels, self._sources = channel_layout(self.path, names, samples, split_rgb)
        self.metadata = ImageMetadata(
            n_fovs=n_fovs,
            n_frames=size.get("T", 1),
            n_z=size.get("Z", 1),
            channels=channels,
            height=page_shape[page_axes.index("Y")],
            width=page_shape[page_axes.index("X")],
            dtype=str(np.dtype(keyframe.dtype)),
            pixel_size_um=pixel_size,
            timestamps_s=times,
            extra={"axes": ("series" if len(series) > 1 else "") + "".join(lead_axes) + page_axes,
                   "kind": series[0].kind},
        )

    def _lead_axes(self, series, page_axes: str, axes: str | None,
                   sizes: dict[str, int]) -> tuple[str, tuple[int, ...]]:
        """Axes and shape of the page sequence of a series (everything outside a page)."""
        recorded_axes = series.axes[: len(series.axes) - len(page_axes)]
        recorded_shape = tuple(series.shape[: len(series.shape) - len(page_axes)])
        if axes is None:
            if sizes:
                raise file_error(self.path, "'sizes' is given without 'axes'", _AXES_FIX)
            return recorded_axes, recorded_shape
        frame_axes = "YXS" if "S" in page_axes else "YX"
        if not axes.endswith(frame_axes):
            raise file_error(self.path, f"reader_params axes {axes!r} must end in {frame_axes} for this "
                             f"file (its pages are {page_axes} of shape {series.keyframe.shape})", _AXES_FIX)
        lead = axes[: -len(frame_axes)]
        if set(sizes) - set(lead):
            raise file_error(self.path, f"'sizes' names {sorted(set(sizes) - set(lead))}, which are not in "
                             f"axes {axes!r}", _AXES_FIX)
        if len(lead) == len(recorded_shape) and not sizes:
            return lead, recorded_shape  # the file records the shape, only not the names
        n_pages = math.prod(recorded_shape)
        missing = [a for a in lead if a not in sizes]
        known = math.prod(sizes.values())
        if len(missing) > 1 or (not missing and known != n_pages) or n_pages % known:
            raise file_error(self.path, f"axes {axes!r} with sizes {sizes} do not fit the {n_pages} pages "
                             f"of the file (recorded shape {recorded_shape})",
                             "give the sizes of all but at most one of the axes before YX")
        shape = {**sizes, **{a: n_pages // known for a in missing}}
        return lead, tuple(shape[a] for a in lead)

    def _check_series_data(self, index: int, n_pages: int) -> None:
        """Refuse truncated files and series with missing pages before any frame is read."""
        offset, pages = self._offsets[index], self._pages[index]
        if offset is not None:
            check_within_file(self.path, offset + n_pages * self._frame_bytes, f"series {index}")
            return
        if len(pages) != n_pages or any(p is None for p in pages):
            present = sum(p is not None for p in pages)
            raise file_error(self.path, f"series {index} has {present} of {n_pages} pages "
                             "(file truncated or pages missing)", "copy or export the file again")
        if not self._series[index].is_multifile:
            end = max(int(o) + int(c) for p in pages for o, c in zip(p.dataoffsets, p.databytecounts))
            check_within_file(self.path, end, f"the image data of series {index}")

    def _metadata_from_file(self, n_channels: int, n_fovs: int,
                            size: dict[str, int]) -> tuple[list[str], float | None, tuple | None]:
        """Channel names, pixel size (µm) and timestamps from OME-XML or ImageJ metadata."""
        names = [f"Channel {i}" for i in range(n_channels)]
        if self._tif.is_ome:
            try:
                images = _parse_ome(self._tif.ome_metadata or "")
            except ET.ParseError:
                images = []
            if images:
                first = images[0]
                if len(first["channels"]) == n_channels and all(first["channels"]):
                    names = list(first["channels"])
                # One OME Image per FOV; positions inside one Image have no per-FOV times.
                per_fov = (images if len(self._series) > 1 and len(images) == len(self._series)
                           else images[:1] if self._fov_axis is None else [])
                times = _timestamps(per_fov, size.get("T", 1)) if per_fov else None
                if times is None and first["interval_s"]:
                    times = _regular_times(first["interval_s"], n_fovs, size.get("T", 1))
                return names, first["pixel_size_um"], times
        pixel_size = times = None
        keyframe = self._series[0].keyframe
        imagej = (self._tif.imagej_metadata or {}) if self._tif.is_imagej else {}
        if 282 in keyframe.tags:
            x_per_unit = keyframe.get_resolution()[0]
            if imagej.get("unit", "") in ("micron", "um", "µm", "\\u00B5m"):
                pixel_size = 1.0 / x_per_unit
            elif keyframe.resolutionunit in (3, 4, 5) and not self._tif.is_imagej:
                pixel_size = {3: 1e4, 4: 1e3, 5: 1.0}[keyframe.resolutionunit] / x_per_unit
        interval, scale = imagej.get("finterval"), _TIME_S.get(str(imagej.get("tunit", "sec")))
        if isinstance(interval, (int, float)) and interval > 0 and scale:  # ImageJ: 0 or absent = unknown
            times = _regular_times(float(interval) * scale, n_fovs, size.get("T", 1))
        return names, pixel_size, times

    # ------------------------------------------------------------------ reading
    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        """Return frame ``(fov, t, z)`` of ``channel`` as a new (H, W) array."""
        self.check_indices(fov, t, channel, z)
        plane, sample = self._sources[channel]
        position = {"T": t, "C": plane, "Z": z}
        if self._fov_axis is not None:
            position[self._fov_axis] = fov
        series = fov if len(self._series) > 1 else 0
        index = int(np.ravel_multi_index(tuple(position.get(a, 0) for a in self._lead_axes),
                                         self._lead_shape)) if self._lead_axes else 0
        offset = self._offsets[series]
        if offset is not None:
            frame = np.empty(self._series[series].keyframe.shape, self._frame_dtype)
            self._fh.seek(offset + index * self._frame_bytes)
            if self._fh.readinto(frame) != self._frame_bytes:
                raise file_error(self.path, f"file ended while reading frame (fov {fov}, t {t})",
                                 "the file is truncated; copy it again")
            frame = frame.astype(frame.dtype.newbyteorder("="), copy=False)
        else:
            page = self._pages[series][index]
            handle = page.parent.filehandle
            if handle.closed:  # another file of a multi-file OME-TIFF: keep it open until close()
                handle.open()
                self._other_files.append(handle)
            frame = page.asarray()
        if self._sample_axis is not None:
            frame = np.take(frame, sample, axis=self._sample_axis)
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        for handle in self._other_files:
            handle.close()
        self._tif.close()


class _TifffileWarnings(logging.Handler):
    """Collect what tifffile logs while a file is opened, instead of printing it."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("tifffile")

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(" ".join(record.getMessage().split()))

    def __enter__(self) -> "_TifffileWarnings":
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    """Child elements called ``name``, whatever the OME schema namespace."""
    return [child for child in element if child.tag.rsplit("}", 1)[-1] == name]


def _parse_ome(xml: str) -> list[dict]:
    """Per OME Image: channel names, pixel size (µm) and plane timestamps (s)."""
    images = []
    for image in _children(ET.fromstring(xml), "Image"):
        for pixels in _children(image, "Pixels")[:1]:
            size_x = pixels.get("PhysicalSizeX")
            unit = _LENGTH_UM.get(pixels.get("PhysicalSizeXUnit", "µm"))
            planes = {}
            for plane in _children(pixels, "Plane"):
                delta, scale = plane.get("DeltaT"), _TIME_S.get(plane.get("DeltaTUnit", "s"))
                if delta is not None and scale is not None:
                    key = tuple(int(plane.get(k, 0)) for k in ("TheT", "TheC", "TheZ"))
                    planes[key] = float(delta) * scale
            increment = _positive_float(pixels.get("TimeIncrement"))
            scale = _TIME_S.get(pixels.get("TimeIncrementUnit", "s"))
            images.append({
                "channels": [c.get("Name") or "" for c in _children(pixels, "Channel")],
                "pixel_size_um": float(size_x) * unit if size_x and unit else None,
                "planes": planes,
                "interval_s": increment * scale if increment and scale else None,
            })
    return images


def _positive_float(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


def _regular_times(interval_s: float, n_fovs: int, n_frames: int) -> tuple:
    """``t * interval_s`` for every FOV: the times when the file records only the interval."""
    return (tuple(t * interval_s for t in range(n_frames)),) * n_fovs


def _timestamps(images: list[dict], n_frames: int) -> tuple | None:
    """``timestamps[fov][t]``: DeltaT of each FOV's image at channel 0, plane 0, if complete."""
    table = []
    for image in images:
        row = [image["planes"].get((t, 0, 0)) for t in range(n_frames)]
        if any(v is None for v in row):
            return None
        table.append(tuple(row))
    return tuple(table)
