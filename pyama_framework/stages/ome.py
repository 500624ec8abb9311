"""Final stage: OME-NGFF metadata on images.zarr and the FOV facts readers of the results need
(pixel size, frame times, channel names), recorded from the reader at run time.

Non-critical: the arrays and traces are complete without it; the runner turns a failure
into a warning. It reruns whenever an array stage or the frame times change.
"""

from __future__ import annotations

from typing import Any

from ..omezarr import NGFF_VERSION, write_fov_ome
from .context import FovContext
from .extract import frame_times

STAGE = "ome"


def time_source(ctx: FovContext) -> str:
    """Where :func:`~pyama_framework.stages.extract.frame_times` takes the times from."""
    if ctx.config.extraction.time_mapping is not None:
        return "time_mapping"
    stamps = ctx.metadata.timestamps_s
    if stamps is not None and len(stamps) > ctx.fov and len(stamps[ctx.fov]) == ctx.n_frames:
        return "file timestamps"
    return "frame_interval"


def settings(ctx: FovContext) -> dict[str, Any]:
    return {"ngff": NGFF_VERSION, "pixel_size_um": ctx.metadata.pixel_size_um,
            "times": [float(t) for t in frame_times(ctx)], "n_fovs": ctx.metadata.n_fovs}


def run(ctx: FovContext) -> dict:
    extra = {"time_source": time_source(ctx), "n_fovs": ctx.metadata.n_fovs,
             "channel_names": {str(c.index): c.name for c in ctx.metadata.channels},
             "shape": [ctx.n_frames, *ctx.frame_shape]}
    images = write_fov_ome(ctx.store.images_path, ctx.metadata.pixel_size_um, frame_times(ctx), extra)
    return {"images": images}
