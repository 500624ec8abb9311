"""How a worker's heap gives memory back (glibc; elsewhere these do nothing).

Stages allocate and free whole frames (8-16 MB at 2048 x 2048) on the stage's thread and on
the frame reader and writer threads (stages/frames.py). glibc gives each thread that
allocates its own heap ("arena") and reuses freed frames only within it, so a worker's RSS
became the sum of several heaps' high-water marks: peak RSS 517 MB with frame I/O threads
against 384 MB with one shared heap, same CPU time (2048 x 2048 / 600 cells, T = 30,
benchmarks/pipeline.py). The few threads of a worker allocate large blocks rarely, so they
lose nothing by sharing one heap.

Large blocks: see :func:`tune_heap`.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
# glibc's own ceiling for its self-adjusting mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
_FRAME_BUFFERS_FROM_HEAP = 32 * 2**20


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def tune_heap() -> bool:
    """Set up this worker's heap for frame-sized buffers; call it before the stages' threads
    start. True when set (glibc).

    - Threads created from now on allocate from the main heap (one heap, see above).
    - Frame buffers up to 32 MB come from the heap and are reused, not mapped and zeroed
      afresh for each allocation. glibc reaches this by itself (its mmap threshold grows as
      large blocks are freed) unless a threshold was set, and dask's nanny sets one for its
      workers (``MALLOC_TRIM_THRESHOLD_=65536``): every frame then costs page faults and
      zeroing, 1.6x the whole pipeline's time at 1024 x 1024 (0.27 vs 0.17 s/frame, same
      run). Freed heap goes back to the OS between stages (:func:`release_memory`).
    """
    libc = _libc()
    try:
        return bool(libc and libc.mallopt(_M_ARENA_MAX, 1)
                    and libc.mallopt(_M_MMAP_THRESHOLD, _FRAME_BUFFERS_FROM_HEAP)
                    and libc.mallopt(_M_TRIM_THRESHOLD, 2 * _FRAME_BUFFERS_FROM_HEAP))
    except AttributeError:  # not glibc
        return False


def release_memory() -> None:
    """Hand freed heap back to the OS between stages. glibc keeps large freed frame buffers
    in its heaps, so without this a worker's RSS is the sum of its stages' peaks rather
    than their maximum (measured: ~120 MB less peak RSS at 2048 x 2048)."""
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
    except AttributeError:  # not glibc: nothing to do
        pass
