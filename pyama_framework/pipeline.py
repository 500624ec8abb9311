"""The stages of one FOV, in order, and the loop that runs or resumes them.

Each stage declares the stages it depends on and the settings its result depends on. Its
fingerprint hashes those settings with its dependencies' fingerprints, so changing a
segmentation parameter reruns segmentation and everything downstream of it, and nothing
else. A stage whose record carries the current fingerprint is skipped.
"""

from __future__ import annotations

import ctypes
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import ResolvedConfig, Selected, fingerprint_hash
from .readers import ImageMetadata, Reader
from .stages import background, cache, copy, crop, extract, segment, track
from .stages import ome
from .stages.context import Cancelled, FovContext, StageError
from .store import STORE_LAYOUT, FovStore


def _release_memory() -> None:
    """Hand freed heap back to the OS between stages. glibc keeps large freed frame buffers
    in its arenas, so without this a worker's RSS is the sum of its stages' peaks rather
    than their maximum (measured: ~120 MB less peak RSS at 2048 x 2048)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


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


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[FovContext], dict | None]
    depends: tuple[str, ...]
    settings: Callable[[FovContext], Any]
    applies: Callable[[ResolvedConfig], bool]
    critical: bool = True


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


@dataclass
class FovOutcome:
    fov: int
    status: str  # "done", "failed", "cancelled"
    error: str = ""
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def run_fov(fov: int, resolved: ResolvedConfig, reader: Reader, metadata: ImageMetadata, basename: str,
            report: Callable[[str, int, int], None] = lambda *a: None,
            cancelled: Callable[[], bool] = lambda: False) -> FovOutcome:
    """Run (or resume) every applicable stage of one FOV; never raises for stage failures."""
    store = FovStore(resolved.config.output, fov, resolved.config.storage)
    ctx = FovContext(fov, store, resolved, reader, metadata, basename, report, cancelled)
    outcome = FovOutcome(fov, "done")
    fingerprints: dict[str, str] = {}
    for stage in STAGES:
        if not stage.applies(resolved):
            continue
        upstream = [fingerprints.get(d, "") for d in stage.depends]
        fp = fingerprint_hash([stage.name, stage.settings(ctx), upstream])
        fingerprints[stage.name] = fp
        if store.is_done(stage.name, fp):
            outcome.skipped.append(stage.name)
            report(stage.name, 0, 0)  # total 0: already complete, nothing to do
            continue
        store.clear_record(stage.name)
        started = time.perf_counter()
        warned = len(ctx.warnings)
        try:
            info = stage.run(ctx) or {}
        except Cancelled:
            outcome.status = "cancelled"
            break
        except KeyboardInterrupt:
            outcome.status = "cancelled"
            break
        except Exception as exc:
            message = str(exc) if isinstance(exc, StageError) else f"{type(exc).__name__}: {exc}"
            (store.root / "error.log").write_text(f"stage {stage.name}: {message}\n\n{traceback.format_exc()}")
            if not stage.critical:
                outcome.warnings.append(f"FOV {fov}: {stage.name} failed (results are unaffected): {message}")
                continue
            outcome.status, outcome.error = "failed", f"{stage.name}: {message}"
            break
        info["seconds"] = round(time.perf_counter() - started, 3)
        if len(ctx.warnings) > warned:  # kept with the stage, so a resumed run still knows them
            info["warnings"] = ctx.warnings[warned:]
        _release_memory()
        store.mark_done(stage.name, fp, **info)
        outcome.ran.append(stage.name)
        outcome.info.update({f"{stage.name}_{k}": v for k, v in info.items()})
    outcome.warnings.extend(ctx.warnings)
    if outcome.status == "done":
        (store.root / "error.log").unlink(missing_ok=True)
    return outcome
