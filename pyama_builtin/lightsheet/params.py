"""The ``pipeline_params`` section of ``pipeline: lightsheet`` (see docs/lightsheet.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from pyama_framework.types import PluginParams


class BackgroundParams(PluginParams):
    folder: Path | None = Field(
        None, description="Folder holding the camera backgrounds; default: the input's folder and "
                          "its two parents. A missing file there falls back to the percentile")
    file_pattern: str = Field("Background_{camera}.tif", description="Background file name; {camera} is the camera index")
    percentile: float = Field(3.0, ge=0.0, le=100.0, description="Without a file: subtract this percentile of the view's intensities")


class DeadPixelParams(PluginParams):
    enabled: bool = Field(True, description="Detect and correct dead (stuck or hot) pixels")
    threshold: float = Field(8.0, gt=0.0, description="Outlier when the pixel differs from its 3x3 median by this many robust sigmas")
    min_fraction: float = Field(0.5, gt=0.0, le=1.0, description="Dead when an outlier in at least this fraction of the sampled planes")


class MaskParams(PluginParams):
    enabled: bool = Field(True, description="Write a foreground mask volume")
    method: Literal["otsu", "percentile"] = Field("otsu", description="Threshold from the view's histogram: Otsu, or a percentile")
    percentile: float = Field(99.0, ge=0.0, le=100.0, description="Percentile used when method is 'percentile'")
    scale: float = Field(1.0, gt=0.0, description="Multiplies the threshold (below 1: a larger mask)")
    block: int = Field(4, ge=1, le=64, description="The mask is decided on block x block means (smoothing, and speed)")


class OutputParams(PluginParams):
    chunks: tuple[int, int, int] = Field((1, 256, 256), description="Zarr chunk shape (Z, Y, X) of the volumes")
    shards: tuple[int, int, int] = Field((16, 2048, 2048), description="Zarr shard shape (Z, Y, X); a multiple of chunks")

    @model_validator(mode="after")
    def _shards_hold_chunks(self) -> "OutputParams":
        if any(c < 1 for c in self.chunks) or any(s % c for s, c in zip(self.shards, self.chunks)):
            raise ValueError(f"shards {self.shards} must be positive multiples of chunks {self.chunks}")
        return self


class LightsheetParams(PluginParams):
    views: list[str] = Field(default_factory=list, description="Views to process (e.g. ['cam0_ch0']); empty = all")
    slab: int = Field(16, ge=1, le=4096, description="Z planes read and processed at a time (memory, not results)")
    sample_every: int = Field(8, ge=1, description="Calibration (background percentile, dead pixels, threshold) reads every n-th Z plane")
    background: BackgroundParams = Field(default_factory=BackgroundParams, description="{folder, file_pattern, percentile}: Background_N.tif per camera, else a percentile")
    dead_pixels: DeadPixelParams = Field(default_factory=DeadPixelParams, description="{enabled, threshold: 8 sigmas, min_fraction: 0.5 of sampled planes}")
    mask: MaskParams = Field(default_factory=MaskParams, description="{enabled, method: otsu|percentile, percentile, scale, block: 4}")
    output: OutputParams = Field(default_factory=OutputParams, description="{chunks: [1, 256, 256], shards: [16, 2048, 2048]} (Z, Y, X) of the zarr volumes")
    diagnostics: bool = Field(True, description="Write PNGs: projections, mask overlay, intensity histogram")
