"""Run a whole config: validate everything, check the output folder, then process FOVs.

Order of events (nothing is written before step 4):

1. resolve every plugin and its params against the registry (config.resolve_plugins);
2. choose and open the reader, check channels, FOVs and Z against the file's metadata;
3. check the output folder: empty, or made by a compatible config (else ``--overwrite``);
4. write ``processing_config.yaml`` (resolved config + plugin provenance);
5. run each FOV's stages (pipeline.run_fov), in worker processes when ``workers > 1``, or
   on a dask cluster (executors/).

Around all of it (``run_config``, ``pyama run``) the run holds the output's lease
(lease.py): a second run on the same output is refused before step 1.

One failing FOV does not stop the others; the summary says which failed and why.
Ctrl-C sets a shared flag that every worker checks between frames, so the stage in progress
stops without recording completion and the next run resumes from there.
"""

from __future__ import annotations

import multiprocessing as mp
from queue import Empty
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .config import (
    ResolvedConfig,
    RunConfig,
    Selected,
    config_to_yaml,
    filled_config,
    parse_fovs,
    resolve_plugins,
    results_fingerprint,
)
from .errors import ConfigError, OutputError
from .pipeline import FovOutcome, run_fov
from .readers import ImageMetadata, ReaderError, open_reader, select_reader
from .registry import Registry, get_registry
from .lease import LEASE_FILENAMES, acquire_lease
from .store import CONFIG_FILENAME, atomic_write_text, fov_dirname
from .location import check_output, ensure_dir, output_root, remove_tree

ProgressCallback = Callable[[int, str, int, int], None]


@dataclass
class Plan:
    """A validated run: everything needed to process FOVs, nothing written yet."""

    resolved: ResolvedConfig
    reader: Selected
    metadata: ImageMetadata
    fovs: list[int]
    basename: str

    @property
    def config(self) -> RunConfig:
        return self.resolved.config


@dataclass
class RunSummary:
    outcomes: list[FovOutcome] = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed(self) -> list[FovOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.failed


def input_basename(path: Path) -> str:
    """``exp1.ome.tif`` -> ``exp1``; ``run.2024.nd2`` -> ``run.2024``."""
    stem = Path(path).stem
    return stem[:-4] if stem.lower().endswith(".ome") else stem


def _check_against_file(config: RunConfig, meta: ImageMetadata, path: Path) -> list[int]:
    n_ch = meta.n_channels
    for where, index in ([("channels.pc.channel", config.channels.pc.channel)] if config.channels.pc else []) + [
        (f"channels.fl[{i}].channel", c.channel) for i, c in enumerate(config.channels.fl)
    ]:
        if index >= n_ch:
            names = ", ".join(f"{c.index}={c.name}" for c in meta.channels)
            raise ConfigError(f"{where}: channel {index} does not exist in {path.name}, which has {n_ch} channel(s): {names}")
    if meta.n_z > 1 and config.z.projection == "none" and config.z.plane >= meta.n_z:
        raise ConfigError(f"z.plane: plane {config.z.plane} does not exist; {path.name} has {meta.n_z} Z planes (0-{meta.n_z - 1})")
    mapping = config.extraction.time_mapping
    if mapping is not None:
        missing = [t for t in range(meta.n_frames) if t not in mapping]
        if missing:
            raise ConfigError(f"extraction.time_mapping: no time for frame(s) {missing[:5]}; map every frame 0-{meta.n_frames - 1}")
    try:
        return parse_fovs(config.fovs, meta.n_fovs)
    except ValueError as exc:
        raise ConfigError(f"fovs: {exc}") from None


def plan_run(config: RunConfig, registry: Registry | None = None) -> Plan:
    """Validate the config, the plugins and the input file; write nothing."""
    registry = registry or get_registry()
    resolved = resolve_plugins(config, registry)
    registration = select_reader(config.input, registry, config.reader)
    provided = registry.provider("reader", registration.name)
    with open_reader(Path(config.input), registration, config.reader_params) as opened:
        metadata = opened.metadata
    params = registration.validate_params(config.reader_params)
    reader = Selected(registration, params, provided.distribution, provided.version)
    check = resolved.pipeline.registration.load_check() if resolved.pipeline is not None else None
    if check is not None:  # what the selected pipeline needs of the file (channels, views, ...)
        check(config, metadata, Path(config.input))
    fovs = _check_against_file(config, metadata, Path(config.input))
    filled = filled_config(resolved, reader)
    resolved = ResolvedConfig(filled, resolved.reader_params, resolved.segmenter, resolved.tracker,
                              resolved.background, resolved.features, resolved.pipeline)
    return Plan(resolved, reader, metadata, fovs, input_basename(config.input))


def prepare_output(plan: Plan, overwrite: bool = False) -> None:
    """Refuse an output folder made by an incompatible config, unless ``overwrite``."""
    output = output_root(plan.config.output, plan.config.storage_options)  # a Path, or a UPath for a URL
    if output.exists() and not output.is_dir():
        raise OutputError(f"output {output} is a file; choose a folder")
    config_file = output / CONFIG_FILENAME
    if output.is_dir() and any(p.name not in LEASE_FILENAMES for p in output.iterdir()):
        if not config_file.exists():
            if not overwrite:
                raise OutputError(f"output {output} is not empty and was not made by pyama; choose an empty or new folder")
            raise OutputError(f"output {output} is not empty and was not made by pyama; refusing to delete it even with --overwrite")
        previous = RunConfig.model_validate(yaml.safe_load(config_file.read_text()))
        before, now = results_fingerprint(previous), results_fingerprint(plan.config)
        if before != now:
            changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            if not overwrite:
                raise OutputError(
                    f"output {output} holds results of a different config (changed: {', '.join(changed)}); "
                    f"rerun with --overwrite to replace them, or choose another output folder"
                )
            for child in output.iterdir():
                if child.is_dir() and child.name.startswith("fov_"):
                    remove_tree(child)
            config_file.unlink()
    ensure_dir(output)
    atomic_write_text(config_file, config_to_yaml(plan.config))


# ------------------------------------------------------------------ execution
_cancel_event: Any = None
_progress_queue: Any = None


def _init_worker(cancel_event: Any, progress_queue: Any, native_threads: int = 0) -> None:
    # Workers ignore Ctrl-C: the parent sets the shared event and each worker stops cleanly
    # at the next frame boundary instead of dying mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if native_threads:  # BLAS/OpenMP threads spinning on shared cores: see executors/native_threads.py
        from .executors.native_threads import limit_native_threads

        limit_native_threads(native_threads)
    global _cancel_event, _progress_queue
    _cancel_event, _progress_queue = cancel_event, progress_queue


def _process_fov(config_data: dict[str, Any], fov: int) -> FovOutcome:
    """Worker entry point: re-resolve the (already validated) config and run one FOV."""
    config = RunConfig.model_validate(config_data)
    try:
        plan = plan_run(config)
    except Exception as exc:
        return FovOutcome(fov, "failed", f"setup: {exc}")

    def report(stage: str, done: int, total: int) -> None:
        if _progress_queue is not None:
            _progress_queue.put((fov, stage, done, total))

    def cancelled() -> bool:
        return _cancel_event is not None and _cancel_event.is_set()

    return execute_fov(plan, fov, report, cancelled)


def execute_fov(plan: Plan, fov: int, report: Callable[[str, int, int], None],
                cancelled: Callable[[], bool]) -> FovOutcome:
    try:
        with open_reader(Path(plan.config.input), plan.reader.registration, plan.reader.params) as reader:
            return run_fov(fov, plan.resolved, reader, plan.metadata, plan.basename, report, cancelled)
    except ReaderError as exc:
        return FovOutcome(fov, "failed", f"read: {exc}")


def execute(plan: Plan, progress: ProgressCallback | None = None, workers: int | None = None) -> RunSummary:
    """Process every planned FOV; returns the per-FOV outcomes."""
    if plan.config.execution.executor != "local":
        from .executors import open_executor

        with open_executor(plan) as executor:
            return executor.run(plan, progress)
    workers = min(workers or plan.config.execution.workers, len(plan.fovs)) or 1
    summary = RunSummary()
    progress = progress or (lambda *a: None)
    if workers == 1:
        from .executors.native_threads import limited_native_threads, native_threads_per_task

        cancel = {"set": False}
        try:
            with limited_native_threads(native_threads_per_task()):
                for fov in plan.fovs:
                    outcome = execute_fov(plan, fov, lambda s, d, t, f=fov: progress(f, s, d, t),
                                          lambda: cancel["set"])
                    summary.outcomes.append(outcome)
                    if outcome.status == "cancelled":
                        summary.interrupted = True
                        break
        except KeyboardInterrupt:
            summary.interrupted = True
        return summary

    ctx = mp.get_context("spawn")
    cancel_event, queue = ctx.Event(), ctx.Queue()
    config_data = plan.config.model_dump(mode="json")
    from .executors.native_threads import native_threads_per_task

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(cancel_event, queue, native_threads_per_task()))
    futures = {pool.submit(_process_fov, config_data, fov): fov for fov in plan.fovs}
    pending = set(futures)
    try:
        while pending:
            _drain(queue, progress)
            for future in [f for f in pending if f.done()]:
                pending.discard(future)
                summary.outcomes.append(_result(future, futures[future]))
            if pending:
                try:
                    fov, stage, done, total = queue.get(timeout=0.2)
                except Empty:
                    continue
                progress(fov, stage, done, total)
    except KeyboardInterrupt:
        summary.interrupted = True
        cancel_event.set()
        for future in pending:
            future.cancel()
        for future in as_completed([f for f in pending if not f.cancelled()]):
            summary.outcomes.append(_result(future, futures[future]))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(queue, progress)
    if any(o.status == "cancelled" for o in summary.outcomes):
        summary.interrupted = True
    summary.outcomes.sort(key=lambda o: o.fov)
    return summary


def _drain(queue: Any, progress: ProgressCallback) -> None:
    while True:
        try:
            fov, stage, done, total = queue.get_nowait()
        except Empty:
            return
        progress(fov, stage, done, total)


def _result(future: Any, fov: int) -> FovOutcome:
    try:
        return future.result()
    except Exception as exc:  # a worker process died (e.g. out of memory)
        return FovOutcome(fov, "failed", f"worker crashed: {type(exc).__name__}: {exc}")


def run_config(config: RunConfig, *, overwrite: bool = False, progress: ProgressCallback | None = None,
               registry: Registry | None = None) -> RunSummary:
    """Validate, prepare the output and process every FOV (the API behind ``pyama run``)."""
    from .executors import open_executor

    # The lease keeps a second run off this output until this one ends (taken before the
    # slow checks so that a second run is refused at once; nothing is written on error).
    check_output(config.output, config.storage_options)  # missing bucket, refused credentials: before any write
    with acquire_lease(config.output, config.storage_options) as lease:
        plan = plan_run(config, registry)
        with open_executor(plan) as executor:
            prepare_output(plan, overwrite)
            summary = executor.run(plan, progress)
    if lease.lost.is_set():  # another run took the output over while this one was presumed dead
        from .lease import LeaseError, lost_message

        raise LeaseError(lost_message(lease))
    return summary
