"""Stage 1: copy the configured channels of one FOV from the input file into zarr."""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from .context import FovContext, raw_name
from .frames import FrameWriter
from .levels import LevelWriter

STAGE = "copy"


def read_plane(ctx: FovContext, t: int, channel: int) -> np.ndarray:
    """One (H, W) frame, with the configured Z plane or projection applied."""
    z = ctx.config.z
    if ctx.metadata.n_z <= 1 or z.projection == "none":
        return ctx.reader.read_frame(ctx.fov, t, channel, z.plane if ctx.metadata.n_z > 1 else 0)
    planes = (ctx.reader.read_frame(ctx.fov, t, channel, k) for k in range(ctx.metadata.n_z))
    if z.projection == "max":
        out = next(planes).copy()
        for plane in planes:
            np.maximum(out, plane, out=out)
        return out
    total = np.zeros(ctx.frame_shape, np.float64)
    for plane in planes:
        total += plane
    return (total / ctx.metadata.n_z if z.projection == "mean" else total).astype(np.float32)


def stored_dtype(ctx: FovContext) -> np.dtype:
    if ctx.metadata.n_z > 1 and ctx.config.z.projection in ("mean", "sum"):
        return np.dtype(np.float32)
    return np.dtype(ctx.metadata.dtype)


def run(ctx: FovContext) -> None:
    channels = ctx.config.channels.all_indices()
    stacks = {c: ctx.store.create_stack(raw_name(ctx, c), (ctx.n_frames, *ctx.frame_shape), stored_dtype(ctx))
              for c in channels}
    levels = {c: LevelWriter(ctx, raw_name(ctx, c), stacks[c].shape, stacks[c].dtype, labels=False) for c in channels}
    try:
        # Time-major: formats that interleave channels within a time point (ND2) read each
        # image once instead of once per channel. Encoding and levels run on one writer
        # thread per channel, beside the reading.
        with ExitStack() as writers:
            put = {c: writers.enter_context(FrameWriter(levels[c].storing(stacks[c]))).put for c in channels}
            for t in range(ctx.n_frames):
                for channel in channels:
                    put[channel](t, read_plane(ctx, t, channel))
                ctx.tick(STAGE, t + 1, ctx.n_frames)
        for level in levels.values():
            level.finish_behind()
    finally:
        for level in levels.values():
            level.close()
