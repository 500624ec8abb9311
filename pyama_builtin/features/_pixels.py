"""Which cell each labelled pixel of a frame belongs to: the common first step of the
vectorised feature implementations."""

from __future__ import annotations

from typing import Callable

import numpy as np

from pyama_framework.types import CellFrame

# Label values up to this size are mapped to cell indices with a lookup table; larger
# (sparse) IDs go through a binary search instead of allocating a table that big.
_MAX_TABLE = 1 << 24


def cell_pixels(cell_frame: CellFrame) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the pixels of ``cell_frame.cell_ids`` and the cell each belongs to.

    Computed once per ``CellFrame`` (see :func:`once_per_frame`) and returned read-only.

    Returns
    -------
    flat : (P,) intp ndarray
        Indices into ``labels.ravel()`` of every pixel of a listed cell, in raster order.
    cell : (P,) intp ndarray
        For each of those pixels, the position of its cell in ``cell_frame.cell_ids``.
        Reduce per cell with ``np.bincount(cell, weights, minlength=len(cell_ids))``.
    """
    return once_per_frame(cell_frame, _cell_pixels)


def once_per_frame(cell_frame: CellFrame, compute: Callable[[CellFrame], tuple[np.ndarray, ...]]
                   ) -> tuple[np.ndarray, ...]:
    """``compute(cell_frame)``, computed once per ``CellFrame`` and returned read-only.

    The stage gives every feature of a channel the same ``CellFrame``; the features' common
    per-pixel tables would otherwise be rebuilt (a scan of the frame each) for every one.
    The result is kept on the frame itself, as ``functools.cached_property`` does (the
    dataclass is frozen), so it lives exactly as long as the frame.
    """
    memo = vars(cell_frame)
    key = f"_pyama_{compute.__module__}.{compute.__qualname__}"
    if key not in memo:
        result = compute(cell_frame)
        for array in result:
            array.flags.writeable = False
        memo[key] = result
    return memo[key]


def _cell_pixels(cell_frame: CellFrame) -> tuple[np.ndarray, np.ndarray]:
    labels = cell_frame.labels.ravel()
    cell_ids = np.asarray(cell_frame.cell_ids, dtype=np.int64)
    flat = np.flatnonzero(labels != 0)  # a boolean mask is ~8x faster to scan than the labels
    ids = labels[flat].astype(np.int64)
    if ids.size == 0 or cell_ids.size == 0:
        return flat[:0], np.zeros(0, dtype=np.intp)
    top = int(ids.max())
    if top < _MAX_TABLE:
        table = np.full(top + 1, -1, dtype=np.intp)
        listed = cell_ids[cell_ids <= top]
        table[listed] = np.searchsorted(cell_ids, listed)
        cell = table[ids]
    else:
        cell = np.minimum(np.searchsorted(cell_ids, ids), len(cell_ids) - 1)
        cell[cell_ids[cell] != ids] = -1
    keep = cell >= 0  # labelled pixels of cells not asked for are skipped
    return flat[keep], cell[keep]
