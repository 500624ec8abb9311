"""``score``: every evaluation measure of a tracked label stack against ground truth.

Frames are read one at a time; what is kept across frames is per-cell bookkeeping (labels and
matches), never images. The definitions are in docs/evaluation.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .ctc import add_frame, ctc_measures, empty_matches
from .lineage import GapSplitTracks
from .overlap import ctc_match, iou_match, overlaps
from .truth import EvaluationError, StackTruth, Truth, load_truth

IOU_THRESHOLD = 0.5
COUNT_TOLERANCE = 0.2  # "objects per frame within 20 % of the truth"


def score(found: Sequence[np.ndarray], truth: Truth | np.ndarray | str | Path,
          found_tracks: Any = None, found_traces: Any = None) -> dict[str, Any]:
    """Score tracked labels against ground truth.

    Parameters
    ----------
    found : (T, H, W) integer array-like
        Tracked labels (a cell keeps its ID across frames); numpy or zarr, indexed per frame.
    truth : Truth, (T, H, W) integer array-like, or path
        A :class:`Truth` from :func:`load_truth`, a path for it, or an in-memory label stack
        numbered per frame (links derived by overlap).
    found_tracks : mapping, (N, 4) array, DataFrame or None
        The result's lineage: ``{cell: parent}``, a CTC table ``[label, begin, end, parent]``
        or a ``tracks.csv`` table (columns ``cell``, ``parent``). None: no divisions.
    found_traces : DataFrame or None
        The run's traces (``frame``, ``cell`` and value columns) for the trace error.

    Returns
    -------
    dict
        JSON-ready: ``SEG``, ``DET``, ``TRA``, ``jaccard``, ``objects_truth``, ``objects_found``,
        ``f1``, ``links_kept``, ``identity_switches``, ``division_f1``, ``trace_error`` and
        their details (see docs/evaluation.md).
    """
    if not isinstance(truth, Truth):
        truth = load_truth(Path(truth)) if isinstance(truth, (str, Path)) else StackTruth(truth, "truth array")
    shape = tuple(getattr(found, "shape", ()))
    if shape != (truth.n_frames, *truth.shape):
        raise EvaluationError(f"ground truth {truth.description} is {truth.n_frames} frames of "
                              f"{truth.shape[0]} x {truth.shape[1]} but the result is {shape[0] if shape else '?'} "
                              f"frames of {' x '.join(map(str, shape[1:]))}; pass the truth of this movie and FOV")
    parents = _parents(found_tracks)
    traj, segm = empty_matches(), empty_matches()
    counts_truth, counts_found, f1_frames, jaccard_frames = [], [], [], []
    tp = fp = fn = inter_px = union_px = 0
    link_matches: list[dict[int, int]] = []
    trace_pairs: list[tuple[int, int, int]] = []
    for tf in truth.frames():
        frame = np.asarray(found[tf.t])
        if not np.issubdtype(frame.dtype, np.integer) or (frame.size and frame.min() < 0):
            raise EvaluationError(f"result frame {tf.t} is not a label image (dtype {frame.dtype}); tracked "
                                  "labels must be non-negative integers")
        ov = overlaps(tf.tra, frame)
        detected = ctc_match(ov)
        add_frame(traj, detected)
        # Links and switches judge tracking, not outlines: a true cell counts as found by the
        # cell covering > 50 % of it (the CTC detection rule), as in TRA.
        link_matches.append(dict(zip(detected[2], detected[3])))
        matched = iou_match(ov, IOU_THRESHOLD)
        counts_truth.append(len(ov.ref_labels))
        counts_found.append(len(ov.comp_labels))
        trace_pairs += [(tf.t, tf.trace_labels[a] if tf.trace_labels else a, m) for a, m in matched.items()]
        if tf.seg is None:
            f1_frames.append(None)
            jaccard_frames.append(None)
            continue
        seg_ov = ov if tf.seg_is_tra else overlaps(tf.seg, frame)
        add_frame(segm, ctc_match(seg_ov))
        hits = len(matched) if tf.seg_is_tra else len(iou_match(seg_ov, IOU_THRESHOLD))
        misses, extras = len(seg_ov.ref_labels) - hits, len(seg_ov.comp_labels) - hits
        tp, fn, fp = tp + hits, fn + misses, fp + extras
        f1_frames.append(_f1(hits, extras, misses))
        both, either = _foreground(tf.seg, frame)
        inter_px, union_px = inter_px + both, union_px + either
        jaccard_frames.append(both / either if either else 1.0)
    ref_tracks = truth.tracks()
    if not sum(counts_truth):
        raise EvaluationError(f"ground truth {truth.description} has no cells; nothing to score against")

    # The result's labels as a valid CTC graph: gapped tracks split into segments.
    builder = GapSplitTracks(max((max(ls, default=0) for ls in traj["labels_comp"]), default=0) + 1)
    for t, labels in enumerate(traj["labels_comp"]):
        renamed = builder.add_frame(t, labels)
        if renamed:
            # sorted: the library indexes vertices by searchsorted position in these lists
            traj["labels_comp"][t] = sorted(renamed.get(x, x) for x in labels)
            traj["mapped_comp"][t] = [renamed.get(x, x) for x in traj["mapped_comp"][t]]
    ctc = ctc_measures(ref_tracks, builder.table(parents), traj, segm if segm["labels_ref"] else None)

    kept, total = _links_kept(ref_tracks, link_matches, parents)
    within = [abs(f - t) <= COUNT_TOLERANCE * t for t, f in zip(counts_truth, counts_found)]
    return {
        "truth": truth.description, "frames": truth.n_frames,
        "SEG": ctc["SEG"], "DET": ctc["DET"], "TRA": ctc["TRA"],
        "jaccard": inter_px / union_px if union_px else None,
        "objects_truth": counts_truth, "objects_found": counts_found,
        "objects_within_20pct": float(np.mean(within)),
        "f1": _f1(tp, fp, fn) if (tp + fp + fn) else None, "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1_per_frame": f1_frames, "jaccard_per_frame": jaccard_frames,
        "links_kept": kept / total if total else None, "links_total": total,
        "identity_switches": _identity_switches(link_matches, parents),
        "division_f1": ctc["division"]["BC"], "divisions": ctc["division"],
        "AOGM": ctc["AOGM"],
        "trace_error": _trace_error(truth.traces, found_traces, trace_pairs),
    }


def _parents(found_tracks: Any) -> dict[int, int]:
    if found_tracks is None:
        return {}
    if isinstance(found_tracks, Mapping):
        pairs = found_tracks.items()
    elif hasattr(found_tracks, "columns"):
        pairs = zip(found_tracks["cell"], found_tracks["parent"])
    else:
        table = np.asarray(found_tracks).reshape(-1, 4)
        pairs = zip(table[:, 0], table[:, 3])
    return {int(c): int(p) for c, p in pairs if int(p) != 0}


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 1.0


def _foreground(truth: np.ndarray, found: np.ndarray) -> tuple[int, int]:
    a, b = truth != 0, found != 0
    return int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b))


def _links_kept(ref_tracks: np.ndarray, matches: list[dict[int, int]], parents: Mapping[int, int]) -> tuple[int, int]:
    """True frame-to-frame links (a track continuing, or a mother to a daughter born the next
    frame) whose matched found cells carry the same ID, or the daughter's ID has the mother's as
    parent."""
    ends = {int(r[0]): int(r[2]) for r in ref_tracks}
    links = [(t, int(r[0]), int(r[0])) for r in ref_tracks for t in range(int(r[1]), int(r[2]))]
    links += [(ends[int(r[3])], int(r[3]), int(r[0])) for r in ref_tracks
              if int(r[3]) in ends and ends[int(r[3])] == int(r[1]) - 1]
    kept = 0
    for t, a, b in links:
        fa, fb = matches[t].get(a), matches[t + 1].get(b)
        kept += fa is not None and fb is not None and (fa == fb or parents.get(fb) == fa)
    return kept, len(links)


def _identity_switches(matches: list[dict[int, int]], parents: Mapping[int, int]) -> int:
    """Times a true track's matched found ID changes from its previous match (MOT IDSW), not
    counting a change to a daughter of the previous ID (that is a false division)."""
    last: dict[int, int] = {}
    switches = 0
    for frame in matches:
        for true_id, found_id in frame.items():
            before = last.get(true_id)
            switches += before is not None and found_id != before and parents.get(found_id) != before
            last[true_id] = found_id
    return switches


def _trace_error(truth_traces: Any, found_traces: Any, pairs: list[tuple[int, int, int]]) -> dict | None:
    """Relative error of every value column the truth and the run's traces share, over matched cells."""
    if truth_traces is None or found_traces is None:
        return None
    import pandas as pd

    columns = [c for c in truth_traces.columns if c not in ("frame", "label") and c in found_traces.columns]
    if not columns:
        wanted = [c for c in truth_traces.columns if c not in ("frame", "label")]
        raise EvaluationError(f"truth traces columns {wanted} are not in the run's traces; name them like the "
                              "run's trace columns (e.g. intensity_total_ch_1)")
    matched = pd.DataFrame(pairs, columns=["frame", "label", "cell"])
    joined = truth_traces.merge(matched, on=["frame", "label"]).merge(
        found_traces[["frame", "cell", *columns]], on=["frame", "cell"], suffixes=("_true", ""))
    result = {}
    for c in columns:
        truth_value = joined[f"{c}_true"].to_numpy(float)
        ok = np.isfinite(truth_value) & (truth_value != 0) & np.isfinite(joined[c].to_numpy(float))
        rel = (joined[c].to_numpy(float)[ok] - truth_value[ok]) / np.abs(truth_value[ok])
        result[c] = {"n": int(ok.sum()), "n_truth": int(len(truth_traces)),
                     "median": float(np.median(rel)) if rel.size else None,
                     "median_abs": float(np.median(np.abs(rel))) if rel.size else None,
                     "p90_abs": float(np.percentile(np.abs(rel), 90)) if rel.size else None}
    return result
