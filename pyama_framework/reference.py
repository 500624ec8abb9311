"""Markdown reference pages generated from the code, so that the documentation cannot drift.

:func:`config_reference` walks the pydantic models of the run config (every key, its type,
default, bounds and description); :func:`plugin_reference` walks a registry (every plugin
with its params). The documentation site builds its "Config reference" and "Plugin
reference" pages from these at build time (``docs/hooks/reference_pages.py``).
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any, Iterator

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

BUILTIN_DISTRIBUTION = "pyama-framework"

_BOUND_SYMBOLS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"),
                  (annotated_types.Le, "le", "<="), (annotated_types.Lt, "lt", "<"))


def type_name(annotation: Any) -> str:
    """A short readable spelling of a type annotation (``int``, ``str | list[int]``,
    ``'lz4' | 'zstd'``)."""
    if annotation is None or annotation is type(None):
        return "none"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if annotation is typing.Any:
        return "any"
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    return getattr(annotation, "__name__", str(annotation))


def bounds(field: FieldInfo) -> str:
    """The field's numeric bounds, e.g. ``>= 0, <= 9``."""
    found = []
    for meta in field.metadata:
        for cls, attr, symbol in _BOUND_SYMBOLS:
            if isinstance(meta, cls):
                found.append(f"{symbol} {getattr(meta, attr)}")
    return ", ".join(found)


def default_value(field: FieldInfo) -> tuple[bool, Any]:
    """``(required, default)``; a default factory is called to show what it makes."""
    if field.default_factory is not None:
        return False, field.default_factory()
    if field.default is PydanticUndefined:
        return True, None
    return False, field.default


def _format_default(required: bool, value: Any) -> str:
    if required:
        return "required"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, Path):
        value = str(value)
    return f"`{json.dumps(value, default=str)}`"


def _cell(text: str) -> str:
    """Markdown table cells: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model class of a field holding one model (``X`` or ``X | None``), else None."""
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def config_rows(model: type[BaseModel], prefix: str = "") -> Iterator[dict[str, str]]:
    """One row per key of ``model``, sections expanded into their keys (``extraction.min_frames``).
    A list of sections (``channels.fl``) is shown as ``channels.fl[]`` followed by its keys."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        required, default = default_value(field)
        nested = _nested_model(field.annotation)
        is_list = typing.get_origin(field.annotation) is list
        row = {"key": key, "type": type_name(field.annotation), "bounds": bounds(field),
               "description": field.description or ((nested.__doc__ or "").strip() if nested else "")}
        if nested is not None and not is_list:
            row["default"] = "required" if required else ("none" if default is None else "section")
            yield row
            yield from config_rows(nested, prefix=f"{key}.")
        elif nested is not None:
            row["default"] = _format_default(required, default)
            yield row
            yield from config_rows(nested, prefix=f"{key}[].")
        else:
            row["default"] = _format_default(required, default)
            yield row


def _table(rows: list[dict[str, str]], columns: tuple[str, ...]) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "".join("| " + " | ".join(_cell(r[c]) if c != "key" and c != "name" else f"`{r[c]}`"
                                      for c in columns) + " |\n" for r in rows)
    return head + body


def config_reference() -> str:
    """The page listing every key of the run config, generated from :class:`RunConfig`."""
    from .config import RunConfig

    rows = list(config_rows(RunConfig))
    return (
        "# Config reference (generated)\n\n"
        "Generated from the pydantic models in `pyama_framework/config.py` when the site is "
        "built, so it lists exactly the keys the current code accepts. Unknown keys are "
        "errors. Prose, examples and resuming rules: [Config](../config.md). The same "
        "information as JSON schema: `pyama config schema`.\n\n"
        + _table(rows, ("key", "type", "default", "bounds", "description"))
    )


def param_rows(params: type[BaseModel]) -> list[dict[str, str]]:
    """Name, type, default, bounds and description of every param of a plugin."""
    rows = []
    for name, field in params.model_fields.items():
        required, default = default_value(field)
        rows.append({"name": name, "type": type_name(field.annotation),
                     "default": _format_default(required, default), "bounds": bounds(field),
                     "description": field.description or ""})
    return rows


def _plugin_details(registration: Any) -> list[str]:
    """Kind-specific facts, the same as ``pyama plugins info`` prints."""
    from .types import FeatureRegistration, FittingModelRegistration, ReaderRegistration

    if isinstance(registration, FeatureRegistration):
        return [f"channel kind: {registration.channel_kind}; trace column: "
                f"`{registration.column}_ch_<channel>`; fast frame path: "
                f"{'yes' if registration.frame_implementation else 'no'}"]
    if isinstance(registration, ReaderRegistration):
        return [f"suffixes: {', '.join(f'`{s}`' for s in registration.suffixes) or '(none: select by name)'}"]
    if isinstance(registration, FittingModelRegistration):
        return [f"time unit: {registration.time_unit}; Jacobian: "
                f"{'analytic' if registration.jacobian else 'numerical'}; params are the "
                f"initial (or fixed) values"]
    return []


def plugin_reference(registry: Any, distribution: str | None = BUILTIN_DISTRIBUTION) -> str:
    """The page listing every plugin of ``registry`` (only ``distribution``'s, the built-ins
    by default; ``None`` for all) with its params."""
    from .types import KINDS

    parts = [
        "# Plugin reference (generated)\n\n"
        "Generated from the plugin registry when the site is built: every built-in plugin, "
        "by kind, with its params (the keys under `params:` in the config). "
        "`pyama plugins list` and `pyama plugins info NAME` show the same for every installed "
        "plugin, yours included. Writing your own: [Writing plugins](../writing-plugins.md).\n"
    ]
    for kind in KINDS:
        provided = [p for by_name in sorted(registry.entries.get(kind, {}).items()) for p in by_name[1]
                    if distribution is None or p.distribution == distribution]
        if not provided:
            continue
        parts.append(f"\n## {kind.replace('_', ' ').capitalize()}s\n")
        for p in provided:
            reg = p.registration
            parts.append(f"\n### `{reg.name}`\n\n{reg.summary}\n")
            for line in _plugin_details(reg):
                parts.append(f"\n{line}\n")
            rows = param_rows(reg.params)
            parts.append("\n" + (_table(rows, ("name", "type", "default", "bounds", "description"))
                                 if rows else "No params.\n"))
    return "".join(parts)
