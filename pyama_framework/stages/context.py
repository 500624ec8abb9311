"""What every stage of one FOV gets: the store, the opened reader, the resolved config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import ResolvedConfig
from ..readers import ImageMetadata, Reader
from ..store import FovStore
from .frames import WorkBehind


class Cancelled(Exception):
    """The run was interrupted; the current stage stops without recording completion."""


class StageError(Exception):
    """A stage (or the plugin it runs) failed for this FOV; the message says which and why."""


@dataclass
class FovContext:
    fov: int
    store: FovStore
    resolved: ResolvedConfig
    reader: Reader
    metadata: ImageMetadata
    basename: str
    report: Callable[[str, int, int], None] = lambda stage, done, total: None
    cancelled: Callable[[], bool] = lambda: False
    warnings: list[str] = field(default_factory=list)
    #: Fingerprint of the stage being run; a stage that records its own partial progress
    #: (units of work inside it) keys those records with it so a resumed run trusts them.
    stage_fingerprint: str = ""
    #: Frames worked on at once by the stages that call a pure per-frame plugin (segment,
    #: background, extract); see executors.native_threads.frame_threads.
    frame_threads: int = 1
    #: Work that finishes behind the stages (viewing levels); waited for by the cache stage
    #: and at the end of the FOV.
    behind: WorkBehind = field(default_factory=WorkBehind)

    @property
    def config(self):
        return self.resolved.config

    @property
    def n_frames(self) -> int:
        return self.metadata.n_frames

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.metadata.height, self.metadata.width

    def tick(self, stage: str, done: int, total: int) -> None:
        """Report progress and stop promptly when the run was interrupted."""
        if self.cancelled():
            raise Cancelled()
        self.report(stage, done, total)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


# Names of the stacks in images.zarr (spec "Output Structure").
def raw_name(ctx: FovContext, channel: int) -> str:
    pc = ctx.config.channels.pc
    return f"pc_ch_{channel}" if pc is not None and pc.channel == channel else f"fl_ch_{channel}"


def seg_labeled_name(ctx: FovContext) -> str:
    return f"seg_labeled_ch_{ctx.config.channels.pc.channel}"


def seg_tracked_name(ctx: FovContext) -> str:
    return f"seg_tracked_ch_{ctx.config.channels.pc.channel}"


def background_name(channel: int) -> str:
    return f"fl_background_ch_{channel}"


def as_label_image(labels: np.ndarray, shape: tuple[int, int], who: str) -> np.ndarray:
    """Check a plugin's label output and convert it to the stored uint16."""
    return label_image_and_ids(labels, shape, who, ids=False)[0]


def label_image_and_ids(labels: np.ndarray, shape: tuple[int, int], who: str,
                        ids: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`as_label_image`, and the sorted labels (> 0) present in it when ``ids``.

    Both come from one scan of the frame for its labelled pixels (a few % of a frame of
    cells), instead of a full-frame min, max and presence pass each.
    """
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise StageError(f"{who} returned shape {labels.shape}, expected {shape}")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise StageError(f"{who} returned dtype {labels.dtype}; labels must be integers")
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    fits = labels.dtype.kind == "u" and labels.dtype.itemsize <= 2
    present = None
    if ids or not fits:  # a dtype of at most 16 unsigned bits needs no range check
        flat = labels.ravel()
        values = flat[flat != 0]
        top = int(values.max()) if values.size else 0
        if top > np.iinfo(np.uint16).max or (labels.dtype.kind == "i" and values.size and values.min() < 0):
            raise StageError(f"{who} returned label values outside 0..65535")
        if ids:
            seen = np.zeros(top + 1, dtype=bool)
            seen[values] = True
            present = np.flatnonzero(seen)
    return labels.astype(np.uint16, copy=False), present
