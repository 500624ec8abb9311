"""A plugin module that imports scikit-image at discovery (as one importing torch would)."""

import skimage.filters  # noqa: F401  (the violation: belongs in the implementation module)

from pyama_framework import SegmenterRegistration, hookimpl


@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="broken_heavy", summary="heavy import at discovery",
                                implementation="broken_lab.algorithms:segment_ok")
