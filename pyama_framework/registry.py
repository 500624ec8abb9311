"""Plugin discovery and the typed registry facade the rest of the framework talks to.

Discovery loads every entry point of the ``pyama.plugins`` group (the built-ins register
there too), registers it with a pluggy ``PluginManager`` and collects the registrations each
hook returns. Nothing fails hard by default: a plugin that cannot be imported or returns
malformed registrations is recorded with its error, and selecting one of its names later
says which package failed and why. ``PYAMA_STRICT_PLUGINS=1`` turns those records into an
immediate error.
"""

from __future__ import annotations

import difflib
import os
import re
import traceback
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, Iterable

import pluggy

from .api_version import incompatibility
from .errors import PluginError
from .hookspecs import PROJECT_NAME, PyamaSpecs
from .types import KINDS, ProvidedRegistration, Registration

ENTRY_POINT_GROUP = "pyama.plugins"
STRICT_ENV = "PYAMA_STRICT_PLUGINS"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PluginFailure:
    """A plugin module (entry point) that could not be used, and why."""

    plugin: str
    distribution: str
    version: str
    error: str
    names: tuple[str, ...] = ()


@dataclass
class Registry:
    """Registrations by kind and name, with the failures seen while discovering them."""

    entries: dict[str, dict[str, list[ProvidedRegistration]]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)

    # ---------------------------------------------------------------- queries
    def available(self, kind: str) -> list[Any]:
        """Usable registrations of ``kind`` (unambiguous names only), sorted by name."""
        _check_kind(kind)
        by_name = self.entries.get(kind, {})
        return [provided[0].registration for _, provided in sorted(by_name.items()) if len(provided) == 1]

    def names(self, kind: str) -> list[str]:
        return [r.name for r in self.available(kind)]

    def provider(self, kind: str, name: str) -> ProvidedRegistration:
        """The registration of ``kind`` called ``name`` with its distribution."""
        _check_kind(kind)
        provided = self.entries.get(kind, {}).get(name, [])
        if len(provided) == 1:
            return provided[0]
        if len(provided) > 1:
            who = " and ".join(f"{p.distribution} {p.version}" for p in provided)
            raise PluginError(
                f"{kind} '{name}' is registered by two distributions ({who}); uninstall one of them"
            )
        for failure in self.failures:
            if name in failure.names:
                raise PluginError(
                    f"{kind} '{name}' is unavailable: plugin '{failure.plugin}' from "
                    f"{failure.distribution} {failure.version} is broken: {failure.error}"
                )
        known = self.names(kind)
        choices = ", ".join(known) or "(none installed)"
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        broken = [f for f in self.failures if not f.names]
        note = "".join(
            f" (plugin '{f.plugin}' from {f.distribution} {f.version} failed to load and may "
            f"provide it: {f.error})" for f in broken
        )
        raise PluginError(f"unknown {kind} '{name}'{hint}; choose one of: {choices}{note}")

    def get(self, kind: str, name: str) -> Any:
        """The registration of ``kind`` called ``name`` (raises a one-line PluginError)."""
        return self.provider(kind, name).registration

    def all_provided(self) -> Iterable[ProvidedRegistration]:
        for kind in KINDS:
            for _, provided in sorted(self.entries.get(kind, {}).items()):
                yield from provided


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind '{kind}'; choose one of: {', '.join(KINDS)}")


def _distribution_of(entry_point: importlib_metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown", ""
    return dist.metadata["Name"], dist.version


def _validate(registration: Any, expected: type[Registration]) -> str | None:
    """Why ``registration`` is malformed, or None."""
    if not isinstance(registration, expected):
        return f"returned {type(registration).__name__}, expected {expected.__name__}"
    if not isinstance(registration.name, str) or not _NAME_RE.match(registration.name):
        return f"invalid name {registration.name!r} (lower case letters, digits, underscores)"
    if not isinstance(registration.summary, str) or not registration.summary.strip():
        return f"{registration.name}: summary must be a non-empty string"
    from pydantic import BaseModel

    if not (isinstance(registration.params, type) and issubclass(registration.params, BaseModel)):
        return f"{registration.name}: params must be a pydantic model class"
    if registration.params.model_config.get("extra") != "forbid":
        return f"{registration.name}: params model must set extra='forbid'"
    return None


def discover(entry_points: Iterable[importlib_metadata.EntryPoint] | None = None,
             strict: bool | None = None) -> Registry:
    """Load the ``pyama.plugins`` entry points and collect their registrations."""
    if strict is None:
        strict = os.environ.get(STRICT_ENV, "") not in ("", "0")
    if entry_points is None:
        entry_points = importlib_metadata.entry_points(group=ENTRY_POINT_GROUP)

    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(PyamaSpecs)
    registry = Registry()
    seen: set[tuple[str, str, str]] = set()

    for ep in sorted(entry_points, key=lambda e: (_distribution_of(e)[0], e.name)):
        dist_name, version = _distribution_of(ep)
        key = (dist_name, ep.name, ep.value)
        if key in seen:  # the same distribution found twice on sys.path is one
            continue
        seen.add(key)
        plugin_id = f"{dist_name}:{ep.name}"
        try:
            module = ep.load()
            refused = incompatibility(module)  # a declared PYAMA_API range excluding this framework
            if refused is None:
                pm.register(module, name=plugin_id)
        except Exception as exc:
            registry.failures.append(PluginFailure(plugin_id, dist_name, version, _one_line(exc)))
            continue
        if refused is not None:
            registry.failures.append(PluginFailure(plugin_id, dist_name, version, refused))
            continue
        _collect(pm, module, plugin_id, dist_name, version, registry)

    if strict and registry.failures:
        f = registry.failures[0]
        raise PluginError(
            f"plugin '{f.plugin}' ({f.distribution} {f.version}) failed: {f.error} "
            f"(unset {STRICT_ENV} to continue without it)"
        )
    return registry


def _collect(pm: pluggy.PluginManager, module: Any, plugin_id: str, dist_name: str,
             version: str, registry: Registry) -> None:
    """Call each hook the plugin implements and file its registrations by kind and name."""
    collected: list[tuple[str, Registration]] = []
    problems: list[str] = []
    names: list[str] = []
    for kind, (hook_name, expected) in KINDS.items():
        hook = getattr(pm.hook, hook_name)
        impls = [i for i in hook.get_hookimpls() if i.plugin is module]
        for impl in impls:
            try:
                result = impl.function()
                items = list(result or ())
            except Exception as exc:
                problems.append(f"{hook_name}() raised {_one_line(exc)}")
                continue
            for item in items:
                reason = _validate(item, expected)
                if reason:
                    problems.append(f"{hook_name}(): {reason}")
                    if isinstance(getattr(item, "name", None), str):
                        names.append(item.name)
                else:
                    collected.append((kind, item))
    for kind, item in collected:
        bucket = registry.entries.setdefault(kind, {}).setdefault(item.name, [])
        if any(p.distribution == dist_name for p in bucket):
            continue  # one distribution registering a name twice is one registration
        bucket.append(ProvidedRegistration(item, dist_name, version, plugin_id))
    if problems:
        registry.failures.append(
            PluginFailure(plugin_id, dist_name, version, "; ".join(problems), tuple(names))
        )


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()
    where = traceback.extract_tb(exc.__traceback__)
    loc = f" ({where[-1].filename}:{where[-1].lineno})" if where else ""
    return (text[0] if text else type(exc).__name__) + loc


_cached: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, discovered on first use."""
    global _cached
    if _cached is None or refresh:
        _cached = discover()
    return _cached
