"""Built-in pipelines: ``timelapse`` (per-cell traces, the default) and ``lightsheet``
(preprocessed light-sheet volumes). Registration only; the stage tables are imported lazily.
"""

from __future__ import annotations

from pyama_framework import PipelineRegistration, hookimpl
from pyama_framework.types import NoParams

TIMELAPSE_OUTPUTS = (
    "fov_NNN/images.zarr (raw, segmentation, tracked labels, background per channel), "
    "fov_NNN/cells.zarr (per-cell crops), fov_NNN/<basename>_fov_NNN_traces.csv; see docs/outputs.md"
)
LIGHTSHEET_OUTPUTS = (
    "fov_000/lightsheet.zarr: corrected and mask volumes (T, Z, V, Y, X), xy/xz/yz projections, "
    "calibration (background, dead pixels, threshold, histogram); fov_000/diagnostics/*.png; "
    "see docs/lightsheet.md"
)


@hookimpl
def pyama_pipelines():
    yield PipelineRegistration(
        name="timelapse",
        summary="Per-cell traces: copy -> segment -> track -> background -> extract -> crops",
        implementation="pyama_builtin.pipelines.timelapse:STAGES",
        params=NoParams,
        check="pyama_builtin.pipelines.timelapse:check",
        outputs=TIMELAPSE_OUTPUTS,
    )
    yield PipelineRegistration(
        name="lightsheet",
        summary="Light-sheet volumes: background, dead pixels, foreground mask, projections, diagnostics",
        implementation="pyama_builtin.lightsheet.stages:STAGES",
        params=_lightsheet_params(),
        check="pyama_builtin.lightsheet.stages:check",
        outputs=LIGHTSHEET_OUTPUTS,
        results="pyama_builtin.lightsheet.results:open_lightsheet_results",
    )


def _lightsheet_params():
    from pyama_builtin.lightsheet.params import LightsheetParams  # pydantic only, no numpy

    return LightsheetParams
