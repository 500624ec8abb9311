"""OME-NGFF 0.5 metadata for a FOV's ``images.zarr`` (the version zarr v3 and ``ome-zarr-models`` support).

Each stack group is one NGFF image, axes ``t, y, x`` (one image per channel: channels of a
run may differ in dtype, and napari shows each as its own layer)::

    images.zarr/pc_ch_0/{0,1}                               image  (phase contrast)
    images.zarr/pc_ch_0/labels/seg_labeled_ch_0/{0,1}       label image (per-frame labels)
    images.zarr/pc_ch_0/labels/seg_tracked_ch_0/{0,1}       label image (tracked labels)
    images.zarr/fl_ch_1/{0,1}, fl_background_ch_1/{0,1}     images

Scales are the pixel size in micrometres and the frame interval in minutes; level 1 (half
size) has twice the pixel size and is shifted by half a full-resolution pixel (its pixels
are centred between two of level 0's). Without a recorded pixel size the space axes have
no unit and scale 1 (pixels). The builders are pure; :func:`write_fov_ome` writes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NGFF_VERSION = "0.5"
AXES = ("t", "y", "x")


def time_step(times_min: np.ndarray) -> float:
    """The time axis scale: the median frame interval in minutes (1 for a single frame)."""
    steps = np.diff(np.asarray(times_min, dtype=np.float64))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(np.median(steps)) if steps.size else 1.0


def multiscale(name: str, levels: list[int], pixel_size_um: float | None, step_min: float) -> dict[str, Any]:
    """One NGFF ``multiscales`` entry over the given 2x pyramid levels (0, 1, ...)."""
    px = float(pixel_size_um) if pixel_size_um else 1.0
    space = {"type": "space", **({"unit": "micrometer"} if pixel_size_um else {})}
    datasets = []
    for level in levels:
        factor = 2 ** level
        transforms: list[dict[str, Any]] = [{"type": "scale", "scale": [step_min, px * factor, px * factor]}]
        if level:
            shift = px * (factor - 1) / 2
            transforms.append({"type": "translation", "translation": [0.0, shift, shift]})
        datasets.append({"path": str(level), "coordinateTransformations": transforms})
    return {"name": name,
            "axes": [{"name": "t", "type": "time", "unit": "minute"}, {"name": "y", **space}, {"name": "x", **space}],
            "datasets": datasets}


def image_attrs(name: str, levels: list[int], pixel_size_um: float | None, step_min: float) -> dict[str, Any]:
    return {"ome": {"version": NGFF_VERSION, "multiscales": [multiscale(name, levels, pixel_size_um, step_min)]}}


def label_image_attrs(name: str, levels: list[int], pixel_size_um: float | None, step_min: float) -> dict[str, Any]:
    """A label image; ``source`` points back at the image it segments (two groups up)."""
    attrs = image_attrs(name, levels, pixel_size_um, step_min)
    attrs["ome"]["image-label"] = {"version": NGFF_VERSION, "source": {"image": "../../"}}
    return attrs


def labels_group_attrs(names: list[str]) -> dict[str, Any]:
    return {"ome": {"version": NGFF_VERSION, "labels": list(names)}}


def _levels(group: Path) -> list[int]:
    """Consecutive pyramid levels 0, 1, ... present under ``group``."""
    levels = []
    while (group / str(len(levels)) / "zarr.json").is_file():
        levels.append(len(levels))
    return levels


def _set_attrs(path: Any, attrs: dict[str, Any]) -> None:
    import zarr

    from .location import zarr_store

    group = zarr.open_group(zarr_store(path), mode="a", zarr_format=3)
    group.update_attributes(attrs)


def write_fov_ome(images: Any, pixel_size_um: float | None, times_min: np.ndarray,
                  extra: dict[str, Any] | None = None) -> list[str]:
    """Write NGFF metadata on every stack group of ``images`` (a FOV's images.zarr: a
    ``Path``, or a ``UPath`` on an object store) and the FOV facts ``extra`` into the
    root's ``pyama`` attribute; return the images described."""
    from .results_status import FOV_INFO_KEY
    from .store import LABELS_GROUP

    step = time_step(times_min)
    described = []
    for group in sorted(p for p in images.iterdir() if (p / "0" / "zarr.json").is_file()):
        labels_root = group / LABELS_GROUP
        labels = sorted(p for p in labels_root.iterdir() if (p / "0" / "zarr.json").is_file()) \
            if labels_root.is_dir() else []
        # NGFF wants a label pyramid as deep as its image's: use the levels all of them have.
        levels = min((_levels(p) for p in [group, *labels]), key=len)
        _set_attrs(group, image_attrs(group.name, levels, pixel_size_um, step))
        if labels:
            _set_attrs(labels_root, labels_group_attrs([p.name for p in labels]))
            for label in labels:
                _set_attrs(label, label_image_attrs(label.name, levels, pixel_size_um, step))
        described.append(group.name)
    _set_attrs(images, {FOV_INFO_KEY: {"pixel_size_um": pixel_size_um,
                                       "frame_times_min": [float(t) for t in times_min], **(extra or {})}})
    return described
