"""The IsoView / SimView channel XML (``ch0.xml``, ``ch00_spec00.xml``) next to raw ``.stack`` files.

The root is ``<push_config>``; its ``<info .../>`` children each carry one (sometimes
more) attribute, e.g. ``<info dimensions="2048x2048x543,2048x2048x543"/>``. Attributes are
read wherever they sit; unknown ones are kept in ``attributes`` and otherwise ignored.

- ``dimensions``: ``XxYxZ`` per camera, comma-separated (one entry per camera);
- ``camera_index``: the cameras those entries describe (comma-separated; default 0, 1, ...);
- ``z_step``, ``pixel_size``: spacing in µm;
- ``time_point``, ``timestamp``: the acquisition's time point number and time.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from pyama_framework.readers import file_error

_CHANNEL_XML = re.compile(r"^ch(\d+)(?:_spec\d+)?\.xml$", re.IGNORECASE)
_DIMS = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ChannelXml:
    """What one channel XML says.

    Attributes
    ----------
    path : Path
    stack_shapes : dict of int to (X, Y, Z)
        Volume size per camera index.
    z_step_um, pixel_size_um : float or None
    time_point : int or None
    timestamp_s : float or None
        Seconds since the epoch (or as written, if the XML gives plain seconds).
    attributes : dict of str to str
        Every attribute found, last one wins.
    """

    path: Path
    stack_shapes: dict[int, tuple[int, int, int]]
    z_step_um: float | None = None
    pixel_size_um: float | None = None
    time_point: int | None = None
    timestamp_s: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def channel_of_xml(path: Path) -> int | None:
    """Channel number of a channel XML file name (``ch0.xml``, ``ch01_spec00.xml``), or None."""
    match = _CHANNEL_XML.match(path.name)
    return int(match.group(1)) if match else None


def find_channel_xml(folder: Path, channel: int, stop: Path | None = None) -> Path | None:
    """The XML of ``channel`` in ``folder`` or its parents (up to ``stop``, or the nearest TM folder)."""
    for candidate in (folder, *folder.parents):
        for path in sorted(candidate.glob("*.xml")):
            if channel_of_xml(path) == channel:
                return path
        if candidate == stop or re.match(r"^TM\d+$", candidate.name, re.IGNORECASE):
            return None
    return None


def _float(path: Path, name: str, value: str) -> float:
    try:
        return float(value.split(",")[0])
    except ValueError:
        raise file_error(path, f"attribute {name}={value!r} is not a number", "fix or remove it in the XML") from None


def _timestamp(value: str) -> float | None:
    """Seconds from a number, an ISO date or an e-mail style date; None if it parses as none."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    for parse in (datetime.fromisoformat, parsedate_to_datetime):
        try:
            return parse(text).timestamp()
        except (ValueError, TypeError, IndexError):
            continue
    return None


def parse_channel_xml(path: Path) -> ChannelXml:
    """Read one channel XML; raise a one-line ReaderError naming what is missing or malformed."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise file_error(path, f"not a readable XML file ({exc})", "copy the channel XML again") from None
    if root.tag != "push_config":
        raise file_error(path, f"root element is <{root.tag}>, expected <push_config>",
                         "point at the acquisition's channel XML (ch0.xml)")
    attrs: dict[str, str] = {}
    for element in root.iter():
        attrs.update(element.attrib)
    if "dimensions" not in attrs:
        raise file_error(path, "no 'dimensions' attribute (XxYxZ per camera)", "use the acquisition's channel XML")
    entries = [e for e in attrs["dimensions"].split(",") if e.strip()]
    shapes = []
    for entry in entries:
        match = _DIMS.match(entry)
        if not match or min(int(g) for g in match.groups()) < 1:
            raise file_error(path, f"dimensions entry {entry!r} is not XxYxZ", "e.g. dimensions=\"2048x2048x543\"")
        shapes.append(tuple(int(g) for g in match.groups()))
    if "camera_index" in attrs:
        try:
            cameras = [int(c) for c in attrs["camera_index"].split(",") if c.strip()]
        except ValueError:
            raise file_error(path, f"camera_index={attrs['camera_index']!r} is not a list of integers",
                             "e.g. camera_index=\"0,1\"") from None
        if len(cameras) != len(shapes):
            raise file_error(path, f"camera_index lists {len(cameras)} cameras but dimensions gives "
                             f"{len(shapes)} entries", "give one XxYxZ entry per camera")
    else:
        cameras = list(range(len(shapes)))
    time_point = attrs.get("time_point")
    return ChannelXml(
        path=path,
        stack_shapes=dict(zip(cameras, shapes)),
        z_step_um=_float(path, "z_step", attrs["z_step"]) if "z_step" in attrs else None,
        pixel_size_um=_float(path, "pixel_size", attrs["pixel_size"]) if "pixel_size" in attrs else None,
        time_point=int(time_point) if time_point is not None and time_point.strip().isdigit() else None,
        timestamp_s=_timestamp(attrs["timestamp"]) if "timestamp" in attrs else None,
        attributes=attrs,
    )
