"""Hook API versioning: a plugin declaring a range that excludes this framework is refused."""

from __future__ import annotations

import json

import pytest

from pyama_framework import HOOK_API_VERSION
from pyama_framework.errors import PluginError
from pyama_framework.registry import discover

from conftest import make_distribution, pyama

PLUGIN = """
from pyama_framework import SegmenterRegistration, hookimpl
PYAMA_API = {api!r}

@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="{name}", summary="versioned", implementation="builtins:len")
"""


def _site(tmp_path, name: str, api: str):
    module = f"lab_{name}"
    return make_distribution(tmp_path / "site", f"lab-{name}", "1.2", {name: module},
                             {f"{module}.py": PLUGIN.format(api=api, name=name)})


def test_framework_declares_its_hook_api_version():
    from packaging.version import Version

    assert Version(HOOK_API_VERSION).major >= 1


def test_compatible_range_is_accepted(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_site(tmp_path, "current", f">={HOOK_API_VERSION},<999")))
    registry = discover(strict=True)
    assert registry.provider("segmenter", "current").distribution == "lab-current"


def test_incompatible_plugin_is_refused_with_one_line_reason(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_site(tmp_path, "future", ">=99.0,<100")))
    registry = discover(strict=False)
    failure = next(f for f in registry.failures if f.distribution == "lab-future")
    assert "needs pyama hook API <100,>=99.0" in failure.error and f"provides {HOOK_API_VERSION}" in failure.error
    assert "\n" not in failure.error
    assert "future" not in registry.names("segmenter")  # its hooks were never called
    assert "logstd" in registry.names("segmenter")      # the others keep working
    with pytest.raises(PluginError, match=r"lab-future 1.2.*needs pyama hook API"):
        discover(strict=True)


def test_plugins_list_shows_the_reason_and_strict_mode_fails(tmp_path):
    site = _site(tmp_path, "old", "<1.0")
    listed = pyama("plugins", "list", "--json", env={"PYTHONPATH": str(site)})
    assert listed.returncode == 0, listed.stderr
    rows = [r for r in json.loads(listed.stdout) if r["distribution"] == "lab-old"]
    assert len(rows) == 1 and rows[0]["status"].startswith("error: needs pyama hook API <1.0")
    strict = pyama("plugins", "list", env={"PYTHONPATH": str(site), "PYAMA_STRICT_PLUGINS": "1"})
    assert strict.returncode != 0 and "needs pyama hook API <1.0" in strict.stderr


def test_a_range_that_is_not_a_specifier_is_named(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_site(tmp_path, "typo", "1.0+")))
    failure = next(f for f in discover(strict=False).failures if f.distribution == "lab-typo")
    assert "PYAMA_API = '1.0+' in lab_typo is not a version range" in failure.error
