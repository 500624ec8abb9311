"""How a worker's heap gives memory back (glibc; elsewhere these do nothing).

Stages allocate and free whole frames (8-16 MB at 2048 x 2048) on the stage's thread and on
the frame reader and writer threads (stages/frames.py). glibc gives each thread that
allocates its own heap ("arena") and reuses freed frames only within it, so a worker's RSS
became the sum of several heaps' high-water marks: peak RSS 517 MB with frame I/O threads
against 384 MB with one shared heap, same CPU time (2048 x 2048 / 600 cells, T = 30,
benchmarks/pipeline.py). The few threads of a worker allocate large blocks rarely, so they
lose nothing by sharing one heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_ARENA_MAX = -8  # mallopt parameter number, from glibc's malloc.h


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def share_one_heap() -> bool:
    """Make threads created from now on allocate from the main heap. Call it early: glibc
    fixes the number of heaps when a thread first needs one of its own. True when set."""
    libc = _libc()
    try:
        return bool(libc and libc.mallopt(_M_ARENA_MAX, 1))
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
