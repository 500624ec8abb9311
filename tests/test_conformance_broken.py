"""The conformance suites catch each contract violation of the deliberately broken plugin
in tests/broken_plugin, with a message naming the rule and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from pyama_framework.testing.conformance import (ContractViolation, check_background, check_feature,
                                                 check_fitting_model, check_reader, check_segmenter, check_tracker)

from conftest import ROOT

BROKEN = ROOT / "tests" / "broken_plugin"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A site folder holding the broken plugin's .dist-info (its entry points)."""
    site = tmp_path_factory.mktemp("broken-site")
    info = site / "broken_lab-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-lab\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[pyama.plugins]\nbroken = broken_lab.plugin\nheavy = broken_lab.heavy_plugin\n")
    return site


@pytest.fixture
def broken(site, monkeypatch):
    """The broken plugin installed for this test: ``broken(kind, name)`` is its registration."""
    monkeypatch.syspath_prepend(str(BROKEN))
    monkeypatch.syspath_prepend(str(site))
    from broken_lab import plugin

    hooks = {"segmenter": plugin.pyama_segmenters, "tracker": plugin.pyama_trackers,
             "background": plugin.pyama_background_estimators, "feature": plugin.pyama_features,
             "reader": plugin.pyama_readers, "fitting_model": plugin.pyama_fitting_models}
    return lambda kind, name: next(r for r in hooks[kind]() if r.name == name)


def violation(check, *args, **kwargs) -> str:
    with pytest.raises(ContractViolation) as caught:
        check(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_modifies_input(broken):
    message = violation(check_segmenter, broken("segmenter", "broken_inplace"), end_to_end=False)
    assert message.startswith("segmenter 'broken_inplace': modifies its input image (")
    assert "work on a copy" in message


def test_float_labels(broken):
    message = violation(check_segmenter, broken("segmenter", "broken_float"), end_to_end=False)
    assert message == ("segmenter 'broken_float': the returned labels has dtype float64; labels must be an "
                       "integer dtype (return labels.astype(np.int32))")


def test_heavy_import_at_discovery(site, monkeypatch):
    monkeypatch.syspath_prepend(str(BROKEN))
    monkeypatch.syspath_prepend(str(site))
    from broken_lab import heavy_plugin

    (registration,) = heavy_plugin.pyama_segmenters()
    message = violation(check_segmenter, registration, end_to_end=False)
    assert "plugin module broken_lab.heavy_plugin imports" in message and "skimage" in message
    assert "implementation='module:attr'" in message


def test_not_deterministic(broken):
    message = violation(check_segmenter, broken("segmenter", "broken_random"), end_to_end=False)
    assert message.startswith("segmenter 'broken_random': is not deterministic: two calls on the same frame")


def test_params_accept_typos(broken):
    message = violation(check_segmenter, broken("segmenter", "broken_typo"), end_to_end=False)
    assert "accepts the unknown key 'pyama_conformance_typo', so a typo in a config is silently ignored" in message


@pytest.mark.parametrize("name, expected", [
    ("broken_undescribed", "params field 'sigma' has no description"),
    ("broken_required", "params field 'sigma' has no default"),
])
def test_params_without_description_or_default(broken, name, expected):
    assert expected in violation(check_segmenter, broken("segmenter", name), end_to_end=False)


def test_failure_inside_pyama_run(broken, tmp_path):
    message = violation(check_segmenter, broken("segmenter", "broken_crash_in_run"), tmp_path=tmp_path)
    assert "'pyama run' on the fixture movie failed: pipeline run failed: FOV 0:" in message
    assert "returned shape (127, 128), expected (128, 128)" in message


def test_tracker_that_materialises_the_movie(broken):
    message = violation(check_tracker, broken("tracker", "broken_hoarder"), end_to_end=False)
    assert "read all 6 label frames before yielding the first; a tracker must stream" in message


def test_tracker_that_drops_a_frame(broken):
    message = violation(check_tracker, broken("tracker", "broken_short"), end_to_end=False)
    assert "yielded 5 frames for 6 inputs" in message


def test_background_dtype(broken):
    message = violation(check_background, broken("background", "broken_float64"), end_to_end=False)
    assert "returned dtype float64; the background must be float32" in message


def test_fast_path_differs_from_per_cell_path(broken):
    message = violation(check_feature, broken("feature", "broken_fast_path"), end_to_end=False)
    assert "frame_implementation differs from the per-cell implementation for" in message


def test_reader_leaking_library_errors_on_a_damaged_file(broken, tmp_path):
    sample = tmp_path / "movie.npy"
    np.save(sample, np.arange(2 * 2 * 16 * 16, dtype=np.uint16).reshape(2, 2, 16, 16))
    message = violation(check_reader, broken("reader", "broken_npy"), sample, end_to_end=False)
    assert "raised ValueError on a truncated file instead of a one-line ReaderError" in message


def test_wrong_jacobian(broken):
    message = violation(check_fitting_model, broken("fitting_model", "broken_jacobian"), end_to_end=False)
    assert "jacobian column 'rate' differs from the numerical derivative" in message


def test_not_installed_is_named(tmp_path):
    from pyama_framework import SegmenterRegistration

    loose = SegmenterRegistration(name="nowhere", summary="not installed", implementation="builtins:len")
    message = violation(check_segmenter, loose, end_to_end=False)
    assert "is not provided by any installed 'pyama.plugins' entry point" in message


def test_slow_discovery_over_the_budget(broken):
    from pyama_framework.testing.conformance import check_light_discovery

    registration = broken("segmenter", "broken_float")
    check_light_discovery(registration, "broken_lab.plugin")  # light: within the default budget
    message = violation(check_light_discovery, registration, "broken_lab.plugin", budget_s=0.0)
    assert "discovering broken_lab.plugin took" in message and "s of CPU (budget 0 s)" in message
