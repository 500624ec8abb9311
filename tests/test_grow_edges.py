"""grow_edges looks only at candidate pixels; it must give what shifting whole frames gives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from pyama_builtin.segmentation.objects import grow_edges


def grow_by_shifting(labels: np.ndarray, allowed: np.ndarray, steps: int) -> np.ndarray:
    """The definition: per step, every allowed background pixel takes the label of its first
    labelled 4-neighbour (up, down, left, right) as it was before the step."""
    labels = labels.copy()
    h, w = labels.shape
    for _ in range(steps):
        before = labels.copy()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ty, sy = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
            tx, sx = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
            target, source = labels[ty, tx], before[sy, sx]
            take = (target == 0) & (source > 0) & allowed[ty, tx]
            target[take] = source[take]
    return labels


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_same_as_shifting_whole_frames(seed, steps):
    rng = np.random.default_rng(seed)
    blobs = ndi.gaussian_filter(rng.random((120, 97)), 2) > 0.53  # touching objects, some at the border
    labels, _ = ndi.label(blobs)
    allowed = rng.random(labels.shape) < 0.7
    expected = grow_by_shifting(labels.astype(np.int32), allowed, steps)
    assert (expected != labels).any()  # the case grows something
    np.testing.assert_array_equal(grow_edges(labels.astype(np.int32), allowed, steps), expected)
    # a non-contiguous label image is grown in place as well
    wide = np.zeros((120, 2 * 97), dtype=np.int32)
    view = wide[:, ::2]
    view[...] = labels
    assert grow_edges(view, allowed, steps) is view
    np.testing.assert_array_equal(view, expected)
