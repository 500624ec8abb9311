"""The trackers on real annotated movies (``datasets.MOVIES``), fed the true masks with their
labels shuffled in every frame (so IDs carry no information), as published and with a random
global shift of 30-100 px per frame (a colony drifting several cell sizes).

True links: B. subtilis carries a CTC lineage (its labels are track IDs); PhC-C2DL-PSC's
silver truth is numbered per frame, so a true link is a pair of cells in consecutive frames
that each lie > 50 % on the other (cells there overlap by a median IoU of 0.9). Thresholds
sit 2-3 points under the measured figures (docs/algorithms.md, Tracker sections).
"""

from __future__ import annotations

import numpy as np
import pytest

from pyama_builtin.segmentation.logstd import segment_logstd
from pyama_builtin.tracking.iou_hungarian import track_iou_hungarian
from pyama_builtin.tracking.lap import track_lap
from pyama_framework.evaluation import score

TRACKERS = {"lap": track_lap, "iou_hungarian": track_iou_hungarian}


def overlaps(a: np.ndarray, b: np.ndarray):
    """(label in a, label in b, common pixels) for every overlapping pair, and both areas."""
    a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    keys, inter = np.unique(a[both] * (int(b.max()) + 1) + b[both], return_counts=True)
    la, lb = np.divmod(keys, int(b.max()) + 1)
    return la, lb, inter, np.bincount(a), np.bincount(b)


def tracked_id(truth: np.ndarray, tracked: np.ndarray) -> dict[int, int]:
    """True cell -> the tracked ID covering more than half of it."""
    la, lb, inter, area, _ = overlaps(truth, tracked)
    ok = inter > 0.5 * area[la]
    return dict(zip(la[ok].tolist(), lb[ok].tolist()))


def true_links(truth: np.ndarray, consistent: bool) -> list[list[tuple[int, int]]]:
    """Per frame pair, the (cell at t, cell at t+1) pairs of the same cell."""
    links = []
    for a, b in zip(truth[:-1], truth[1:]):
        if consistent:
            same = np.intersect1d(np.unique(a), np.unique(b))
            links.append([(int(x), int(x)) for x in same if x])
        else:
            la, lb, inter, area_a, area_b = overlaps(a, b)
            ok = (inter > 0.5 * area_a[la]) & (inter > 0.5 * area_b[lb])
            links.append(list(zip(la[ok].tolist(), lb[ok].tolist())))
    return links


def kept_fraction(truth, tracked, links) -> float:
    ids = [tracked_id(t, f) for t, f in zip(truth, tracked)]
    kept = total = 0
    for t, pairs in enumerate(links):
        for a, b in pairs:
            total += 1
            kept += ids[t].get(a, -1) == ids[t + 1].get(b, -2)
    return kept / total


def shuffled(truth: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty_like(truth)
    for t, f in enumerate(truth):
        lut = np.concatenate([[0], rng.permutation(int(f.max())) + 1]).astype(truth.dtype)
        out[t] = lut[f]
    return out


def shifted(stack: np.ndarray, seed: int) -> np.ndarray:
    """Each frame moved by a random offset, 30-100 px from the previous frame's, cropped."""
    rng = np.random.default_rng(seed)
    offsets = [np.zeros(2)]
    while len(offsets) < len(stack):
        angle, step = rng.uniform(0, 2 * np.pi), rng.uniform(30, 100)
        candidate = offsets[-1] + step * np.array([np.sin(angle), np.cos(angle)])
        if np.all(np.abs(candidate) <= 100):
            offsets.append(candidate)
    out = np.zeros_like(stack)
    h, w = stack.shape[1:]
    for t, (dy, dx) in enumerate(np.rint(offsets).astype(int)):
        out[t, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            stack[t, max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def run(name, frames):
    out = list(TRACKERS[name](iter(frames)))
    return np.stack([o.labels for o in out]), {k: v for o in out for k, v in o.parents.items()}


def found_divisions(truth, tracks, tracked, parents) -> tuple[int, int, int]:
    """(true divisions, found, found with the right mother and daughters) for a CTC lineage."""
    begin = {int(r[0]): int(r[1]) for r in tracks}
    end = {int(r[0]): int(r[2]) for r in tracks}
    daughters: dict[int, list[int]] = {}
    for label, _, _, parent in tracks:
        if parent:
            daughters.setdefault(int(parent), []).append(int(label))
    right = 0
    for mother, pair in daughters.items():
        m = tracked_id(truth[end[mother]], tracked[end[mother]]).get(mother)
        found = {tracked_id(truth[begin[d]], tracked[begin[d]]).get(d) for d in pair}
        right += m is not None and all(parents.get(d) == m for d in found if d is not None) \
            and None not in found and len(found) == 2
    return len(daughters), len(set(parents.values())), right


@pytest.mark.parametrize("name", TRACKERS)
def test_bsubtilis_links_and_divisions(real_movie, name):
    movie = real_movie("bsubtilis")
    truth = movie.truth
    tracked, parents = run(name, shuffled(truth, 0))
    assert kept_fraction(truth, tracked, true_links(truth, True)) >= 0.96  # measured 0.982-0.986
    true, found, right = found_divisions(truth, movie.tracks, tracked, parents)
    assert (true, found, right) == (5, 5, 5)


@pytest.mark.parametrize("seed", [1, 2])
def test_bsubtilis_drifting_colony(real_movie, seed):
    """Shifts of 30-100 px between frames, cells ~20 px wide: lap keeps the links (the
    misses are cells cut by the frame edge) and the lineage; overlap keeps none."""
    movie = real_movie("bsubtilis")
    truth = shifted(movie.truth, seed)
    links = true_links(truth, True)
    tracked, parents = run("lap", shuffled(truth, seed))
    assert kept_fraction(truth, tracked, links) >= 0.92  # measured 0.948 / 0.962
    assert found_divisions(truth, movie.tracks, tracked, parents)[2] == 5
    tracked, _ = run("iou_hungarian", shuffled(truth, seed))
    assert kept_fraction(truth, tracked, links) < 0.05


@pytest.mark.parametrize("name", TRACKERS)
def test_psc_links(real_movie, name):
    truth = real_movie("psc").truth
    tracked, _ = run(name, shuffled(truth, 0))
    assert kept_fraction(truth, tracked, true_links(truth, False)) >= 0.99  # measured 0.999-1.0


def test_psc_shifted_lap(real_movie):
    """Links are derived before shifting (labels survive the shift); links of cells shifted
    out of the field are not counted."""
    original = real_movie("psc").truth
    truth = shifted(original, 1)
    present = [set(np.unique(f).tolist()) for f in truth]
    links = [[(a, b) for a, b in pairs if a in present[t] and b in present[t + 1]]
             for t, pairs in enumerate(true_links(original, False))]
    tracked, _ = run("lap", shuffled(truth, 1))
    assert kept_fraction(truth, tracked, links) >= 0.93  # measured 0.955


# ------------------------------------------------------------------ divisions on real masks
@pytest.mark.parametrize("name", TRACKERS)
def test_psc_divisions_on_true_masks(real_movie, name):
    """All divisions of the overlap-derived lineage found (measured 9 of 9, 0-1 extra)."""
    truth = real_movie("psc").truth
    tracked, parents = run(name, shuffled(truth, 0))
    found = score(tracked, truth, found_tracks=parents)["divisions"]
    assert found["fn"] == 0 and found["tp"] >= 9 and found["fp"] <= 2, found


@pytest.fixture(scope="module")
def psc_segmented(real_movie):
    # The block-background body keeps the stem cells' glow, so neighbours merge and come apart
    # from frame to frame: the flicker these tests are about. (The default top-hat body of
    # bright cells flickers less: 11-17 proposed divisions without the lookahead.)
    return np.stack([segment_logstd(image, body="background") for image in real_movie("psc").images])


@pytest.mark.parametrize("name", TRACKERS)
def test_psc_segmentation_splits_are_not_divisions(psc_segmented, name):
    """On such masks clumps of stem cells merge and come apart from frame to frame. Before
    the lookahead, gap-closing-first and daughter-ratio rules each such split was a division
    (69-76 reported, 0 right); now 9-10 are reported (docs/algorithms.md). Without the
    lookahead the same masks give several times more."""
    _, parents = run(name, psc_segmented)
    confirmed = len(set(parents.values()))
    assert confirmed <= 20
    out = list(TRACKERS[name](iter(psc_segmented), division_lookahead=0))
    proposed = len({m for o in out for m in o.parents.values()})
    assert proposed >= 2 * confirmed
