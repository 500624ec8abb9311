"""Conformance suite of fitting models: ``check_fitting_model(registration)``."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ...types import MINUTES_PER
from ._support import call, check_registration, check_same, check_unchanged, fail, load
from .discovery import check_light_discovery

N_POINTS = 40
SPAN_MIN = 24 * 60.0  # a day of trace, the length of a typical time-lapse


def _evaluate(registration: Any, f: Any, t: np.ndarray, values: dict[str, float], what: str) -> np.ndarray:
    y = call(registration, what, f, t, **values)
    if not isinstance(y, np.ndarray) or y.shape != t.shape:
        fail(registration, f"{what} returned {getattr(y, 'shape', type(y).__name__)}; expected an array of "
                           f"t's shape {t.shape} (vectorise over t)")
    if not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all():
        fail(registration, f"{what} returned dtype {y.dtype} with {int((~np.isfinite(y)).sum()) if y.dtype.kind == 'f' else '?'} "
                           f"non-finite values; return finite float64 values")
    return y


def _check_jacobian(registration: Any, f: Any, jac: Any, t: np.ndarray, values: dict[str, float],
                    rtol: float) -> None:
    columns = call(registration, "jacobian(t, **params)", jac, t.copy(), **values)
    if not isinstance(columns, Mapping):
        fail(registration, f"jacobian returned {type(columns).__name__}; return {{parameter name: dy/dparam}}")
    unknown = sorted(set(columns) - set(values))
    if unknown:
        fail(registration, f"jacobian returned columns for unknown parameters {unknown}")
    for name, column in columns.items():
        column = np.broadcast_to(np.asarray(column, dtype=np.float64), t.shape)
        step = 1e-6 * max(1.0, abs(values[name]))
        up = _evaluate(registration, f, t.copy(), {**values, name: values[name] + step}, "the model")
        down = _evaluate(registration, f, t.copy(), {**values, name: values[name] - step}, "the model")
        numerical = (up - down) / (2 * step)
        scale = max(float(np.abs(numerical).max()), 1e-12)
        worst = float(np.abs(column - numerical).max())
        if not worst <= rtol * scale:
            fail(registration, f"jacobian column '{name}' differs from the numerical derivative by {worst:.3g} "
                               f"(scale {scale:.3g}); check d y / d {name}")


def check_fitting_model(registration: Any, *, plugin_module: str | None = None, end_to_end: bool = True,
                        jacobian_rtol: float = 1e-4, min_r_squared: float = 0.99) -> None:
    """Check a :class:`~pyama_framework.FittingModelRegistration` against its contract.

    The model is evaluated over one day of trace at its initial values: a finite float
    array of t's shape, deterministic, ``t`` untouched. The Jacobian (if any) must match
    central differences within ``jacobian_rtol`` of its largest entry; the initial guess
    (if any) returns finite values for known parameters. End to end, the fit used by
    ``pyama fit`` recovers the noiseless curve with ``R^2 >= min_r_squared``.

    Raises
    ------
    ContractViolation
        Naming the broken rule.
    """
    from ...fitting import fit_trace, prepare

    check_registration(registration, "fitting_model")
    for p in registration.parameters:
        if not p.description.strip():
            fail(registration, f"parameter '{p.name}' has no description; give ModelParameter(..., description=)")
    check_light_discovery(registration, plugin_module)
    f = load(registration, registration.load, registration.implementation)
    t = np.linspace(0.0, SPAN_MIN / MINUTES_PER[registration.time_unit], N_POINTS)
    values = {p.name: float(p.initial) for p in registration.parameters}
    t_in = t.copy()
    y = _evaluate(registration, f, t_in, values, "the model f(t, **params)")
    check_unchanged(registration, "t", t, t_in)
    check_same(registration, "t", y, _evaluate(registration, f, t.copy(), values, "the model f(t, **params)"))
    jac = load(registration, registration.load_jacobian, registration.jacobian)
    if jac is not None:
        _check_jacobian(registration, f, jac, t, values, jacobian_rtol)
    guess_of = load(registration, registration.load_initial_guess, registration.initial_guess)
    if guess_of is not None:
        t_in, y_in = t.copy(), y.copy()
        guess = call(registration, "initial_guess(t, y, **params)", guess_of, t_in, y_in, **values)
        check_unchanged(registration, "t (initial_guess)", t, t_in)
        check_unchanged(registration, "y (initial_guess)", y, y_in)
        if not isinstance(guess, Mapping):
            fail(registration, f"initial_guess returned {type(guess).__name__}; return {{parameter name: value}}")
        for name, value in guess.items():
            if name not in values:
                fail(registration, f"initial_guess returned unknown parameter '{name}'")
            if not np.isfinite(float(value)):
                fail(registration, f"initial_guess returned {name} = {value!r}; return finite values")
    if end_to_end:
        result = fit_trace(prepare(registration), t * MINUTES_PER[registration.time_unit], y)
        if not result["success"] or not result["r_squared"] >= min_r_squared:
            fail(registration, f"the fit of 'pyama fit' does not recover a noiseless curve of the model at its "
                               f"initial values (success {result['success']}, R^2 {result['r_squared']:.4g}"
                               f"{', ' + result['message'] if result['message'] else ''})")
