"""``pyama report``: registered on the main typer app when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli import _fail, app, out
from .errors import PyamaError


@app.command("report")
def report(
    results: Path = typer.Argument(..., help="The output folder of 'pyama run'"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="HTML file to write "
                                          "(default: RESULTS/report.html)"),
    partial: bool = typer.Option(False, "--partial", help="Report the complete FOVs of a run that is "
                                 "not finished yet"),
    fovs: Optional[str] = typer.Option(None, "--fovs", help="Only these FOVs, e.g. '0-5, 7' (default: all)"),
) -> None:
    """Write a self-contained QC report (HTML, images embedded) of a run: thumbnails with
    outlines and track IDs, cell counts, filters, background, traces, timings, flagged FOVs."""
    from .report import write_report

    try:
        path = write_report(results, output, partial=partial, fovs=fovs)
    except PyamaError as exc:
        _fail(str(exc))
        return
    out.print(str(path), highlight=False, soft_wrap=True)
