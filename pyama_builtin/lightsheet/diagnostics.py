"""Diagnostic PNGs of one preprocessed volume: projections, mask overlay, histogram.

The figure functions take arrays and return PNG bytes (matplotlib's Agg backend, no
display needed); :func:`write_unit_figures` reads the arrays from the layout and writes files.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .volume_store import VolumeLayout


def _contrast(image: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(image[:: max(1, image.shape[0] // 512), :: max(1, image.shape[1] // 512)], (1, 99.9))
    return float(low), float(max(high, low + 1))


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def projections_figure(xy: np.ndarray, xz: np.ndarray, yz: np.ndarray, z_aspect: float, title: str) -> bytes:
    """xy, xz and yz maximum projections side by side.

    Parameters
    ----------
    xy : (Y, X) ndarray
    xz : (Z, X) ndarray
    yz : (Z, Y) ndarray
    z_aspect : float
        Z spacing over pixel size, so that the side views are to scale.
    title : str

    Returns
    -------
    bytes
        A PNG image.
    """
    from matplotlib.figure import Figure

    low, high = _contrast(xy)
    figure = Figure(figsize=(12, 4.5))
    for axis_index, (image, name, aspect) in enumerate(((xy, "xy", 1.0), (xz, "xz", z_aspect), (yz, "yz", z_aspect))):
        axis = figure.add_subplot(1, 3, axis_index + 1)
        axis.imshow(image, cmap="gray", vmin=low, vmax=high, aspect=aspect, interpolation="nearest")
        axis.set_title(f"{name} max projection")
        axis.set_axis_off()
    figure.suptitle(title)
    return _png(figure)


def mask_figure(xy: np.ndarray, mask_xy: np.ndarray, title: str) -> bytes:
    """The xy projection with the foreground mask's outline and tint over it.

    Parameters
    ----------
    xy : (Y, X) ndarray
    mask_xy : (Y, X) bool ndarray
    title : str

    Returns
    -------
    bytes
        A PNG image.
    """
    from matplotlib.figure import Figure

    low, high = _contrast(xy)
    figure = Figure(figsize=(6, 6))
    axis = figure.add_subplot(1, 1, 1)
    axis.imshow(xy, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    axis.imshow(np.ma.masked_where(~mask_xy, mask_xy), cmap="autumn", alpha=0.3, interpolation="nearest")
    if mask_xy.any() and not mask_xy.all():
        axis.contour(mask_xy.astype(np.uint8), levels=[0.5], colors="yellow", linewidths=0.8)
    axis.set_title(f"{title}: foreground {mask_xy.mean():.1%} of xy")
    axis.set_axis_off()
    return _png(figure)


def histogram_figure(histogram: np.ndarray, threshold: float, title: str) -> bytes:
    """The sampled corrected-intensity histogram (log counts) with the mask threshold.

    Parameters
    ----------
    histogram : (n,) integer ndarray
    threshold : float
    title : str

    Returns
    -------
    bytes
        A PNG image.
    """
    from matplotlib.figure import Figure

    present = np.flatnonzero(histogram)
    top = int(present[-1]) + 1 if present.size else 1
    width = -(-top // 512)  # at most 512 bars: drawing 65536 steps takes seconds
    counts = np.bincount(np.arange(top) // width, weights=histogram[:top])
    figure = Figure(figsize=(7, 4))
    figure.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.9)
    axis = figure.add_subplot(1, 1, 1)
    axis.stairs(np.maximum(counts, 0.5), np.arange(counts.size + 1) * width, baseline=0.5)
    axis.set_yscale("log")
    axis.axvline(threshold, color="red", linestyle="--", label=f"mask threshold {threshold:.0f}")
    axis.set_xlabel("corrected intensity")
    axis.set_ylabel("pixels (sampled planes)")
    axis.set_title(title)
    axis.legend()
    return _png(figure)


def write_unit_figures(layout: VolumeLayout, t: int, v: int, stem: Path, title: str) -> list[Path]:
    """Write ``<stem>_projections.png``, ``<stem>_mask.png`` and ``<stem>_histogram.png``."""
    group = layout.group("r")
    spacing = group.attrs.get("spacing", {}) or {}
    z_step, pixel = spacing.get("z_step_um"), spacing.get("pixel_size_um")
    aspect = float(z_step / pixel) if z_step and pixel else 1.0
    projections = {n: layout.array(f"projections/{n}")[t, v] for n in ("xy", "xz", "yz", "mask_xy")}
    figures = {
        "projections": projections_figure(projections["xy"], projections["xz"], projections["yz"], aspect, title),
        "mask": mask_figure(projections["xy"], projections["mask_xy"], title),
        "histogram": histogram_figure(layout.array("calibration/histogram")[t, v],
                                      float(layout.array("calibration/threshold")[t, v]), title),
    }
    paths = []
    for name, data in figures.items():
        path = Path(f"{stem}_{name}.png")
        path.write_bytes(data)
        paths.append(path)
    return paths
