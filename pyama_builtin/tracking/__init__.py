"""Built-in trackers (registration only; the algorithms are imported when a tracker runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pyama_framework import TrackerRegistration, hookimpl
from pyama_framework.types import PluginParams


class TrackerParams(PluginParams):
    """Parameters both built-in trackers share: size filters, gap closing, divisions."""

    min_size: int = Field(
        0, ge=0, le=10_000_000,
        description="Cells with fewer pixels are dropped before tracking (0 keeps all).",
    )
    max_size: int | None = Field(
        None, ge=1, le=100_000_000,
        description="Cells with more pixels are dropped before tracking (null: no limit).",
    )
    max_gap: int = Field(
        2, ge=0, le=10,
        description="Frames a cell may be missing from the segmentation and keep its ID (0 = off).",
    )
    divisions: bool = Field(
        True,
        description="Detect divisions: the mother's track ends, each daughter gets a new ID "
                    "with the mother as parent.",
    )
    division_lookahead: int = Field(
        2, ge=0, le=10,
        description="A division stands only if both daughters stay separate cells in each of "
                    "the next N frames (a clump that comes apart for a frame or two is not a "
                    "division); the tracker's output lags its input by N frames.",
    )
    min_mother_age: int = Field(
        2, ge=0, le=1000,
        description="Frames a track must exist before it can divide (tracks present in the "
                    "first frame always can).",
    )

    @model_validator(mode="after")
    def _sizes_ordered(self) -> "TrackerParams":
        if self.max_size is not None and self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) is smaller than min_size "
                             f"({self.min_size})")
        return self


class IouHungarianParams(TrackerParams):
    """Parameters of the ``iou_hungarian`` tracker. A division: two cells of a frame each
    lying mostly on one cell of the previous frame, of similar sizes adding up to about its
    area."""

    min_iou: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Smallest intersection over union for a cell to keep an ID across frames.",
    )
    iou: Literal["mask", "bbox"] = Field(
        "mask",
        description="Overlap measure: exact mask IoU, or bounding-box IoU (pyama-core's "
                    "approximation; can link cells whose boxes overlap but masks barely do).",
    )


class LapParams(TrackerParams):
    """Parameters of the ``lap`` tracker. A division: a cell replaced by two of similar sizes
    inside its extent whose areas add up to about its area."""

    max_distance: float = Field(
        1.0, gt=0.0, le=100.0,
        description="Largest centroid distance that can be linked, in median cell diameters "
                    "(after the global drift is removed).",
    )
    max_distance_px: float | None = Field(
        None, gt=0.0, le=100_000.0,
        description="The same gate in pixels; overrides max_distance when set.",
    )
    drift: bool = Field(
        True,
        description="Estimate and remove the global displacement between frames (stage drift, "
                    "flow, a colony moving as a whole) before linking.",
    )
    area_weight: float = Field(
        1.0, ge=0.0, le=100.0,
        description="Weight of the area change in the link cost (d/gate)^2 + w*ln(A1/A0)^2; "
                    "0 links on distance alone.",
    )
    split_merges: bool = Field(
        True,
        description="Split an object back between the established tracks (older than "
                    "division_lookahead frames) that the segmenter merged into it, so touching "
                    "cells joined for a frame keep their IDs.",
    )
    split_young_merges: bool = Field(
        True,
        description="With split_merges, also split merges holding younger tracks (a daughter, "
                    "a cell found again after a miss) unless two of them came from one cell "
                    "(sisters of one split, or a piece and the track it was cut from).",
    )
    extent_links: bool = Field(
        True,
        description="Link a track left without a cell to a free cell inside its extent whose "
                    "area changed too much for the gate (the segmenter found only part of the "
                    "cell, or the cell with a piece of a neighbour).",
    )
    split_daughters: bool = Field(
        True,
        description="A daughter that is itself split again within the division lookahead "
                    "still counts as present when her division is confirmed (a rod cut a "
                    "frame before it divides, one piece cut again as the daughters part).",
    )


@hookimpl
def pyama_trackers():
    yield TrackerRegistration(
        name="iou_hungarian",
        summary="Mask IoU between frames + Hungarian assignment, new IDs in any frame, "
                "gap closing, divisions",
        implementation="pyama_builtin.tracking.iou_hungarian:track_iou_hungarian",
        params=IouHungarianParams,
    )
    yield TrackerRegistration(
        name="lap",
        summary="Centroid distance after removing the global drift + linear assignment; "
                "divisions, gap closing, large motion",
        implementation="pyama_builtin.tracking.lap:track_lap",
        params=LapParams,
    )
