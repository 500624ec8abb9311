"""pyama-framework: a plugin framework for per-cell traces from time-lapse microscopy.

The data path is a straight line: reader -> store -> stages -> traces.
``hookspecs`` lists every extension point, ``types`` the registration objects plugins
return, ``registry`` discovers them, ``config`` validates a run, ``store`` owns the zarr
layout, ``stages`` hold the per-FOV steps and ``runner`` drives them over FOVs.
"""

from .api_version import HOOK_API_VERSION
from .hookspecs import hookimpl
from .readers import ChannelInfo, ImageMetadata, Reader, ReaderError
from .types import (
    BackgroundRegistration,
    CellFrame,
    FeatureRegistration,
    FittingModelRegistration,
    ModelParameter,
    NoParams,
    PipelineRegistration,
    PluginParams,
    ReaderRegistration,
    SegmenterRegistration,
    TrackedFrame,
    TrackerRegistration,
)

__version__ = "0.1.0"

__all__ = [
    "HOOK_API_VERSION",
    "hookimpl",
    "BackgroundRegistration",
    "CellFrame",
    "ChannelInfo",
    "FeatureRegistration",
    "FittingModelRegistration",
    "ImageMetadata",
    "ModelParameter",
    "NoParams",
    "PipelineRegistration",
    "PluginParams",
    "Reader",
    "ReaderError",
    "ReaderRegistration",
    "SegmenterRegistration",
    "TrackedFrame",
    "TrackerRegistration",
    "open_results",
    "ResultsError",
]


def __getattr__(name: str):
    # open_results pulls in zarr, pandas and xarray: imported on first use, not with the package.
    if name in ("open_results", "ResultsError"):
        from . import results

        return getattr(results, name)
    raise AttributeError(f"module 'pyama_framework' has no attribute {name!r}")
