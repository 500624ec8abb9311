"""``open_lightsheet_results``: lazy access to a lightsheet run's output, like IsoView's
``IsoviewArray``. Nothing is read until it is indexed; every array is a zarr array (or a
dask array from :meth:`LightsheetResults.to_dask`), so napari and dask can use it directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .volume_store import GROUP


class VolumeView:
    """One (t, view) volume, lazily: indexing reads only the selected planes."""

    def __init__(self, array: zarr.Array, t: int, view: int):
        self.array, self.t, self.view = array, t, view

    @property
    def shape(self) -> tuple[int, int, int]:
        _, z, _, y, x = self.array.shape
        return z, y, x

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return 3

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key) or len(key) > 3:
            raise IndexError("index a volume with up to three ints or slices (Z, Y, X)")
        z, y, x = (*key, *(slice(None),) * (3 - len(key)))
        return self.array[self.t, z, self.view, y, x]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[:]
        return data if dtype is None else data.astype(dtype)


class MaskView(VolumeView):
    """One (t, view) foreground mask at full resolution, read lazily from the block-resolution
    ``mask`` array (each stored value covers ``block`` x ``block`` pixels)."""

    def __init__(self, array: zarr.Array, t: int, view: int, block: int, shape_yx: tuple[int, int]):
        super().__init__(array, t, view)
        self.block, self.shape_yx = block, shape_yx

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.array.shape[1], *self.shape_yx

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key) or len(key) > 3:
            raise IndexError("index a mask with up to three ints or slices (Z, Y, X)")
        z, y, x = (*key, *(slice(None),) * (3 - len(key)))
        ys, xs = np.arange(self.shape_yx[0])[y], np.arange(self.shape_yx[1])[x]
        rows, cols = np.atleast_1d(ys) // self.block, np.atleast_1d(xs) // self.block
        if rows.size == 0 or cols.size == 0:
            return np.zeros(np.broadcast_shapes(np.shape(np.arange(self.shape[0])[z]), ys.shape, xs.shape), bool)
        r0, c0 = rows.min(), cols.min()
        small = self.array[self.t, z, self.view, r0:rows.max() + 1, c0:cols.max() + 1]
        full = small[..., rows - r0, :][..., cols - c0]
        if np.ndim(xs) == 0:
            full = full[..., 0]
        if np.ndim(ys) == 0:
            full = full[..., 0, :] if np.ndim(xs) else full[..., 0]
        return full


class LightsheetResults:
    """The corrected volumes of a lightsheet run as a lazy (T, Z, V, Y, X) array.

    ``results[t, z, v]`` reads one plane; ``results.views`` names the V axis
    (``"cam0_ch0"``, ...); :meth:`projection`, :meth:`mask` and :meth:`volume` give one
    view's projections, foreground mask (full resolution) and volume; :meth:`to_dask` the
    whole thing as dask. ``results.masks`` is the stored (T, Z, V, Y/b, X/b) block mask.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.group = zarr.open_group(self.path, mode="r")
        self.corrected = self.group["corrected"]
        self.masks = self.group["mask"] if "mask" in self.group else None
        attrs = dict(self.group.attrs)
        self.views: list[str] = list(attrs.get("views", []))
        self.spacing: dict[str, float | None] = attrs.get("spacing", {})
        self.timestamps_s = attrs.get("timestamps_s")
        self.axes = attrs.get("axes", "TZVYX")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.corrected.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.corrected.dtype

    @property
    def ndim(self) -> int:
        return 5

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.corrected[key]

    def view_index(self, view: int | str) -> int:
        if isinstance(view, str):
            if view not in self.views:
                raise KeyError(f"view {view!r} is not in this output; choose one of: {', '.join(self.views)}")
            return self.views.index(view)
        if not 0 <= view < len(self.views):
            raise IndexError(f"view {view} is out of range; this output has {len(self.views)} views")
        return view

    def volume(self, t: int, view: int | str) -> VolumeView:
        """The corrected (Z, Y, X) volume of time point ``t`` and ``view``, lazily."""
        return VolumeView(self.corrected, t, self.view_index(view))

    def mask(self, t: int, view: int | str) -> VolumeView:
        """The foreground mask (Z, Y, X) of time point ``t`` and ``view``, lazily."""
        if self.masks is None:
            raise KeyError(f"{self.path}: this run wrote no masks (pipeline_params.mask.enabled was false)")
        block = int(self.group.attrs.get("mask_block", 1))
        return MaskView(self.masks, t, self.view_index(view), block, self.shape[3:])

    def projection(self, t: int, view: int | str, kind: str = "xy") -> np.ndarray:
        """Maximum projection ``"xy"`` (Y, X), ``"xz"`` (Z, X), ``"yz"`` (Z, Y) or ``"mask_xy"``."""
        kinds = ("xy", "xz", "yz", "mask_xy")
        if kind not in kinds:
            raise KeyError(f"unknown projection {kind!r}; choose one of: {', '.join(kinds)}")
        return self.group[f"projections/{kind}"][t, self.view_index(view)]

    def calibration(self, name: str) -> zarr.Array:
        """``background``, ``dead_pixels``, ``histogram`` or ``threshold`` (indexed [t, v])."""
        return self.group[f"calibration/{name}"]

    def to_dask(self, name: str = "corrected") -> Any:
        """The (T, Z, V, Y, X) ``corrected`` (or ``mask``) array as a dask array."""
        import dask.array as da

        return da.from_zarr(self.group[name])

    def __repr__(self) -> str:
        return f"LightsheetResults({self.path}, shape={self.shape} {self.axes}, views={self.views})"


def open_lightsheet_results(path: str | Path, fov: int = 0) -> LightsheetResults:
    """Open a lightsheet run's output lazily.

    Parameters
    ----------
    path : str or Path
        The run's output folder, one ``fov_NNN`` folder in it, or its ``lightsheet.zarr``.
    fov : int
        Which FOV folder when ``path`` is the output folder.

    Returns
    -------
    LightsheetResults
    """
    path = Path(path)
    for candidate in (path, path / GROUP, path / f"fov_{fov:03d}" / GROUP):
        if (candidate / "zarr.json").is_file() and (candidate / "corrected" / "zarr.json").is_file():
            return LightsheetResults(candidate)
    raise FileNotFoundError(f"{path}: no lightsheet results here (expected fov_{fov:03d}/{GROUP}); "
                            f"run 'pyama run' with 'pipeline: lightsheet' first")
