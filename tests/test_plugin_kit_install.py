"""A lab goes from nothing to a tested, installable plugin: ``pyama plugins new`` for every
kind, installed into a fresh venv, its generated tests green; the example plugins' own
tests use the same conformance suites."""

from __future__ import annotations

import json
import shutil

import pytest

from _plugin_venv import make_venv, pip_install_editable, run_pytest
from conftest import ROOT, pyama

from pyama_framework.scaffold import SCAFFOLD_KINDS

EXAMPLES = [ROOT / "examples" / "pyama-otsu-plugin", ROOT / "examples" / "pyama-kinetics-plugin"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A fresh venv with one scaffolded plugin per kind and both examples installed, and
    the outcome of each of their tests (one pytest session for all: one fixture movie)."""
    root = tmp_path_factory.mktemp("lab")
    packages = []
    for kind in SCAFFOLD_KINDS:
        made = pyama("plugins", "new", f"lab_{kind}", "--kind", kind, "--output", str(root / f"lab-{kind}"))
        assert made.returncode == 0, made.stderr
        packages.append(root / f"lab-{kind}")
    examples = [shutil.copytree(e, root / e.name, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
                for e in EXAMPLES]  # copies: installing writes build files next to the sources
    python = make_venv(root / "venv")
    pip_install_editable(python, *packages, *examples)
    (root / "pytest.ini").write_text("[pytest]\n")  # one rootdir for all: node IDs keep the package folder
    session = run_pytest(python, *(p / "tests" for p in [*packages, *examples]), cwd=root)
    outcomes: dict[str, list[str]] = {}
    for line in session.stdout.splitlines():  # "-rA": "PASSED <path>::<test>" per test
        status, _, test = line.partition(" ")
        if status in ("PASSED", "FAILED", "ERROR", "SKIPPED"):
            folder = next((p.name for p in [*packages, *EXAMPLES] if f"{p.name}/tests/" in test), "?")
            outcomes.setdefault(folder, []).append(status)
    return python, root, packages, session, outcomes


def test_scaffold_writes_a_complete_package(lab):
    root = lab[1]
    package = root / "lab-segmenter"
    assert {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()} >= {
        "pyproject.toml", "README.md", ".gitignore", ".ci/run", "pyama_lab_segmenter/__init__.py",
        "pyama_lab_segmenter/plugin.py", "pyama_lab_segmenter/algorithm.py", "tests/test_conformance.py"}
    assert '[project.entry-points."pyama.plugins"]\nlab_segmenter = "pyama_lab_segmenter.plugin"' in \
        (package / "pyproject.toml").read_text()
    assert (package / ".ci" / "run").stat().st_mode & 0o111


def test_every_kind_is_discovered_in_the_fresh_venv(lab):
    import subprocess

    python = lab[0]
    listed = subprocess.run([str(python), "-m", "pyama_framework", "plugins", "list", "--json"],
                            capture_output=True, text=True, timeout=300, env={"PYAMA_STRICT_PLUGINS": "1",
                                                                             "PATH": "/usr/bin:/bin"})
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    for kind in SCAFFOLD_KINDS:
        row = rows[(kind, f"lab_{kind}")]
        assert (row["distribution"], row["version"], row["status"]) == (f"pyama-lab-{kind.replace('_', '-')}",
                                                                        "0.1.0", "ok")


@pytest.mark.parametrize("kind", SCAFFOLD_KINDS)
def test_generated_tests_pass(lab, kind):
    session, outcomes = lab[3], lab[4]
    assert outcomes.get(f"lab-{kind}") == ["PASSED", "PASSED"], session.stdout[-6000:] + session.stderr[-2000:]


@pytest.mark.parametrize("example", [e.name for e in EXAMPLES])
def test_example_plugin_passes_its_conformance_tests(lab, example):
    session, outcomes = lab[3], lab[4]
    statuses = outcomes.get(example, [])
    assert statuses and set(statuses) == {"PASSED"}, session.stdout[-6000:] + session.stderr[-2000:]


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


def test_wheel_ships_the_templates_and_the_pytest_plugin(tmp_path):
    """A built wheel (not this editable install) holds every template and the pytest11 entry point."""
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("pyama_framework", "pyama_builtin"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(tmp_path / "dist"), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("pyama_framework-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split("templates/", 1)[1] for n in names if "pyama_framework/scaffold/templates/" in n}
    expected = {p.relative_to(ROOT / "pyama_framework/scaffold/templates").as_posix()
                for p in (ROOT / "pyama_framework/scaffold/templates").rglob("*.tmpl")}
    assert len(expected) == 5 + 3 * len(SCAFFOLD_KINDS) and shipped == expected
    entry_points = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "[pytest11]\npyama = pyama_framework.testing.pytest_plugin" in entry_points
