"""The dask.distributed executor: one task per FOV on a local or remote dask cluster.

Workers write straight into the output (which must be reachable from every worker); the
client plans, holds the output's lease, tracks the tasks and writes the run-level files.
Progress travels as worker events (``Worker.log_event`` -> ``Client.subscribe_topic``),
throttled to a few per second per task. Ctrl-C sets a ``distributed.Event`` that every task
checks between frames, like the local executor's shared flag, so the stage in progress
stops without recording completion and the next run resumes from there.

A worker that dies mid-FOV loses its task; the scheduler reruns it on another worker
(up to ``distributed.scheduler.allowed-failures`` times) and the stage records make that
rerun resume where the dead worker's last completed stage ended.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from typing import TYPE_CHECKING, Any

import distributed

from ..errors import ExecutorError
from ..pipeline import FovOutcome
from .native_threads import limit_native_threads, native_threads_per_task, thread_env

if TYPE_CHECKING:  # pragma: no cover
    from ..runner import Plan, ProgressCallback, RunSummary

CONNECT_TIMEOUT_S = 5  # an unreachable scheduler is reported within this (+ start-up), well under 10 s
PROGRESS_INTERVAL_S = 0.25
CANCEL_CHECK_INTERVAL_S = 0.5
CANCEL_GRACE_S = 60  # after Ctrl-C, how long running FOVs get to stop at a frame boundary


class DaskExecutor:
    name = "dask"

    def __init__(self, plan: "Plan"):
        execution = plan.config.execution
        self.cluster = None
        if execution.address:
            try:
                self.client = distributed.Client(execution.address, timeout=f"{CONNECT_TIMEOUT_S}s",
                                                 set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ExecutorError(
                    f"execution.address: cannot reach the dask scheduler at {execution.address} "
                    f"({' '.join(str(exc).split())}); start it ('dask scheduler') or fix the address") from None
            n_workers = len(self.client.scheduler_info().get("workers", {}))
            where = f"dask scheduler {execution.address} ({n_workers} worker(s) now"
            where += "; the FOVs wait until workers join)" if n_workers == 0 else ")"
        else:
            workers = max(1, min(execution.workers, len(plan.fovs)))
            threads = execution.threads_per_worker
            # Parallelism comes from tasks: one native thread per task (see native_threads.py).
            # dask's nanny sets OMP/MKL/OPENBLAS to 1 before it spawns a worker; this env and
            # each task's threadpoolctl call cover blosc, numexpr and PYAMA_NATIVE_THREADS.
            self.cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR, env=thread_env(native_threads_per_task()))
            self.client = distributed.Client(self.cluster, set_as_default=False)
            self.client.register_plugin(_IgnoreCtrlC(), name="pyama-ignore-ctrl-c")
            where = f"dask local cluster, {workers} worker(s) x {threads} thread(s)"
        # The scheduler serves a dashboard only with bokeh installed (the [dask] extra has it).
        has_dashboard = "dashboard" in self.client.scheduler_info().get("services", {})
        self.description = where + (f"; dashboard {self.client.dashboard_link}" if has_dashboard
                                    else "; no dashboard (install bokeh where the scheduler runs)")

    # ------------------------------------------------------------------ run
    def run(self, plan: "Plan", progress: "ProgressCallback | None" = None) -> "RunSummary":
        from ..runner import RunSummary

        progress = progress or (lambda *a: None)
        run_id = uuid.uuid4().hex[:12]
        topic, cancel_name = f"pyama-progress-{run_id}", f"pyama-cancel-{run_id}"
        events: queue.Queue = queue.Queue()
        # The handler runs on the client's event-loop thread; the bars are updated here.
        self.client.subscribe_topic(topic, lambda event: events.put(event[1]))
        cancel = distributed.Event(cancel_name, client=self.client)
        config_data = plan.config.model_dump(mode="json")
        futures = {self.client.submit(_fov_task, config_data, fov, topic, cancel_name,
                                      key=f"pyama-fov-{fov:03d}-{run_id}", pure=False): fov
                   for fov in plan.fovs}
        summary = RunSummary()
        pending = set(futures)
        try:
            while pending:
                _drain(events, progress, wait=0.1)
                for future in [f for f in pending if f.done()]:
                    pending.discard(future)
                    summary.outcomes.append(_result(future, futures[future]))
        except KeyboardInterrupt:
            summary.interrupted = True
            cancel.set()
            deadline = time.monotonic() + CANCEL_GRACE_S
            try:
                while pending and time.monotonic() < deadline:
                    _drain(events, progress, wait=0.1)
                    for future in [f for f in pending if f.done()]:
                        pending.discard(future)
                        summary.outcomes.append(_result(future, futures[future]))
            except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                pass
            self.client.cancel(list(pending), force=True)
        finally:
            _drain(events, progress, wait=0)
            self.client.unsubscribe_topic(topic)
        if any(o.status == "cancelled" for o in summary.outcomes):
            summary.interrupted = True
        summary.outcomes.sort(key=lambda o: o.fov)
        return summary

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _IgnoreCtrlC(distributed.WorkerPlugin):
    """Our local cluster's worker processes ignore Ctrl-C (the terminal sends it to all of
    them): the client cancels the tasks, which stop at a frame boundary, instead of the
    workers dying mid-write with tracebacks. (Not applied to a cluster we did not start.)"""

    def setup(self, worker: Any) -> None:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _drain(events: queue.Queue, progress: "ProgressCallback", wait: float) -> None:
    try:
        item = events.get(timeout=wait) if wait else events.get_nowait()
    except queue.Empty:
        return
    while True:
        progress(*item)
        try:
            item = events.get_nowait()
        except queue.Empty:
            return


def _result(future: Any, fov: int) -> FovOutcome:
    try:
        return future.result()
    except Exception as exc:  # the task raised, or its workers kept dying (KilledWorker)
        return FovOutcome(fov, "failed", f"worker crashed: {type(exc).__name__}: {exc}")


# ------------------------------------------------------------ worker side
def _fov_task(config_data: dict[str, Any], fov: int, topic: str, cancel_name: str) -> FovOutcome:
    """Runs on a worker: re-plan the (already validated) config and run one FOV."""
    from ..config import RunConfig
    from ..runner import execute_fov, plan_run

    worker = distributed.get_worker()
    # A worker started without a nanny (or by other tools) may still have a native thread
    # per core; with several such workers per node that oversubscribes the node.
    limit_native_threads(native_threads_per_task())
    cancel = distributed.Event(cancel_name)
    checked = {"at": 0.0, "set": False}

    def cancelled() -> bool:
        now = time.monotonic()
        if not checked["set"] and now - checked["at"] >= CANCEL_CHECK_INTERVAL_S:
            checked["at"], checked["set"] = now, cancel.is_set()
        return checked["set"]

    if cancelled():
        return FovOutcome(fov, "cancelled")
    sent: dict[str, float] = {}

    def report(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if total == 0 or done in (1, total) or now - sent.get(stage, 0.0) >= PROGRESS_INTERVAL_S:
            sent[stage] = now
            worker.log_event(topic, (fov, stage, done, total))

    try:
        plan = plan_run(RunConfig.model_validate(config_data))
    except Exception as exc:
        return FovOutcome(fov, "failed", f"setup: {exc}")
    return execute_fov(plan, fov, report, cancelled)
