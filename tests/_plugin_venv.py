"""A fresh virtual environment for installing plugin packages in tests.

``python -m venv`` from inside this test venv would inherit the *base* interpreter's
site-packages, not this venv's; so the new venv gets no pip of its own and a ``.pth`` file
that adds this venv's site-packages as a site directory (its own .pth files, editable
installs and entry points included). Packages installed into the new venv come first on
its path. Creating it takes about a second instead of a full install of the framework.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path


def make_venv(folder: Path) -> Path:
    """Create the venv in ``folder``; return its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(site, "_parent_venv.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


def pip_install_editable(python: Path, *projects: Path) -> None:
    """``pip install --no-deps --no-build-isolation -e`` each project into the venv."""
    args = [a for p in projects for a in ("-e", str(p))]
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                             "--no-index", *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def run_pytest(python: Path, *paths: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run pytest on ``paths`` in the venv (outside this repository's test configuration)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    return subprocess.run([str(python), "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "--import-mode=importlib",
                           "--rootdir", str(cwd), *map(str, paths)], capture_output=True, text=True, cwd=cwd, env=env, timeout=900)
