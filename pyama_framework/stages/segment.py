"""Stage 2: segment every phase-contrast frame with the configured segmenter."""

from __future__ import annotations

import inspect
from contextlib import closing

import numpy as np

from .context import FovContext, StageError, as_label_image, raw_name, seg_labeled_name
from .frames import FrameWriter, read_ahead
from .levels import LevelWriter

STAGE = "segment"


def run(ctx: FovContext) -> None:
    selected = ctx.resolved.segmenter
    segment = selected.registration.load()
    kwargs = selected.kwargs()
    if "pixel_size_um" in inspect.signature(segment).parameters:  # sizes given in µm need the file's scale
        kwargs["pixel_size_um"] = ctx.metadata.pixel_size_um
    who = f"segmenter '{selected.registration.name}'"
    phase = ctx.store.frames(raw_name(ctx, ctx.config.channels.pc.channel))
    out = ctx.store.create_stack(seg_labeled_name(ctx), phase.shape, np.uint16)
    level = LevelWriter(ctx, seg_labeled_name(ctx), out.shape, out.dtype, labels=True)
    def segment_frame(t: int) -> tuple[np.ndarray, int]:  # on up to ctx.frame_threads threads at once
        try:
            labels = segment(phase[t], **kwargs)
        except Exception as exc:
            raise StageError(f"{who} failed on frame {t}: {type(exc).__name__}: {exc}") from exc
        labels = as_label_image(labels, ctx.frame_shape, who)
        return labels, int(labels.max(initial=0))

    top = 0
    try:
        with FrameWriter(level.storing(out)) as writer, \
                closing(read_ahead(segment_frame, ctx.n_frames, threads=ctx.frame_threads)) as frames:
            for t, (labels, frame_top) in enumerate(frames):
                writer.put(t, labels)
                top = max(top, frame_top)
                ctx.tick(STAGE, t + 1, ctx.n_frames)
        out.attrs["max_label"] = top  # lets a viewing level scale labels without a second pass
        level.finish_behind(top)
    finally:
        level.close()
