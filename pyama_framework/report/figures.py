"""The report's pictures as PNG bytes: frame thumbnails with outlines and track IDs, a
background map, and small plots (cells per frame, a handful of traces). Pure: arrays in,
bytes out. Thumbnails use Pillow (fast); plots a bare matplotlib Figure (no pyplot state).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

OUTLINE = (255, 210, 0)
MIN_SIDE = 256  # thumbnails smaller than this are enlarged (nearest) so outlines and IDs stay legible


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def outlines(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels on a label's edge (a 4-neighbour holds another value)."""
    edge = np.zeros(labels.shape, dtype=bool)
    differs_y = labels[1:, :] != labels[:-1, :]
    differs_x = labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= differs_y
    edge[:-1, :] |= differs_y
    edge[:, 1:] |= differs_x
    edge[:, :-1] |= differs_x
    return edge & (labels != 0)


def _enlarged(picture):
    """``picture`` (a PIL image) enlarged by a whole factor to at least :data:`MIN_SIDE`; the factor."""
    from PIL import Image

    zoom = max(1, int(np.ceil(MIN_SIDE / max(min(picture.size), 1))))
    if zoom > 1:
        picture = picture.resize((picture.size[0] * zoom, picture.size[1] * zoom), Image.NEAREST)
    return picture, zoom


def thumbnail(image: np.ndarray, labels: np.ndarray | None, cells: list[tuple[int, float, float]]) -> bytes:
    """A uint8 frame in grey with label outlines and each cell's ID at ``(cell, x, y)``.

    ``x``/``y`` are in the frame's own pixels (already scaled to this level)."""
    from PIL import Image, ImageDraw

    grey = np.asarray(image, dtype=np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if labels is not None:
        rgb[outlines(np.asarray(labels))] = OUTLINE
    picture, zoom = _enlarged(Image.fromarray(rgb))
    draw = ImageDraw.Draw(picture)
    for cell, x, y in cells:
        draw.text(((x + 0.5) * zoom, (y + 0.5) * zoom), str(cell), fill=(0, 255, 255), anchor="mm",
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return _png(np.asarray(picture))


def colour_map(image: np.ndarray) -> bytes:
    """A uint8 image through matplotlib's viridis (the background map)."""
    from matplotlib import colormaps
    from PIL import Image

    rgba = colormaps["viridis"](np.asarray(image, dtype=np.uint8), bytes=True)
    return _png(np.asarray(_enlarged(Image.fromarray(np.ascontiguousarray(rgba[..., :3])))[0]))


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    return buffer.getvalue()


def counts_and_traces(times: np.ndarray, tracked: np.ndarray, traced: np.ndarray,
                      traces: pd.DataFrame, column: str | None, n_cells: int = 6) -> bytes:
    """Two panels: cells per frame (tracked and traced), and ``n_cells`` traces of ``column``
    (the longest ones, ties by cell ID, so the choice is reproducible)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.6))
    left, right = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.2, top=0.88, wspace=0.3)  # fixed: layout engines cost
    left.plot(times, tracked, "-o", ms=3, label="tracked")
    left.plot(times, traced, "-o", ms=3, label="in traces")
    left.set(xlabel="time (min)", ylabel="cells", title="cells per frame")
    left.legend(fontsize=7)
    if column is not None and len(traces):
        lengths = traces.groupby("cell")["frame"].size().sort_index()
        chosen = lengths.sort_values(ascending=False, kind="stable").index[:n_cells]
        for cell in sorted(chosen):
            rows = traces[traces["cell"] == cell]
            right.plot(rows["time"], rows[column], lw=1, label=str(cell))
        right.set(xlabel="time (min)", ylabel=column, title=f"{len(chosen)} traces")
        right.legend(fontsize=6, title="cell", title_fontsize=6, ncols=2)
    else:
        right.text(0.5, 0.5, "no traces", ha="center", va="center", transform=right.transAxes)
        right.set_axis_off()
    return _figure_png(fig)
