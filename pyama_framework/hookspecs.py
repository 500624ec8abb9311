"""Every extension point of pyama, in one place.

A plugin is a module (or object) exposed through the ``pyama.plugins`` entry-point group
that implements one or more of these hooks with ``@pyama_framework.hookimpl``. Each hook
takes no arguments and returns an iterable of registration objects from
:mod:`pyama_framework.types`; the framework picks one registration by the name a user writes
in the config. Hooks must be cheap: return registrations, import heavy code lazily through
``"module:attr"`` references.

Example (a lab's plugin module)::

    from pyama_framework import hookimpl, SegmenterRegistration

    @hookimpl
    def pyama_segmenters():
        yield SegmenterRegistration(
            name="otsu",
            summary="Global Otsu threshold + connected components",
            implementation="my_lab_plugin.otsu:segment",
            params=OtsuParams,
        )

New extension points (preprocessors, executors, whole stages) are added as
new hooks here and a line in :data:`pyama_framework.types.KINDS`; existing hooks keep their
shape.
"""

from __future__ import annotations

from typing import Iterable

import pluggy

from .types import (
    BackgroundRegistration,
    FeatureRegistration,
    FittingModelRegistration,
    PipelineRegistration,
    ReaderRegistration,
    SegmenterRegistration,
    TrackerRegistration,
)

PROJECT_NAME = "pyama"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class PyamaSpecs:
    """Hook specifications. Each returns registrations of one kind."""

    @hookspec
    def pyama_readers(self) -> Iterable[ReaderRegistration]:
        """Register microscopy file readers.

        See :class:`~pyama_framework.types.ReaderRegistration` and
        :class:`~pyama_framework.readers.Reader` for the contract.
        """

    @hookspec
    def pyama_segmenters(self) -> Iterable[SegmenterRegistration]:
        """Register per-frame segmenters: ``labels = f(image, **params)``.

        See :class:`~pyama_framework.types.SegmenterRegistration`.
        """

    @hookspec
    def pyama_trackers(self) -> Iterable[TrackerRegistration]:
        """Register trackers: a generator from label frames to tracked label frames.

        See :class:`~pyama_framework.types.TrackerRegistration`.
        """

    @hookspec
    def pyama_background_estimators(self) -> Iterable[BackgroundRegistration]:
        """Register fluorescence background estimators:
        ``background = f(image, labels, **params)``.

        See :class:`~pyama_framework.types.BackgroundRegistration`.
        """

    @hookspec
    def pyama_features(self) -> Iterable[FeatureRegistration]:
        """Register per-cell features (per-cell function, optional per-frame fast path).

        See :class:`~pyama_framework.types.FeatureRegistration`.
        """

    @hookspec
    def pyama_fitting_models(self) -> Iterable[FittingModelRegistration]:
        """Register models fitted to each cell's trace by ``pyama fit``: ``y = f(t, **params)``.

        See :class:`~pyama_framework.types.FittingModelRegistration` and docs/fitting.md.
        """

    @hookspec
    def pyama_pipelines(self) -> Iterable[PipelineRegistration]:
        """Register pipelines: the table of stages run for each FOV (``pipeline: <name>``).

        See :class:`~pyama_framework.types.PipelineRegistration` and docs/writing-plugins.md.
        """
