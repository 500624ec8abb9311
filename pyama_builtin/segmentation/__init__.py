"""Built-in segmenters (registration only; the algorithms are imported when a segmenter runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from pyama_framework import SegmenterRegistration, hookimpl
from pyama_framework.types import PluginParams


class CellObjectParams(PluginParams):
    """Parameters both built-in segmenters share: the cell width every size scales with,
    debris rejection, the split of touching cells and the size limits."""

    cell_diameter: float = Field(
        0.0, ge=0.0, le=1000.0,
        description="Typical cell width in px (short axis of a rod); 0 = estimate per frame.",
    )
    cell_diameter_um: float = Field(
        0.0, ge=0.0, le=10_000.0,
        description="Typical cell width in µm, converted with the file's pixel size "
                    "(0 = unused; set this or cell_diameter, not both).",
    )
    min_area_fraction: float = Field(
        0.25, ge=0.0, le=100.0,
        description="Objects smaller than this x cell_diameter^2 px are debris.",
    )
    min_thickness: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Objects thinner than this x cell_diameter are halo fragments.",
    )
    min_contrast: float = Field(
        2.0, ge=0.0, le=1000.0,
        description="Objects whose mean contrast against the background is below this many "
                    "noise standard deviations are rejected.",
    )
    speck_area_fraction: float = Field(
        0.4, ge=0.0, le=1.0,
        description="In a frame of rods (area-weighted median aspect ratio >= 2), round objects "
                    "smaller than this x the median object area are debris specks (0 = off).",
    )
    speck_max_aspect: float = Field(
        1.3, ge=1.0, le=10.0,
        description="Largest aspect ratio (long / short axis) of such a speck.",
    )
    split_touching_cells: bool = Field(
        True,
        description="Split touching cells with a marker-controlled watershed on the "
                    "distance transform.",
    )
    split_h: float = Field(
        0.1, gt=0.0, le=2.0,
        description="Marker height of the watershed, x cell_diameter (larger splits less).",
    )
    min_size: int = Field(
        50, ge=1, le=10_000_000,
        description="Objects with fewer pixels are discarded.",
    )
    max_size: int = Field(
        10_000, ge=1, le=100_000_000,
        description="Objects with more pixels are discarded.",
    )

    @model_validator(mode="after")
    def _sizes_consistent(self) -> "CellObjectParams":
        if self.cell_diameter and self.cell_diameter_um:
            raise ValueError("set cell_diameter (px) or cell_diameter_um, not both")
        if self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) is smaller than min_size "
                             f"({self.min_size})")
        return self


class LogStdParams(CellObjectParams):
    """Parameters of the ``logstd`` segmenter.

    Defaults were chosen by SEG on three real annotated movies (stem cells, myoblasts,
    B. subtilis) and the synthetic scenes together; see docs/algorithms.md. Sizes scale with
    ``cell_diameter`` in px, or ``cell_diameter_um`` converted with the file's pixel size
    (estimated per frame when both are 0). The spec's morphology is
    ``footprint_radius: 7, iterations: 3`` (it erases cells narrower than ~40 px).
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
    min_std: float = Field(
        1.0, ge=0.0, le=1e6,
        description="Lowest local standard deviation (grey levels) that can be foreground; "
                    "removes the contour lines of smooth 8-bit frames.",
    )
    footprint_radius: int = Field(
        1, ge=0, le=25,
        description="Radius (px) of the disk used for closing and opening; 0 skips both.",
    )
    iterations: int = Field(
        1, ge=1, le=10,
        description="Repetitions of each dilation/erosion in the closing and the opening.",
    )
    polarity: Literal["auto", "dark", "bright", "none"] = Field(
        "auto",
        description="Cell bodies darker ('dark', phase contrast) or brighter ('bright', "
                    "bright-field) than the background; 'auto' reads it from each frame; "
                    "'none' keeps the halo.",
    )
    body_contrast: float = Field(
        0.0, ge=0.0, le=100.0,
        description="Body pixels deviate from the local background by more than this many "
                    "noise standard deviations.",
    )
    body: Literal["auto", "background", "tophat"] = Field(
        "auto",
        description="Cell-body test: 'background' = deviation from the 64-px block "
                    "background; 'tophat' = also above Li's threshold of a top-hat at cell "
                    "scale (drops the glow of bright cells, ~1.2x the time); 'auto' = "
                    "'tophat' for bright cells, 'background' for dark ones.",
    )
    tophat_scale: float = Field(
        1.5, ge=1.0, le=5.0,
        description="Side of the body top-hat's square, x the cell width (top-hat body).",
    )
    edge_growth: int = Field(
        1, ge=0, le=10,
        description="Grow each cell by up to this many px into log-STD edge pixels not "
                    "clearly on the halo's side of the background (dense colonies, where "
                    "neighbouring halos trim the rims; 0 = off). See docs/algorithms.md.",
    )
    edge_tolerance: float = Field(
        2.0, ge=0.0, le=100.0,
        description="How many noise sigma on the halo's side of the background a grown "
                    "edge pixel may be (edge_growth).",
    )
    crowded_tolerance: float = Field(
        6.0, ge=0.0, le=100.0,
        description="Edge growth between touching cells (another cell within crowded_reach "
                    "px along a row or column) may take pixels up to this many noise sigma on "
                    "the halo's side: there the neighbours' halos brighten the rims "
                    "(<= edge_tolerance = off).",
    )
    crowded_reach: int = Field(
        7, ge=1, le=50,
        description="How far (px) another cell may be for a pixel to count as between cells "
                    "(crowded_tolerance).",
    )
    outline_gap: int = Field(
        4, ge=0, le=40,
        description="Fill the interior of a cell whose outline has gaps: regions enclosed "
                    "after closing the log-STD mask by a disk of this radius (px, even; "
                    "computed at half resolution) join the cells when their mean contrast "
                    "reaches min_contrast (0 = off). See docs/algorithms.md.",
    )
    faint_contrast: float = Field(
        0.6, ge=0.0, le=10.0,
        description="Add faint cells lying between found ones (dense colonies): objects in "
                    "the free space next to found cells that stand out of their surroundings "
                    "at cell scale (top-hat, tophat_scale) at least this x as much as the found "
                    "cells typically do (0 = off). See docs/algorithms.md, round 9.",
    )
    clump_h: float = Field(
        3.0, ge=0.0, le=100.0,
        description="Cut clumps (objects > 2.5x the median area) of cells packed side by side "
                    "by a watershed of the smoothed frame: marker height in noise sigma "
                    "(0 = off). See docs/algorithms.md, round 10.",
    )

    max_width: float = Field(
        14.0, ge=0.0, le=1000.0,
        description="Frames whose cells are wider than this (px; cell_diameter or the "
                    "estimate) are shrunk until they are 10 px wide, segmented there and the "
                    "labels enlarged back: the steps' sizes in px suit cells ~8-10 px wide "
                    "(0 = off). See docs/algorithms.md, round 13.",
    )

    @field_validator("window_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"window_size must be odd, got {value}")
        return value


class TopHatParams(CellObjectParams):
    """Parameters of the ``tophat`` segmenter (grey top-hat at cell scale; see
    docs/algorithms.md for when to pick it over ``logstd``: cells in mother-machine trenches
    and isolated rods, best with ``cell_diameter`` or ``cell_diameter_um`` given)."""

    scale: float = Field(
        1.5, ge=1.0, le=5.0,
        description="Side of the top-hat's square, x the cell width.",
    )
    polarity: Literal["auto", "dark", "bright"] = Field(
        "auto",
        description="Cells darker ('dark': black top-hat, phase contrast) or brighter "
                    "('bright': white top-hat) than their surroundings; 'auto' reads it "
                    "from each frame.",
    )
    high: float = Field(
        6.0, ge=0.0, le=100.0,
        description="Hysteresis: a component is kept when it reaches Otsu's threshold of "
                    "the top-hat, and at least background + this many robust sigma.",
    )
    low: float = Field(
        3.0, ge=0.0, le=100.0,
        description="Hysteresis: pixels above Li's threshold, and at least background + "
                    "this many robust sigma, join a kept component.",
    )
    min_contrast: float = Field(
        2.0, ge=0.0, le=1000.0,
        description="Objects whose mean top-hat above background is below this many "
                    "pixel-noise sigma are rejected.",
    )
    min_size: int = Field(20, ge=1, le=10_000_000, description="Objects with fewer pixels are discarded.")

    @model_validator(mode="after")
    def _consistent(self) -> "TopHatParams":
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) is larger than high ({self.high})")
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
    yield SegmenterRegistration(
        name="tophat",
        summary="Grey top-hat at cell scale + hysteresis threshold + watershed split "
                "(bacteria in trenches, isolated rods)",
        implementation="pyama_builtin.segmentation.tophat:segment_tophat",
        params=TopHatParams,
    )
