"""SEG, DET, TRA and branching correctness computed by py-ctcmetrics on our frame matches.

py-ctcmetrics reads its inputs from TIFF files. We match frames in memory (one frame at a time,
with :func:`~pyama_framework.evaluation.overlap.ctc_match`, the same rule as its ``match``) and
hand the per-frame match lists to its ``calculate_metrics``, so the measures themselves are the
library's. That hand-over is the only place that depends on the library's internal data layout;
tests/test_evaluate.py compares the result with ``ctc_metrics.evaluate_sequence`` on the same
data so a change in the library fails loudly.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

MATCH_KEYS = ("labels_ref", "labels_comp", "mapped_ref", "mapped_comp", "ious")
DIVISION_TOLERANCE = 1  # frames: BC(1), a found division may be one frame early or late


def empty_matches() -> dict[str, list]:
    """The per-frame match lists py-ctcmetrics works on (``traj`` / ``segm``)."""
    return {key: [] for key in MATCH_KEYS}


def add_frame(matches: dict[str, list], frame_match: tuple[list, list, list, list, list]) -> None:
    for key, value in zip(MATCH_KEYS, frame_match):
        matches[key].append(value)


def ctc_measures(ref_tracks: np.ndarray, comp_tracks: np.ndarray, traj: dict[str, list],
                 segm: dict[str, list] | None) -> dict[str, Any]:
    """SEG, DET, TRA, AOGM error counts and BC(1) by ``ctc_metrics``' own ``calculate_metrics``.

    Parameters
    ----------
    ref_tracks, comp_tracks : (N, 4) int ndarray
        CTC track tables ``[label, begin, end, parent]`` of the truth and the result; the result's
        must be valid (each label present in every frame from begin to end).
    traj : dict of lists
        Per-frame CTC matches of the truth's TRA masks against the result (every frame). The
        label lists must be ascending, as the library's ``match`` returns them: it finds a
        vertex by its position in the sorted list.
    segm : dict of lists or None
        Per-frame CTC matches of the SEG masks (annotated frames only); None: no SEG.

    Returns
    -------
    dict
        ``SEG`` (None without SEG masks), ``DET``, ``TRA``, ``AOGM`` (weighted error and the
        counts NS, FN, FP, ED, EA, EC), ``division`` (BC(1) and its tp, fp, fn).
    """
    from ctc_metrics.metrics import valid
    from ctc_metrics.scripts.evaluate import calculate_metrics

    n_truth_divisions = _count_divisions(ref_tracks)
    if len(comp_tracks) == 0:  # nothing found: the library calls that invalid; score it as all missed
        return {"SEG": 0.0 if segm else None, "DET": 0.0, "TRA": 0.0, "AOGM": None,
                "division": {"BC": 0.0 if n_truth_divisions else None, "tp": 0, "fp": 0, "fn": n_truth_divisions}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns about empty frames, which are legitimate here
        is_valid = valid([f"mask{t:03d}.tif" for t in range(len(traj["labels_comp"]))], comp_tracks,
                         traj["labels_comp"])
    if not is_valid:
        raise RuntimeError("internal error: the result's CTC track table is not valid")
    metrics = ["DET", "TRA", "BC"] + (["SEG"] if segm else [])
    res = calculate_metrics(comp_tracks, ref_tracks, traj, segm or {}, metrics, is_valid)
    i = DIVISION_TOLERANCE
    return {
        "SEG": _num(res.get("SEG")), "DET": _num(res["DET"]), "TRA": _num(res["TRA"]),
        "AOGM": {"AOGM": _num(res["AOGM"]), "AOGM_0": _num(res["AOGM_0"]),
                 **{k: int(res[f"AOGM_{k}"]) for k in ("NS", "FN", "FP", "ED", "EA", "EC")}},
        "division": {"BC": _num(res[f"BC({i})"]), "tp": int(res[f"tp_div({i})"]),
                     "fp": int(res[f"fp_div({i})"]), "fn": int(res[f"fn_div({i})"])},
    }


def _count_divisions(tracks: np.ndarray) -> int:
    parents, counts = np.unique(tracks[:, 3][tracks[:, 3] > 0], return_counts=True) if len(tracks) else ([], [])
    return int(np.sum(np.asarray(counts) > 1))


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
