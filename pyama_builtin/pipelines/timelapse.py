"""The time-lapse pipeline's stage table: copy -> segment -> track -> background -> extract.

Each stage declares the stages it depends on and the settings its result depends on. Its
fingerprint hashes those settings with its dependencies' fingerprints, so changing a
segmentation parameter reruns segmentation and everything downstream of it, and nothing
else. The stage implementations live in :mod:`pyama_framework.stages`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyama_framework.config import ResolvedConfig, RunConfig, Selected
from pyama_framework.errors import ConfigError
from pyama_framework.pipeline import Stage
from pyama_framework.readers import ImageMetadata
from pyama_framework.stages import background, cache, copy, crop, extract, ome, segment, track
from pyama_framework.stages.context import FovContext
from pyama_framework.store import STORE_LAYOUT


def _plugin(selected: Selected | None) -> dict[str, Any] | None:
    if selected is None:
        return None
    return {"name": selected.registration.name, "params": selected.kwargs(),
            "distribution": selected.distribution, "version": selected.version}


def _copy_settings(ctx: FovContext) -> dict[str, Any]:
    path = Path(ctx.config.input)
    stat = path.stat()
    return {"input": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "reader": ctx.config.reader, "reader_params": ctx.config.reader_params,
            "channels": ctx.config.channels.all_indices(), "z": ctx.config.z.model_dump(),
            "storage": ctx.config.storage.model_dump(), "layout": STORE_LAYOUT}


def _extract_settings(ctx: FovContext) -> dict[str, Any]:
    return {"extraction": ctx.config.extraction.model_dump(mode="json"),
            "features": {str(ch): [_plugin(s) for s in sel] for ch, sel in ctx.resolved.features.items()},
            "basename": ctx.basename}


def _processing(r: ResolvedConfig) -> bool:
    return r.processing_stages()


STAGES: tuple[Stage, ...] = (
    Stage("copy", copy.run, (), _copy_settings, lambda r: True),
    Stage("segment", segment.run, ("copy",), lambda c: _plugin(c.resolved.segmenter), _processing),
    Stage("track", track.run, ("segment",), lambda c: _plugin(c.resolved.tracker), _processing),
    Stage("background", background.run, ("copy", "segment"), lambda c: _plugin(c.resolved.background),
          lambda r: _processing(r) and bool(r.config.channels.fl)),
    Stage("extract", extract.run, ("track", "background"), _extract_settings, _processing),
    Stage("crop", crop.run, ("extract",), lambda c: c.config.cropping.model_dump(),
          lambda r: _processing(r) and r.config.cropping.enabled),
    Stage("cache", cache.run, ("copy", "segment", "track", "background"), lambda c: c.config.storage.model_dump(),
          lambda r: not r.config.copy_only and r.config.caching.enabled, critical=False),
    Stage("ome", ome.run, ("copy", "segment", "track", "background", "cache"), ome.settings, lambda r: True,
          critical=False),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def check(config: RunConfig, metadata: ImageMetadata, path: Path) -> None:
    """The time-lapse pipeline needs at least one channel to copy and measure."""
    if not config.channels.all_indices():
        raise ConfigError("channels: no channel configured; set channels.pc and/or channels.fl")
