"""Shared pieces of the conformance suites: failure type, registration and params checks,
the fixture inputs, and small array comparisons."""

from __future__ import annotations

import atexit
import functools
import inspect
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ...types import KINDS, Registration

TYPO_KEY = "pyama_conformance_typo"


class ContractViolation(AssertionError):
    """A plugin breaks its kind's contract; the message says which rule and how to fix it."""


def who(registration: Registration) -> str:
    return f"{registration.kind} '{registration.name}'"


def fail(registration: Registration, message: str) -> None:
    raise ContractViolation(f"{who(registration)}: {message}")


def check_registration(registration: Any, kind: str) -> None:
    """The object is a well-formed registration of ``kind`` (what discovery accepts)."""
    from ...registry import _validate

    expected = KINDS[kind][1]
    if not isinstance(registration, expected):
        raise ContractViolation(f"expected a {expected.__name__}, got {type(registration).__name__}")
    check_params_model(registration)  # before the registry's own check: its message is more specific
    reason = _validate(registration, expected)
    if reason:
        fail(registration, f"malformed registration: {reason}")


def check_params_model(registration: Registration) -> None:
    """Unknown keys are refused; every field has a default and a description."""
    from pydantic import ValidationError

    model = registration.params
    try:
        model.model_validate({TYPO_KEY: 1})
    except ValidationError:
        pass
    else:
        fail(registration, f"params model {model.__name__} accepts the unknown key '{TYPO_KEY}', so a typo in "
                           f"a config is silently ignored; derive it from pyama_framework.PluginParams "
                           f"(extra='forbid')")
    for name, field in model.model_fields.items():
        if field.is_required():
            fail(registration, f"params field '{name}' has no default; give every field a default so that "
                               f"'params: {{}}' runs")
        if not (field.description or "").strip():
            fail(registration, f"params field '{name}' has no description; use Field(default, "
                               f"description='what it does (unit)')")
    try:
        model.model_validate({})
    except ValidationError as exc:
        fail(registration, f"params model {model.__name__} rejects its own defaults: {exc.errors()[0]['msg']}")


def load(registration: Registration, loader: Any, target: Any) -> Any:
    """Import an implementation (``loader()``), turning an import failure into a violation."""
    try:
        return loader()
    except Exception as exc:
        fail(registration, f"{target!r} cannot be loaded: {type(exc).__name__}: {exc}")


def params_kwargs(registration: Registration, params: dict | None) -> dict[str, Any]:
    from pydantic import ValidationError

    try:
        return registration.validate_params(params).model_dump()
    except ValidationError as exc:
        fail(registration, f"params {params!r} are invalid: {exc.errors()[0]['msg']}")


def accepts_keyword(function: Any, keyword: str) -> bool:
    try:
        return keyword in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def call(registration: Registration, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
    """Call the plugin; an exception becomes a violation naming the call."""
    try:
        return function(*args, **kwargs)
    except ContractViolation:
        raise
    except Exception as exc:
        fail(registration, f"{what} raised {type(exc).__name__}: {exc}")


def check_unchanged(registration: Registration, what: str, before: np.ndarray, after: np.ndarray) -> None:
    if not np.array_equal(before, after, equal_nan=before.dtype.kind == "f"):
        changed = int(np.count_nonzero(before != after))
        fail(registration, f"modifies its input {what} ({changed} pixels changed); work on a copy "
                           f"(e.g. image.astype(np.float32)) instead of in place")


def check_same(registration: Registration, what: str, first: Any, second: Any) -> None:
    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape or not np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
        differ = int(np.count_nonzero(a != b)) if a.shape == b.shape else "shapes differ"
        fail(registration, f"is not deterministic: two calls on the same {what} gave different results "
                           f"({differ} values differ); seed randomness from the params, keep no state between calls")


def conformance_movie():
    """The fixture movie the suites feed to plugins (the pytest fixture ``pyama_movie``)."""
    from ..fixture_movie import fixture_movie

    return fixture_movie()


@functools.lru_cache(maxsize=1)
def conformance_file() -> Path:
    """The fixture movie as an OME-TIFF, written once per process (removed at exit)."""
    from ..fixture_movie import write_movie

    folder = Path(tempfile.mkdtemp(prefix="pyama-conformance-movie-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return write_movie(conformance_movie(), folder / "movie.ome.tif")
