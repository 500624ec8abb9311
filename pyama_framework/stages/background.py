"""Stage 4: estimate the background of every fluorescence frame."""

from __future__ import annotations

from contextlib import closing

import numpy as np

from .context import FovContext, StageError, background_name, raw_name, seg_labeled_name
from .frames import FrameWriter, read_ahead
from .levels import LevelWriter

STAGE = "background"


def run(ctx: FovContext) -> None:
    selected = ctx.resolved.background
    estimate = selected.registration.load()
    kwargs = selected.kwargs()
    who = f"background estimator '{selected.registration.name}'"
    labels = ctx.store.frames(seg_labeled_name(ctx))
    channels = [c.channel for c in ctx.config.channels.fl]
    total, done = len(channels) * ctx.n_frames, 0
    for channel in channels:
        raw = ctx.store.frames(raw_name(ctx, channel))
        out = ctx.store.create_stack(background_name(channel), raw.shape, np.float32)
        level = LevelWriter(ctx, background_name(channel), out.shape, out.dtype, labels=False)

        def estimate_frame(t: int, raw=raw, channel=channel) -> np.ndarray:  # on ctx.frame_threads threads
            try:
                background = np.asarray(estimate(raw[t], labels[t], **kwargs))
            except Exception as exc:
                raise StageError(f"{who} failed on channel {channel}, frame {t}: {type(exc).__name__}: {exc}") from exc
            if background.shape != ctx.frame_shape:
                raise StageError(f"{who} returned shape {background.shape}, expected {ctx.frame_shape}")
            return background.astype(np.float32, copy=False)

        try:
            with FrameWriter(level.storing(out)) as writer, \
                    closing(read_ahead(estimate_frame, ctx.n_frames, threads=ctx.frame_threads)) as frames:
                for t, background in enumerate(frames):
                    writer.put(t, background)
                    done += 1
                    ctx.tick(STAGE, done, total)
            level.finish_behind()
        finally:
            level.close()
