"""A lab goes from nothing to a tested, installable plugin: ``pyama plugins new`` for every
kind, installed into a fresh venv, its generated tests green; the example plugins' own
tests use the same conformance suites."""

from __future__ import annotations

import json

import pytest

from _plugin_venv import make_venv, pip_install_editable, run_pytest
from conftest import ROOT, pyama

from pyama_framework.scaffold import SCAFFOLD_KINDS

EXAMPLES = [ROOT / "examples" / "pyama-otsu-plugin", ROOT / "examples" / "pyama-kinetics-plugin"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A fresh venv with one scaffolded plugin per kind and both examples installed."""
    root = tmp_path_factory.mktemp("lab")
    packages = []
    for kind in SCAFFOLD_KINDS:
        made = pyama("plugins", "new", f"lab_{kind}", "--kind", kind, "--output", str(root / f"lab-{kind}"))
        assert made.returncode == 0, made.stderr
        packages.append(root / f"lab-{kind}")
    python = make_venv(root / "venv")
    pip_install_editable(python, *packages, *EXAMPLES)
    return python, root, packages


def test_scaffold_writes_a_complete_package(lab):
    _, root, _ = lab
    package = root / "lab-segmenter"
    assert {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()} >= {
        "pyproject.toml", "README.md", ".gitignore", ".ci/run", "pyama_lab_segmenter/__init__.py",
        "pyama_lab_segmenter/plugin.py", "pyama_lab_segmenter/algorithm.py", "tests/test_conformance.py"}
    assert '[project.entry-points."pyama.plugins"]\nlab_segmenter = "pyama_lab_segmenter.plugin"' in \
        (package / "pyproject.toml").read_text()
    assert (package / ".ci" / "run").stat().st_mode & 0o111


def test_every_kind_is_discovered_in_the_fresh_venv(lab):
    import subprocess

    python, _, _ = lab
    listed = subprocess.run([str(python), "-m", "pyama_framework", "plugins", "list", "--json"],
                            capture_output=True, text=True, timeout=300, env={"PYAMA_STRICT_PLUGINS": "1",
                                                                             "PATH": "/usr/bin:/bin"})
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    for kind in SCAFFOLD_KINDS:
        row = rows[(kind, f"lab_{kind}")]
        assert (row["distribution"], row["version"], row["status"]) == (f"pyama-lab-{kind.replace('_', '-')}",
                                                                        "0.1.0", "ok")


def test_generated_tests_pass_for_every_kind(lab):
    python, root, packages = lab
    result = run_pytest(python, *(p / "tests" for p in packages), cwd=root)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert f"{2 * len(SCAFFOLD_KINDS)} passed" in result.stdout


def test_example_plugins_pass_their_conformance_tests(lab):
    python, root, _ = lab
    result = run_pytest(python, *(e / "tests" for e in EXAMPLES), cwd=root)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_bad_name_kind_and_existing_folder_are_one_line_errors(tmp_path):
    bad_name = pyama("plugins", "new", "Water-Shed", "--kind", "segmenter", "--output", str(tmp_path / "a"))
    assert bad_name.returncode == 2 and "plugin name 'Water-Shed' is not valid" in bad_name.stderr
    bad_kind = pyama("plugins", "new", "ws", "--kind", "segmentr", "--output", str(tmp_path / "b"))
    assert bad_kind.returncode == 2 and "choose one of: segmenter, tracker, background" in bad_kind.stderr
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("mine")
    taken = pyama("plugins", "new", "ws", "--kind", "segmenter", "--output", str(tmp_path / "c"))
    assert taken.returncode == 2 and "already exists and is not empty" in taken.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["keep.txt"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
