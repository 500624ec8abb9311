"""Built-in segmenters (registration only; the algorithms are imported when a segmenter runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pyama_framework import SegmenterRegistration, hookimpl
from pyama_framework.types import PluginParams


class LogStdParams(PluginParams):
    """Parameters of the ``logstd`` segmenter.

    Defaults were chosen by accuracy on the synthetic phase-contrast scenes (cells of radius
    6-12 px): the spec's closing/opening by disk(7) x 3 erases cells smaller than ~21 px in
    radius, so the default disk is 1 px; set ``footprint_radius: 7, iterations: 3`` for the
    spec's behaviour on large cells.
    """

    window_size: int = Field(
        3, ge=3, le=15,
        description="Side of the square window of the local standard deviation (odd).",
    )
    threshold_method: Literal["mode_sigma", "valley"] = Field(
        "mode_sigma",
        description="Log-STD threshold: 'mode_sigma' = histogram mode + n_sigma x spread "
                    "of the values below it (published pyama rule); 'valley' = first minimum "
                    "of the smoothed histogram above the background mode.",
    )
    n_sigma: float = Field(
        3.0, ge=0.0, le=20.0,
        description="Multiplier of the spread in the 'mode_sigma' threshold.",
    )
    bins: int = Field(
        200, ge=10, le=10_000,
        description="Number of bins of the log-STD histogram.",
    )
    footprint_radius: int = Field(
        1, ge=0, le=25,
        description="Radius (px) of the disk used for closing and opening; 0 skips both.",
    )
    iterations: int = Field(
        1, ge=1, le=10,
        description="Repetitions of each dilation/erosion in the closing and the opening.",
    )
    remove_halo: bool = Field(
        True,
        description="Keep only pixels darker than the local background, removing the bright "
                    "phase-contrast halo (which otherwise widens cells by ~3 px and joins "
                    "neighbours). Turn off if cells are not darker than the background.",
    )
    min_size: int = Field(
        50, ge=1, le=10_000_000,
        description="Objects with fewer pixels are discarded.",
    )
    max_size: int = Field(
        10_000, ge=1, le=100_000_000,
        description="Objects with more pixels are discarded.",
    )

    @field_validator("window_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"window_size must be odd, got {value}")
        return value

    @model_validator(mode="after")
    def _sizes_ordered(self) -> "LogStdParams":
        if self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) is smaller than min_size "
                             f"({self.min_size})")
        return self


@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(
        name="logstd",
        summary="Log local standard deviation + histogram threshold + morphology "
                "(phase contrast)",
        implementation="pyama_builtin.segmentation.logstd:segment_logstd",
        params=LogStdParams,
    )
