"""Which cell each labelled pixel of a frame belongs to: the common first step of the
vectorised feature implementations."""

from __future__ import annotations

import numpy as np

from pyama_framework.types import CellFrame

# Label values up to this size are mapped to cell indices with a lookup table; larger
# (sparse) IDs go through a binary search instead of allocating a table that big.
_MAX_TABLE = 1 << 24


def cell_pixels(cell_frame: CellFrame) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the pixels of ``cell_frame.cell_ids`` and the cell each belongs to.

    Returns
    -------
    flat : (P,) intp ndarray
        Indices into ``labels.ravel()`` of every pixel of a listed cell, in raster order.
    cell : (P,) intp ndarray
        For each of those pixels, the position of its cell in ``cell_frame.cell_ids``.
        Reduce per cell with ``np.bincount(cell, weights, minlength=len(cell_ids))``.
    """
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
