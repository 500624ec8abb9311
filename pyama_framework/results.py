"""The results of a run, lazily: one entry point for notebooks, plugins, the report and napari.

>>> from pyama_framework import open_results
>>> r = open_results("out/")
>>> r.fovs                               # complete FOVs, e.g. [0, 1, 2]
>>> r.images(0)                          # xarray (t, c, y, x), dask-backed, coords in min and µm
>>> r.labels(0, tracked=True)            # (t, y, x) uint16, value = ``cell`` in the traces
>>> r.traces()                           # every FOV's traces in one DataFrame (``fov`` column)
>>> r.crops(0, cell=3)                   # (t, c, y, x) crop of one cell, coords in the frame's µm
>>> r.config, r.provenance               # the run's config; plugins, versions, stage records

Opening reads the config and the small stage records only; arrays are opened (metadata
only) when asked for and read when computed, so opening a 100-FOV run reads no pixel.
Frame times (minutes) and the pixel size (µm) come from what the reader reported at run
time (recorded by the final stage in ``images.zarr``'s attributes); for runs made before
that was recorded, times fall back to ``extraction.time_mapping`` or ``frame *
frame_interval`` and coordinates to pixels (``units`` attribute ``"pixel"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig
from .results_status import (FovStatus, ResultsError, describe, fov_info, read_config, scan_fovs,
                             unfinished_message)
from .store import CONFIG_FILENAME, fov_dirname, stack_key

__all__ = ["Results", "ResultsError", "open_results"]


def open_results(path: str | Path, *, partial: bool = False) -> "Results":
    """Open the output folder of ``pyama run``.

    Parameters
    ----------
    path : str or Path
        The run's ``output`` folder (it holds ``processing_config.yaml``).
    partial : bool
        Open a run with unfinished FOVs (interrupted, or not yet run) and expose only its
        complete ones. By default such a run is refused, naming what is complete and what
        is missing. FOVs that failed are never refused: they are listed in ``failed``.

    Raises
    ------
    ResultsError
        ``path`` is not a results folder, its config is invalid, or (unless ``partial``)
        the run is half-finished.
    """
    path = Path(path)
    config = read_config(path)
    opener = _pipeline_results(config.pipeline)
    if opener is not None:  # a pipeline with its own output layout opens it itself
        return opener(path)
    status = scan_fovs(path, config)
    if not partial and any(s.state in ("unfinished", "not started") for s in status.values()):
        raise ResultsError(unfinished_message(path, status))
    return Results(path, config, status)


def _pipeline_results(name: str):
    """The results accessor registered by pipeline ``name``, or ``None`` for the time-lapse
    layout this module reads (a pipeline that registers no accessor)."""
    from .registry import get_registry

    try:
        registration = get_registry().get("pipeline", name)
    except Exception as exc:  # the plugin that made the run is not installed here
        raise ResultsError(f"the run used pipeline {name!r}: {' '.join(str(exc).split())}") from None
    return registration.load_results()


@dataclass(frozen=True)
class FovGeometry:
    """Frame times, pixel size and where each came from."""

    times_min: np.ndarray
    pixel_size_um: float | None
    time_source: str


class Results:
    """A results folder opened by :func:`open_results` (use that, not this constructor)."""

    def __init__(self, path: Path, config: RunConfig, status: dict[int, FovStatus]):
        self.path = Path(path)
        self.config = config
        self.status = status

    def __repr__(self) -> str:
        return (f"<pyama results {self.path}: FOVs {describe(self.fovs)} complete"
                + (f", {describe(list(self.failed))} failed" if self.failed else "") + ">")

    # ------------------------------------------------------------------ the run
    @property
    def fovs(self) -> list[int]:
        """The complete FOVs (every required stage recorded)."""
        return [f for f, s in self.status.items() if s.state == "complete"]

    @property
    def failed(self) -> dict[int, str]:
        """``{fov: first line of its error.log}`` for FOVs whose processing failed."""
        return {f: s.error or "" for f, s in self.status.items() if s.state == "failed"}

    @property
    def unfinished(self) -> dict[int, list[str]]:
        """``{fov: missing stages}`` of FOVs that were interrupted or not run (``partial=True``)."""
        return {f: s.missing for f, s in self.status.items() if s.state in ("unfinished", "not started")}

    @property
    def provenance(self) -> dict[str, Any]:
        """Plugins and versions of the run, and each FOV's stage records (timings, counts)."""
        return {**(self.config.provenance or {}),
                "stages": {f: s.records for f, s in self.status.items()}}

    def records(self, fov: int) -> dict[str, dict[str, Any]]:
        """The stage records of one FOV: ``{stage: {seconds, ...}}`` (any state of the FOV)."""
        return self.fov_status(fov, complete=False).records

    @property
    def warnings(self) -> list[str]:
        """Warnings raised while processing (stored with the stage that raised them)."""
        return [w for s in self.status.values() for r in s.records.values() for w in r.get("warnings", [])]

    @cached_property
    def channels(self) -> dict[str, int]:
        """``{stack name: channel index}`` of the raw channels, phase first (e.g. ``pc_ch_0``)."""
        ch = self.config.channels
        names = {f"pc_ch_{ch.pc.channel}": ch.pc.channel} if ch.pc is not None else {}
        names.update({f"fl_ch_{c.channel}": c.channel for c in ch.fl})
        return names

    # ------------------------------------------------------------------ one FOV
    def fov_status(self, fov: int, complete: bool = True) -> FovStatus:
        """The state of one FOV; a one-line ResultsError for a FOV the run does not have, or
        (``complete``) one that failed or is unfinished."""
        if isinstance(fov, bool) or not isinstance(fov, (int, np.integer)):
            raise ResultsError(f"FOV must be an integer index, not {fov!r}")
        s = self.status.get(int(fov))
        if s is None or not s.root.is_dir():
            raise ResultsError(f"{self.path} has no FOV {fov}; it holds FOV(s) {describe(self.fovs)}")
        if complete and s.state == "failed":
            raise ResultsError(f"FOV {fov} of {self.path} failed ({s.error}); see {s.root / 'error.log'}")
        if complete and s.state != "complete":
            raise ResultsError(f"FOV {fov} of {self.path} is unfinished (missing: {', '.join(s.missing)}); "
                               f"run 'pyama run {self.path / CONFIG_FILENAME}' again to finish it")
        return s

    def geometry(self, fov: int) -> FovGeometry:
        """Frame times in minutes and the pixel size in µm (None when the file had none)."""
        s = self.fov_status(fov, complete=False)
        info = fov_info(s.root)
        n = self.array(fov, next(iter(self.channels)), 0).shape[0]
        times = info.get("frame_times_min")
        if times is not None and len(times) == n:
            source = info.get("time_source", "recorded")
        elif self.config.extraction.time_mapping is not None:
            times, source = [self.config.extraction.time_mapping[t] for t in range(n)], "time_mapping"
        else:
            times, source = np.arange(n) * self.config.extraction.frame_interval, "frame_interval"
        return FovGeometry(np.asarray(times, dtype=np.float64), info.get("pixel_size_um"), source)

    def array(self, fov: int, name: str, level: int = 0):
        """The zarr array ``name`` at ``level`` of a FOV's images.zarr (metadata only)."""
        import zarr

        images = self.status[int(fov)].root / "images.zarr"
        for key in _stack_keys(name, level):
            if (images / key / "zarr.json").is_file():
                return zarr.open_array(images / key, mode="r")
        raise ResultsError(f"FOV {fov} of {self.path} has no {name} level {level}"
                           + ("; the /1 viewing level is written by the cache stage (caching.enabled)"
                              if level else "; rerun 'pyama run' to complete it"))

    def _frame_da(self, fov: int, names: list[str], level: int, dims: tuple[str, ...], name: str):
        import dask.array as da
        import xarray as xr

        geometry = self.geometry(fov)
        arrays = [da.from_zarr(self.array(fov, name, level)) for name in names]
        data = da.stack(arrays, axis=1) if "c" in dims else arrays[0]
        n, h, w = arrays[0].shape
        scale = 2 ** level
        px, unit = (geometry.pixel_size_um, "µm") if geometry.pixel_size_um else (1.0, "pixel")
        coords: dict[str, Any] = {
            "t": ("t", geometry.times_min, {"units": "min", "source": geometry.time_source}),
            "frame": ("t", np.arange(n)),
            # pixel centres of this level in full-resolution units
            "y": ("y", (np.arange(h) * scale + (scale - 1) / 2) * px, {"units": unit}),
            "x": ("x", (np.arange(w) * scale + (scale - 1) / 2) * px, {"units": unit}),
        }
        if "c" in dims:
            coords["c"] = ("c", names)
            coords["channel"] = ("c", [self.channels.get(n_, -1) for n_ in names])
        return xr.DataArray(data, dims=dims, coords=coords, name=name,
                            attrs={"fov": int(fov), "level": level, "pixel_size_um": geometry.pixel_size_um,
                                   "results": str(self.path)})

    def images(self, fov: int, level: int = 0, channels: list[str] | None = None):
        """The raw channels of a FOV as a lazy ``(t, c, y, x)`` xarray DataArray.

        ``level=1`` gives the half-size uint8 viewing level. ``c`` holds the stack names
        (``pc_ch_0``, ``fl_ch_1``), the ``channel`` coordinate the file's channel indices.
        """
        self.fov_status(fov)
        names = list(channels) if channels else list(self.channels)
        unknown = [n for n in names if n not in self.channels]
        if unknown:
            raise ResultsError(f"no channel {', '.join(unknown)} in {self.path}; "
                               f"choose one of: {', '.join(self.channels)}")
        return self._frame_da(fov, names, level, ("t", "c", "y", "x"), name="images")

    def labels(self, fov: int, tracked: bool = True, level: int = 0):
        """Segmentation labels ``(t, y, x)``: tracked (value = ``cell`` in the traces) or per frame."""
        self.fov_status(fov)
        pc = self.config.channels.pc
        if pc is None or self.config.copy_only:
            raise ResultsError(f"{self.path} has no labels: the run copied frames only (no phase channel "
                               "or copy_only); configure channels.pc and rerun")
        name = f"seg_{'tracked' if tracked else 'labeled'}_ch_{pc.channel}"
        return self._frame_da(fov, [name], level, ("t", "y", "x"), name=name)

    def background(self, fov: int, channel: int, level: int = 0):
        """The background estimate ``(t, y, x)`` float32 of a fluorescence channel."""
        self.fov_status(fov)
        fl = [c.channel for c in self.config.channels.fl]
        if channel not in fl:
            raise ResultsError(f"channel {channel} has no background in {self.path}; "
                               f"choose one of: {', '.join(map(str, fl)) or 'none (no fluorescence channel)'}")
        return self._frame_da(fov, [f"fl_background_ch_{channel}"], level, ("t", "y", "x"),
                              name=f"fl_background_ch_{channel}")

    def traces_path(self, fov: int) -> Path | None:
        found = sorted(self.fov_status(fov, complete=False).root.glob(f"*_{fov_dirname(fov)}_traces.csv"))
        return found[0] if found else None

    def traces(self, fov: int | None = None):
        """Traces of one FOV, or of every complete FOV (the ``fov`` column tells them apart)."""
        import pandas as pd

        fovs = self.fovs if fov is None else [self.fov_status(fov).fov]
        tables = [pd.read_csv(p) for p in (self.traces_path(f) for f in fovs) if p is not None]
        if not tables:
            raise ResultsError(f"{self.path} has no traces (FOVs {describe(fovs)}); "
                               "the run copied frames only or no FOV is complete")
        return pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]

    def tracks(self, fov: int):
        """The lineage table of a FOV: ``cell, first_frame, last_frame, parent``."""
        import pandas as pd

        path = self.fov_status(fov).root / "tracks.csv"
        if not path.is_file():
            raise ResultsError(f"FOV {fov} of {self.path} has no tracks.csv; the run did not track")
        return pd.read_csv(path)

    def crops(self, fov: int, cell: int, level: int = 0):
        """One cell's crop of every channel as a ``(t, c, y, x)`` DataArray.

        Values are float32 in [0, 1] (fluorescence background-corrected) at level 0, uint8
        at level 1; ``y``/``x`` are in the frame's coordinates, ``present`` tells the frames
        the cell is in.
        """
        import dask.array as da
        import xarray as xr

        self.fov_status(fov)
        crop = read_crop(self.status[int(fov)].root, int(cell), level, list(self.channels))
        if isinstance(crop, str):
            raise ResultsError(f"FOV {fov} of {self.path}: {crop}")
        geometry = self.geometry(fov)
        names = list(crop.arrays)
        data = da.stack(list(crop.arrays.values()), axis=1)
        (y0, x0, _, _), scale = crop.window, 2 ** level
        px, unit = (geometry.pixel_size_um, "µm") if geometry.pixel_size_um else (1.0, "pixel")
        _, _, h, w = data.shape
        return xr.DataArray(data, dims=("t", "c", "y", "x"), name=f"cell_{cell}", coords={
            "t": ("t", geometry.times_min, {"units": "min"}), "frame": ("t", np.arange(data.shape[0])),
            "c": ("c", names), "present": ("t", crop.present),
            "y": ("y", (y0 + np.arange(h) * scale + (scale - 1) / 2) * px, {"units": unit}),
            "x": ("x", (x0 + np.arange(w) * scale + (scale - 1) / 2) * px, {"units": unit}),
        }, attrs={"fov": int(fov), "cell": int(cell), "level": level, "window": tuple(map(int, crop.window))})


def _stack_keys(name: str, level: int) -> list[str]:
    """Where a stack level may be inside images.zarr: where the store puts it now (labels in
    the NGFF labels group of the phase image), else where runs before that put it."""
    return list(dict.fromkeys([stack_key(name, level), f"{name}/{level}"]))


@dataclass
class Crop:
    arrays: dict[str, Any]        # stack name -> dask array (t, h, w)
    window: np.ndarray            # [y0, x0, y1, x1) in the frame
    present: np.ndarray           # (t,) bool


def read_crop(fov_root: Path, cell: int, level: int, channels: list[str]) -> Crop | str:
    """Open (metadata only) one cell's crops in ``cells.zarr``; a reason string when absent.

    The one place here that knows the cells.zarr layout (``<channel>/<level>`` arrays
    ``(N, T, H, W)``, row ``i`` = ``metadata/cell_ids[i]`` in its window's top-left corner;
    see :mod:`pyama_framework.cells`)."""
    import dask.array as da
    import zarr

    cells = fov_root / "cells.zarr"
    if not (cells / "metadata" / "cell_ids" / "zarr.json").is_file():
        return "no cell crops (cropping.enabled was off, or the crop stage did not run)"
    meta = zarr.open_group(cells / "metadata", mode="r")
    ids = np.asarray(meta["cell_ids"][:])
    hit = np.flatnonzero(ids == cell)
    if hit.size == 0:
        shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
        return f"no crop of cell {cell}; the traced cells are: {shown or 'none'}"
    row = int(hit[0])
    window = np.asarray(meta["windows"][row])
    h, w = int(window[2] - window[0]), int(window[3] - window[1])
    if level == 1:
        h, w = max(h // 2, 1), max(w // 2, 1)
    arrays = {name: da.from_zarr(zarr.open_array(cells / name / str(level), mode="r"))[row, :, :h, :w]
              for name in channels if (cells / name / str(level) / "zarr.json").is_file()}
    if not arrays:
        return f"cell {cell} has no crop at level {level}"
    return Crop(arrays, window, np.asarray(meta["valid_frames"][row]))
