"""The /1 viewing level of a stack, made while the stage that writes the stack streams its frames.

The level is uint8 at half size: intensity stacks percentile-normalised over frames sampled
across the movie, label stacks scaled by their largest label (see :mod:`.viewing`). Both
scales are known only at the end, so each frame's half-size image goes to a scratch file
on disk as it passes (memory stays flat in T) and is scaled and stored when the stack is
complete. This replaces a stage that decoded every full-resolution stack again (the
bytes are the same).
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ..location import scratch_file
from ..store import RECORDS_DIR
from .context import FovContext
from .viewing import half, half_labels, normalise, sample_frames, subsample, subsampled_range, to_uint8


def wanted(ctx: FovContext) -> bool:
    """Whether this run writes viewing levels (the ``caching`` section)."""
    return ctx.config.caching.enabled and not ctx.config.copy_only


def level_complete(ctx: FovContext, name: str) -> bool:
    """Whether ``<name>/1`` exists and was finished (a killed run may leave part of one)."""
    return ctx.store.has_stack(name, level=1) and bool(ctx.store.stack(name, level=1).attrs.get("complete"))


LEVEL_WRITE_BYTES = 8 * 2**20  # uint8 level frames stored per zarr call


def wait_for_levels(ctx: FovContext, remedy: str = "the cache stage makes it again") -> None:
    """Wait for the levels being stored behind the stages; a failure becomes a warning (the
    level is left without ``complete``: the cache stage makes it again)."""
    for message in ctx.behind.wait():
        ctx.warn(f"FOV {ctx.fov}: {message} ({remedy})")


class LevelWriter:
    """Collects the frames of ``images.zarr/<name>/0`` and writes ``<name>/1`` at :meth:`finish`.

    Create it right after the full-resolution stack: it removes a level left by an earlier
    run of the stage (it would describe replaced data). Call :meth:`add` with every frame as
    it is stored and :meth:`finish` (or :meth:`finish_behind`) once all are; :meth:`close`
    (also on failure) removes the scratch file.
    """

    def __init__(self, ctx: FovContext, name: str, shape: tuple[int, int, int], dtype: np.dtype, labels: bool):
        self.ctx, self.name, self.labels = ctx, name, labels
        self.n, height, width = shape
        self.dtype = np.dtype(dtype)
        ctx.store.remove(f"images.zarr/{name}/1")
        self.enabled = wanted(ctx) and height >= 2 and width >= 2
        self.small = (height // 2, width // 2)
        self.scratch_dtype = np.dtype(np.uint16) if labels else np.dtype(np.float32)
        self.frame_bytes = self.small[0] * self.small[1] * self.scratch_dtype.itemsize
        self.samples = set(sample_frames(self.n))
        self.sampled: list[np.ndarray] = []
        self.fd = None
        self.handed_over = False
        if self.enabled:
            self.path = scratch_file(ctx.store.root / RECORDS_DIR, f"level_{name}.scratch")  # local disk
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def add(self, t: int, frame: np.ndarray) -> None:
        """Frame ``t`` as stored in the full-resolution stack."""
        if not self.enabled:
            return
        frame = np.asarray(frame, dtype=self.dtype)  # what the stack holds (no copy when it already is)
        if self.labels:
            small = np.ascontiguousarray(half_labels(frame), dtype=np.uint16)
        else:
            small = half(frame)
            if t in self.samples:
                self.sampled.append(subsample(frame))
        os.pwrite(self.fd, small, t * self.frame_bytes)

    def storing(self, out) -> Callable[[int, np.ndarray], None]:
        """A :class:`~.frames.FrameWriter` store: ``out[t] = frame``, then the frame joins this level."""
        set_frame = self.ctx.store.frame_setter(out)

        def store(t: int, frame: np.ndarray) -> None:
            set_frame(t, frame)
            self.add(t, frame)
        return store

    def finish(self, max_label: int = 0) -> None:
        """Scale the collected frames and store ``<name>/1`` (labels: by ``max_label``)."""
        if self.enabled:
            self._store(self._create(), max_label)

    def finish_behind(self, max_label: int = 0) -> None:
        """:meth:`finish` on the FOV's thread behind the stages (:class:`~.frames.WorkBehind`). The array is
        created here, on the stage's thread, so that only one thread creates arrays in
        ``images.zarr``; the level thread writes its chunks, then closes this writer."""
        if not self.enabled:
            return
        out = self._create()
        self.handed_over = True
        self.ctx.behind.submit(f"viewing level of {self.name}", lambda: self._store(out, max_label))

    def _create(self):
        try:
            return self.ctx.store.create_stack(self.name, (self.n, *self.small), np.uint8, level=1)
        except BaseException:
            self._close()
            raise

    def _store(self, out, max_label: int) -> None:
        try:
            if self.labels:
                scale = np.float32(255.0 / max(int(max_label), 1))
            else:
                lo, hi = subsampled_range(self.sampled)
            # Several frames per write: zarr encodes their chunks at once (same bytes).
            per_write = max(1, min(self.n, LEVEL_WRITE_BYTES // (self.small[0] * self.small[1])))
            block = np.empty((per_write, *self.small), np.uint8)
            for first in range(0, self.n, per_write):
                count = min(per_write, self.n - first)
                for i in range(count):
                    t = first + i
                    small = np.frombuffer(os.pread(self.fd, self.frame_bytes, t * self.frame_bytes),
                                          dtype=self.scratch_dtype).reshape(self.small)
                    block[i] = (np.rint(small * scale).astype(np.uint8) if self.labels
                                else to_uint8(normalise(small, lo, hi)))
                out[first:first + count] = block[:count]
            out.attrs["complete"] = True  # the cache stage redoes a level without it
        finally:
            self._close()

    def close(self) -> None:
        """Remove the scratch file, unless the level was handed to the level thread."""
        if not self.handed_over:
            self._close()

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.path.unlink(missing_ok=True)
