"""Plugin discovery through real entry points: failures recorded, conflicts and typos reported."""

from __future__ import annotations

import json

import pytest

from pyama_framework.errors import PluginError
from pyama_framework.registry import discover

from conftest import make_distribution, pyama

GOOD = """
from pydantic import Field
from pyama_framework import PluginParams, SegmenterRegistration, hookimpl

class P(PluginParams):
    k: int = Field(3, ge=1, le=9, description="a knob")

@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="{name}", summary="test segmenter", implementation="builtins:len", params=P)
"""

BROKEN_IMPORT = "import this_package_does_not_exist\n"

MALFORMED = """
from pyama_framework import hookimpl

@hookimpl
def pyama_segmenters():
    return [object()]
"""


def test_builtins_register_through_entry_points():
    registry = discover()
    assert {"logstd"} <= set(registry.names("segmenter"))
    assert {"iou_hungarian"} <= set(registry.names("tracker"))
    assert {"tiled_spline"} <= set(registry.names("background"))
    assert {"area", "intensity_total"} <= set(registry.names("feature"))
    assert {"tiff", "nd2", "czi"} <= set(registry.names("reader"))
    assert registry.provider("segmenter", "logstd").distribution == "pyama-framework"


def test_broken_and_malformed_plugins_are_recorded_not_fatal(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_distribution(site, "lab-broken", "1.0", {"broken": "lab_broken"}, {"lab_broken.py": BROKEN_IMPORT})
    make_distribution(site, "lab-malformed", "2.0", {"bad": "lab_malformed"}, {"lab_malformed.py": MALFORMED})
    monkeypatch.syspath_prepend(str(site))
    registry = discover(strict=False)
    failures = {f.distribution: f.error for f in registry.failures}
    assert "ModuleNotFoundError" in failures["lab-broken"]
    assert "expected SegmenterRegistration" in failures["lab-malformed"]
    assert "logstd" in registry.names("segmenter")  # the host keeps working
    with pytest.raises(PluginError, match="lab-broken 1.0 failed to load"):
        registry.get("segmenter", "cellpose_like")

    with pytest.raises(PluginError, match="lab-broken"):
        discover(strict=True)


def test_same_name_from_two_distributions_is_an_error_naming_both(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_distribution(site, "lab-a", "1.0", {"a": "lab_a"}, {"lab_a.py": GOOD.format(name="twin")})
    make_distribution(site, "lab-b", "3.1", {"b": "lab_b"}, {"lab_b.py": GOOD.format(name="twin")})
    monkeypatch.syspath_prepend(str(site))
    registry = discover()
    with pytest.raises(PluginError, match=r"lab-a 1.0 and lab-b 3.1"):
        registry.get("segmenter", "twin")
    assert "twin" not in registry.names("segmenter")


def test_one_distribution_seen_twice_is_one(tmp_path, monkeypatch):
    site1, site2 = tmp_path / "s1", tmp_path / "s2"
    for site in (site1, site2):
        make_distribution(site, "lab-dup", "1.0", {"d": "lab_dup"}, {"lab_dup.py": GOOD.format(name="dup")})
    monkeypatch.syspath_prepend(str(site1))
    monkeypatch.syspath_prepend(str(site2))
    registry = discover()
    assert registry.get("segmenter", "dup").name == "dup"


def test_unknown_name_lists_choices_and_closest_match():
    with pytest.raises(PluginError) as info:
        discover().get("segmenter", "logsdt")
    message = str(info.value)
    assert "did you mean 'logstd'" in message and "choose one of:" in message


def test_cli_plugins_list_shows_failures_and_versions(tmp_path):
    site = make_distribution(tmp_path / "site", "lab-broken", "1.0", {"broken": "lab_broken"},
                             {"lab_broken.py": BROKEN_IMPORT})
    result = pyama("plugins", "list", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    kinds = {(r["kind"], r["name"]) for r in rows if r["status"] == "ok"}
    assert ("segmenter", "logstd") in kinds and ("reader", "tiff") in kinds
    broken = [r for r in rows if r["distribution"] == "lab-broken"]
    assert broken and broken[0]["status"].startswith("error: ModuleNotFoundError")

    strict = pyama("plugins", "list", env={"PYTHONPATH": str(site), "PYAMA_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2 and "lab-broken" in strict.stderr


def test_cli_plugins_info_shows_params_with_bounds():
    result = pyama("plugins", "info", "logstd")
    assert result.returncode == 0, result.stderr
    assert "window_size" in result.stdout and ">= " in result.stdout
    missing = pyama("plugins", "info", "logstdd")
    assert missing.returncode == 2 and "did you mean 'logstd'" in missing.stderr


def test_discovery_is_cheap_no_heavy_imports():
    """Listing plugins must not import the algorithms or their libraries (npe2 style)."""
    import subprocess
    import sys

    code = ("import sys; from pyama_framework.registry import discover; discover(); "
            "print(sorted(m for m in ('scipy', 'skimage', 'nd2', 'tifffile', 'czifile', 'zarr', 'pandas', "
            "'pyama_builtin.segmentation.logstd', 'pyama_builtin.readers.nd2') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
