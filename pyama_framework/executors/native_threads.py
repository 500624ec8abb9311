"""Size the native thread pools (BLAS, OpenMP, blosc, numexpr) of every task: one thread.

numpy and scipy each bring an OpenBLAS that starts one thread per core. The stages' linear
algebra is small (the background fit's normal equations, a few thousand unknowns at most),
so those threads gain nothing, and when the cores are shared (the local executor's worker
processes, several dask workers on a node, or any other load on the machine) OpenBLAS
threads that wait for each other spin instead of sleeping. Measured on a loaded 2-core
machine (benchmarks/native_threads.py, 2048 x 2048 / 600 cells, medians of A/B rounds): the
background took 0.42 s/frame with the default pools and 0.09 s/frame with one thread in one
worker process (4.7x), 0.77 vs 0.16 s/frame with two workers (4.8x); in an earlier run
1.85 vs 0.22 s/frame (8.3x). That is the issue's "2.4 s in one run, 11 s in another". On
nearly idle cores a lone worker gains ~8 % from a second thread (0.024 vs 0.026 s/frame).

So every task runs with one native thread; parallelism comes from running FOVs in
parallel. ``PYAMA_NATIVE_THREADS`` overrides the number (e.g. for a plugin that runs large
multi-threaded kernels on a node of its own).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

# Read by the libraries when they load; a child process inherits them from its parent.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLOSC_NTHREADS")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def native_threads_per_task() -> int:
    """Native threads for each concurrently running FOV: ``PYAMA_NATIVE_THREADS`` or 1."""
    value = os.environ.get("PYAMA_NATIVE_THREADS", "1")
    try:
        return max(1, int(value))
    except ValueError:
        return 1


def frame_threads(execution, n_fovs: int) -> int:
    """Threads that work on frames of one FOV at once (``execution.frame_threads``).

    Unset: the cores this process may use, shared among the FOVs that run at once on this
    machine (local workers, or a local dask cluster's workers x threads), at least 1; 1 on a
    remote dask cluster, whose nodes' cores the client cannot see. A lone FOV on a 2-core
    machine thus uses both cores; FOVs running in parallel each use one, as before.
    """
    if execution.frame_threads is not None:
        return execution.frame_threads
    if execution.executor == "dask":
        if execution.address is not None:
            return 1
        running = execution.workers * execution.threads_per_worker
    else:
        running = execution.workers
    return max(1, available_cores() // max(1, min(running, n_fovs)))


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap every native pool at ``threads``."""
    return {name: str(threads) for name in THREAD_ENV_VARS}


def _set_blosc(threads: int) -> int:
    import numcodecs.blosc

    return numcodecs.blosc.set_nthreads(threads)  # returns the previous number


_applied: int | None = None


def limit_native_threads(threads: int) -> None:
    """Cap the native pools of this worker process at ``threads`` for good; idempotent."""
    global _applied
    if _applied == threads:
        return
    os.environ.update(thread_env(threads))  # for libraries loaded later and for child processes
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # BLAS and OpenMP libraries already loaded
    _set_blosc(threads)
    _applied = threads


@contextmanager
def limited_native_threads(threads: int) -> Iterator[None]:
    """Cap the native pools while a run executes in the calling process, then restore them."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        previous = _set_blosc(threads)
        try:
            yield
        finally:
            _set_blosc(previous)
