"""Stage 7: the /1/ visualisation level (uint8, half size) of every stack in images.zarr.

Intensity stacks are percentile-normalised over frames sampled across the movie; label
stacks are scaled by their largest label. The stages that write a stack make its level
while its frames stream by (:mod:`.levels`); this stage only fills in the levels that are
missing (a stack written while ``caching`` was off, or by an older version), by reading
the stack again. Non-critical: the runner turns a failure here into a warning.
"""

from __future__ import annotations

import numpy as np

from .context import FovContext
from .levels import level_complete, wait_for_levels
from .viewing import half, half_labels, intensity_range, normalise, sample_frames, to_uint8

STAGE = "cache"


def _is_labels(name: str) -> bool:
    return name.startswith("seg_")


def run(ctx: FovContext) -> dict:
    wait_for_levels(ctx)  # the levels the stages finish behind them; a failed one is made here
    names = [name for name in ctx.store.stack_names() if not level_complete(ctx, name)]
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
        out.attrs["complete"] = True  # a level cut short by a killed run is redone
    return {"levels_filled": len(names)}
