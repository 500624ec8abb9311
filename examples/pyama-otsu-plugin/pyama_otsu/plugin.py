"""Registrations of this plugin. Cheap to import: no numpy, no scikit-image here.

pyama imports this module (through the ``pyama.plugins`` entry point in pyproject.toml),
calls the hooks, and imports ``pyama_otsu.algorithms`` only when a run uses them.
"""

from pydantic import Field

from pyama_framework import FeatureRegistration, PluginParams, SegmenterRegistration, hookimpl

PYAMA_API = ">=1.0,<2"  # pyama hook API versions this plugin works with


class OtsuParams(PluginParams):
    sigma: float = Field(1.0, ge=0.0, le=20.0, description="Gaussian smoothing before thresholding (px)")
    dark_cells: bool = Field(True, description="Cells are darker than the background (phase contrast)")
    min_size: int = Field(30, ge=1, le=100_000, description="Smallest object kept (px)")


@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(
        name="otsu",
        summary="Gaussian blur, global Otsu threshold, connected components",
        implementation="pyama_otsu.algorithms:segment_otsu",
        params=OtsuParams,
    )


@hookimpl
def pyama_features():
    yield FeatureRegistration(
        name="major_axis",
        summary="Length of the cell's major axis (px), from its second moments",
        implementation="pyama_otsu.algorithms:major_axis",
        channel_kind="phase",
    )
