"""``pyama storage bench``: registered on the main typer app when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .cli import _fail, _registry, app, err, out
from .errors import PyamaError

storage_app = typer.Typer(no_args_is_help=True, help="Measure storage codecs and presets on your own data.")
app.add_typer(storage_app, name="storage")


@storage_app.command("bench")
def storage_bench(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="Any file or folder a reader opens"),
    codecs: Optional[List[str]] = typer.Option(
        None, "--codecs", "-c", help="Codecs as NAME[-LEVEL], comma-separated or repeated, e.g. zstd-5,lz4-1,bzip2-9 "
        "(names: lz4 lz4hc zstd gzip bzip2 none; default: a table like the spec's)"),
    channel: int = typer.Option(0, "--channel", min=0, help="Channel (view) to sample"),
    planes: int = typer.Option(64, "--planes", min=1, help="At most this many Z planes (volumes) or frames"),
    max_mb: float = typer.Option(256.0, "--max-mb", min=1.0, help="At most this much raw data (MB) in the sample"),
    frames_per_shard: int = typer.Option(10, "--frames-per-shard", min=0, help="Chunks per shard (0: unsharded only)"),
    repeats: int = typer.Option(1, "--repeats", min=1, help="Repeats; the table gives medians"),
    reader: str = typer.Option("auto", "--reader", help="Reader name (default: chosen from the file)"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the rows as JSON"),
    markdown: bool = typer.Option(False, "--markdown", help="Print a markdown table instead of a rich one"),
) -> None:
    """Size, ratio, write and read GB/s of each codec, sharded and unsharded, on a sample of INPUT."""
    from .readers import open_reader, select_reader
    from .storage_bench import DEFAULT_CODECS, bench, markdown_table, read_sample
    from .storage_codecs import parse_codec_spec

    specs = tuple(c.strip() for item in (codecs or []) for c in item.split(",") if c.strip()) or DEFAULT_CODECS
    try:
        for spec in specs:
            parse_codec_spec(spec)
    except ValueError as exc:
        _fail(f"--codecs: {exc}")
    try:
        registration = select_reader(input_path, _registry(), reader)
        with open_reader(input_path, registration) as opened:
            if channel >= opened.metadata.n_channels:
                _fail(f"{input_path}: channel {channel} is out of range (the file has {opened.metadata.n_channels}); "
                      f"use --channel 0-{opened.metadata.n_channels - 1}")
            sample, what = read_sample(opened, channel, planes, max_mb)
    except PyamaError as exc:
        _fail(str(exc))
        return
    err.print(f"{input_path.name}: {what} ({registration.name}), {sample.shape} {sample.dtype}, "
              f"{sample.nbytes / 1e6:.1f} MB; {len(specs)} codecs x {'2 layouts' if frames_per_shard > 1 else '1 layout'}",
              highlight=False)
    rows = bench(sample, specs, frames_per_shard, repeats,
                 progress=lambda c, lvl, s: err.print(f"  {c}-{lvl} {'sharded' if s else 'no-shard'} done", highlight=False))
    if json_path:
        json_path.write_text(json.dumps({"input": str(input_path), "sample": what, "shape": list(sample.shape),
                                         "dtype": str(sample.dtype), "frames_per_shard": frames_per_shard,
                                         "rows": [r.as_dict() for r in rows]}, indent=2))
    if markdown:
        out.print(markdown_table(rows), highlight=False, soft_wrap=True)
        return
    table = Table("method", "size MB", "ratio", "write GB/s", "read GB/s")
    for r in sorted(rows, key=lambda r: (r.size_mb, r.method)):
        table.add_row(escape(r.method), f"{r.size_mb:.1f}", f"{r.ratio:.2f}x", f"{r.write_gb_s:.3f}", f"{r.read_gb_s:.3f}")
    out.print(table)
