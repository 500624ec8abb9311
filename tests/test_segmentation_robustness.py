"""``logstd`` holds when the light or the magnification changes (rendered colonies).

The defaults were chosen at one exposure and one cell width in px. A lab's movie can have
several times the light (a long exposure, a bright lamp) or cells twice as wide (a 100x
objective, small camera pixels); the independent renderer draws both (``phase_level``,
:func:`~pyama_framework.testing.rodsim.magnified`).
"""

from __future__ import annotations

import numpy as np
import pytest

from pyama_builtin.segmentation.logstd import segment_logstd
from pyama_builtin.segmentation.rescale import enlarge_labels, shrink
from pyama_builtin.segmentation.variance import strong_edge_variance
from pyama_framework.testing.colony import small_colony_scene
from pyama_framework.testing.rodsim import PHASE_LEVEL, magnified


def matched_share(truth: np.ndarray, found: np.ndarray) -> float:
    """Share of true cells matched by a found object at IoU >= 0.5."""
    t, f = truth.ravel().astype(np.int64), found.ravel().astype(np.int64)
    both = (t > 0) & (f > 0)
    pairs, inter = np.unique(t[both] * (1 << 32) + f[both], return_counts=True)
    ta = np.bincount(t, minlength=t.max() + 1)
    fa = np.bincount(f, minlength=f.max() + 1)
    a, b = np.divmod(pairs, 1 << 32)
    iou = inter / (ta[a] + fa[b] - inter)
    return len(np.unique(a[iou >= 0.5])) / (len(np.unique(t)) - 1)


@pytest.mark.parametrize("t", [5, 10, 14])
def test_ten_times_the_light_still_reads_dark_cells(t):
    # At 10x the light the log-STD mask also takes the colony's wide halo; the polarity
    # read on it said "bright" and every cell was lost (0 objects in frame 10 before).
    bright = small_colony_scene(0, phase_level=10 * PHASE_LEVEL).frame(t)
    normal = small_colony_scene(0).frame(t)
    share = matched_share(bright.labels, segment_logstd(bright.phase))
    assert share >= 0.8
    assert share >= matched_share(normal.labels, segment_logstd(normal.phase)) - 0.1


def test_strong_edges_only_when_stricter():
    rng = np.random.default_rng(0)
    variance = rng.uniform(0, 1, 10_000)
    variance[:500] = 400.0  # edges: std 20
    strong = strong_edge_variance(variance, threshold_variance=1.0, edge_fraction=0.25)
    assert strong == pytest.approx((0.25 * 20) ** 2)
    assert strong_edge_variance(variance, threshold_variance=100.0, edge_fraction=0.25) is None
    assert strong_edge_variance(variance, threshold_variance=1e6) is None


def test_magnified_scene_scales_the_truth():
    scene = small_colony_scene(1, n_frames=3, noise=False)
    phase, labels = magnified(scene, 2, 2.0)
    frame = scene.frame(2)
    assert phase.shape == labels.shape == (512, 512)
    assert set(np.unique(labels)) == set(np.unique(frame.labels))
    ratio = np.bincount(labels.ravel())[1:].sum() / np.bincount(frame.labels.ravel())[1:].sum()
    assert ratio == pytest.approx(4.0, rel=0.05)
    with pytest.raises(ValueError, match="noise=False"):
        magnified(small_colony_scene(1, n_frames=3), 0, 2.0)


@pytest.mark.parametrize("seed", [0, 2])
def test_cells_at_two_and_a_half_times_the_magnification(seed):
    # Rods ~20 px wide: their flat interiors lose the 3-px log-STD signal, so cells were
    # missed or cut (seed 0, frame 4: none matched); shrinking the frame until its cells are
    # 10 px wide (max_width) finds them. Frames differ, so the mean of four is asserted.
    scene = small_colony_scene(seed, noise=False)
    shrunk, full = [], []
    for t in (4, 8, 12, 14):
        phase, truth = magnified(scene, t, 2.5)
        shrunk.append(matched_share(truth, segment_logstd(phase)))
        full.append(matched_share(truth, segment_logstd(phase, max_width=0)))
    assert np.mean(shrunk) >= 0.85
    assert np.mean(shrunk) >= np.mean(full) + 0.1


def test_given_width_shrinks_without_estimating():
    scene = small_colony_scene(2, noise=False)
    phase, truth = magnified(scene, 8, 3.0)  # ~24 px wide: too wide to estimate from the frame
    assert matched_share(truth, segment_logstd(phase, cell_diameter=24)) >= 0.7


def test_enlarged_labels_keep_cells_and_numbering():
    small = np.zeros((40, 40), np.int32)
    small[5:15, 5:12] = 1
    small[5:15, 12:20] = 2  # touching
    small[25:35, 5:10] = 3
    small[30, 30] = 4  # a single shrunk pixel survives
    big = enlarge_labels(small, (100, 100))
    assert big.shape == (100, 100) and big.dtype == np.int32
    assert set(np.unique(big)) == {0, 1, 2, 3, 4}
    for label, (y, x) in zip((1, 2, 3, 4), ((25, 20), (25, 40), (75, 18), (76, 76))):
        assert big[y, x] == label
    area = np.bincount(big.ravel())[1:]
    assert area[:3] == pytest.approx(np.array([70, 80, 50]) * 6.25, rel=0.2)
    assert 1 <= area[3] <= 4 * 6.25
    assert shrink(np.ones((100, 60), np.uint16), 2.5).shape == (40, 24)


def test_small_frames_are_not_shrunk_below_the_statistics_minimum():
    from pyama_builtin.segmentation.logstd import _shrinks

    assert _shrinks(20.0, 14.0, (512, 512))
    assert not _shrinks(13.0, 14.0, (512, 512))  # not wide enough
    assert not _shrinks(20.0, 14.0, (96, 96))  # would be 48 px a side
    assert not _shrinks(20.0, 0.0, (512, 512))  # off


def test_width_by_area_reads_few_wide_cells_among_many_fragments():
    # A frame at 3x the magnification with four founders: two 24-px cells and many thin
    # halo fragments. The median over objects reads the fragments; weighted by area, the cells.
    from scipy import ndimage as ndi

    from pyama_builtin.segmentation.objects import estimate_cell_width

    yy, xx = np.mgrid[:200, :200]
    labels = np.zeros((200, 200), np.int32)
    labels[np.hypot(yy - 50, xx - 50) <= 12] = 1
    labels[np.hypot(yy - 50, xx - 140) <= 12] = 2
    for k in range(12):
        labels[120 + 6 * (k // 6): 122 + 6 * (k // 6), 10 + 30 * (k % 6): 22 + 30 * (k % 6)] = k + 3
    slices = ndi.find_objects(labels)
    areas = np.bincount(labels.ravel())[1:]
    assert estimate_cell_width(labels, slices, areas) <= 4
    assert 22 <= estimate_cell_width(labels, slices, areas, by_area=True) <= 26
