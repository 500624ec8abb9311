"""The QC report as one self-contained HTML page: inline CSS, images as base64 PNG, no
scripts and no external resources, so it reads offline and can be mailed as one file."""

from __future__ import annotations

from html import escape

import numpy as np

from ..config import config_to_yaml
from .build import FovSection, RunReport
from .qc import JUMP

TABLE_FRAMES = 40  # up to this many frames the cells-per-frame table lists every frame

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}h3{font-size:1em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px}
.tile{border:2px solid #3a3;border-radius:4px;padding:4px;font-size:.8em}.tile.flag{border-color:#c22}
.tile.failed{border-color:#888;background:#eee}.tile img{width:100%}
.flag{color:#c22}.ok{color:#282}.note{color:#666;font-size:.85em}
figure{display:inline-block;margin:4px}figcaption{font-size:.75em;color:#444}
pre{background:#f7f7f7;padding:6px;font-size:.75em;max-height:24em;overflow:auto}
"""


def _table(header: list[str], rows: list[list[object]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{escape(str(h))}</th>' for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{escape(str(v))}</td>'
                                    for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(b64: str, alt: str, caption: str | None = None) -> str:
    tag = f'<img src="data:image/png;base64,{b64}" alt="{escape(alt)}">'
    return f"<figure>{tag}<figcaption>{escape(caption)}</figcaption></figure>" if caption else tag


def _tile(section: FovSection) -> str:
    flags = section.qc.flags if section.qc else []
    picture = _img(section.thumbnails[len(section.thumbnails) // 2][1], f"FOV {section.fov}") \
        if section.thumbnails else ""
    verdict = "".join(f'<div class="flag">{escape(f.split(":")[0])}</div>' for f in flags) or '<div class="ok">ok</div>'
    cells = f"{section.qc.n_traced} cells" if section.qc else ""
    return (f'<a href="#fov{section.fov}"><div class="tile{" flag" if flags else ""}">'
            f"<b>FOV {section.fov}</b> {cells}{picture}{verdict}</div></a>")


def _fov(section: FovSection) -> str:
    qc = section.qc
    parts = [f'<h2 id="fov{section.fov}">FOV {section.fov}</h2>']
    if qc.flags:
        parts.append("<ul>" + "".join(f'<li class="flag">{escape(f)}</li>' for f in qc.flags) + "</ul>")
    else:
        parts.append('<p class="ok">no anomaly</p>')
    parts += [f'<p class="note">{escape(n)}</p>' for n in section.notes]
    parts.append("".join(_img(b64, caption, caption) for caption, b64 in section.thumbnails))
    if section.background:
        parts.append(_img(section.background[1], section.background[0], section.background[0]))
    parts.append("<h3>Cells before and after each filter</h3>")
    parts.append(_table(["step", "cells"], [[step, n] for step, n in qc.filters]))
    parts.append(f"<h3>Cells per frame ({escape(qc.counts_source)})</h3>")
    series = [("tracked", qc.cells_per_frame), ("in traces", qc.traced_per_frame)]
    if len(qc.cells_per_frame) <= TABLE_FRAMES:
        parts.append(_table(["frame", *range(len(qc.cells_per_frame))],
                            [[name, *values.tolist()] for name, values in series]))
    else:  # a long movie: the plot shows the series, the table its range
        parts.append(_table(["", "min", "median", "max"],
                            [[name, int(v.min()), f"{np.median(v):g}", int(v.max())] for name, v in series]))
    if section.plot:
        parts.append(_img(section.plot, f"FOV {section.fov} counts and traces"))
    return "\n".join(parts)


def _run(report: RunReport) -> str:
    r = report.results
    parts = ["<h2>Run</h2>"]
    parts.append(_table(["plugin", "name", "distribution", "version"],
                        [[p["role"], p.get("name", ""), p.get("distribution", ""), p.get("version", "")]
                         for p in report.plugins], left=4))
    if len(report.timings):
        stages = list(report.timings.columns)
        rows = [[f"FOV {fov}", *("" if np.isnan(v) else f"{v:.2f}" for v in report.timings.loc[fov, stages])]
                for fov in report.timings.index]
        parts.append("<h3>Stage timings (s)</h3>" + _table(["", *stages], rows))
    failed = r.failed
    parts.append("<h3>Failed FOVs</h3>" + (_table(["FOV", "error"], [[f, e] for f, e in failed.items()], left=2)
                                           if failed else '<p class="ok">none</p>'))
    if r.unfinished:
        parts.append("<h3>Unfinished FOVs</h3>" + _table(
            ["FOV", "missing stages"], [[f, ", ".join(m)] for f, m in r.unfinished.items()], left=2))
    warnings = r.warnings
    parts.append("<h3>Warnings</h3>" + ("<ul>" + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>"
                                        if warnings else '<p class="ok">none</p>'))
    parts.append("<h3>Config</h3><pre>" + escape(config_to_yaml(r.config)) + "</pre>")
    return "\n".join(parts)


def render(report: RunReport) -> str:
    r = report.results
    flagged = [s.fov for s in report.sections if s.qc and s.qc.flags]
    summary = (f"{len(report.sections)} FOV(s) complete, {len(r.failed)} failed, {len(flagged)} flagged; "
               f"{sum(s.qc.n_traced for s in report.sections if s.qc)} cells traced")
    rules = (f"Flags: <b>count jump</b> (tracked cells change by more than {JUMP:.0%} between two frames), "
             "<b>no cells</b> (none segmented, or none left after the filters), <b>background above cells</b> "
             "(median background-corrected intensity of the traced cells below zero).")
    tiles = [_tile(s) for s in report.sections]
    tiles += [f'<div class="tile failed"><b>FOV {f}</b><div>failed</div></div>' for f in r.failed]
    body = [f"<h1>pyama QC report: {escape(str(r.path))}</h1>", f"<p>{escape(summary)}</p>",
            f'<p class="note">{rules}</p>', '<div class="grid">' + "".join(tiles) + "</div>",
            _run(report), *(_fov(s) for s in report.sections)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>pyama QC: {escape(r.path.name)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")
