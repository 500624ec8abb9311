"""Reading per-cell crops back from a FOV's ``cells.zarr`` (written by the crop stage).

Each channel and level is one array ``(N, T, H, W)`` holding every cell's crop in its
top-left corner (see ``docs/outputs.md``); :func:`read_crop` returns one cell's crop stack
trimmed to its own window, in one chunk read::

    from pyama_framework.cells import read_crop
    stack = read_crop("out/fov_000", "fl_ch_1", cell=17)          # (T, h, w) float32 in [0, 1]
    small = read_crop("out/fov_000", "fl_ch_1", cell=17, level=1)  # (T, h // 2, w // 2) uint8
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

__all__ = ["read_crop", "cell_ids"]


def _open(fov_folder: str | Path) -> zarr.Group:
    path = Path(fov_folder) / "cells.zarr"
    if not (path / "zarr.json").is_file():
        raise FileNotFoundError(f"{path} does not exist; run the pipeline with cropping enabled first")
    return zarr.open_group(path, mode="r")


def cell_ids(fov_folder: str | Path) -> np.ndarray:
    """The IDs of the cells that have crops (the cells of the FOV's traces CSV), ascending."""
    return _open(fov_folder)["metadata/cell_ids"][:]


def read_crop(fov_folder: str | Path, channel: str, cell: int, level: int = 0) -> np.ndarray:
    """One cell's crop stack ``(T, h, w)``.

    Parameters
    ----------
    fov_folder : str or Path
        The FOV's results folder (``<output>/fov_000``).
    channel : str
        The stack name, e.g. ``"pc_ch_0"`` or ``"fl_ch_1"``.
    cell : int
        The cell's ID (the ``cell`` column of the traces).
    level : {0, 1}
        0: float32 in [0, 1] (fluorescence background-corrected); 1: the uint8 half-size level.

    Returns
    -------
    (T, h, w) ndarray
        The crop over the cell's window ``metadata/windows`` (frames where the cell is absent
        show the window's pixels all the same; ``metadata/valid_frames`` says which).

    Raises
    ------
    KeyError
        No such channel, level or cell; the message lists what there is.
    """
    group = _open(fov_folder)
    channels = sorted(k for k in group.group_keys() if k != "metadata")
    if channel not in channels:
        raise KeyError(f"no crops of channel {channel!r}; choose one of: {', '.join(channels)}")
    if str(level) not in group[channel]:
        raise KeyError(f"no level {level} of {channel!r}; choose one of: 0, 1")
    ids = group["metadata/cell_ids"][:]
    row = int(np.searchsorted(ids, cell))
    if row >= len(ids) or ids[row] != cell:
        raise KeyError(f"cell {cell} has no crop (not in this FOV's traces); {len(ids)} cells have crops")
    y0, x0, y1, x1 = (int(v) for v in group["metadata/windows"][row])
    h, w = y1 - y0, x1 - x0
    if level == 1:
        h, w = max(h // 2, 1), max(w // 2, 1)
    return group[f"{channel}/{level}"][row, :, :h, :w]
