"""The ``lightsheet`` pipeline's stage table: calibrate -> correct -> diagnostics.

Each stage loops over the (time point, view) volumes of the FOV and records each finished
volume (``.pyama/<stage>.units/<unit>.json``, keyed by the stage's fingerprint), so a
killed run redoes only the volume it was in. Volumes are streamed: ``calibrate`` reads
every ``sample_every``-th plane, ``correct`` reads ``slab`` planes at a time; neither ever
holds a whole volume. The five preprocessing steps share these two passes instead of being
five stages, because a stage per step would write and read back every volume five times.

Multi-view fusion fits as a further stage (``depends=("correct",)``) whose units are time
points instead of (time point, view) pairs: it reads the ``corrected`` and ``mask`` slabs of
several views from ``lightsheet.zarr`` (see docs/lightsheet.md).
"""

from __future__ import annotations

import re
from contextlib import closing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pyama_framework.config import ResolvedConfig, RunConfig
from pyama_framework.errors import ConfigError
from pyama_framework.pipeline import Stage
from pyama_framework.readers import ImageMetadata
from pyama_framework.stages.context import FovContext, StageError
from pyama_framework.stages.frames import read_ahead
from pyama_framework.store import compressors

from . import corrections, foreground
from .params import LightsheetParams
from .projections import slab_projections
from .volume_store import HISTOGRAM_BINS, ShardWriter, VolumeLayout

_VIEW_RE = re.compile(r"^cam(\d+)_ch(\d+)$")


# ------------------------------------------------------------------ helpers
def params(ctx: FovContext) -> LightsheetParams:
    return ctx.resolved.pipeline.params


def view_indices(config_views: list[str], metadata: ImageMetadata) -> list[int]:
    names = [c.name for c in metadata.channels]
    return [names.index(v) for v in config_views] if config_views else list(range(len(names)))


def camera_of(view_name: str, index: int) -> int:
    """``cam2_ch1`` -> 2; a view not named that way is its own camera (its index)."""
    match = _VIEW_RE.match(view_name)
    return int(match[1]) if match else index


def background_file(ctx: FovContext, view_name: str, index: int) -> Path | None:
    """The view's camera background file, or None (then the percentile estimate is used)."""
    settings = params(ctx).background
    name = settings.file_pattern.format(camera=camera_of(view_name, index))
    if settings.folder is not None:
        folders = [Path(settings.folder)]
    else:
        source = Path(ctx.config.input)
        first = source if source.is_dir() else source.parent
        folders = [first, first.parent, first.parent.parent]
    return next((f / name for f in folders if (f / name).is_file()), None)


def read_slabs(ctx: FovContext, t: int, index: int, ranges: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The planes ``z0:z1`` of each range in turn, the next range read on a thread meanwhile
    (file reads and decoders release the GIL): one range more in memory."""
    return read_ahead(lambda k: ctx.reader.read_planes(ctx.fov, t, index, *ranges[k]), len(ranges))


def _units(ctx: FovContext) -> Iterator[tuple[int, int, int, str]]:
    """(t, position in the output, file channel index, view name) of every volume."""
    names = [c.name for c in ctx.metadata.channels]
    for t in range(ctx.n_frames):
        for v, index in enumerate(view_indices(params(ctx).views, ctx.metadata)):
            yield t, v, index, names[index]


def _unit_key(stage: str, t: int, view: str) -> str:
    return f"{stage}.units/t{t:05d}_{view}"


def _begin(ctx: FovContext, stage: str) -> bool:
    """True when no volume of ``stage`` is done with the current fingerprint (start afresh)."""
    return not any(ctx.store.is_done(_unit_key(stage, t, name), ctx.stage_fingerprint)
                   for t, _, _, name in _units(ctx))


def _input_settings(ctx: FovContext) -> dict[str, Any]:
    path = Path(ctx.config.input)
    stat = path.stat()
    return {"input": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "reader": ctx.config.reader, "reader_params": ctx.config.reader_params}


# ------------------------------------------------------------------ calibrate
def _calibrate_settings(ctx: FovContext) -> dict[str, Any]:
    p = params(ctx)
    files = {}
    for _, _, index, name in _units(ctx):
        found = background_file(ctx, name, index)
        files[name] = None if found is None else [str(found), found.stat().st_size, found.stat().st_mtime_ns]
    return {**_input_settings(ctx), "views": p.views, "sample_every": p.sample_every,
            "background": p.background.model_dump(mode="json"), "background_files": files,
            "dead_pixels": p.dead_pixels.model_dump(), "mask": p.mask.model_dump(),
            "storage": ctx.config.storage.model_dump()}


def _load_background(path: Path, shape: tuple[int, int]) -> np.ndarray:
    import tifffile

    try:
        image = corrections.background_image(tifffile.imread(path))
    except Exception as exc:
        raise StageError(f"{path}: cannot read the background image ({type(exc).__name__}: {exc}); "
                         f"fix or remove the file") from None
    if image.shape != shape:
        raise StageError(f"{path}: background is {image.shape[0]} x {image.shape[1]} but the volume planes are "
                         f"{shape[0]} x {shape[1]}; use this camera's background file")
    return image


def _shift_histogram(histogram: np.ndarray, level: int) -> np.ndarray:
    """Histogram of ``max(v - level, 0)`` from the histogram of ``v``."""
    shifted = np.zeros_like(histogram)
    shifted[0] = histogram[: level + 1].sum()
    shifted[1: histogram.size - level] = histogram[level + 1:]
    return shifted


def calibrate(ctx: FovContext) -> dict[str, Any]:
    p, meta = params(ctx), ctx.metadata
    layout = VolumeLayout(ctx.store.root, compressors(ctx.config.storage))
    if _begin(ctx, "calibrate"):
        names = [meta.channels[i].name for i in view_indices(p.views, meta)]
        layout.create_calibration(ctx.n_frames, names, meta.height, meta.width)
    arrays = {n: layout.array(f"calibration/{n}") for n in ("background", "dead_pixels", "histogram", "threshold")}
    sampled = list(range(0, meta.n_z, p.sample_every))
    units = list(_units(ctx))
    sources = {}
    for done, (t, v, index, name) in enumerate(units):
        key = _unit_key("calibrate", t, name)
        if ctx.store.is_done(key, ctx.stage_fingerprint):
            continue
        found = background_file(ctx, name, index)
        background = None if found is None else _load_background(found, (meta.height, meta.width))
        histogram = np.zeros(HISTOGRAM_BINS, np.int64)
        votes = np.zeros((meta.height, meta.width), np.uint16)
        with closing(read_slabs(ctx, t, index, [(z, z + 1) for z in sampled])) as planes_in_turn:
            for step, planes in enumerate(planes_in_turn):
                plane = planes[0]
                values = plane if background is None else corrections.subtract_background(plane[None], background)[0]
                if p.dead_pixels.enabled:
                    outliers = corrections.outlier_pixels(plane, p.dead_pixels.threshold)
                    votes += outliers
                    # Leave outliers out (stuck-high pixels would skew the threshold): subtracting
                    # their few counts is cheaper than copying the plane without them.
                    histogram -= np.bincount(values[outliers], minlength=HISTOGRAM_BINS)[:HISTOGRAM_BINS]
                histogram += np.bincount(values.ravel(), minlength=HISTOGRAM_BINS)[:HISTOGRAM_BINS]
                ctx.tick("calibrate", done * len(sampled) + step + 1, len(units) * len(sampled))
        if background is None:
            level = int(corrections.percentile_from_histogram(histogram, p.background.percentile))
            background = np.full((meta.height, meta.width), level, np.uint16)
            histogram = _shift_histogram(histogram, level)
        dead = (corrections.dead_pixel_map(votes, len(sampled), p.dead_pixels.min_fraction)
                if p.dead_pixels.enabled else np.zeros(votes.shape, bool))
        arrays["background"][t, v] = background
        arrays["dead_pixels"][t, v] = dead
        arrays["histogram"][t, v] = histogram
        arrays["threshold"][t, v] = foreground.mask_threshold(histogram, p.mask.method, p.mask.percentile, p.mask.scale)
        ctx.store.mark_done(key, ctx.stage_fingerprint, dead_pixels=int(dead.sum()),
                            background="file" if found else "percentile")
        sources[name] = str(found) if found else f"percentile {p.background.percentile}"
    return {"volumes": len(units), "background": sources}


# ------------------------------------------------------------------ correct
def _correct_settings(ctx: FovContext) -> dict[str, Any]:
    p = params(ctx)  # not the slab: it changes memory use, never the output
    return {"output": p.output.model_dump(), "mask": p.mask.model_dump(), "storage": ctx.config.storage.model_dump()}


def correct_volume(ctx: FovContext, t: int, v: int, index: int, layout: VolumeLayout,
                   tick: Any) -> None:
    """Stream one (t, view) volume: subtract, fix dead pixels, mask, project, write."""
    p, meta = params(ctx), ctx.metadata
    background = layout.array("calibration/background")[t, v]
    dead = layout.array("calibration/dead_pixels")[t, v]
    threshold = float(layout.array("calibration/threshold")[t, v])
    # One writer thread encodes and stores finished shards while this thread corrects the
    # next slab (ShardWriter); it is joined before the projections are written. A reader
    # thread reads the slab after this one meanwhile (read_slabs).
    slabs = [(z0, min(z0 + p.slab, meta.n_z)) for z0 in range(0, meta.n_z, p.slab)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyama-shard-writer") as writer, \
            closing(read_slabs(ctx, t, index, slabs)) as slabs_in_turn:
        volume = ShardWriter(layout.array("corrected"), t, v, writer)
        mask_writer = ShardWriter(layout.array("mask"), t, v, writer) if p.mask.enabled else None
        xy = np.zeros((meta.height, meta.width), meta.dtype)
        mask_xy = np.zeros((-(-meta.height // p.mask.block), -(-meta.width // p.mask.block)), bool)
        xz = np.zeros((meta.n_z, meta.width), meta.dtype)
        yz = np.zeros((meta.n_z, meta.height), meta.dtype)
        for (z0, z1), planes in zip(slabs, slabs_in_turn):
            # Readers return a fresh array: subtract and fix it in place (no second slab in
            # memory); a read-only one (a memory map) is copied once by the subtraction.
            planes = corrections.subtract_background(planes, background, out=planes if planes.flags.writeable else None)
            corrections.correct_dead_pixels(planes, dead, out=planes)
            slab_xy, xz[z0:z1], yz[z0:z1] = slab_projections(planes)
            np.maximum(xy, slab_xy, out=xy)
            volume.add(planes)  # from here on `planes` belongs to the writer: not modified below
            if mask_writer is not None:
                mask = foreground.block_mask(planes, threshold, p.mask.block, peak=int(slab_xy.max()))
                mask_xy |= mask.any(axis=0)
                mask_writer.add(mask)
            del planes
            tick(z1)
        volume.close()
        if mask_writer is not None:
            mask_writer.close()
    mask_xy = foreground.expand_block_mask(mask_xy, p.mask.block, (meta.height, meta.width))
    for name, data in (("xy", xy), ("xz", xz), ("yz", yz), ("mask_xy", mask_xy)):
        layout.array(f"projections/{name}")[t, v] = data


def correct(ctx: FovContext) -> dict[str, Any]:
    p, meta = params(ctx), ctx.metadata
    layout = VolumeLayout(ctx.store.root, compressors(ctx.config.storage))
    if _begin(ctx, "correct"):
        names = [meta.channels[i].name for i in view_indices(p.views, meta)]
        spacing = {"z_step_um": meta.z_step_um, "pixel_size_um": meta.pixel_size_um}
        layout.create_volumes(ctx.n_frames, meta.n_z, names, meta.height, meta.width, meta.dtype,
                              p.output.chunks, p.output.shards, p.mask.block if p.mask.enabled else 0,
                              {"spacing": spacing, "timestamps_s": _timestamps(ctx)})
    units = list(_units(ctx))
    total = len(units) * meta.n_z
    for done, (t, v, index, name) in enumerate(units):
        key = _unit_key("correct", t, name)
        if ctx.store.is_done(key, ctx.stage_fingerprint):
            continue
        correct_volume(ctx, t, v, index, layout, lambda z, d=done: ctx.tick("correct", d * meta.n_z + z, total))
        ctx.store.mark_done(key, ctx.stage_fingerprint)
    return {"volumes": len(units), "planes": total}


def _timestamps(ctx: FovContext) -> list[float] | None:
    stamps = ctx.metadata.timestamps_s
    return None if stamps is None else [float(s) for s in stamps[ctx.fov]]


# ------------------------------------------------------------------ diagnostics
def diagnostics(ctx: FovContext) -> dict[str, Any]:
    from .diagnostics import write_unit_figures

    layout = VolumeLayout(ctx.store.root)
    folder = ctx.store.root / "diagnostics"
    folder.mkdir(exist_ok=True)
    units = list(_units(ctx))
    for done, (t, v, _, name) in enumerate(units):
        write_unit_figures(layout, t, v, folder / f"t{t:05d}_{name}", title=f"t {t}, {name}")
        ctx.tick("diagnostics", done + 1, len(units))
    return {"figures": 3 * len(units)}


# ------------------------------------------------------------------ table
def _diagnostics_applies(resolved: ResolvedConfig) -> bool:
    return bool(resolved.pipeline.params.diagnostics)


STAGES: tuple[Stage, ...] = (
    Stage("calibrate", calibrate, (), _calibrate_settings),
    Stage("correct", correct, ("calibrate",), _correct_settings),
    Stage("diagnostics", diagnostics, ("correct",), lambda ctx: {"version": 1}, _diagnostics_applies,
          critical=False),
)


def check(config: RunConfig, metadata: ImageMetadata, path: Path) -> None:
    """Views must exist; volumes must be 8- or 16-bit unsigned integers."""
    names = [c.name for c in metadata.channels]
    views = LightsheetParams.model_validate(config.pipeline_params).views
    missing = [v for v in views if v not in names]
    if missing:
        raise ConfigError(f"pipeline_params.views: view {missing[0]!r} does not exist in {path.name}; "
                          f"choose from: {', '.join(names)}")
    if np.dtype(metadata.dtype).kind != "u" or np.dtype(metadata.dtype).itemsize > 2:
        raise ConfigError(f"{path.name}: the lightsheet pipeline needs uint8 or uint16 volumes, this file holds "
                          f"{metadata.dtype}")
