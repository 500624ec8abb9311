"""Built-in fluorescence background estimators (registration only; no numpy import here).

The algorithm lives in :mod:`pyama_builtin.background.tiled_spline` and is imported when a
run uses it.
"""

from __future__ import annotations

from pydantic import Field

from pyama_framework import BackgroundRegistration, PluginParams, hookimpl


class TiledSplineParams(PluginParams):
    """Parameters of the ``tiled_spline`` background estimator."""

    tile_size: int = Field(
        16, ge=2, le=1024,
        description="Side of the square tiles whose background medians are fitted, in pixels.",
    )
    knot_spacing: int = Field(
        128, ge=16, le=8192,
        description="Distance between spline knots in pixels: the smallest scale of "
        "background variation the surface follows.",
    )
    dilation_radius: int = Field(
        10, ge=0, le=200,
        description="Pixels closer than this to a segmented cell are not used as background.",
    )
    min_background_fraction: float = Field(
        0.25, ge=0.0, le=1.0,
        description="Tiles whose cell-free pixels are less than this fraction of the tile are "
        "not used.",
    )


@hookimpl
def pyama_background_estimators():
    yield BackgroundRegistration(
        name="tiled_spline",
        summary="Smooth spline fitted to tile medians of the pixels away from cells",
        implementation="pyama_builtin.background.tiled_spline:estimate_background",
        params=TiledSplineParams,
    )
