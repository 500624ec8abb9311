"""Maximum projections of a volume accumulated slab by slab."""

from __future__ import annotations

import numpy as np


def slab_projections(planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three maximum projections of a slab of Z planes.

    Parameters
    ----------
    planes : (n, Y, X) ndarray

    Returns
    -------
    xy : (Y, X) ndarray
        Maximum over the slab's planes (combine slabs with ``np.maximum``).
    xz : (n, X) ndarray
        Maximum over Y, one row per plane.
    yz : (n, Y) ndarray
        Maximum over X, one row per plane.
    """
    return planes.max(axis=0), planes.max(axis=1), planes.max(axis=2)
