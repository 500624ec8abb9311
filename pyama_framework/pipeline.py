"""The loop that runs or resumes the stages of one FOV, in the order of the selected
pipeline's stage table (``pipeline:`` in the config; tables are registered by plugins, the
time-lapse one in :mod:`pyama_builtin.pipelines.timelapse`).

Each stage declares the stages it depends on and the settings its result depends on. Its
fingerprint hashes those settings with its dependencies' fingerprints, so changing a
segmentation parameter reruns segmentation and everything downstream of it, and nothing
else. A stage whose record carries the current fingerprint is skipped.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .config import ResolvedConfig, fingerprint_hash, parse_fovs
from .executors.native_threads import frame_threads
from .readers import ImageMetadata, Reader
from .stages.context import Cancelled, FovContext, StageError
from .stages.levels import wait_for_levels
from .store import FovStore
from .location import output_root
from .memory import release_memory, tune_heap


@dataclass(frozen=True)
class Stage:
    """One row of a pipeline's stage table (see :class:`pyama_framework.types.PipelineRegistration`).

    ``run(ctx)`` does the work and returns a small dict recorded with the stage;
    ``settings(ctx)`` returns the JSON-able settings its result depends on (hashed, with the
    fingerprints of the ``depends`` stages, into the stage's fingerprint); ``applies(resolved)``
    says whether the stage runs for this config; a non-``critical`` stage's failure is a
    warning, not a failed FOV.
    """

    name: str
    run: Callable[[FovContext], dict | None]
    depends: tuple[str, ...]
    settings: Callable[[FovContext], Any]
    applies: Callable[[ResolvedConfig], bool] = lambda resolved: True
    critical: bool = True


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
    tune_heap()  # one heap, frame buffers reused; before the stages start threads (memory.py)
    store = FovStore(output_root(resolved.config.output, resolved.config.storage_options), fov, resolved.config.storage)
    ctx = FovContext(fov, store, resolved, reader, metadata, basename, report, cancelled)
    ctx.frame_threads = frame_threads(resolved.config.execution,
                                      len(parse_fovs(resolved.config.fovs, metadata.n_fovs)))
    outcome = FovOutcome(fov, "done")
    fingerprints: dict[str, str] = {}
    try:
        for stage in resolved.pipeline.registration.load():
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
            ctx.stage_fingerprint = fp
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
            release_memory()
            store.mark_done(stage.name, fp, **info)
            outcome.ran.append(stage.name)
            outcome.info.update({f"{stage.name}_{k}": v for k, v in info.items()})
    finally:  # nothing of this FOV keeps running once it returns
        wait_for_levels(ctx, remedy="the next run's cache stage makes it again")
    outcome.warnings.extend(ctx.warnings)
    if outcome.status == "done":
        (store.root / "error.log").unlink(missing_ok=True)
    return outcome
