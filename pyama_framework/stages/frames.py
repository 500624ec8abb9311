"""Frame I/O beside the computation: the next frame is read, and the last one stored, on a
helper thread while the stage's own thread computes.

zarr decodes and encodes chunks in native code that releases the GIL (blosc), while the
thread that asked waits. In a 2048 x 2048 run that wait was a third of the wall time
(profile: 7.4 of 21.8 s), time in which the stage computed nothing. With these helpers a
stage's decode, encode and viewing level run on the other core. Order and bytes are those
of the plain loop: one reader and one writer thread, frames taken and stored in order.
Memory stays bounded: at most ``depth`` frames wait on each side.

Stages whose plugin is a pure function of one frame (segment, background, extract) also
hand the plugin call to the reading threads, ``ctx.frame_threads`` of them, so that a lone
FOV uses the cores that FOV-level parallelism leaves idle (executors/native_threads.py).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator, TypeVar

Item = TypeVar("Item")


def read_ahead(read: Callable[[int], Item], n: int, depth: int = 1, threads: int = 1) -> Iterator[Item]:
    """``read(0)``, ..., ``read(n - 1)`` in order, each started ``depth`` frames early on a thread
    (``depth`` >= 1: while frame ``t`` is in use, frames up to ``t + depth`` are read).

    With ``threads`` > 1, ``read`` may be a whole frame's work (decode and segment): up to
    ``threads`` frames are then worked on at once (``depth`` is raised to ``threads``).
    ``read`` must be safe to call from several threads: a pure function of its frame.
    Closing the iterator early (a failure or a cancelled run in the loop that consumes it)
    waits for the frames in flight and drops them.
    """
    if n <= 0:
        return
    threads = max(1, threads)
    depth = max(depth, threads)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pyama-read")
    pending: deque[Future] = deque()
    try:
        for t in range(min(depth, n)):
            pending.append(pool.submit(read, t))
        for t in range(n):
            if t + depth < n:
                pending.append(pool.submit(read, t + depth))
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


class FrameWriter:
    """Calls ``store(t, frame)`` for each :meth:`put` frame, in order, on one thread.

    ``store`` typically writes ``out[t] = frame`` and adds the frame to a viewing level.
    :meth:`put` waits while ``depth`` frames are still being stored (bounded memory) and
    raises a failure of an earlier store; :meth:`close` waits for the rest and raises any
    failure. Use it as a context manager: on the way out of a failing stage it still
    waits, so nothing is written after the stage has cleaned up. The caller must not change
    a frame after handing it over.
    """

    def __init__(self, store: Callable[[int, object], None], depth: int = 1):
        self.store, self.depth = store, depth
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyama-write")
        self.pending: deque[Future] = deque()

    def put(self, t: int, frame) -> None:
        while len(self.pending) >= self.depth:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self.store, t, frame))

    def close(self) -> None:
        """Wait for every frame to be stored; raise the first failure."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
            return
        for future in self.pending:  # the stage failed: stop what has not started, wait for the rest
            future.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pending.clear()


class WorkBehind:
    """Work of one FOV that finishes behind its stages, on one thread, in order (the viewing
    levels: :meth:`.levels.LevelWriter.finish_behind`): the next stage starts meanwhile.
    """

    def __init__(self) -> None:
        self.pool: ThreadPoolExecutor | None = None
        self.pending: deque[tuple[str, Future]] = deque()

    def submit(self, what: str, work: Callable[[], None]) -> None:
        """Run ``work`` after the work submitted before; ``what`` names it in failures."""
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyama-behind")
        self.pending.append((what, self.pool.submit(work)))

    def wait(self) -> list[str]:
        """Wait for all submitted work; one message per piece that failed."""
        failed = []
        try:
            while self.pending:
                what, future = self.pending[0]
                try:
                    future.result()
                except Exception as exc:
                    failed.append(f"{what} failed: {type(exc).__name__}: {exc}")
                self.pending.popleft()
        finally:
            if self.pool is not None and not self.pending:
                self.pool.shutdown(wait=True)
                self.pool = None
        return failed
