"""Where segmentation and tracking lose accuracy: errors decomposed per frame.

In-process (no ``pyama run``): ``segment_logstd`` per frame, then a tracker, then
:func:`pyama_framework.evaluation.score`, and a breakdown of what went wrong:

- missed: a true cell no found object covers more than half of (and not split);
- false: a found object with less than half of its pixels on true cells;
- merge: a found object covering more than half of each of >= 2 true cells (cells counted);
- split: a true cell holding >= 2 found objects that each lie mostly (> 50 %) inside it and
  cover >= 15 % of it;
- boundary: signed mean distance of matched cells (IoU >= 0.5), (found area - true area) /
  true perimeter, px (negative: masks too tight);
- links: true frame-to-frame links lost, by cause: an end not detected (missed, split or
  merged cell) or both detected but the IDs differ (new track without parent, another
  existing track, a false division).
- switches: identity switches (as counted by ``score``), by cause: the true cell went into
  a merged object (covering > 50 % of >= 2 true cells) or came out of one, it continued
  under a new track (with or without a parent), under another existing track, or under a
  daughter of another track.

    python benchmarks/segmentation_errors.py --cases bsubtilis,small0,small1,small2
    python benchmarks/segmentation_errors.py --cases colony11 --set split_h=0.15

Cases: bsubtilis, psc, c2c12 (real), small0..N (small_colony_scene), colony11 (colony_scene),
synthetic1 (own generator, 1024², 3 frames), rodsim1 (independent renderer, 1024², 3 frames).
The rendered rods and colonies take ``@g10`` (10x the light) or ``@z2.5`` (2.5x the
magnification): ``--cases small0@g10,small0@z2.5``.
Splits of the colony's constricted rods are counted apart ("pinched"): its truth calls a rod
pinched in the frame before its division one cell.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pyama_builtin.segmentation.logstd import segment_logstd
from pyama_builtin.tracking.lap import track_lap
from pyama_framework.evaluation import load_truth, score, write_ctc_truth


def load_case(name: str):
    """(images, truth labels (track IDs or per-frame numbers), parents or None, the IDs of the
    constricted (pinched, one cell in the truth) rods per frame or None).

    Rendered cases take a suffix: ``@g10`` renders the phase image with 10x the light
    (sqrt(10)x the signal-to-noise ratio), ``@z2.5`` at 2.5x the magnification
    (:func:`~pyama_framework.testing.rodsim.magnified`)."""
    name, _, look = name.partition("@")
    gain = float(look[1:]) if look.startswith("g") else 1.0
    zoom = float(look[1:]) if look.startswith("z") else 1.0
    if look and not look.startswith(("g", "z")):
        raise KeyError(f"unknown suffix @{look}; use @g<light factor> or @z<magnification>")
    from pyama_framework.testing.rodsim import PHASE_LEVEL, magnified
    look_options = dict(phase_level=PHASE_LEVEL * gain, noise=zoom == 1.0)

    def rendered(scene):
        if zoom == 1.0:
            return [(f.phase, f.labels) for f in scene.frames()]
        return [magnified(scene, t, zoom) for t in range(scene.n_frames)]
    if name == "bsubtilis" or name in ("psc", "c2c12"):
        from pyama_framework.testing import datasets
        movie = datasets.load_movie(name)
        parents = None
        if movie.tracks is not None:
            parents = {int(r[0]): int(r[3]) for r in movie.tracks if r[3]}
        return movie.images, movie.truth, parents, None
    if name.startswith("small") or name.startswith("colony"):
        from pyama_framework.testing.colony import colony_scene, small_colony_scene
        seed = int(name.lstrip("smalcony"))
        scene = (small_colony_scene if name.startswith("small") else colony_scene)(seed, **look_options)
        frames = rendered(scene)
        pinched = [set(np.asarray(scene._ids[t])[scene._constricted[t]].tolist()) for t in range(len(frames))]
        return (np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]), scene.parents, pinched)
    if name.startswith("synthetic"):
        from pyama_framework.testing.synthetic import REALISTIC_OPTICS, SyntheticScene
        scene = SyntheticScene(1024, 1024, n_frames=3, n_cells=150, seed=int(name[9:] or 1), n_debris=30,
                               **REALISTIC_OPTICS)
        frames = [scene.frame(t) for t in range(scene.n_frames)]
        return np.stack([f.phase for f in frames]), np.stack([f.labels for f in frames]), None, None
    if name.startswith("rodsim"):
        from pyama_framework.testing.rodsim import RodScene
        scene = RodScene(1024, 1024, n_frames=3, n_cells=150, seed=int(name[6:] or 11), **look_options)
        frames = rendered(scene)
        return np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames]), None, None
    raise KeyError(name)


def decompose(truth: np.ndarray, found: np.ndarray, pinched: set | None = None) -> dict:
    """Error counts of one frame (see the module docstring)."""
    t, f = truth.ravel().astype(np.int64), found.ravel().astype(np.int64)
    both = (t > 0) & (f > 0)
    tl, tarea = np.unique(t[t > 0], return_counts=True)
    fl, farea = np.unique(f[f > 0], return_counts=True)
    out = dict(truth=len(tl), found=len(fl), missed=0, false=0, merged_cells=0, merges=0, split_cells=0, split_pinched=0,
               split_pieces=0, boundary=[])
    if not len(tl) or not len(fl):
        out.update(missed=len(tl), false=len(fl))
        return out
    ti, fi = np.searchsorted(tl, t[both]), np.searchsorted(fl, f[both])
    pairs, inter = np.unique(ti * len(fl) + fi, return_counts=True)
    pa, pb = np.divmod(pairs, len(fl))
    of_true = inter / tarea[pa]
    of_found = inter / farea[pb]
    covers = of_true > 0.5  # found pb covers most of true pa
    per_found = np.bincount(pb[covers], minlength=len(fl))
    merge_objs = per_found >= 2
    out["merges"] = int(merge_objs.sum())
    out["merged_cells"] = int(per_found[merge_objs].sum())
    piece = (of_found > 0.5) & (of_true >= 0.15)
    per_true = np.bincount(pa[piece], minlength=len(tl))
    split = per_true >= 2
    out["split_cells"] = int(split.sum())
    out["split_pieces"] = int(per_true[split].sum())
    out["split_pinched"] = int(sum(int(c) in pinched for c in tl[split])) if pinched else 0
    detected = np.bincount(pa[covers], minlength=len(tl)) > 0
    out["missed"] = int((~detected & ~split).sum())
    on_cells = np.bincount(pb, weights=inter, minlength=len(fl)) / farea
    out["false"] = int((on_cells < 0.5).sum())
    iou = inter / (tarea[pa] + farea[pb] - inter)
    # SEG lost per true cell (1 - IoU of the object covering > half of it; 1 when none), by kind
    seg_iou = np.zeros(len(tl))
    seg_iou[pa[covers]] = iou[covers]
    merged_true = np.zeros(len(tl), bool)
    merged_true[pa[covers & merge_objs[pb]]] = True
    kind = np.where(split, "split", np.where(merged_true, "merged", np.where(detected, "matched", "missed")))
    out["seg_loss"] = {k: float((1 - seg_iou[kind == k]).sum()) for k in ("matched", "split", "merged", "missed")}
    good = iou >= 0.5
    if good.any():
        from skimage.measure import perimeter
        for a, b in zip(pa[good], pb[good]):
            cell = truth == tl[a]
            p = perimeter(cell)
            out["boundary"].append((farea[b] - tarea[a]) / max(p, 1.0))
    return out


def _detections(truth: np.ndarray, found: np.ndarray) -> dict[int, int]:
    """True label -> found label covering more than half of it (the CTC detection rule)."""
    t, f = truth.ravel().astype(np.int64), found.ravel().astype(np.int64)
    both = (t > 0) & (f > 0)
    key, inter = np.unique(t[both] * (1 << 32) + f[both], return_counts=True)
    a, b = np.divmod(key, 1 << 32)
    tl, tarea = np.unique(t[t > 0], return_counts=True)
    area = dict(zip(tl.tolist(), tarea.tolist()))
    return {int(x): int(y) for x, y, n in zip(a, b, inter) if n > 0.5 * area[int(x)]}


def lost_links(truth, tracked, parents, found_parents) -> dict:
    """True links lost, by cause (see the module docstring)."""
    from collections import Counter
    if parents is None:  # truth numbered per frame (no lineage): links not broken down
        return {}
    det = [_detections(truth[i], tracked[i]) for i in range(len(truth))]
    first = {}
    for i in range(len(tracked)):
        for x in np.unique(tracked[i]).tolist():
            first.setdefault(x, i)
    links = []
    for i in range(len(truth) - 1):
        now, nxt = set(np.unique(truth[i]).tolist()) - {0}, set(np.unique(truth[i + 1]).tolist()) - {0}
        links += [(i, a, a) for a in now & nxt]
        links += [(i, parents[b], b) for b in nxt - now if parents.get(b) in now]
    causes = Counter()
    for i, a, b in links:
        fa, fb = det[i].get(a), det[i + 1].get(b)
        if fa is None or fb is None:
            causes["undetected_" + ("t" if fa is None else "t+1")] += 1
            continue
        if fa == fb or found_parents.get(fb) == fa:
            continue
        division = a != b
        if division and fa == fb:
            causes["division_missed"] += 1
        elif found_parents.get(fb) is not None:
            causes["false_division" + ("(true div)" if division else "")] += 1
        elif first[fb] == i + 1:
            causes["new_track" + ("(true div)" if division else "")] += 1
        else:
            causes["other_track" + ("(true div)" if division else "")] += 1
    causes["total"] = len(links)
    return dict(causes)


def switch_causes(truth, tracked, found_parents) -> dict:
    """Identity switches (``score``'s count) by cause (see the module docstring)."""
    from collections import Counter
    det = [_detections(truth[i], tracked[i]) for i in range(len(truth))]
    first = {}
    for i in range(len(tracked)):
        for x in np.unique(tracked[i]).tolist():
            first.setdefault(x, i)
    causes, last, last_t = Counter(), {}, {}
    for i, frame in enumerate(det):
        held = Counter(frame.values())
        for a, b in frame.items():
            before = last.get(a)
            if before is not None and b != before and found_parents.get(b) != before:
                was_merged = Counter(det[last_t[a]].values())[before] > 1
                if held[b] > 1:
                    causes["into_merge"] += 1
                elif was_merged:
                    causes["out_of_merge"] += 1
                elif first[b] == i:
                    causes["new_track" + ("(parent)" if b in found_parents else "")] += 1
                else:
                    causes["other_daughter" if b in found_parents else "other_track"] += 1
            last[a], last_t[a] = b, i
    return dict(causes)


def run(name: str, params: dict, tracker: dict) -> dict:
    images, truth, parents, pinched = load_case(name)
    started = time.process_time()
    masks = [segment_logstd(im, **params) for im in images]
    seg_s = time.process_time() - started
    tracked, found_parents = [], {}
    for frame in track_lap(masks, **tracker):
        tracked.append(np.asarray(frame.labels))
        found_parents.update(frame.parents)
    tracked = np.stack(tracked)
    with tempfile.TemporaryDirectory() as tmp:
        if parents is not None:
            truth_ref = load_truth(write_ctc_truth(truth, Path(tmp) / "GT", parents=parents))
        else:
            truth_ref = truth
        s = score(tracked, truth_ref, found_tracks=found_parents)
    per_frame = [decompose(truth[i], masks[i], pinched[i] if pinched else None) for i in range(len(images))]
    keys = ("truth", "found", "missed", "false", "merges", "merged_cells", "split_cells", "split_pieces",
            "split_pinched")
    total = {k: int(sum(p[k] for p in per_frame)) for k in keys}
    total["seg_loss"] = {k: round(sum(p["seg_loss"][k] for p in per_frame if "seg_loss" in p) / total["truth"], 3)
                         for k in ("matched", "split", "merged", "missed")}
    b = np.concatenate([p["boundary"] for p in per_frame]) if per_frame else np.zeros(0)
    total["boundary_median"] = float(np.median(b)) if b.size else None
    total["count_ratio"] = [round(p["found"] / max(p["truth"], 1), 2) for p in per_frame]
    total["lost_links"] = lost_links(truth, tracked, parents, found_parents)
    # Truths numbered per frame (psc, c2c12) have no identities to switch.
    consistent = parents is not None or name.startswith(("rodsim", "synthetic"))
    total["switches"] = switch_causes(truth, tracked, found_parents) if consistent else {}
    return dict(case=name, SEG=s["SEG"], TRA=s["TRA"], jaccard=s["jaccard"],
                within20=s["objects_within_20pct"], links=s["links_kept"], idsw=s["identity_switches"],
                div=s["divisions"], seg_cpu_s=seg_s, **total)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"  # None: no cell matched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="bsubtilis,small0,small1,small2")
    parser.add_argument("--set", action="append", default=[], help="segmenter parameter, e.g. split_h=0.15")
    parser.add_argument("--track", action="append", default=[], help="tracker parameter, e.g. max_gap=3")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import yaml
    params = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    tracker = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.track)}
    rows = []
    for case in args.cases.split(","):
        r = run(case, params, tracker)
        rows.append(r)
        print(f"{case:10s} SEG {r['SEG']:.3f} TRA {r['TRA']:.3f} J {r['jaccard']:.3f} w20 {r['within20']:.2f} "
              f"links {r['links']:.3f} idsw {r['idsw']} | truth {r['truth']} found {r['found']} missed "
              f"{r['missed']} false {r['false']} merges {r['merges']}({r['merged_cells']}) splits "
              f"{r['split_cells']}({r['split_pieces']},pinched {r['split_pinched']}) bnd {_signed(r['boundary_median'])} "
              f"div {r['div'].get('tp')}/{r['div'].get('fp')}/{r['div'].get('fn')}\n    SEG loss {r['seg_loss']}\n    lost {r['lost_links']}"
              f"\n    switches {r['switches']}", flush=True)
    print("mean SEG", round(float(np.mean([r["SEG"] for r in rows])), 4), "TRA",
          round(float(np.mean([r["TRA"] for r in rows])), 4), file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
