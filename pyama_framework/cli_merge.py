"""``pyama merge``: registered on the main typer app when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from .cli import _fail, app, err, out
from .errors import PyamaError


@app.command("merge")
def merge_command(
    samples: Path = typer.Argument(..., help="Samples YAML: 'results:' and 'samples:' [{name, fovs, metadata...}]"),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Folder for the merged files (default: 'merged' next to SAMPLES)"),
    results: Optional[list[Path]] = typer.Option(None, "--results", "-r",
                                                 help="Results folder of 'pyama run'; gives or overrides 'results:' "
                                                      "(repeat for several)"),
    keep_all: bool = typer.Option(False, "--all", help="Keep every row, not only rows with good = True"),
) -> None:
    """Merge per-FOV traces into one traces table per sample and a tidy long table."""
    from .merge import merge, plan_merge, write_merged

    target = output if output is not None else samples.parent / "merged"
    try:
        plan = plan_merge(samples, [p.resolve() for p in results] if results else None)
        merged = merge(plan, good_only=not keep_all)
        written = write_merged(merged, target)
    except PyamaError as exc:
        _fail(str(exc))
        return
    for warning in merged.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for name, table in merged.wide.items():
        cells = len(table[["results", "fov", "cell"]].drop_duplicates())
        fovs = len(plan.assignment[name])
        out.print(f"{escape(name)}: {fovs} FOV(s), {cells} cells, {len(table)} rows -> "
                  f"{escape(str(target / f'{name}_traces.csv'))}", highlight=False)
    rows = "every row" if keep_all else "good rows only (--all keeps every row)"
    long_files = ", ".join(p.name for p in written if p.stem == "merged_long")
    out.print(f"long table: {len(merged.long)} rows -> {escape(long_files)} in {escape(str(target))}; {rows}",
              highlight=False)
