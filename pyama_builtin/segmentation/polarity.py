"""Which side of the background the cells are on, and the cell bodies on that side.

In phase contrast a cell is a dark body ringed by a bright halo; bright-field bacteria and
some phase-contrast stem cells are the reverse (bright body, dark rim). LOG-STD responds to
both the body and its halo, so the mask it gives is wider than the cell and joins
neighbours. Here the frame's polarity is read from the inside of that mask (the halo is on
its outside), and only pixels deviating from the local background in the body's direction,
by more than a multiple of the background noise, are kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .morphology import erode

__all__ = ["background_level", "cell_polarity", "signed_deviation"]

# Side of the square blocks over which the background level is a median: large enough to
# hold background between cells, small against illumination gradients.
BACKGROUND_BLOCK = 64
# Depth (px) of the rim of the LOG-STD mask ignored when reading the polarity: the halo
# lies there (the window-3 mask reaches ~1 px beyond the halo).
_HALO_DEPTH = 2


def background_level(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Background level per block and the noise of the background around it.

    The level of each ``BACKGROUND_BLOCK``-square block is the median of its pixels outside
    ``mask`` (robust to debris), read on every 2nd row and column. Pixels at the frame's
    minimum or maximum (black padding, saturation) are not background. Blocks with fewer
    than 1/32 of their pixels free take the median of the other blocks' levels.

    Parameters
    ----------
    image : (H, W) ndarray
    mask : (H, W) bool ndarray
        Pixels that are not background.

    Returns
    -------
    (levels, noise) or None
        ``levels`` is a (ceil(H/64), ceil(W/64)) float32 array; ``noise`` the robust standard
        deviation (1.4826 x median absolute deviation) of the background pixels around
        their block's level. None when (almost) nothing is background.
    """
    step = 2
    side = BACKGROUND_BLOCK // step
    sample = image[::step, ::step]
    not_background = mask[::step, ::step] | (sample == image.min()) | (sample == image.max())
    sample = np.where(not_background, np.inf, sample).astype(np.float32)
    pad = ((0, -sample.shape[0] % side), (0, -sample.shape[1] % side))
    sample = np.pad(sample, pad, constant_values=np.inf)
    nby, nbx = sample.shape[0] // side, sample.shape[1] // side
    blocks = sample.reshape(nby, side, nbx, side).transpose(0, 2, 1, 3).reshape(nby, nbx, -1)
    blocks.sort(axis=-1)  # non-background (inf) sorts last
    count = np.isfinite(blocks).sum(axis=-1)
    enough = count >= side
    if not enough.any():
        return None
    middle = np.maximum(count - 1, 0) // 2
    levels = np.take_along_axis(blocks, middle[..., None], axis=-1)[..., 0]
    deviation = np.abs(blocks[enough] - levels[enough][:, None])
    noise = float(1.4826 * np.median(deviation[np.isfinite(deviation)]))
    levels[~enough] = np.median(levels[enough])
    return levels, max(noise, 1e-6)


def signed_deviation(image: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``image`` minus its block's background level, float32."""
    b = BACKGROUND_BLOCK
    h, w = image.shape
    full = np.repeat(np.repeat(levels, b, axis=0), b, axis=1)[:h, :w]
    return image.astype(np.float32) - full


def cell_polarity(
    deviation: np.ndarray,
    mask: np.ndarray,
    noise: float,
    polarity: Literal["auto", "dark", "bright", "none"] = "auto",
) -> float:
    """+1 when cell bodies are brighter than the background, -1 when darker, 0 for "none".

    ``"auto"``: inside the mask eroded by 2 px (away from the halo), the sign of the median
    of the pixels deviating by more than 2 noise standard deviations (noise pixels,
    symmetric and rare beyond 2 sigma, do not sway it even when the mask is half noise).
    Dark (phase contrast) when nothing qualifies.
    """
    if polarity == "none":
        return 0.0
    if polarity in ("dark", "bright"):
        return 1.0 if polarity == "bright" else -1.0
    if polarity != "auto":
        raise ValueError(f"unknown polarity {polarity!r}; use 'auto', 'dark', 'bright' or 'none'")
    inside = deviation[erode(mask, _HALO_DEPTH)]
    strong = inside[np.abs(inside) > 2.0 * noise]
    if strong.size == 0:
        return -1.0
    return 1.0 if float(np.median(strong)) > 0 else -1.0
