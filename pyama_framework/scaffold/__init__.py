"""``pyama plugins new``: write a ready plugin package from the templates in ``templates/``.

A package for NAME and KIND holds ``pyproject.toml`` (the ``pyama.plugins`` entry point),
``pyama_NAME/plugin.py`` (the registration), ``pyama_NAME/algorithm.py`` (a stub that
already keeps the kind's contract, with numpydoc docstrings), ``tests/test_conformance.py``
(the kit's conformance suite), a README, ``.gitignore`` and ``.ci/run``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..api_version import HOOK_API_VERSION
from ..errors import PyamaError

SCAFFOLD_KINDS = ("segmenter", "tracker", "background", "feature", "reader", "fitting_model")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(PyamaError):
    """The plugin package cannot be written (bad name or kind, target exists)."""


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of the new plugin's name the templates need."""

    name: str          # registration name users write in configs
    kind: str
    package: str       # import package
    distribution: str  # pip name

    @property
    def class_prefix(self) -> str:
        return "".join(part.title() for part in self.name.split("_"))

    def tokens(self) -> dict[str, str]:
        major = HOOK_API_VERSION.split(".")[0]
        return {"__NAME__": self.name, "__KIND__": self.kind, "__PACKAGE__": self.package,
                "__DIST__": self.distribution, "__CLASS__": self.class_prefix,
                "__API_RANGE__": f">={HOOK_API_VERSION},<{int(major) + 1}",
                "__FRAMEWORK_VERSION__": _framework_version()}


def _framework_version() -> str:
    from .. import __version__

    return __version__


def plugin_names(name: str, kind: str) -> PluginNames:
    """Validate ``name`` and ``kind``; raise a one-line :class:`ScaffoldError` otherwise."""
    if kind not in SCAFFOLD_KINDS:
        raise ScaffoldError(f"unknown plugin kind '{kind}'; choose one of: {', '.join(SCAFFOLD_KINDS)}")
    if not _NAME_RE.match(name):
        raise ScaffoldError(f"plugin name '{name}' is not valid; use lower case letters, digits and "
                            f"underscores, starting with a letter (e.g. 'watershed')")
    return PluginNames(name, kind, f"pyama_{name}", f"pyama-{name.replace('_', '-')}")


def _layout(names: PluginNames) -> dict[str, str]:
    """Target path (relative to the package folder) -> template path."""
    return {
        "pyproject.toml": "common/pyproject.toml.tmpl",
        "README.md": "common/README.md.tmpl",
        ".gitignore": "common/gitignore.tmpl",
        ".ci/run": "common/ci_run.tmpl",
        f"{names.package}/__init__.py": "common/init.py.tmpl",
        f"{names.package}/plugin.py": f"{names.kind}/plugin.py.tmpl",
        f"{names.package}/algorithm.py": f"{names.kind}/algorithm.py.tmpl",
        "tests/test_conformance.py": f"{names.kind}/test_conformance.py.tmpl",
    }


def render(template: str, tokens: dict[str, str]) -> str:
    text = resources.files(__package__).joinpath("templates", template).read_text(encoding="utf-8")
    for token, value in tokens.items():
        text = text.replace(token, value)
    return text


def new_plugin(name: str, kind: str, output: Path | None = None) -> Path:
    """Write the package for plugin ``name`` of ``kind`` into ``output`` (default: a folder
    named after the distribution in the working directory); return that folder.

    Raises
    ------
    ScaffoldError
        For a bad name or kind, or when the target folder exists and is not empty.
    """
    names = plugin_names(name, kind)
    target = Path(output) if output is not None else Path.cwd() / names.distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not empty; choose another --output or remove it")
    tokens = names.tokens()
    files = {relative: render(template, tokens) for relative, template in _layout(names).items()}
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (target / ".ci" / "run").chmod(0o755)
    return target
