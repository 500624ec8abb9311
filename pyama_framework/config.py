"""The run configuration: a YAML file validated into pydantic models.

The shape of this file is a contract external tools rely on: keys may be added, the
documented ones are kept. :func:`load_config` parses and validates the structure;
:func:`resolve_plugins` then validates every named plugin and its params against the
registry, so the whole config is checked before any pixel is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, PyamaError
from .location import parse_output, redacted
from .registry import Registry
from .types import FeatureRegistration, PluginParams, Registration


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelConfig(_Section):
    channel: int = Field(ge=0, description="Channel index in the input file")
    features: list[str] = Field(default_factory=list, description="Feature names to extract")


class ChannelsConfig(_Section):
    pc: ChannelConfig | None = Field(None, description="Phase-contrast channel (segmentation, tracking)")
    fl: list[ChannelConfig] = Field(default_factory=list, description="Fluorescence channels")

    def all_indices(self) -> list[int]:
        return ([self.pc.channel] if self.pc else []) + [c.channel for c in self.fl]


class MethodConfig(_Section):
    method: str = Field(description="Registered plugin name")
    params: dict[str, Any] = Field(default_factory=dict, description="The plugin's parameters")


class ExtractionConfig(_Section):
    background_weight: float = Field(1.0, ge=0.0, le=1.0, description="w in Σ(raw − w·background)")
    min_frames: int = Field(30, ge=1, description="Keep cells present in at least this many frames")
    border_margin: int = Field(50, ge=0, description="Drop cells whose bbox comes within this many px of an edge in any frame")
    frame_interval: float = Field(10.0, gt=0, description="Minutes between frames when the file has no timestamps")
    time_mapping: dict[int, float] | None = Field(None, description="Explicit frame -> time (minutes); overrides timestamps")
    good_area_ratio: float = Field(2.0, gt=1.0, description="A frame is 'good' when the cell's area is within this factor of its median area")
    measurement_dilation: float = Field(
        4.0, ge=0.0, le=10.0,
        description="Fluorescence features measure each cell's mask grown by this many px into the "
                    "background (never into another cell), to include the light blurred past its "
                    "edge; 0 = the tracked mask. Shape features always use the tracked mask")
    psf_sigma: Literal["auto"] | Annotated[float, Field(ge=0.0, le=10.0)] = Field(
        "auto",
        description="Gaussian PSF sigma (px) of the fluorescence, for intensity_total_unmixed "
                    "(splits the blurred light of touching cells); 'auto' fits it per frame "
                    "(an effective sigma: PSF, soft cell edges and mask placement); 0 = no unmixing")

    @field_validator("psf_sigma", mode="wrap")
    @classmethod
    def _psf_sigma(cls, value: Any, handler: Any) -> Any:
        try:  # one error for the field instead of one per member of the union
            return handler(value)
        except ValidationError:
            raise ValueError(f"{value!r} is not a PSF sigma; give 'auto' or a number of px "
                             f"from 0 to 10 (0 = no unmixing)") from None


class CroppingConfig(_Section):
    enabled: bool = Field(True, description="Write per-cell crops to cells.zarr")
    padding: int = Field(5, ge=0, le=256, description="Pixels added around each cell's bounding box")


class CachingConfig(_Section):
    enabled: bool = Field(True, description="Write the /1/ visualisation levels")


class StorageConfig(_Section):
    codec: Literal["lz4", "zstd", "gzip", "none", "lz4hc", "bzip2"] = Field(
        "lz4", description="Compression of every array: lz4 (fastest), zstd (smaller files), gzip, none, lz4hc, bzip2")
    level: int = Field(5, ge=0, le=9, description="Compression level (1-9)")
    preset: Literal["fast", "balanced", "archive"] | None = Field(
        None, description="Measured codec/level/shard choice (docs/performance.md); keys set next to it win")
    frames_per_shard: int = Field(0, ge=0, le=10_000, description="Frames (planes) per zarr shard; 0 = unsharded")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        from .storage_codecs import apply_preset

        return apply_preset(data)


class ExecutionConfig(_Section):
    executor: Literal["local", "dask"] = Field(
        "local", description="Where FOVs run: 'local' worker processes, or 'dask' (dask.distributed: a local or remote cluster)")
    workers: int = Field(2, ge=1, le=256, description="FOVs processed in parallel")
    address: str | None = Field(None, description="dask only: scheduler address (tcp://host:8786); null starts a local cluster")
    threads_per_worker: int = Field(1, ge=1, le=64, description="dask only: tasks per worker process (a local cluster's)")
    frame_threads: int | None = Field(
        None, ge=1, le=64,
        description="Frames of one FOV segmented, estimated and measured at once (threads); null: the cores "
                    "left per FOV running on this machine, 1 on a remote dask cluster. Results are the same")


class ZConfig(_Section):
    projection: Literal["none", "max", "mean", "sum"] = Field("none", description="Projection over Z; 'none' uses `plane`")
    plane: int = Field(0, ge=0, description="Z plane used when projection is 'none'")


FovSelection = str | list[int]
_RANGE_RE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_fovs(selection: FovSelection, n_fovs: int | None = None) -> list[int]:
    """Expand ``"all"``, ``"0-5, 7"`` or ``[0, 1]`` to a sorted list of FOV indices."""
    if isinstance(selection, list):
        fovs = set(selection)
    elif selection.strip().lower() == "all":
        if n_fovs is None:
            raise ValueError("'all' needs the number of FOVs")
        return list(range(n_fovs))
    else:
        fovs = set()
        for part in selection.split(","):
            match = _RANGE_RE.match(part)
            if not match:
                raise ValueError(f"bad FOV selection {part.strip()!r}; use 'all', '3', '0-5' or '0-5, 7'")
            lo, hi = int(match[1]), int(match[2] or match[1])
            if hi < lo:
                raise ValueError(f"bad FOV range {part.strip()!r}: end before start")
            fovs.update(range(lo, hi + 1))
    if any(f < 0 for f in fovs):
        raise ValueError("FOV indices must be >= 0")
    if n_fovs is not None and fovs and max(fovs) >= n_fovs:
        raise ValueError(f"FOV {max(fovs)} does not exist: the file has {n_fovs} FOV(s) (0-{n_fovs - 1})")
    return sorted(fovs)


class RunConfig(_Section):
    """A whole run. Relative paths are resolved against the config file's folder."""

    input: Path = Field(description="Microscopy file (ND2, CZI, OME-TIFF, TIFF, ...)")
    output: Path | str = Field(description="Output folder, or an fsspec URL (s3://bucket/prefix, gs://..., file://...)")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for a URL output (e.g. endpoint_url); credentials come "
                                          "from the environment and are never written to processing_config.yaml")
    reader: str = Field("auto", description="Reader name, or 'auto' to choose by suffix and content")
    reader_params: dict[str, Any] = Field(default_factory=dict, description="Parameters of the reader")
    pipeline: str = Field("timelapse", description="Registered pipeline: 'timelapse' (cell traces) or 'lightsheet' (volumes)")
    pipeline_params: dict[str, Any] = Field(default_factory=dict, description="The pipeline's own settings (its config section)")
    fovs: FovSelection = Field("all", description="'all', '0-5, 7' or a list of indices")
    z: ZConfig = Field(default_factory=ZConfig)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    segmentation: MethodConfig = Field(default_factory=lambda: MethodConfig(method="logstd"))
    tracking: MethodConfig = Field(default_factory=lambda: MethodConfig(method="lap"))
    background: MethodConfig = Field(default_factory=lambda: MethodConfig(method="tiled_spline"))
    extraction: ExtractionConfig = Field(default_factory=ExtractionConfig)
    cropping: CroppingConfig = Field(default_factory=CroppingConfig)
    caching: CachingConfig = Field(default_factory=CachingConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    copy_only: bool = Field(False, description="Only copy frames to zarr; skip all processing")
    provenance: dict[str, Any] | None = Field(None, description="Written by pyama: plugin distributions and versions used")

    @field_validator("output", mode="before")
    @classmethod
    def _parse_output(cls, value: Any) -> Any:
        return parse_output(value)  # a URL stays a string, anything else becomes a Path

    @field_validator("fovs")
    @classmethod
    def _check_fovs(cls, value: FovSelection) -> FovSelection:
        if isinstance(value, str) and value.strip().lower() == "all":
            return "all"
        parse_fovs(value)
        return value

    @field_validator("channels")
    @classmethod
    def _check_channels(cls, value: ChannelsConfig) -> ChannelsConfig:
        indices = value.all_indices()
        duplicates = sorted({i for i in indices if indices.count(i) > 1})
        if duplicates:
            raise ValueError(f"channel {duplicates[0]} is configured twice; each file channel may appear once")
        return value


def _format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "config"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        lines.append(f"{where}: {msg}")
    return "\n".join(lines)


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Read and validate a YAML config; relative paths are taken from the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; create one with 'pyama config init'")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + _format_validation_error(exc).replace("\n", f"\n{path}: ")) from None
    base = path.resolve().parent
    return config.model_copy(update={
        "input": (base / config.input).resolve() if not config.input.is_absolute() else config.input,
        "output": (base / config.output).resolve() if isinstance(config.output, Path) and not config.output.is_absolute()
        else config.output,
    })


@dataclass(frozen=True)
class Selected:
    """A plugin picked by name, with its validated params."""

    registration: Registration
    params: PluginParams
    distribution: str
    version: str

    def kwargs(self) -> dict[str, Any]:
        return self.params.model_dump()


@dataclass(frozen=True)
class ResolvedConfig:
    """A config whose plugins and params have all been validated against the registry."""

    config: RunConfig
    reader_params: PluginParams | None
    segmenter: Selected | None
    tracker: Selected | None
    background: Selected | None
    features: dict[int, list[Selected]]  # channel index -> selected features
    pipeline: Selected | None = None  # the pipeline whose stage table runs each FOV

    def processing_stages(self) -> bool:
        return not self.config.copy_only and self.config.channels.pc is not None


def resolve_plugins(config: RunConfig, registry: Registry) -> ResolvedConfig:
    """Check every plugin name and its params; raise one ConfigError listing each problem."""
    problems: list[str] = []

    def select(kind: str, name: str, params: dict[str, Any], where: str) -> Selected | None:
        try:
            provided = registry.provider(kind, name)
        except PyamaError as exc:
            problems.append(f"{where}: {exc}")
            return None
        try:
            validated = provided.registration.validate_params(params)
        except ValidationError as exc:
            problems.append(_format_validation_error(exc, prefix=f"{where}.params."))
            return None
        return Selected(provided.registration, validated, provided.distribution, provided.version)

    needs_processing = not config.copy_only and config.channels.pc is not None
    segmenter = tracker = background = None
    if needs_processing:
        segmenter = select("segmenter", config.segmentation.method, config.segmentation.params, "segmentation")
        tracker = select("tracker", config.tracking.method, config.tracking.params, "tracking")
        if config.channels.fl:
            background = select("background", config.background.method, config.background.params, "background")

    features: dict[int, list[Selected]] = {}
    channel_entries = ([("pc", "phase", config.channels.pc)] if config.channels.pc else []) + [
        (f"fl[{i}]", "fluorescence", c) for i, c in enumerate(config.channels.fl)
    ]
    for where, channel_kind, entry in channel_entries:
        chosen = []
        for name in entry.features:
            selected = select("feature", name, {}, f"channels.{where}.features")
            if selected is None:
                continue
            reg = selected.registration
            assert isinstance(reg, FeatureRegistration)
            if reg.channel_kind != channel_kind:
                problems.append(
                    f"channels.{where}.features: '{name}' is a {reg.channel_kind} feature; "
                    f"move it to the {'pc' if reg.channel_kind == 'phase' else 'fl'} channel"
                )
                continue
            chosen.append(selected)
        if len({s.registration.name for s in chosen}) != len(chosen):
            problems.append(f"channels.{where}.features: a feature is listed twice")
        features[entry.channel] = chosen

    pipeline = select("pipeline", config.pipeline, config.pipeline_params, "pipeline")
    reader_params = None
    if config.reader != "auto":
        reader = select("reader", config.reader, config.reader_params, "reader")
        reader_params = reader.params if reader else None
    if problems:
        raise ConfigError("\n".join(problems))
    return ResolvedConfig(config, reader_params, segmenter, tracker, background, features, pipeline)


def provenance(resolved: ResolvedConfig, reader: Selected) -> dict[str, Any]:
    """Name, distribution and version of every plugin a run used."""
    import pyama_framework

    used = {"reader": reader}
    if resolved.pipeline is not None:
        used["pipeline"] = resolved.pipeline
    for key in ("segmenter", "tracker", "background"):
        if getattr(resolved, key) is not None:
            used[key] = getattr(resolved, key)
    for channel, selected in resolved.features.items():
        for s in selected:
            used[f"feature {s.registration.name} (ch {channel})"] = s
    info = {k: {"name": s.registration.name, "distribution": s.distribution, "version": s.version}
            for k, s in used.items()}
    library = getattr(reader.registration.load(), "library_version", lambda: "")()
    if library:
        info["reader"]["library"] = library
    return {"pyama_framework": pyama_framework.__version__, "plugins": info}


def filled_config(resolved: ResolvedConfig, reader: Selected) -> RunConfig:
    """The config with every plugin's params filled with defaults and the reader fixed."""
    c = resolved.config
    update: dict[str, Any] = {"reader": reader.registration.name, "reader_params": reader.kwargs()}
    if resolved.pipeline is not None:
        update["pipeline_params"] = resolved.pipeline.params.model_dump(mode="json")
    for key, attr in (("segmentation", "segmenter"), ("tracking", "tracker"), ("background", "background")):
        selected = getattr(resolved, attr)
        if selected is not None:
            update[key] = MethodConfig(method=selected.registration.name, params=selected.kwargs())
    update["provenance"] = provenance(resolved, reader)
    return c.model_copy(update=update)


def config_to_yaml(config: RunConfig) -> str:
    data = config.model_dump(mode="json")
    data["storage_options"] = redacted(data.get("storage_options", {}))  # credentials never reach the output
    return yaml.safe_dump(data, sort_keys=False)


def results_fingerprint(config: RunConfig) -> dict[str, Any]:
    """The parts of a config that change results (not where or how fast they are made)."""
    data = config.model_dump(mode="json", exclude={"output", "storage_options", "fovs", "execution", "provenance"})
    return data


def fingerprint_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
