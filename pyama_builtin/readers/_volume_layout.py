"""Light-sheet dataset layout shared by the ``klb`` and ``isoview_stack`` readers.

An IsoView / SimView acquisition stores one folder per time point, ``TM00000/`` (or
``TM000000/``), holding one volume file per camera and channel, e.g.
``SPC00_TM00000_ANG000_CM0_CHN00_PH0.stack`` or ``SPM00_TM000000_CM00_CHN00.klb``. A reader is
given either one such file, one ``TM`` folder, or the folder holding many ``TM`` folders
(the time points, ordered by their number).

Views follow the reader contract of volumes: one pyama channel per (camera, channel)
pair, named ``cam{camera}_ch{channel}``, in (camera, channel) order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pyama_framework.readers import ReaderError, file_error

_TM_FOLDER = re.compile(r"^TM(\d+)$", re.IGNORECASE)
_TAG = r"(?:^|[_.\-]){}(\d+)(?=[_.\-]|$)"
_CAMERA = re.compile(_TAG.format("CM"), re.IGNORECASE)
_CHANNEL = re.compile(_TAG.format("CHN?"), re.IGNORECASE)
_TIMEPOINT = re.compile(_TAG.format("TM"), re.IGNORECASE)

View = tuple[int, int]  # (camera, channel)


def view_name(view: View) -> str:
    """The contract's channel name of a view: ``"cam{camera}_ch{channel}"``."""
    return f"cam{view[0]}_ch{view[1]}"


def file_view(path: Path) -> View | None:
    """(camera, channel) from a file name's ``CM<n>`` and ``CH(N)<n>`` tags, or None."""
    stem = path.name
    cam, chan = _CAMERA.search(stem), _CHANNEL.search(stem)
    if cam is None or chan is None:
        return None
    return int(cam.group(1)), int(chan.group(1))


def file_timepoint(path: Path) -> int | None:
    """Time point from a ``TM<n>`` tag in the file name or the nearest ``TM`` folder."""
    match = _TIMEPOINT.search(path.name)
    if match:
        return int(match.group(1))
    for parent in path.parents:
        folder = _TM_FOLDER.match(parent.name)
        if folder:
            return int(folder.group(1))
    return None


def timepoint_folders(root: Path) -> list[tuple[int, Path]]:
    """``[(number, folder)]`` of the time points under ``root``, by number.

    ``root`` is itself a ``TM`` folder (one time point) or holds ``TM`` folders.
    """
    own = _TM_FOLDER.match(root.name)
    if own:
        return [(int(own.group(1)), root)]
    found = sorted((int(m.group(1)), p) for p in root.iterdir()
                   if p.is_dir() and (m := _TM_FOLDER.match(p.name)))
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        dup = sorted({n for n in numbers if numbers.count(n) > 1})
        raise file_error(root, f"several folders are time point {dup[0]} (e.g. TM{dup[0]:05d} and "
                         f"TM{dup[0]:06d})", "keep one folder per time point")
    return found


def view_files(folder: Path, suffix: str) -> dict[View, Path]:
    """Volume files with ``suffix`` anywhere under one ``TM`` folder, by view."""
    files: dict[View, Path] = {}
    for path in sorted(folder.rglob(f"*{suffix}")):
        view = file_view(path)
        if view is None:
            raise file_error(path, "file name has no camera and channel tags (CM<n>, CHN<n>)",
                             "keep the acquisition's file names, e.g. SPM00_TM000000_CM00_CHN00" + suffix)
        if view in files:
            raise file_error(folder, f"two files for camera {view[0]} channel {view[1]}: "
                             f"{files[view].name} and {path.name}", "keep one file per camera and channel")
        files[view] = path
    return files


@dataclass(frozen=True)
class VolumeSeries:
    """The files of a light-sheet dataset: ``files[t][view_index]``.

    Attributes
    ----------
    root : Path
        What the reader was given.
    timepoints : tuple of int
        ``TM`` numbers, one per pyama frame.
    folders : tuple of Path
        The ``TM`` folder (or the file's folder) of each time point.
    views : tuple of (camera, channel)
        In (camera, channel) order.
    files : tuple of tuple of Path
    """

    root: Path
    timepoints: tuple[int, ...]
    folders: tuple[Path, ...]
    views: tuple[View, ...]
    files: tuple[tuple[Path, ...], ...]


def discover_series(root: Path, suffix: str) -> VolumeSeries:
    """Find every view of every time point under ``root`` (a file, a ``TM`` folder, or a parent).

    Raises a one-line :class:`~pyama_framework.readers.ReaderError` when no time point or
    volume is found, or when a time point lacks a view another one has.
    """
    if root.is_file():
        view = file_view(root) or (0, 0)
        tm = file_timepoint(root)
        return VolumeSeries(root, (tm if tm is not None else 0,), (root.parent,), (view,), ((root,),))
    folders = timepoint_folders(root)
    if not folders:
        raise file_error(root, f"no TM<number> time point folders and not a TM folder itself",
                         f"point 'input' at a TM folder, at the folder holding them, or at one {suffix} file")
    per_tm = [view_files(folder, suffix) for _, folder in folders]
    views = sorted(set().union(*per_tm))
    if not views:
        raise file_error(root, f"no {suffix} files in its TM folders", f"check that this is the {suffix} dataset")
    for (number, folder), files in zip(folders, per_tm):
        missing = [v for v in views if v not in files]
        if missing:
            cam, chan = missing[0]
            raise file_error(folder, f"time point {number} has no {suffix} file for camera {cam} channel {chan} "
                             f"(other time points have it)", "copy the missing file, or remove the time point folder")
    return VolumeSeries(root, tuple(n for n, _ in folders), tuple(f for _, f in folders), tuple(views),
                        tuple(tuple(files[v] for v in views) for files in per_tm))


def select_views(series: VolumeSeries, cameras: list[int] | None, channels: list[int] | None) -> VolumeSeries:
    """Keep the views of the given cameras / channels (None = all); unknown ones are errors."""
    have_cams = sorted({c for c, _ in series.views})
    have_chans = sorted({ch for _, ch in series.views})
    for what, wanted, have in (("camera", cameras, have_cams), ("channel", channels, have_chans)):
        for index in wanted or ():
            if index not in have:
                raise file_error(series.root, f"{what} index {index} does not exist (the data has "
                                 f"{what}s {', '.join(map(str, have))})",
                                 f"set 'reader_params: {{{what}s: [...]}}' to existing {what}s")
    keep = [i for i, (c, ch) in enumerate(series.views)
            if (cameras is None or c in cameras) and (channels is None or ch in channels)]
    if not keep:
        raise file_error(series.root, f"no view has both a selected camera {cameras} and channel {channels}",
                         "choose cameras and channels that were recorded together")
    return VolumeSeries(series.root, series.timepoints, series.folders, tuple(series.views[i] for i in keep),
                        tuple(tuple(row[i] for i in keep) for row in series.files))


def opening_problem(reader_cls: type, path: Path) -> str | None:
    """None if ``reader_cls(path)`` opens (headers and sizes only), else its one-line reason.

    Used as the readers' ``check`` so that ``pyama plugins doctor`` shows the same verdict
    a run would give.
    """
    try:
        reader_cls(path).close()
    except ReaderError as exc:
        text = str(exc)
        return text[len(f"{path}: "):] if text.startswith(f"{path}: ") else text
    return None
