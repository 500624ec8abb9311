"""The example fitting model keeps pyama's contract (the kit's conformance suite)."""

from pyama_framework.testing.conformance import check_fitting_model

from pyama_kinetics.plugin import pyama_fitting_models


def test_onset_rise_keeps_the_fitting_model_contract():
    (registration,) = pyama_fitting_models()
    check_fitting_model(registration)
