"""Conformance suites for pyama plugins: one call per kind.

Each ``check_*`` runs the kind's contract (see :mod:`pyama_framework.types`) against a
registration and raises :class:`ContractViolation` (an ``AssertionError``, so any test
runner reports it) with a message naming the broken rule and the fix:

- shapes and dtypes of what the plugin returns;
- input arrays not modified; results deterministic across calls;
- no heavy import (torch, scipy, ...) and no slow import when pyama discovers the plugin,
  measured in a fresh process;
- the params model refuses unknown keys and gives every field a default and a description;
- readers: one-line ``ReaderError`` naming the file for a truncated or garbage copy;
- features: the fast ``frame_implementation`` equals the per-cell implementation;
- end to end: the pipeline behind ``pyama run`` (``pyama fit`` for fitting models) runs on
  the fixture movie with the plugin selected by name.

Usage in a plugin's tests::

    from pyama_framework.testing.conformance import check_segmenter
    from my_lab.plugin import pyama_segmenters

    def test_watershed_keeps_the_segmenter_contract():
        (registration,) = pyama_segmenters()
        check_segmenter(registration)
"""

from ._support import ContractViolation, check_params_model
from .array_kinds import check_background, check_feature, check_segmenter, check_tracker
from .discovery import HEAVY_MODULES, check_light_discovery
from .end_to_end import check_end_to_end, fixture_config, registry_with, run_pipeline
from .fitting_kind import check_fitting_model
from .reader_kind import check_reader

#: Kind -> its suite, for checking every registration a plugin returns.
CHECKS = {
    "segmenter": check_segmenter,
    "tracker": check_tracker,
    "background": check_background,
    "feature": check_feature,
    "fitting_model": check_fitting_model,
}

__all__ = [
    "CHECKS",
    "ContractViolation",
    "HEAVY_MODULES",
    "check_background",
    "check_end_to_end",
    "check_feature",
    "check_fitting_model",
    "check_light_discovery",
    "check_params_model",
    "check_reader",
    "check_segmenter",
    "check_tracker",
    "fixture_config",
    "registry_with",
    "run_pipeline",
]
