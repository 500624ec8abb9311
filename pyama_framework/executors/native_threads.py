"""Size the native thread pools (BLAS, OpenMP, blosc, numexpr) of every worker process.

Each worker process runs one FOV at a time on one Python thread. If its BLAS or OpenMP
library also starts a thread per core, ``workers x cores`` threads compete for the cores,
and OpenBLAS/OpenMP threads that wait for each other spin instead of sleeping: on a busy
machine a stage full of small matrix products then runs several times slower (see
docs/cluster.md for the measurement). So every process gets ``cores // concurrent tasks``
native threads (at least one): set in the environment before a process imports numpy,
and with threadpoolctl in processes where the libraries are already loaded.
"""

from __future__ import annotations

import os

# Read by the libraries when they load; a child process inherits them from its parent.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLOSC_NTHREADS")


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a SLURM allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_task(concurrent_tasks: int, cores: int | None = None) -> int:
    """Native threads each task may use so that ``tasks x threads <= cores``."""
    return max(1, (cores or available_cores()) // max(1, concurrent_tasks))


def thread_env(threads: int) -> dict[str, str]:
    """Environment variables that cap every native pool at ``threads``."""
    return {name: str(threads) for name in THREAD_ENV_VARS}


_applied: int | None = None


def limit_native_threads(threads: int) -> None:
    """Cap the native pools of this (already running) process at ``threads``; idempotent."""
    global _applied
    if _applied == threads:
        return
    os.environ.update(thread_env(threads))  # for libraries loaded later and for child processes
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # BLAS and OpenMP libraries already loaded
    try:
        import numcodecs.blosc

        numcodecs.blosc.set_nthreads(threads)
    except ImportError:  # pragma: no cover - numcodecs is a core dependency
        pass
    _applied = threads
