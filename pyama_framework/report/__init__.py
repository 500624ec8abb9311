"""``pyama report``: one self-contained HTML page to decide whether to trust a run.

Per FOV: first, middle and last frame with segmentation outlines and track IDs, cells per
frame, cells before and after each filter, a background map, a handful of traces. Per run:
plugins and versions, stage timings, failed FOVs, warnings, the config, and a grid of all
FOVs flagged by the rules in :mod:`.qc`. Built on :func:`pyama_framework.open_results`.
"""

from __future__ import annotations

from pathlib import Path

REPORT_NAME = "report.html"


def write_report(results: str | Path, output: str | Path | None = None, *, partial: bool = False,
                 fovs: str | list[int] | None = None) -> Path:
    """Write the QC report of the run in ``results`` to ``output`` (default
    ``<results>/report.html``) and return its path; ``fovs`` (``"0-5, 7"`` or a list)
    restricts the FOV sections. Raises ``ResultsError`` (one line) for a folder that is not
    a run, a half-finished run (unless ``partial``), a copy-only run or a FOV the run does
    not have; nothing is written then."""
    from ..results import open_results
    from ..store import atomic_write_text
    from .build import build_report
    from .html import render

    run = open_results(results, partial=partial)
    page = render(build_report(run, fovs))
    target = Path(output) if output is not None else Path(results) / REPORT_NAME
    atomic_write_text(target, page)
    target.chmod(0o644)  # a page to share, not a private temporary file
    return target
