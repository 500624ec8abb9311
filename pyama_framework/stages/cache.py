"""Stage 7: the /1/ visualisation level (uint8, half size) of every stack in images.zarr.

Intensity stacks are percentile-normalised over frames sampled across the movie; label
stacks are scaled by their largest label. Non-critical: the runner turns a failure here into
a warning.
"""

from __future__ import annotations

import numpy as np

from .context import FovContext
from .viewing import half, half_labels, intensity_range, normalise, sample_frames, to_uint8

STAGE = "cache"


def _is_labels(name: str) -> bool:
    return name.startswith("seg_")


def run(ctx: FovContext) -> None:
    names = ctx.store.stack_names()
    done, total = 0, len(names) * ctx.n_frames
    for name in names:
        stack = ctx.store.stack(name)
        n, h, w = stack.shape
        if h < 2 or w < 2:
            continue
        out = ctx.store.create_stack(name, (n, h // 2, w // 2), np.uint8, level=1)
        if _is_labels(name):
            top = max(int(stack.attrs["max_label"]), 1)  # recorded by the segment/track stages
            scale = np.float32(255.0 / top)
            for t in range(n):
                out[t] = np.rint(half_labels(stack[t]) * scale).astype(np.uint8)
                done += 1
                ctx.tick(STAGE, done, total)
        else:
            lo, hi = intensity_range(stack[t] for t in sample_frames(n))
            for t in range(n):
                out[t] = to_uint8(normalise(half(stack[t]), lo, hi))
                done += 1
                ctx.tick(STAGE, done, total)
