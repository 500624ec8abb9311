"""Which side of the background the cells are on, and the cell bodies on that side.

In phase contrast a cell is a dark body ringed by a bright halo; bright-field bacteria and
some phase-contrast stem cells are the reverse (bright body, dark rim). LOG-STD responds to
both the body and its halo, so the mask it gives is wider than the cell and joins
neighbours. Here the frame's polarity is read by comparing the inside of that mask with
its rim (where the halo is), and only pixels deviating from the local background in the
body's direction, by more than a multiple of the background noise, are kept.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .morphology import erode

__all__ = ["background_level", "cell_polarity", "deviation_at", "signed_deviation"]

# Side of the square blocks over which the background level is a median: large enough to
# hold background between cells, small against illumination gradients.
BACKGROUND_BLOCK = 64
# Depth (px) of the rim of the LOG-STD mask ignored when reading the polarity: the halo
# lies there (the window-3 mask reaches ~1 px beyond the halo).
_HALO_DEPTH = 2


def background_level(
    sample: np.ndarray, not_background: np.ndarray, step: int,
) -> tuple[np.ndarray, float] | None:
    """Background level per block and the noise of the background around it.

    The level of each ``BACKGROUND_BLOCK``-square block of the frame is the median of its
    pixels outside the mask (robust to debris). Everything is read on the frame subsampled
    by ``step`` (every ``step``-th row and column): a block still holds 256 or more values.
    Pixels at the frame's minimum or maximum (black padding, saturation) are not
    background. Blocks with fewer than 1/32 of their pixels free take the median of the
    other blocks' levels.

    Parameters
    ----------
    sample : (h, w) ndarray
        The frame subsampled by ``step`` (``image[::step, ::step]``).
    not_background : (h, w) bool ndarray
        Pixels of ``sample`` that are not background.
    step : int
        The subsampling step; divides ``BACKGROUND_BLOCK``.

    Returns
    -------
    (levels, noise) or None
        ``levels`` is a (ceil(H/64), ceil(W/64)) float32 array; ``noise`` the robust standard
        deviation (1.4826 x median absolute deviation) of the background pixels around
        their block's level. None when (almost) nothing is background.
    """
    side = BACKGROUND_BLOCK // step
    excluded = not_background | (sample == sample.min()) | (sample == sample.max())
    sample = np.where(excluded, np.inf, sample).astype(np.float32)
    pad = ((0, -sample.shape[0] % side), (0, -sample.shape[1] % side))
    sample = np.pad(sample, pad, constant_values=np.inf)
    nby, nbx = sample.shape[0] // side, sample.shape[1] // side
    blocks = sample.reshape(nby, side, nbx, side).transpose(0, 2, 1, 3).reshape(nby, nbx, -1)
    blocks.sort(axis=-1)  # non-background (inf) sorts last
    count = np.isfinite(blocks).sum(axis=-1)
    enough = count >= max(side * side // 32, 1)
    if not enough.any():
        return None
    middle = np.maximum(count - 1, 0) // 2
    levels = np.take_along_axis(blocks, middle[..., None], axis=-1)[..., 0]
    deviation = np.abs(blocks[enough] - levels[enough][:, None])
    noise = float(1.4826 * np.median(deviation[np.isfinite(deviation)]))
    levels[~enough] = np.median(levels[enough])
    return levels, max(noise, 1e-6)


def signed_deviation(image: np.ndarray, levels: np.ndarray, block: int = BACKGROUND_BLOCK) -> np.ndarray:
    """``image`` minus its block's background level, float32 (block-wise broadcast: no
    full-frame copy of the levels). ``block`` is the side of a level's block in ``image``
    (half of it for ``image[::2, ::2]``)."""
    b = block
    h, w = image.shape
    out = np.empty((levels.shape[0] * b, levels.shape[1] * b), dtype=np.float32)
    out[:h, :w] = image
    out[h:] = 0.0  # the padding of the last blocks
    out[:h, w:] = 0.0
    blocks = out.reshape(levels.shape[0], b, levels.shape[1], b)
    blocks -= levels[:, None, :, None]
    return out[:h, :w]


def deviation_at(image: np.ndarray, levels: np.ndarray, at: np.ndarray) -> np.ndarray:
    """:func:`signed_deviation` at the flat indices ``at`` of ``image`` only (the same
    float32 values: ``float32(pixel) - level``). Cells cover a few % of a frame; this reads
    those pixels instead of filling a whole frame."""
    w, b = image.shape[1], BACKGROUND_BLOCK
    block = (at // (b * w)) * levels.shape[1] + (at % w) // b  # flat index into `levels`
    pixel = image.reshape(-1)[at] if image.flags.c_contiguous else image[np.divmod(at, w)]
    return np.subtract(pixel, levels.reshape(-1)[block], dtype=np.float32)


def cell_polarity(
    deviation: np.ndarray,
    mask: np.ndarray,
    noise: float,
    polarity: Literal["auto", "dark", "bright", "none"] = "auto",
    halo_depth: int = _HALO_DEPTH,
) -> float:
    """+1 when cell bodies are brighter than the background, -1 when darker, 0 for "none".

    ``"auto"``: the median deviation of the mask's interior (eroded by ``halo_depth`` px,
    away from the halo) against that of its 1-px rim (where the halo or dark outline is).
    Body and halo lie on opposite sides of the background, so their difference has a
    wide margin where the sign of the interior alone is a coin toss: bright-field
    B. subtilis interiors deviate by +0.7..1.7 noise sigma, their rims by -1 (difference
    +0.75..+3.1 over the 4 frames), phase-contrast rods -6.7 (the former rule, the sign of
    the median of strongly deviating interior pixels, flipped on B. subtilis with any
    change of sampling). Dark (phase contrast) when the mask has no interior.
    ``deviation`` and ``mask`` may be a subsampled frame (with ``halo_depth`` scaled).
    """
    if polarity == "none":
        return 0.0
    if polarity in ("dark", "bright"):
        return 1.0 if polarity == "bright" else -1.0
    if polarity != "auto":
        raise ValueError(f"unknown polarity {polarity!r}; use 'auto', 'dark', 'bright' or 'none'")
    interior = deviation[erode(mask, halo_depth)]
    rim = deviation[mask & ~erode(mask, 1)]
    if interior.size == 0 or rim.size == 0:
        return -1.0
    return 1.0 if float(np.median(interior)) > float(np.median(rim)) else -1.0
