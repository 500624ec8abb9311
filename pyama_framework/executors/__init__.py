"""Executors: where a planned run's FOVs are processed.

``open_executor(plan)`` picks one by ``execution.executor`` and makes it ready (a dask
executor connects to its scheduler or starts a local cluster) without writing anything, so
a scheduler that is down is reported before the output is touched. ``run(plan, progress)``
then processes every FOV (one task per FOV: its stages in order) and returns the outcomes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from ..runner import Plan, ProgressCallback, RunSummary

EXECUTORS = ("local", "dask")


class Executor(Protocol):
    name: str
    description: str  # one line for the run's header, e.g. the dask dashboard link

    def run(self, plan: "Plan", progress: "ProgressCallback | None" = None) -> "RunSummary": ...

    def close(self) -> None: ...

    def __enter__(self) -> "Executor": ...

    def __exit__(self, *exc: Any) -> None: ...


class LocalExecutor:
    """Worker processes on this machine (``runner.execute``)."""

    name = "local"

    def __init__(self, plan: "Plan"):
        workers = min(plan.config.execution.workers, len(plan.fovs)) or 1
        self.description = f"{workers} local worker process(es)" if workers > 1 else "in this process"

    def run(self, plan: "Plan", progress: "ProgressCallback | None" = None) -> "RunSummary":
        from ..runner import execute

        return execute(plan, progress)

    def close(self) -> None:
        pass

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_executor(plan: "Plan") -> Executor:
    """The executor named by ``plan.config.execution.executor``, ready to run; writes nothing."""
    name = plan.config.execution.executor
    if name == "local":
        return LocalExecutor(plan)
    if name == "dask":
        try:
            from .dask_executor import DaskExecutor
        except ImportError as exc:
            raise ConfigError(f"execution.executor: 'dask' needs dask.distributed ({exc}); "
                              f"install it with: pip install 'pyama-framework[dask]'") from None
        return DaskExecutor(plan)
    raise ConfigError(f"execution.executor: unknown executor '{name}'; choose one of: {', '.join(EXECUTORS)}")
