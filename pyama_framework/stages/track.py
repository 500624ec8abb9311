"""Stage 3: link per-frame labels into cell identities with the configured tracker."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .context import Cancelled, FovContext, StageError, as_label_image, seg_labeled_name, seg_tracked_name

STAGE = "track"


def run(ctx: FovContext) -> None:
    selected = ctx.resolved.tracker
    track = selected.registration.load()
    who = f"tracker '{selected.registration.name}'"
    labeled = ctx.store.stack(seg_labeled_name(ctx))
    out = ctx.store.create_stack(seg_tracked_name(ctx), labeled.shape, np.uint16)

    def frames() -> Iterator[np.ndarray]:
        for t in range(ctx.n_frames):  # streamed: the tracker never holds the stack
            yield labeled[t]

    written, top = 0, 0
    try:
        for t, tracked in enumerate(track(frames(), **selected.kwargs())):
            if t >= ctx.n_frames:
                raise StageError(f"{who} yielded more frames than it was given ({ctx.n_frames})")
            tracked = as_label_image(tracked, ctx.frame_shape, who)
            out[t] = tracked
            top = max(top, int(tracked.max(initial=0)))
            written = t + 1
            ctx.tick(STAGE, written, ctx.n_frames)
    except (StageError, Cancelled):
        raise
    except Exception as exc:
        raise StageError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    if written != ctx.n_frames:
        raise StageError(f"{who} yielded {written} frames for {ctx.n_frames} inputs")
    out.attrs["max_label"] = top  # lets the viewing level scale labels without a second pass
