"""Registration objects returned by the hooks in :mod:`pyama_framework.hookspecs`.

Each hook returns an iterable of small, frozen registration objects. A registration names
an algorithm, describes it in one line, declares its parameters as a pydantic v2 model and
points at the implementation, either directly or lazily as a ``"module:attr"`` string so that
discovering plugins never imports numpy-heavy code (napari npe2 style).

The contract each implementation fulfils is documented on the registration class below.
Implementations are pure functions over arrays: no file or store I/O, no global state, and
they must not modify their input arrays. The framework owns reading, writing, scheduling and
persistence.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict


class PluginParams(BaseModel):
    """Base class of every plugin's parameter model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(PluginParams):
    """Parameter model of a plugin that takes no parameters."""


def load_object(target: Callable | type | str) -> Any:
    """Return ``target`` itself, or import it when given as ``"package.module:attr"``."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"lazy reference {target!r} must look like 'package.module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Registration:
    """Fields shared by every registration kind.

    Attributes
    ----------
    name : str
        Unique name users put in the config (``segmentation: {method: <name>}``).
        Lower case, digits and underscores.
    summary : str
        One line shown by ``pyama plugins list``.
    implementation : callable, class or str
        The implementation, or a lazy ``"module:attr"`` reference imported on first use.
    params : type[PluginParams]
        Parameter model (``extra="forbid"``; defaults, bounds and descriptions on each field).
    """

    kind: ClassVar[str] = "plugin"

    name: str
    summary: str
    implementation: Callable | type | str
    params: type[PluginParams] = NoParams

    def load(self) -> Any:
        """Import (if lazy) and return the implementation."""
        return load_object(self.implementation)

    def validate_params(self, params: dict[str, Any] | None) -> PluginParams:
        """Validate raw ``params`` from the config into the plugin's model."""
        return self.params.model_validate(params or {})


@dataclass(frozen=True)
class ReaderRegistration(Registration):
    """A microscopy file reader.

    ``implementation`` is a subclass of :class:`pyama_framework.readers.Reader` (or a lazy
    reference to one). ``suffixes`` are the lower-case file suffixes it claims, most specific
    first (``(".ome.tif", ".ome.tiff")``); a reader with no suffixes is only used when named
    explicitly in the config. See :class:`pyama_framework.readers.Reader` for the contract.
    """

    kind: ClassVar[str] = "reader"
    suffixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SegmenterRegistration(Registration):
    """A per-frame cell segmenter.

    Contract::

        labels = implementation(image, **params)

    image : (H, W) ndarray, the phase-contrast frame as stored (usually uint16).
    labels : (H, W) ndarray of an unsigned or signed integer dtype; 0 is background, cells are
        numbered 1..N within the frame (numbering need not be consistent across frames).
    Must not read or write files, keep state between calls, or modify ``image``.

    A segmenter whose signature has a ``pixel_size_um`` keyword also receives the file's
    pixel size in micrometres (``None`` when the file does not record it), so that its
    sizes can be given in µm.
    """

    kind: ClassVar[str] = "segmenter"


@dataclass(frozen=True)
class TrackedFrame:
    """One frame of a tracker's output, with the divisions that start in it.

    Attributes
    ----------
    labels : (H, W) integer ndarray
        Tracked labels: each cell carries its track ID (0 = background).
    parents : mapping of int to int
        For each track that starts in this frame as the daughter of a division, its
        mother's track ID (the mother's track ends in the previous frame or earlier).
        Tracks absent from the mapping have no parent.
    """

    labels: np.ndarray
    parents: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackerRegistration(Registration):
    """A tracker linking per-frame labels into cell identities.

    Contract::

        for tracked in implementation(label_frames, **params): ...

    label_frames : iterable of (H, W) integer label images from the segmenter, in time
        order. It is consumed lazily; a tracker must not materialise the whole stack.
    yields : one item per input frame, in the same order: an (H, W) integer image where
        each cell carries an ID that is the same in every frame it appears in (0 =
        background, IDs >= 1 and < 2**32), or a :class:`TrackedFrame` holding that image
        and the parents of the daughter tracks starting in the frame. A cell that divides
        ends its track; each daughter gets a new ID. These IDs become the ``cell`` column
        of the traces and ``parents`` its ``parent`` column.
    Must not read or write files or keep state beyond the generator.
    """

    kind: ClassVar[str] = "tracker"


@dataclass(frozen=True)
class BackgroundRegistration(Registration):
    """A fluorescence background estimator.

    Contract::

        background = implementation(image, labels, **params)

    image : (H, W) ndarray, the raw fluorescence frame (usually uint16).
    labels : (H, W) integer ndarray, the segmentation of the same frame (0 = background).
    background : (H, W) float32 ndarray, the estimated background intensity at every pixel,
        in the units of ``image``.
    Must not read or write files, keep state between calls, or modify its inputs.
    """

    kind: ClassVar[str] = "background"


ChannelKind = Literal["phase", "fluorescence"]


@dataclass(frozen=True)
class CellFrame:
    """One frame of one channel, with the tracked cells present in it.

    Given to a feature's vectorised ``frame_implementation``.

    Attributes
    ----------
    labels : (H, W) integer ndarray
        Tracked labels of the frame; a cell's pixels carry its ID. For fluorescence channels
        these are the measurement masks (tracked labels grown by
        ``extraction.measurement_dilation`` px, never into another cell).
    image : (H, W) ndarray
        Raw pixels of the channel the feature is computed on (dtype as stored).
    background : (H, W) float32 ndarray or None
        Weighted background ``w * background`` for fluorescence channels when a background
        was estimated; ``None`` otherwise. Corrected intensity is ``image - background``.
    cell_ids : (N,) int64 ndarray
        IDs of the cells in this frame, ascending.
    bboxes : (N, 4) int64 ndarray
        Half-open bounding boxes ``[y0, x0, y1, x1)`` of those cells (in ``labels``).
    cell_labels : (H, W) integer ndarray or None
        The tracked labels themselves (the cells' own outlines, before the growth); ``None``
        when they are ``labels`` (phase channels, ``measurement_dilation`` 0).
    cell_bboxes : (N, 4) int64 ndarray or None
        Boxes of the cells in ``cell_labels`` (``None`` with it).
    psf_sigma : float or "auto"
        ``extraction.psf_sigma``: the Gaussian PSF sigma (px) of the channel for features
        that model the blur (``intensity_total_unmixed``), or ``"auto"`` to fit it per frame.
    """

    labels: np.ndarray
    image: np.ndarray
    background: np.ndarray | None
    cell_ids: np.ndarray
    bboxes: np.ndarray
    cell_labels: np.ndarray | None = None
    cell_bboxes: np.ndarray | None = None
    psf_sigma: float | str = "auto"

    def crops(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Return ``(mask, image, background)`` cropped to cell ``index``'s bounding box."""
        y0, x0, y1, x1 = (int(v) for v in self.bboxes[index])
        mask = self.labels[y0:y1, x0:x1] == self.cell_ids[index]
        image = self.image[y0:y1, x0:x1]
        background = None if self.background is None else self.background[y0:y1, x0:x1]
        return mask, image, background


@dataclass(frozen=True)
class FeatureRegistration(Registration):
    """A per-cell feature, one CSV column per configured channel.

    Contract (per cell; simple to write)::

        value = implementation(mask, image, background, **params)

    mask : (h, w) bool ndarray, the cell's pixels inside its bounding box. For fluorescence
        features this is the measurement mask: the tracked mask grown by
        ``extraction.measurement_dilation`` px without entering other cells, so that the
        optical rim is counted; phase features get the tracked mask itself.
    image : (h, w) ndarray, raw pixels of the channel inside the same box.
    background : (h, w) float32 ndarray or None, the weighted background ``w * bg`` inside
        the box for fluorescence channels, ``None`` for phase channels or when no background
        was estimated.
    value : float (NaN when undefined for this cell).

    Optional fast path, used instead of the per-cell call when given::

        values = frame_implementation(cell_frame, **params)   # (N,) float64

    where ``cell_frame`` is a :class:`CellFrame`; ``values[i]`` belongs to
    ``cell_frame.cell_ids[i]`` and must equal what the per-cell implementation returns.

    A feature whose value depends on the cell's neighbours (``uses_neighbours=True``, e.g.
    ``intensity_total_unmixed``) cannot be computed from one cell's box; its per-cell
    implementation is the cell seen alone and only its fast path is the feature.

    ``channel_kind`` says which channels the feature applies to (``"phase"`` or
    ``"fluorescence"``); the CSV column is ``f"{column}_ch_{channel}"`` (``column`` defaults
    to ``name``).
    """

    kind: ClassVar[str] = "feature"
    channel_kind: ChannelKind = "fluorescence"
    frame_implementation: Callable | str | None = None
    column: str = ""
    # True when the frame implementation uses a cell's neighbours (e.g. splitting their
    # blurred light): the per-cell implementation is then the cell seen alone, and the two
    # are not required to agree for cells that have neighbours.
    uses_neighbours: bool = False

    def __post_init__(self) -> None:
        if not self.column:
            object.__setattr__(self, "column", self.name)

    def load_frame(self) -> Callable | None:
        """Import (if lazy) and return the vectorised implementation, or ``None``."""
        if self.frame_implementation is None:
            return None
        return load_object(self.frame_implementation)


@dataclass(frozen=True)
class ModelParameter:
    """One parameter of a fitting model: initial value, bounds, fixed or fitted, unit.

    Attributes
    ----------
    name : str
        Keyword of the model function (``f(t, **params)``); lower case, digits, underscores.
    initial : float
        Starting value of the fit, or the value used when ``fixed``.
    lower, upper : float
        Bounds of the fit (``-inf``/``inf`` for none). A value set by the user, fixed or
        initial, must lie inside them.
    fixed : bool
        Held at its value instead of fitted (users change the value with ``--set``).
    unit : str
        Unit of the parameter, in the model's ``time_unit`` (``"1/h"``, ``"h"``, ``"a.u."``).
    description : str
        One line shown by ``pyama plugins info``.
    """

    name: str
    initial: float
    lower: float = float("-inf")
    upper: float = float("inf")
    fixed: bool = False
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.lower <= self.initial <= self.upper:
            raise ValueError(f"parameter {self.name}: initial {self.initial} is outside "
                             f"[{self.lower}, {self.upper}]")


TimeUnit = Literal["s", "min", "h", "day"]
MINUTES_PER: dict[str, float] = {"s": 1 / 60, "min": 1.0, "h": 60.0, "day": 1440.0}


def _params_model(name: str, parameters: tuple[ModelParameter, ...]) -> type[PluginParams]:
    """A pydantic model whose fields are the parameters: default = initial value, ``ge``/``le``
    = bounds, unit and fixed-ness in the field's JSON schema (shown by ``plugins info``)."""
    from pydantic import Field, create_model

    fields: dict[str, Any] = {}
    for p in parameters:
        bounds = {k: v for k, v in (("ge", p.lower), ("le", p.upper)) if np.isfinite(v)}
        role = "fixed" if p.fixed else "fitted"
        text = f"[{role}{', ' + p.unit if p.unit else ''}] {p.description}".strip()
        fields[p.name] = (float, Field(p.initial, description=text, allow_inf_nan=False,
                                       json_schema_extra={"unit": p.unit, "fixed": p.fixed},
                                       **bounds))
    class_name = "".join(part.title() for part in name.split("_")) + "Params"
    return create_model(class_name, __base__=PluginParams, **fields)


@dataclass(frozen=True)
class FittingModelRegistration(Registration):
    """A model fitted to each cell's trace: ``y = f(t, **params)``.

    Contract::

        y = implementation(t, **params)                 # (n,) float64, vectorised over t
        columns = jacobian(t, **params)                 # optional: {name: (n,) dy/dparam}
        initial = initial_guess(t, y, **params)         # optional: {name: starting value}

    t : (n,) float64 time in ``time_unit`` (pyama's traces are in minutes; the framework
        converts). params : every parameter by name, fixed and fitted, as floats.
    ``jacobian`` may return columns for only some parameters; when a fitted parameter has
    none the framework differentiates numerically. ``initial_guess`` receives the current
    starting values and returns better ones for fitted parameters (clipped to the bounds);
    a value the user gave with ``--set`` always wins over the guess.
    All three are pure functions (or lazy ``"module:attr"`` references to them).

    ``parameters`` declares every parameter (:class:`ModelParameter`); the registration
    builds ``params`` from it (a pydantic model with the initial values as defaults and the
    bounds as ``ge``/``le``), so do not pass ``params`` yourself.
    """

    kind: ClassVar[str] = "fitting_model"
    parameters: tuple[ModelParameter, ...] = ()
    time_unit: TimeUnit = "h"
    jacobian: Callable | str | None = None
    initial_guess: Callable | str | None = None

    def __post_init__(self) -> None:
        if not self.parameters:
            raise ValueError(f"fitting model {self.name}: give its parameters "
                             f"(a tuple of ModelParameter)")
        if self.params is not NoParams:
            raise ValueError(f"fitting model {self.name}: params is built from parameters; "
                             f"do not pass it")
        if self.time_unit not in MINUTES_PER:
            raise ValueError(f"fitting model {self.name}: time_unit {self.time_unit!r} is not "
                             f"one of {', '.join(MINUTES_PER)}")
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"fitting model {self.name}: parameter names repeat: {names}")
        object.__setattr__(self, "parameters", tuple(self.parameters))
        object.__setattr__(self, "params", _params_model(self.name, self.parameters))

    def load_jacobian(self) -> Callable | None:
        """Import (if lazy) and return the Jacobian, or ``None``."""
        return None if self.jacobian is None else load_object(self.jacobian)

    def load_initial_guess(self) -> Callable | None:
        """Import (if lazy) and return the initial-guess function, or ``None``."""
        return None if self.initial_guess is None else load_object(self.initial_guess)


@dataclass(frozen=True)
class PipelineRegistration(Registration):
    """A pipeline: the ordered stages run for each FOV, chosen with ``pipeline: <name>``.

    ``implementation`` is the stage table (or a lazy ``"module:attr"`` reference to it): a
    tuple of :class:`pyama_framework.pipeline.Stage`, in run order. Each stage names the
    stages it depends on, the settings its result depends on (its fingerprint), whether it
    applies to a config and whether its failure fails the FOV. A lab extends a built-in
    pipeline by registering a new name whose table is the built-in one plus its own stages.

    ``params`` is the pipeline's config section model, validated from ``pipeline_params``.
    ``check`` (optional, ``check(config, metadata, input_path)``) raises a one-line
    :class:`pyama_framework.errors.ConfigError` when the config does not fit the file, before
    anything is written. ``outputs`` describes the output layout in one paragraph
    (``pyama plugins info``); ``results`` (optional) opens a finished output folder lazily.
    """

    kind: ClassVar[str] = "pipeline"
    check: Callable | str | None = None
    outputs: str = ""
    results: Callable | str | None = None

    def load_check(self) -> Callable | None:
        """Import (if lazy) and return the config-against-file check, or ``None``."""
        return None if self.check is None else load_object(self.check)

    def load_results(self) -> Callable | None:
        """Import (if lazy) and return the results accessor, or ``None``."""
        return None if self.results is None else load_object(self.results)


# Kind name -> (hook name, registration class). Adding an extension point means adding a
# hook spec in hookspecs.py and one line here; the registry, CLI and config treat kinds
# generically.
KINDS: dict[str, tuple[str, type[Registration]]] = {
    "reader": ("pyama_readers", ReaderRegistration),
    "segmenter": ("pyama_segmenters", SegmenterRegistration),
    "tracker": ("pyama_trackers", TrackerRegistration),
    "background": ("pyama_background_estimators", BackgroundRegistration),
    "feature": ("pyama_features", FeatureRegistration),
    "fitting_model": ("pyama_fitting_models", FittingModelRegistration),
    "pipeline": ("pyama_pipelines", PipelineRegistration),
}


@dataclass(frozen=True)
class ProvidedRegistration:
    """A registration together with the distribution that provided it."""

    registration: Registration
    distribution: str
    version: str
    plugin: str = field(default="")
