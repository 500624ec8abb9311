"""``pyama plugins new``: registered on the ``plugins`` group when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .cli import _fail, err, plugins_app


@plugins_app.command("new")
def plugins_new(
    name: str = typer.Argument(..., help="Plugin name users write in configs, e.g. watershed"),
    kind: str = typer.Option(..., "--kind", help="segmenter | tracker | background | feature | reader | fitting_model"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Folder for the package (default: ./pyama-NAME)"),
) -> None:
    """Write a ready, tested plugin package: entry point, registration, algorithm stub, tests, CI script."""
    from .scaffold import ScaffoldError, new_plugin

    try:
        target = new_plugin(name, kind, output)
    except ScaffoldError as exc:
        _fail(str(exc))
        return
    err.print(f"wrote {kind} plugin '{name}' in {escape(str(target))}", highlight=False)
    err.print(escape(f'next: pip install -e "{target}[test]" && pytest {target}'), highlight=False)
