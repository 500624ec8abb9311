"""Registration of this plugin. Cheap to import: no numpy here.

pyama imports this module through the ``pyama.plugins`` entry point in pyproject.toml, calls
the hook, and imports ``pyama_kinetics.models`` only when a fit uses the model.
"""

from pyama_framework import FittingModelRegistration, ModelParameter, hookimpl

PYAMA_API = ">=1.0,<2"  # pyama hook API versions this plugin works with


@hookimpl
def pyama_fitting_models():
    yield FittingModelRegistration(
        name="onset_rise",
        summary="Expression switched on at t_on, rising to a plateau: "
                "amplitude (1 - exp(-rate (t - t_on))) + offset",
        implementation="pyama_kinetics.models:onset_rise",
        initial_guess="pyama_kinetics.models:onset_rise_guess",
        # No Jacobian given: pyama differentiates numerically.
        time_unit="h",
        parameters=(
            ModelParameter("t_on", 1.0, 0.0, 48.0, unit="h", description="time expression starts"),
            ModelParameter("amplitude", 1e4, 0.0, 1e9, unit="a.u.", description="plateau above the offset"),
            ModelParameter("rate", 0.3, 1e-3, 20.0, unit="1/h", description="approach rate to the plateau"),
            ModelParameter("offset", 0.0, -1e6, 1e6, fixed=True, unit="a.u.",
                           description="baseline (fixed; free it with --free offset)"),
        ),
    )
