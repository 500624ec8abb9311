"""The built-in fitting models: model functions, Jacobians and initial guesses.

Every function is vectorised over ``t`` (float64, in the model's time unit, hours for all
built-ins) and takes every parameter, fixed or fitted, as a keyword. The initial guesses
share one idea: each model is linear in its amplitude and offset once its nonlinear
parameters (rates, times) are chosen, so a coarse grid over the nonlinear ones with a
closed-form linear least-squares fit of the other two gives a starting point close to the
optimum, which keeps ``least_squares`` short and away from bad local minima.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

# Closer than this, beta - delta (or beta - delta + km) is nudged away from zero, where
# pyama-core's closed form divides 0 by 0; the model is continuous there, and the relative
# change of the result is ~1e-9.
_SINGULAR = 1e-7


# ---------------------------------------------------------------- maturation
def _nudge(value, shift=0.0):
    """``value`` moved at least ``_SINGULAR`` away from ``shift`` (elementwise)."""
    gap = np.asarray(value, dtype=np.float64) - shift
    return shift + np.where(np.abs(gap) < _SINGULAR, np.where(gap >= 0, _SINGULAR, -_SINGULAR), gap)


def _maturation_terms(t, t0, km, delta, beta):
    """Shared pieces of the maturation model (pyama-core's equations) at each t.

    ``t0`` and ``delta`` may be arrays broadcasting against ``t`` (the initial guess
    evaluates a whole grid at once).
    """
    dt = np.asarray(t, dtype=np.float64) - t0
    on = dt > 0
    dt = np.where(on, dt, 0.0)  # the model is 0 before t0; avoids overflow in the exps
    b = _nudge(beta - np.asarray(delta, dtype=np.float64))
    c = _nudge(b + km)
    b = c - km
    d = beta - b  # delta, consistent with the nudged b and c
    e1, e2, e3 = np.exp(-(beta + km) * dt), np.exp(-beta * dt), np.exp(-d * dt)
    shape = e1 / c - e2 / b + km / (b * c) * e3
    return dt, on, b, c, d, e1, e2, e3, shape


def maturation(t, t0, ktl, delta, offset, km, beta, scale):
    """Mature fluorescent protein after a pulse of mRNA at ``t0`` (pyama-core's model).

    mRNA decays at ``delta``, is translated at ``ktl``; the protein matures at ``km`` and
    is degraded at ``beta`` (rates per hour)::

        y = scale * (ktl * F(t - t0) + offset),  F = 0 for t <= t0, else
        F(dt) = e^{-(beta+km) dt} / (beta-delta+km) - e^{-beta dt} / (beta-delta)
                + km e^{-delta dt} / ((beta-delta) (beta-delta+km))

    Parameters
    ----------
    t : (n,) ndarray
        Time in hours.
    t0, ktl, delta, offset, km, beta, scale : float
        Onset (h), translation rate (a.u./h), mRNA decay rate (1/h), baseline (a.u.),
        maturation rate (1/h), protein degradation rate (1/h), scale factor.

    Returns
    -------
    (n,) float64 ndarray
    """
    *_, on, _b, _c, _d, _e1, _e2, _e3, shape = _maturation_terms(t, t0, km, delta, beta)
    return scale * (ktl * np.where(on, shape, 0.0) + offset)


def maturation_jacobian(t, t0, ktl, delta, offset, km, beta, scale):
    """Partial derivatives of :func:`maturation` for t0, ktl, delta, offset and scale.

    Returns
    -------
    dict of str to (n,) ndarray
    """
    dt, on, b, c, d, e1, e2, e3, shape = _maturation_terms(t, t0, km, delta, beta)
    shape = np.where(on, shape, 0.0)
    slope = -(beta + km) * e1 / c + beta * e2 / b - d * km * e3 / (b * c)  # dF/d(dt)
    d_delta = e1 / c**2 - e2 / b**2 + km * e3 * (-dt / (b * c) + (b + c) / (b * c) ** 2)
    ones = np.ones_like(dt)
    return {
        "t0": -scale * ktl * np.where(on, slope, 0.0),
        "ktl": scale * shape,
        "delta": scale * ktl * np.where(on, d_delta, 0.0),
        "offset": scale * ones,
        "scale": ktl * shape + offset,
    }


def maturation_guess(t, y, t0, ktl, delta, offset, km, beta, scale):
    """Best (t0, delta) on a grid, with ktl and offset by linear least squares."""
    span = max(float(np.ptp(t)), 1e-9)
    deltas = np.geomspace(0.1 / span, min(50.0 / span, 10.0), 14)
    onsets = np.linspace(-1.0, 1.0, 5)  # pyama-core's bounds of t0 (the engine clips)
    grid_t0, grid_delta = (g.ravel()[:, None] for g in np.meshgrid(onsets, deltas, indexing="ij"))
    basis = maturation(np.asarray(t, dtype=np.float64)[None, :], grid_t0, 1.0, grid_delta, 0.0, km, beta, scale)
    best, amplitude, base = _best_linear(basis, y)
    return {"t0": float(grid_t0[best, 0]), "delta": float(grid_delta[best, 0]), "ktl": amplitude,
            "offset": base / scale if scale else offset}


# ------------------------------------------------------- exponential decay
def exponential_decay(t, amplitude, rate, offset):
    """``y = amplitude * exp(-rate * t) + offset`` (t in hours, rate per hour)."""
    return amplitude * np.exp(-rate * np.asarray(t, dtype=np.float64)) + offset


def exponential_decay_jacobian(t, amplitude, rate, offset):
    """Partial derivatives of :func:`exponential_decay`."""
    t = np.asarray(t, dtype=np.float64)
    e = np.exp(-rate * t)
    return {"amplitude": e, "rate": -amplitude * t * e, "offset": np.ones_like(t)}


def exponential_decay_guess(t, y, amplitude, rate, offset):
    """Best rate on a log grid, with amplitude and offset by linear least squares."""
    span = max(float(np.ptp(t)), 1e-9)
    rates = np.geomspace(0.05 / span, 100.0 / span, 40)
    basis = np.exp(-np.outer(rates, t))
    best, a, base = _best_linear(basis, y)
    return {"rate": rates[best], "amplitude": a, "offset": base}


# -------------------------------------------------- logistic and gompertz
def logistic(t, capacity, rate, t_mid, offset):
    """``y = capacity / (1 + exp(-rate (t - t_mid))) + offset`` (t, t_mid in h; rate 1/h)."""
    return capacity * expit(rate * (np.asarray(t, dtype=np.float64) - t_mid)) + offset


def logistic_jacobian(t, capacity, rate, t_mid, offset):
    """Partial derivatives of :func:`logistic`."""
    x = np.asarray(t, dtype=np.float64) - t_mid
    s = expit(rate * x)
    slope = capacity * s * (1.0 - s)
    return {"capacity": s, "rate": slope * x, "t_mid": -slope * rate, "offset": np.ones_like(x)}


def _gompertz_inner(t, rate, t_mid):
    x = np.asarray(t, dtype=np.float64) - t_mid
    u = np.exp(np.minimum(-rate * x, 700.0))  # exp(-exp(700)) is 0 anyway; avoid inf * 0
    return x, u, np.exp(-u)


def gompertz(t, capacity, rate, t_mid, offset):
    """``y = capacity * exp(-exp(-rate (t - t_mid))) + offset``; steepest at ``t_mid``."""
    return capacity * _gompertz_inner(t, rate, t_mid)[2] + offset


def gompertz_jacobian(t, capacity, rate, t_mid, offset):
    """Partial derivatives of :func:`gompertz`."""
    x, u, g = _gompertz_inner(t, rate, t_mid)
    return {"capacity": g, "rate": capacity * g * u * x, "t_mid": -capacity * g * u * rate,
            "offset": np.ones_like(x)}


def _sigmoid_guess(inner):
    def guess(t, y, capacity, rate, t_mid, offset):
        t = np.asarray(t, dtype=np.float64)
        span = max(float(np.ptp(t)), 1e-9)
        rates = np.geomspace(1.0 / span, 200.0 / span, 10)
        mids = np.linspace(t.min(), t.max(), 15)
        grid = [(r, m) for r in rates for m in mids]
        basis = np.stack([inner(t, r, m) for r, m in grid])
        best, a, base = _best_linear(basis, y)
        return {"rate": grid[best][0], "t_mid": grid[best][1], "capacity": a, "offset": base}

    return guess


logistic_guess = _sigmoid_guess(lambda t, r, m: expit(r * (t - m)))
gompertz_guess = _sigmoid_guess(lambda t, r, m: _gompertz_inner(t, r, m)[2])


# ------------------------------------------------------------------ shared
def _best_linear(basis: np.ndarray, y: np.ndarray) -> tuple[int, float, float]:
    """Row of ``basis`` (K, n) that best explains ``y ~ a * basis + c`` with ``a >= 0``.

    Returns the row index, ``a`` and ``c`` (closed-form simple linear regression per row).
    """
    y = np.asarray(y, dtype=np.float64)
    bm = basis.mean(axis=1, keepdims=True)
    centred = basis - bm
    var = np.einsum("kn,kn->k", centred, centred)
    cov = centred @ (y - y.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(var > 0, cov / var, 0.0)
    a = np.maximum(a, 0.0)
    c = y.mean() - a * bm[:, 0]
    resid = y[None, :] - a[:, None] * basis - c[:, None]
    ssr = np.einsum("kn,kn->k", resid, resid)
    best = int(np.nanargmin(ssr))
    return best, float(a[best]), float(c[best])
