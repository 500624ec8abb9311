"""``pyama plot``: registered on the main typer app when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .cli import _fail, app, err, out
from .errors import PyamaError


@app.command("plot")
def plot(
    traces: Path = typer.Argument(..., metavar="RESULTS_OR_MERGED",
                                  help="A results folder, a 'pyama merge' output folder, or a traces CSV"),
    fitted: Optional[List[Path]] = typer.Option(None, "--fitted", help="Fitted results CSV ('pyama fit' output); "
                                                "repeat for one CSV per sample"),
    output: Path = typer.Option(Path("plots"), "--output", "-o", help="Folder for the PNG and SVG files"),
    feature: Optional[str] = typer.Option(None, "--feature", help="Feature to plot (default: the fitted one, "
                                          "else intensity_total)"),
    channel: Optional[int] = typer.Option(None, "--channel", min=0, help="Channel of the feature"),
    cells: int = typer.Option(10, "--cells", min=1, max=100, help="Individual cells drawn per sample, "
                              "and fitted cells shown"),
    all_rows: bool = typer.Option(False, "--all", help="Also plot rows whose 'good' is False"),
) -> None:
    """Plot traces per sample (mean ± SD and single cells); with --fitted also fitted curves,
    parameter distributions and the R² quality split. File names: docs/outputs.md."""
    from .plotting import make_plots

    try:
        written = make_plots(traces, output, fitted, feature, channel, cells, all_rows)
    except PyamaError as exc:
        _fail(str(exc))
        return
    for path in written:
        out.print(str(path), highlight=False, soft_wrap=True)
    err.print(f"{len(written)} plot file(s) written to {output}", highlight=False)
