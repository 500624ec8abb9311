"""``pyama evaluate`` and ``pyama export ctc``: registered on the main typer app when
:mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .cli import _fail, app, export_app, out
from .errors import PyamaError


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _scores_table(s: dict[str, Any]) -> Table:
    table = Table("measure", "value", "what it is", box=None, pad_edge=False)
    truth, found = s["objects_truth"], s["objects_found"]
    div = s["divisions"]
    rows = [
        ("SEG", _fmt(s["SEG"]), "CTC: mean IoU of true cells with their >50 % match"),
        ("DET", _fmt(s["DET"]), "CTC: detection (AOGM-D)"),
        ("TRA", _fmt(s["TRA"]), "CTC: tracking (AOGM)"),
        ("jaccard", _fmt(s["jaccard"]), "foreground IoU, pooled over annotated frames"),
        ("f1", _fmt(s["f1"]), f"cells matched at IoU >= 0.5 (precision {_fmt(s['precision'])}, "
                              f"recall {_fmt(s['recall'])})"),
        ("objects/frame", f"{sum(found) / len(found):.1f} vs {sum(truth) / len(truth):.1f}",
         f"found vs true, mean; within 20 % in {s['objects_within_20pct']:.0%} of frames"),
        ("links_kept", _fmt(s["links_kept"]), f"of {s['links_total']} true frame-to-frame links"),
        ("identity_switches", _fmt(s["identity_switches"]), "a true cell's found ID changes"),
        ("division_f1", _fmt(s["division_f1"]), f"CTC BC(1): {div['tp']} found, {div['fp']} false, "
                                                f"{div['fn']} missed"),
    ]
    for column, err in (s.get("trace_error") or {}).items():
        rows.append((f"trace {column}", _fmt(err["median"]),
                     f"median relative error; |error| median {_fmt(err['median_abs'])}, p90 "
                     f"{_fmt(err['p90_abs'])}; {err['n']} of {err['n_truth']} true values matched"))
    for name, value, meaning in rows:
        table.add_row(name, value, escape(meaning))
    return table


@app.command()
def evaluate(
    results: Path = typer.Argument(..., help="Output folder of a finished 'pyama run'"),
    truth: Path = typer.Option(..., "--truth", help="CTC ground-truth folder (SEG/, TRA/) or label stack "
                                                    "(.tif, .zarr array, .npy)"),
    fov: Optional[int] = typer.Option(None, "--fov", min=0, help="FOV to score (needed when the run has several)"),
    truth_traces: Optional[Path] = typer.Option(None, "--truth-traces", help="CSV frame,label,<trace column>... "
                                                "(default: traces.csv in a CTC folder, X.traces.csv next to X.tif)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Score a run's segmentation, tracking and traces against ground truth (CTC SEG/DET/TRA and more)."""
    from .evaluation import load_truth, open_run, score

    try:
        run = open_run(results, fov)
        gt = load_truth(truth, truth_traces)
        scores = score(run.tracked, gt, run.parents, run.traces() if gt.traces is not None else None)
    except PyamaError as exc:
        _fail(str(exc))
        return
    if as_json:
        print(json.dumps({"fov": run.fov, **scores}))
        return
    out.print(f"FOV {run.fov} of {escape(str(results))} against {escape(scores['truth'])} "
              f"({scores['frames']} frames)", highlight=False)
    out.print(_scores_table(scores))
    out.print("per-frame lists and AOGM counts: --json", highlight=False)


@export_app.command("ctc")
def export_ctc(
    results: Path = typer.Argument(..., help="Output folder of a finished 'pyama run'"),
    out_dir: Path = typer.Argument(..., help="Folder for maskTTT.tif and res_track.txt"),
    fov: Optional[int] = typer.Option(None, "--fov", min=0, help="FOV to export (needed when the run has several)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a CTC result already in OUT_DIR"),
) -> None:
    """Write one FOV's tracked masks and lineage as a Cell Tracking Challenge result."""
    from .evaluation import export_ctc as write_ctc
    from .evaluation import open_run

    try:
        info = write_ctc(open_run(results, fov), out_dir, overwrite)
    except PyamaError as exc:
        _fail(str(exc))
        return
    split = f"; {info['split']} gap segment(s) became tracks of their own" if info["split"] else ""
    out.print(f"wrote {info['frames']} masks and res_track.txt ({info['tracks']} tracks{split}) to "
              f"{escape(str(out_dir))}", highlight=False)
