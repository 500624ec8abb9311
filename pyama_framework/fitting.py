"""Fit a registered model to every cell's trace (``pyama fit``), and evaluate fitted models.

Per cell, ``scipy.optimize.least_squares`` (trust region reflective, bounds, the model's
Jacobian when it has one) starts from the model's initial guess, returns the parameters,
their standard errors from the Jacobian at the optimum (``sqrt(diag((J^T J)^-1) * s^2)`` with
``s^2 = SS_res / (n - p)``), and the textbook ``R^2 = 1 - SS_res / SS_tot`` over the fitted
points. Cells are fitted in chunks by worker processes; the output order is the input order.
Times are converted from the traces' minutes to the model's ``time_unit``.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import PyamaError
from .types import MINUTES_PER, FittingModelRegistration, load_object

KIND = "fitting_model"
GOOD_R2, FAIR_R2 = 0.9, 0.7  # pyama-core's quality split: > 0.9 good, > 0.7 fair, else poor


class FittingError(PyamaError):
    """Bad input to ``pyama fit``: unknown model, feature, channel or parameter, bad values."""


@dataclass(frozen=True)
class FitSetup:
    """Everything a worker process needs to fit one model: picklable, no pydantic classes.

    ``values`` are the fixed values and the starting values of the fitted parameters;
    ``user_set`` names starting values the user gave, which the model's guess must not replace.
    """

    model: str
    implementation: Callable | str
    jacobian: Callable | str | None
    initial_guess: Callable | str | None
    names: tuple[str, ...]
    values: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    free: tuple[bool, ...]
    units: tuple[str, ...]
    user_set: frozenset[str]
    minutes_per_unit: float

    @property
    def free_names(self) -> list[str]:
        return [n for n, f in zip(self.names, self.free) if f]


def get_model(name: str, registry=None) -> FittingModelRegistration:
    """The registered fitting model ``name`` (a one-line PluginError with the closest match)."""
    from .registry import get_registry

    return (registry or get_registry()).get(KIND, name)


def prepare(registration: FittingModelRegistration, values: Mapping[str, float] | None = None,
            fix: Sequence[str] = (), free: Sequence[str] = ()) -> FitSetup:
    """Check user values (``--set``), ``--fix`` and ``--free`` against the model; build its setup.

    Raises
    ------
    FittingError
        An unknown parameter, a value outside its bounds, or a parameter both fixed and freed.
    """
    values = dict(values or {})
    params = {p.name: p for p in registration.parameters}
    for name in [*values, *fix, *free]:
        if name not in params:
            close = difflib.get_close_matches(name, list(params), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise FittingError(f"model '{registration.name}' has no parameter '{name}'{hint}; "
                               f"its parameters: {', '.join(params)}")
    both = sorted(set(fix) & set(free))
    if both:
        raise FittingError(f"parameter '{both[0]}' is given to both --fix and --free; choose one")
    for name, value in values.items():
        p = params[name]
        if not (math.isfinite(value) and p.lower <= value <= p.upper):
            role = "fixed" if (p.fixed or name in fix) and name not in free else "initial"
            raise FittingError(f"{role} value {name}={value:g} is outside its bounds "
                               f"[{p.lower:g}, {p.upper:g}] {p.unit} in model "
                               f"'{registration.name}'; give a value inside them")
    is_free = tuple((not p.fixed or p.name in free) and p.name not in fix
                    for p in registration.parameters)
    if not any(is_free):
        raise FittingError(f"every parameter of model '{registration.name}' is fixed; "
                           f"free one with --free NAME")
    return FitSetup(
        model=registration.name, implementation=registration.implementation,
        jacobian=registration.jacobian, initial_guess=registration.initial_guess,
        names=tuple(params),
        values=tuple(float(values.get(n, params[n].initial)) for n in params),
        lower=tuple(float(p.lower) for p in registration.parameters),
        upper=tuple(float(p.upper) for p in registration.parameters),
        free=is_free, units=tuple(p.unit for p in registration.parameters),
        user_set=frozenset(values), minutes_per_unit=MINUTES_PER[registration.time_unit],
    )


def quality(r_squared: float, success: bool = True) -> str:
    """pyama-core's label: ``good`` (R^2 > 0.9), ``fair`` (> 0.7), else ``poor``."""
    if not success or not np.isfinite(r_squared):
        return "poor"
    return "good" if r_squared > GOOD_R2 else "fair" if r_squared > FAIR_R2 else "poor"


def fit_trace(setup: FitSetup, t_minutes: np.ndarray, y: np.ndarray,
              max_nfev: int | None = None) -> dict[str, Any]:
    """Fit one cell's trace.

    Parameters
    ----------
    setup : FitSetup
        From :func:`prepare`.
    t_minutes, y : (n,) array_like
        Time in minutes and the feature's values; non-finite points are left out.
    max_nfev : int, optional
        Limit on model evaluations (default: least_squares' own, 100 x parameters).

    Returns
    -------
    dict
        ``success``, ``r_squared``, ``n_points``, ``message``, ``values`` (every parameter)
        and ``errors`` (standard error of each fitted parameter, NaN for fixed ones).
        A fit that fails or does not converge has ``success`` False; it never raises.
    """
    from scipy.optimize import least_squares

    t = np.asarray(t_minutes, dtype=np.float64) / setup.minutes_per_unit
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    free = np.array(setup.free)
    values = np.array(setup.values)
    lower, upper = np.array(setup.lower), np.array(setup.upper)
    n, p = t.size, int(free.sum())
    result: dict[str, Any] = {"success": False, "r_squared": float("nan"), "n_points": n,
                              "message": "", "values": np.full(len(values), np.nan),
                              "errors": np.full(len(values), np.nan)}
    if n < p:
        result["message"] = f"{n} points for {p} parameters"
        return result
    f = load_object(setup.implementation)
    jac = load_object(setup.jacobian) if setup.jacobian is not None else None
    names = setup.names
    free_names = [nm for nm, fr in zip(names, free) if fr]

    def params_of(x: np.ndarray) -> dict[str, float]:
        full = values.copy()
        full[free] = x
        return dict(zip(names, full.tolist()))

    try:
        if setup.initial_guess is not None:
            guess = load_object(setup.initial_guess)(t, y, **dict(zip(names, values.tolist())))
            for i, name in enumerate(names):
                if free[i] and name not in setup.user_set and np.isfinite(guess.get(name, np.nan)):
                    values[i] = guess[name]
        x0 = np.clip(values[free], lower[free], upper[free])

        def residuals(x: np.ndarray) -> np.ndarray:
            return f(t, **params_of(x)) - y

        jac_arg: Callable | str = "2-point"
        if jac is not None:
            def jacobian(x: np.ndarray) -> np.ndarray:
                columns = jac(t, **params_of(x))
                return np.column_stack([np.broadcast_to(columns[nm], t.shape) for nm in free_names])

            if all(nm in jac(t, **params_of(x0)) for nm in free_names):
                jac_arg = jacobian
        fit = least_squares(residuals, x0, jac=jac_arg, bounds=(lower[free], upper[free]),
                            x_scale="jac", max_nfev=max_nfev)
    except Exception as exc:  # a bad cell must never stop the run
        result["message"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return result
    full = values.copy()
    full[free] = fit.x
    result["values"] = full
    residual = fit.fun
    ss_res = float(residual @ residual)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    result["r_squared"] = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    result["errors"][free] = _standard_errors(fit.jac, ss_res, n)
    result["success"] = bool(fit.success and np.all(np.isfinite(fit.x)) and np.isfinite(ss_res))
    result["message"] = "" if result["success"] else fit.message
    return result


def _standard_errors(jac: np.ndarray, ss_res: float, n: int) -> np.ndarray:
    """sqrt(diag(s^2 (J^T J)^-1)), NaN when n <= p or J is rank-deficient (as curve_fit)."""
    p = jac.shape[1]
    if n <= p or not np.all(np.isfinite(jac)):
        return np.full(p, np.nan)
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    if sv[-1] <= np.finfo(float).eps * max(jac.shape) * sv[0]:
        return np.full(p, np.nan)
    cov = (vt.T / sv**2) @ vt * (ss_res / (n - p))
    return np.sqrt(np.diag(cov))


def _fit_chunk(setup: FitSetup, chunk: list[tuple[np.ndarray, np.ndarray]]) -> list[dict]:
    return [fit_trace(setup, t, y) for t, y in chunk]


def fit_cells(setup: FitSetup, cells: Sequence[tuple[np.ndarray, np.ndarray]],
              workers: int = 1) -> list[dict[str, Any]]:
    """Fit each ``(t_minutes, y)`` pair; results in input order, with ``workers`` processes."""
    cells = list(cells)
    if workers <= 1 or len(cells) < 64:
        return _fit_chunk(setup, cells)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    size = max(16, math.ceil(len(cells) / (workers * 8)))  # small chunks balance the load
    chunks = [cells[i:i + size] for i in range(0, len(cells), size)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        parts = pool.map(_fit_chunk, [setup] * len(chunks), chunks)
        return [r for part in parts for r in part]


def column_of(traces, feature: str, channel: int, source: str) -> str:
    """The traces column of ``feature`` on ``channel``, or a FittingError naming what exists."""
    column = f"{feature}_ch_{channel}"
    if column in traces.columns:
        return column
    present = [c for c in traces.columns if "_ch_" in c and c.rsplit("_ch_", 1)[1].isdigit()]
    on_feature = sorted(int(c.rsplit("_ch_", 1)[1]) for c in present if c.rsplit("_ch_", 1)[0] == feature)
    if on_feature:
        raise FittingError(f"{source} has feature '{feature}' on channel(s) "
                           f"{', '.join(map(str, on_feature))}, not on channel {channel}; "
                           f"pass --channel {on_feature[0]}")
    features = sorted({c.rsplit("_ch_", 1)[0] for c in present})
    close = difflib.get_close_matches(feature, features, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise FittingError(f"{source} has no feature '{feature}'{hint}; its features: "
                       f"{', '.join(features) or '(none)'}")


def fit_traces(traces, setup: FitSetup, column: str, workers: int = 1, good_only: bool = True):
    """Fit ``column`` of a traces table (per-FOV or merged) cell by cell.

    Returns a DataFrame with one row per cell (sorted by sample, fov, cell): sample,
    (``results`` when the traces have it: merged from several folders), fov, cell, model,
    success, r_squared, quality, n_points, every parameter, ``<param>_se``.
    """
    import pandas as pd

    df = traces
    if good_only and "good" in df.columns:
        df = df[df["good"].astype(bool)]
    if "sample" not in df.columns:
        df = df.assign(sample=None)
    df = df.assign(sample=df["sample"].fillna("").astype(str))
    # A merged file of several results folders numbers FOVs per folder: `results` is in the key.
    key = ["sample", "results", "fov", "cell"] if "results" in df.columns else ["sample", "fov", "cell"]
    df = df.sort_values([*key, "frame"], kind="stable")
    keys = df[key].drop_duplicates()
    starts = np.flatnonzero(~df.duplicated(key).to_numpy())
    t_all, y_all = df["time"].to_numpy(np.float64), df[column].to_numpy(np.float64)
    cells = [(t, y) for t, y in zip(np.split(t_all, starts[1:]), np.split(y_all, starts[1:]))]
    p = sum(setup.free)
    longest = max((int(np.isfinite(y).sum()) for _, y in cells), default=0)
    if longest < p:
        raise FittingError(f"the longest trace has {longest} point(s) with a value of '{column}', "
                           f"fewer than the {p} parameters model '{setup.model}' fits; use longer "
                           f"traces{' (or --all)' if good_only else ''} or hold parameters with --fix")
    results = fit_cells(setup, cells, workers)
    out = keys.reset_index(drop=True)
    out["model"] = setup.model
    out["success"] = [r["success"] for r in results]
    out["r_squared"] = [r["r_squared"] for r in results]
    out["quality"] = [quality(r["r_squared"], r["success"]) for r in results]
    out["n_points"] = [r["n_points"] for r in results]
    values = np.array([r["values"] for r in results]).reshape(len(results), len(setup.names))
    errors = np.array([r["errors"] for r in results]).reshape(len(results), len(setup.names))
    table = pd.DataFrame(values, columns=list(setup.names))
    table[[f"{n}_se" for n in setup.names]] = errors
    return pd.concat([out, table], axis=1)


def fitted_header(setup: FitSetup, feature: str, channel: int, source: Path,
                  good_only: bool, time_unit: str) -> dict[str, str]:
    """The ``# key: value`` lines of a fitted-results CSV."""
    from . import __version__

    fixed = [f"{n}={v:g}" + (f" {u}" if u else "")
             for n, v, fr, u in zip(setup.names, setup.values, setup.free, setup.units) if not fr]
    return {"model": setup.model, "feature": feature, "channel": str(channel),
            "traces": str(source), "rows": "good only" if good_only else "all",
            "time_unit": f"{time_unit} (traces' minutes converted)",
            "fixed": "; ".join(fixed) or "(none)",
            "units": "; ".join(f"{n}={u}" for n, u in zip(setup.names, setup.units) if u),
            "pyama_framework": __version__}


def write_fitted(path: Path, table, header: Mapping[str, str]) -> Path:
    """Write the fitted table as CSV after ``# key: value`` header lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        for key, value in header.items():
            handle.write(f"# {key}: {value}\n")
        table.to_csv(handle, index=False, float_format="%.10g")
    return path


def read_fitted(path: Path):
    """A fitted-results CSV as ``(DataFrame, header dict)``."""
    import pandas as pd

    header: dict[str, str] = {}
    with open(path) as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    return pd.read_csv(path, skiprows=len(header)), header


def evaluate_model(name: str, t_minutes, **params: float) -> np.ndarray:
    """The registered model ``name`` at times ``t_minutes`` (minutes, as in the traces).

    Parameters not given take the model's defaults; keywords that are not parameters of
    the model (other columns of a fitted row) are ignored.
    """
    registration = get_model(name)
    values = {p.name: float(params.get(p.name, p.initial)) for p in registration.parameters}
    t = np.asarray(t_minutes, dtype=np.float64) / MINUTES_PER[registration.time_unit]
    return np.asarray(registration.load()(t, **values), dtype=np.float64)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
