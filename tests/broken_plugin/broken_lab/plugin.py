"""Registrations of the broken plugin (light: pydantic and pyama only)."""

from pydantic import BaseModel, ConfigDict, Field

from pyama_framework import (BackgroundRegistration, FeatureRegistration, FittingModelRegistration, ModelParameter,
                             PluginParams, ReaderRegistration, SegmenterRegistration, TrackerRegistration, hookimpl)

IMPL = "broken_lab.algorithms"


class TypoFriendlyParams(BaseModel):  # not a PluginParams: unknown keys are silently dropped
    model_config = ConfigDict(extra="ignore")
    sigma: float = Field(1.0, description="smoothing (px)")


class UndescribedParams(PluginParams):
    sigma: float = 1.0


class RequiredParams(PluginParams):
    sigma: float = Field(description="smoothing (px)")


@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="broken_inplace", summary="modifies its input",
                                implementation=f"{IMPL}:segment_inplace")
    yield SegmenterRegistration(name="broken_float", summary="returns float labels",
                                implementation=f"{IMPL}:segment_float")
    yield SegmenterRegistration(name="broken_random", summary="not deterministic",
                                implementation=f"{IMPL}:segment_random")
    yield SegmenterRegistration(name="broken_typo", summary="params accept typos",
                                implementation=f"{IMPL}:segment_ok", params=TypoFriendlyParams)
    yield SegmenterRegistration(name="broken_undescribed", summary="a param without description",
                                implementation=f"{IMPL}:segment_ok", params=UndescribedParams)
    yield SegmenterRegistration(name="broken_required", summary="a param without default",
                                implementation=f"{IMPL}:segment_ok", params=RequiredParams)
    yield SegmenterRegistration(name="broken_crash_in_run", summary="fine on one frame, fails in a run",
                                implementation=f"{IMPL}:segment_wrong_shape_later")


@hookimpl
def pyama_trackers():
    yield TrackerRegistration(name="broken_hoarder", summary="reads the whole movie first",
                              implementation=f"{IMPL}:track_hoarding")
    yield TrackerRegistration(name="broken_short", summary="drops the last frame",
                              implementation=f"{IMPL}:track_short")


@hookimpl
def pyama_background_estimators():
    yield BackgroundRegistration(name="broken_float64", summary="returns float64",
                                 implementation=f"{IMPL}:background_float64")


@hookimpl
def pyama_features():
    yield FeatureRegistration(name="broken_fast_path", summary="fast path disagrees with the per-cell call",
                              implementation=f"{IMPL}:mean_intensity", frame_implementation=f"{IMPL}:mean_intensity_frame")


@hookimpl
def pyama_readers():
    yield ReaderRegistration(name="broken_npy", summary="leaks numpy errors on damaged files",
                             implementation=f"{IMPL}:NpyReader", suffixes=(".npy",))


@hookimpl
def pyama_fitting_models():
    yield FittingModelRegistration(
        name="broken_jacobian", summary="exponential with a wrong Jacobian", implementation=f"{IMPL}:exponential",
        jacobian=f"{IMPL}:exponential_wrong_jacobian", time_unit="h",
        parameters=(ModelParameter("amplitude", 100.0, 0.0, 1e6, description="value at t = 0"),
                    ModelParameter("rate", 0.1, 0.0, 10.0, unit="1/h", description="decay rate")))
