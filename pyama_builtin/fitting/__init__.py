"""Built-in fitting models (registration only; the functions are imported when a fit runs).

Rates are per hour and times in hours, as in pyama-core; ``pyama fit`` converts the traces'
``time`` column (minutes). ``maturation`` has pyama-core's equations, fixed values, initial
values and bounds; the bounds of its fixed parameters (which pyama-core does not give) only
guard ``--set`` against impossible values.
"""

from __future__ import annotations

from pyama_framework import FittingModelRegistration, ModelParameter, hookimpl

_IMPL = "pyama_builtin.fitting.models"
_BIG = 1e12  # amplitudes: any fluorescence scale; finite so that least_squares scales well


@hookimpl
def pyama_fitting_models():
    yield FittingModelRegistration(
        name="maturation",
        summary="mRNA pulse at t0 -> translation -> protein maturation and degradation "
                "(pyama-core's model)",
        implementation=f"{_IMPL}:maturation",
        jacobian=f"{_IMPL}:maturation_jacobian",
        initial_guess=f"{_IMPL}:maturation_guess",
        time_unit="h",
        parameters=(
            ModelParameter("t0", 0.0, -1.0, 1.0, unit="h", description="time of the mRNA pulse"),
            ModelParameter("ktl", 1e3, 1.0, 5e8, unit="a.u./h", description="translation rate"),
            ModelParameter("delta", 1e-2, 1e-5, 11.0, unit="1/h", description="mRNA decay rate"),
            ModelParameter("offset", 0.0, -1e6, 1e6, unit="a.u.", description="baseline"),
            ModelParameter("km", 1.28, 1e-3, 100.0, fixed=True, unit="1/h",
                           description="maturation rate of the fluorescent protein"),
            ModelParameter("beta", 5.22e-3, 0.0, 10.0, fixed=True, unit="1/h",
                           description="protein degradation rate"),
            ModelParameter("scale", 1.0, 1e-12, 1e12, fixed=True,
                           description="factor on the whole curve (pyama-core's scale)"),
        ),
    )
    yield FittingModelRegistration(
        name="exponential_decay",
        summary="y = amplitude * exp(-rate * t) + offset",
        implementation=f"{_IMPL}:exponential_decay",
        jacobian=f"{_IMPL}:exponential_decay_jacobian",
        initial_guess=f"{_IMPL}:exponential_decay_guess",
        time_unit="h",
        parameters=(
            ModelParameter("amplitude", 1.0, 0.0, _BIG, unit="a.u.", description="value above the offset at t = 0"),
            ModelParameter("rate", 0.1, 1e-6, 100.0, unit="1/h", description="decay rate (half-life ln 2 / rate)"),
            ModelParameter("offset", 0.0, -_BIG, _BIG, unit="a.u.", description="level approached at long times"),
        ),
    )
    sigmoid = (
        ModelParameter("capacity", 1.0, 0.0, _BIG, unit="a.u.", description="rise from offset to plateau"),
        ModelParameter("rate", 0.5, 1e-4, 100.0, unit="1/h", description="growth rate"),
        ModelParameter("t_mid", 0.0, -1e4, 1e4, unit="h", description="time of steepest rise"),
        ModelParameter("offset", 0.0, -_BIG, _BIG, unit="a.u.", description="level before the rise"),
    )
    yield FittingModelRegistration(
        name="logistic",
        summary="Logistic growth: y = capacity / (1 + exp(-rate (t - t_mid))) + offset",
        implementation=f"{_IMPL}:logistic",
        jacobian=f"{_IMPL}:logistic_jacobian",
        initial_guess=f"{_IMPL}:logistic_guess",
        time_unit="h",
        parameters=sigmoid,
    )
    yield FittingModelRegistration(
        name="gompertz",
        summary="Gompertz growth: y = capacity * exp(-exp(-rate (t - t_mid))) + offset",
        implementation=f"{_IMPL}:gompertz",
        jacobian=f"{_IMPL}:gompertz_jacobian",
        initial_guess=f"{_IMPL}:gompertz_guess",
        time_unit="h",
        parameters=sigmoid,
    )
