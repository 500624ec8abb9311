"""The documentation site: it builds strictly, its generated references list what the code
accepts, and the public API it documents carries docstrings."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

import pyama_framework
from pyama_framework import hookspecs, readers
from pyama_framework.config import RunConfig
from pyama_framework.reference import config_rows, param_rows, plugin_reference
from pyama_framework.registry import discover

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")


def mkdocs_build(config_file: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_file),
                           "-d", str(site)], capture_output=True, text=True, env=env, timeout=240)


def page_text(site: Path, page: str) -> str:
    html = (site / page / "index.html").read_text()
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    result = mkdocs_build(ROOT / "mkdocs.yml", site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-3000:]}"
    return site


def test_site_builds_strictly_with_every_nav_page(built_site):
    for page in ("config", "outputs", "writing-plugins", "algorithms", "performance", "evaluation",
                 "fitting", "napari", "api", "reference/config", "reference/plugins"):
        assert (built_site / page / "index.html").is_file(), f"page {page} missing from the site"
    assert "pyama demo pyama-demo" in page_text(built_site, "."), "getting started lacks the demo command"


def test_generated_config_reference_lists_every_key_with_its_default(built_site):
    text = page_text(built_site, "reference/config")
    keys = [row["key"] for row in config_rows(RunConfig)]
    assert {"input", "extraction.min_frames", "channels.fl[].features", "storage.codec"} <= set(keys)
    missing = [k for k in keys if k not in text]
    assert not missing, f"config keys missing from the generated reference: {missing}"
    row = next(r for r in config_rows(RunConfig) if r["key"] == "extraction.min_frames")
    assert row["default"] == f"`{RunConfig.model_fields['extraction'].default_factory().min_frames}`"
    assert row["bounds"] == ">= 1" and row["type"] == "int"


def test_generated_plugin_reference_lists_every_builtin_plugin_and_param(built_site):
    text = page_text(built_site, "reference/plugins")
    registry = discover(strict=False)
    builtins = [p.registration for p in registry.all_provided() if p.distribution == "pyama-framework"]
    assert {r.name for r in builtins} >= {"logstd", "lap", "tiled_spline", "tiff", "intensity_total", "maturation"}
    for reg in builtins:
        assert reg.name in text, f"plugin {reg.name} missing from the plugin reference"
        for name in reg.params.model_fields:
            assert name in text, f"param {reg.name}.{name} missing from the plugin reference"


def test_reference_follows_the_models_it_is_given():
    """A key added to a model appears with its type, default, bounds and description."""

    class Section(BaseModel):
        depth: int = Field(3, ge=1, le=9, description="How deep")

    class Config(BaseModel):
        name: str = Field(description="The name")
        section: Section = Field(default_factory=Section)

    rows = {r["key"]: r for r in config_rows(Config)}
    assert rows["name"]["default"] == "required"
    assert rows["section.depth"] == {"key": "section.depth", "type": "int", "bounds": ">= 1, <= 9",
                                     "description": "How deep", "default": "`3`"}
    assert param_rows(Section) == [{"name": "depth", "type": "int", "default": "`3`",
                                    "bounds": ">= 1, <= 9", "description": "How deep"}]
    reference = plugin_reference(discover(strict=False))
    assert "### `logstd`" in reference and "| `cell_diameter` |" in reference


def test_broken_link_fails_the_strict_build(tmp_path):
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    with open(tmp_path / "docs" / "outputs.md", "a") as handle:
        handle.write("\nSee [the missing page](no-such-page.md).\n")
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def _public_api() -> list[tuple[str, object]]:
    objects = [(name, getattr(pyama_framework, name)) for name in pyama_framework.__all__]
    objects += [(f"PyamaSpecs.{n}", f) for n, f in vars(hookspecs.PyamaSpecs).items() if n.startswith("pyama_")]
    objects += [(f"Reader.{n}", f) for n, f in vars(readers.Reader).items()
                if not n.startswith("_") and callable(f)]
    return objects


def test_public_api_has_docstrings():
    """The API reference is rendered from docstrings: a public name without one is a gap."""
    undocumented = [name for name, obj in _public_api() if not (inspect.getdoc(obj) or "").strip()]
    assert not undocumented, f"public API without a docstring: {undocumented}"
