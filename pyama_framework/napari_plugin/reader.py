"""napari reader: a pyama results folder (or one ``fov_XXX`` folder of it) as layers.

Per FOV: an image layer per raw channel, the segmented and tracked labels, and a tracks
layer from the traces. Every layer holds a dask array over the zarr store, so napari reads
only the frames it displays; the reader itself reads one frame per channel, to set the
contrast limits (napari would otherwise scan the data for them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..store import CONFIG_FILENAME

LayerData = tuple[Any, dict[str, Any], str]
_FOV_DIR = re.compile(r"fov_(\d+)")
# Fluorescence channels in turn; phase contrast is grey.
FLUORESCENCE_COLORMAPS = ("green", "magenta", "cyan", "yellow", "red", "blue")


def find_results(path: str | Path) -> tuple[Path, int | None] | None:
    """``(results folder, FOV or None)`` when ``path`` is a results folder or a FOV folder of one."""
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / CONFIG_FILENAME).is_file():
        return path, None
    match = _FOV_DIR.fullmatch(path.name)
    if match and (path.parent / CONFIG_FILENAME).is_file():
        return path.parent, int(match[1])
    return None


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """npe2 reader hook: :func:`read_results` for a results or FOV folder, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    return read_results if find_results(path) is not None else None


def read_results(path: str | list[str]) -> list[LayerData]:
    """The layers of one FOV: the FOV folder given, or the first complete FOV of a results folder."""
    from .. import open_results

    if isinstance(path, (list, tuple)):
        path = path[0]
    found = find_results(path)
    if found is None:
        from ..results import ResultsError

        raise ResultsError(f"{path} is not a pyama output folder nor a fov_XXX folder of one")
    root, fov = found
    results = open_results(root, partial=True)
    if fov is None:
        if not results.fovs:
            from ..results import ResultsError

            raise ResultsError(f"{root} has no complete FOV to show; run 'pyama run' to finish it")
        fov = results.fovs[0]
    return fov_layers(results, fov)


def contrast_limits(frame: np.ndarray) -> list[float]:
    """0.1 and 99.9 percentiles of one frame (never an empty range)."""
    lo, hi = (float(v) for v in np.percentile(frame, [0.1, 99.9]))
    return [lo, hi if hi > lo else lo + 1.0]


def fov_layers(results: Any, fov: int) -> list[LayerData]:
    """Image, labels and tracks layer data of ``fov`` of an opened results folder."""
    images = results.images(fov)                     # (t, c, y, x), dask over zarr
    pixel_size = images.attrs.get("pixel_size_um") or 1.0
    scale = (1.0, pixel_size, pixel_size)            # t in frames; y, x in µm (or px)
    where = {"results": str(results.path), "fov": int(fov)}
    layers: list[LayerData] = []
    fl_index = 0
    for name in [str(n) for n in images.coords["c"].values]:
        data = images.sel(c=name).data
        phase = name.startswith("pc_")
        colormap = "gray" if phase else FLUORESCENCE_COLORMAPS[fl_index % len(FLUORESCENCE_COLORMAPS)]
        fl_index += 0 if phase else 1
        layers.append((data, {
            "name": f"{name} [fov {fov}]", "scale": scale, "colormap": colormap,
            "contrast_limits": contrast_limits(np.asarray(data[0])),
            "blending": "translucent_no_depth" if phase else "additive",
            "metadata": {"pyama": {**where, "role": "image", "stack": name}},
        }, "image"))
    if results.config.channels.pc is not None and not results.config.copy_only:
        for tracked in (False, True):
            labels = results.labels(fov, tracked=tracked)
            role = "tracked" if tracked else "segmented"
            layers.append((labels.data, {
                "name": f"{role} [fov {fov}]", "scale": scale, "opacity": 0.5, "visible": tracked,
                "metadata": {"pyama": {**where, "role": role, "stack": str(labels.name)}},
            }, "labels"))
        layers += _tracks_layer(results, fov, scale, where)
    return layers


def _tracks_layer(results: Any, fov: int, scale: tuple[float, ...], where: dict) -> list[LayerData]:
    from .tracks import tracks_from_traces

    traces = results.traces(fov)
    if traces.empty:  # the filters removed every cell: nothing to draw
        return []
    data, graph, features = tracks_from_traces(traces)
    return [(data, {"name": f"tracks [fov {fov}]", "scale": scale, "graph": graph, "features": features,
                    "tail_length": 10, "metadata": {"pyama": {**where, "role": "tracks"}}}, "tracks")]
