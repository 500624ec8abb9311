"""IsoView raw ``.stack`` volumes with their channel XML.

A ``.stack`` is headerless little-endian uint16, X fastest, then Y, then Z; its shape is
only in the channel XML (``dimensions="XxYxZ"`` per camera). The reader is given a
``TMxxxxx/`` folder, the folder holding many of them (time points), or one ``.stack`` whose
XML sits in its folder or a parent up to the ``TM`` folder.

Planes are read straight from the file at their byte offset (``np.fromfile``), so a
volume is never loaded whole and no file handle stays open between reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyama_framework.readers import ChannelInfo, ImageMetadata, Reader, ReaderError, file_error

from ._volume_layout import VolumeSeries, discover_series, opening_problem, select_views, view_name
from .isoview_xml import ChannelXml, find_channel_xml, parse_channel_xml

SUFFIX = ".stack"
DTYPE = np.dtype("<u2")


def _xml_for(series: VolumeSeries, t: int, channel: int, cache: dict[Path, ChannelXml]) -> ChannelXml:
    folder = series.folders[t]
    start = series.files[t][0].parent if series.root.is_file() else folder
    path = find_channel_xml(start, channel, stop=None if series.root.is_file() else folder)
    if path is None and not series.root.is_file():  # XML copied into the TM folder, .stack in ANG000/
        path = find_channel_xml(folder, channel, stop=folder)
    if path is None:
        where = series.files[t][0] if series.root.is_file() else folder
        raise file_error(where, f"missing XML for channel {channel} (ch{channel}.xml or ch{channel:02d}_spec00.xml)",
                         "copy the channel XML next to the .stack files or into the TM folder")
    if path not in cache:
        cache[path] = parse_channel_xml(path)
    return cache[path]


class IsoviewStackReader(Reader):
    """Read IsoView ``.stack`` volumes plane by plane (contract: views as channels, T, Z).

    Parameters
    ----------
    path : Path
        A ``.stack`` file, a ``TM`` folder, or a folder of ``TM`` folders.
    cameras, channels : list of int, optional
        Read only these cameras / channels (default: every view found).
    """

    library = "numpy"

    @classmethod
    def check(cls, path: Path) -> str | None:
        """Accept a ``.stack`` file or a TM folder tree whose XML and file sizes agree (no pixels read)."""
        path = Path(path)
        if path.is_file() and not path.name.lower().endswith(SUFFIX):
            return f"not a {SUFFIX} file"
        return opening_problem(cls, path)

    def __init__(self, path: Path, cameras: list[int] | None = None, channels: list[int] | None = None) -> None:
        self.path = Path(path)
        series = select_views(discover_series(self.path, SUFFIX), cameras, channels)
        cache: dict[Path, ChannelXml] = {}
        shapes: dict[tuple[int, int], tuple[int, int, int]] = {}
        for t in range(len(series.timepoints)):
            for (cam, chan), stack in zip(series.views, series.files[t]):
                xml = _xml_for(series, t, chan, cache)
                if cam not in xml.stack_shapes:
                    raise file_error(stack, f"camera index {cam} does not exist in {xml.path.name} (it describes "
                                     f"cameras {', '.join(map(str, sorted(xml.stack_shapes)))})",
                                     "use the XML of this acquisition, or select existing cameras")
                x, y, z = xml.stack_shapes[cam]
                expected, size = x * y * z * DTYPE.itemsize, stack.stat().st_size
                if size != expected:
                    problem = "truncated" if size < expected else "larger than its XML says"
                    raise file_error(stack, f"file is {problem}: {size} bytes, but {xml.path.name} gives "
                                     f"{x}x{y}x{z} uint16 = {expected} bytes",
                                     "copy the .stack again, or use the XML recorded with it")
                shapes.setdefault((cam, chan), (x, y, z))
                if shapes[(cam, chan)] != (x, y, z):
                    raise file_error(stack, f"volume size {x}x{y}x{z} differs from time point "
                                     f"{series.timepoints[0]} ({'x'.join(map(str, shapes[(cam, chan)]))})",
                                     "process the time points of one size in separate runs")
        distinct = sorted(set(shapes.values()))
        if len(distinct) > 1:
            sizes = "; ".join(f"{view_name(v)} {'x'.join(map(str, s))}" for v, s in shapes.items())
            raise file_error(self.path, f"views have different volume sizes (XxYxZ: {sizes})",
                             "select views of one size with 'reader_params: {cameras: [...]}' or {channels: [...]}")
        x, y, z = distinct[0]
        xmls = list(cache.values())
        self._series = series
        self._plane = (y, x)
        self.metadata = ImageMetadata(
            n_fovs=1, n_frames=len(series.timepoints),
            channels=tuple(ChannelInfo(i, view_name(v)) for i, v in enumerate(series.views)),
            height=y, width=x, dtype="uint16", n_z=z,
            pixel_size_um=next((m.pixel_size_um for m in xmls if m.pixel_size_um), None),
            timestamps_s=self._timestamps(series, cache),
            z_step_um=next((m.z_step_um for m in xmls if m.z_step_um), None),
            extra={"timepoints": list(series.timepoints), "views": [list(v) for v in series.views],
                   "xml": sorted(str(p) for p in cache)},
        )

    @staticmethod
    def _timestamps(series: VolumeSeries, cache: dict[Path, ChannelXml]) -> tuple[tuple[float, ...], ...] | None:
        """Per time point: the first channel XML's timestamp, relative to the first time point."""
        stamps = []
        for t in range(len(series.timepoints)):
            found = [x.timestamp_s for x in cache.values()
                     if x.timestamp_s is not None and (x.path.parent == series.folders[t]
                                                       or series.folders[t] in x.path.parents)]
            if not found:
                return None
            stamps.append(found[0])
        return (tuple(s - stamps[0] for s in stamps),)

    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        return self.read_planes(fov, t, channel, z, z + 1)[0]

    def read_planes(self, fov: int, t: int, channel: int, z_start: int, z_stop: int) -> np.ndarray:
        path = self._series.files[t][channel]
        plane = self._plane[0] * self._plane[1]
        count = (z_stop - z_start) * plane
        try:
            data = np.fromfile(path, dtype=DTYPE, count=count, offset=z_start * plane * DTYPE.itemsize)
        except OSError as exc:
            raise file_error(path, f"cannot read planes {z_start}-{z_stop - 1} ({exc})",
                             "check that the file is still there") from None
        if data.size != count:
            raise file_error(path, f"file is truncated: planes {z_start}-{z_stop - 1} run past its end",
                             "copy the .stack again")
        return data.astype(np.uint16, copy=False).reshape(z_stop - z_start, *self._plane)
