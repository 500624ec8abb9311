"""LOG-STD segmentation of phase-contrast and bright-field frames.

Cells are textured and outlined by sharp edges while the background is smooth, so the
logarithm of the local standard deviation separates them with one global threshold. Pipeline
per frame:

0. frames of cells wider than ``max_width`` (given, or estimated after step 5) are shrunk
   until they are ``SHRUNK_WIDTH`` px wide and segmented there (:mod:`.rescale`);
1. local variance over a ``window_size`` square (float32 window sums);
2. threshold of the log-STD histogram: ``"mode_sigma"`` (pyama: fullest bin + n_sigma x the
   standard deviation of the values at or below it) or ``"valley"``, never below a local
   std of ``min_std`` grey levels (the contour lines of quantised 8-bit frames);
3. closing by ``disk(footprint_radius)`` x ``iterations``; holes filled on the mask shrunk
   2x by OR-ing 2 x 2 blocks (4x cheaper; the rim cannot break there); regions enclosed
   only once the mask is closed by ``disk(outline_gap)`` (interiors behind gaps in an
   outline) kept out of the background estimate, and filled in step 4 when their mean
   contrast is that of a cell;
4. polarity (cells brighter or darker than the background) from the interior of the mask
   of strong edges (above ``STRONG_EDGE_FRACTION`` x the edges' 90th-percentile local
   std, when that is stricter than step 2: it does not widen with the signal-to-noise
   ratio) against its rim; cell bodies: pixels deviating from the local background in the cells'
   direction by more than ``body_contrast`` x the background noise: the halo, on the other
   side of the background, is dropped; with ``body="tophat"`` (and ``"auto"`` for bright
   cells) they must also stand out of a cell-scale top-hat on that side (drops the glow of
   bright cells, which lies on their own side of the background); holes filled at full
   resolution;
5. opening by the same disk; objects rejected as debris / halo fragments by size,
   thickness and contrast relative to the cell width (given in px or µm, or estimated per
   frame), and, in frames of rods, round specks much smaller than the median object;
6. touching cells split by a marker-controlled watershed on the distance transform;
7. optionally (``edge_growth`` > 0) each cell grown by up to that many px into edge pixels
   (step 2's mask) that are not clearly on the halo's side of the background: in dense
   colonies the neighbours' halos brighten a cell's rim and step 4 trims it (hence a wider
   tolerance between cells);
8. faint cells next to the found ones (``faint_contrast`` > 0): objects in the free space
   that stand out of their surroundings at cell scale (top-hat) at least that fraction as
   much as the found cells do (dense colonies: cells in their neighbours' glow);
9. dark cells (phase contrast): clumps (objects > 2.5 x the median area; ``clump_h`` > 0)
   cut by a watershed of the smoothed frame along the bright halo lines between rods packed
   side by side, which leave no neck for step 6.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..cvops import label
from .blocks import bridged_regions, fill_bridged, or_pool, set_blocks
from .body import tophat_body
from .clumps import split_clumps
from .faint import add_faint_cells
from .morphology import closing, fill_holes, label_by_size, opening
from .objects import (MIN_WIDTH, estimate_cell_width, grow_into, object_slices, reject_objects, renumber,
                      split_touching)
from .specks import aspect_ratios, reject_specks
from .rescale import MIN_SHRUNK_SIDE, SHRUNK_WIDTH, enlarge_labels, shrink
from .polarity import BACKGROUND_BLOCK, background_level, cell_polarity, deviation_at, signed_deviation
from .variance import local_variance, logstd_threshold, sample, strong_edge_variance

__all__ = ["segment_logstd", "local_variance", "logstd_threshold"]

def segment_logstd(
    image: np.ndarray,
    window_size: int = 3,
    threshold_method: Literal["mode_sigma", "valley"] = "mode_sigma",
    n_sigma: float = 3.0,
    bins: int = 200,
    min_std: float = 1.0,
    footprint_radius: int = 1,
    iterations: int = 1,
    polarity: Literal["auto", "dark", "bright", "none"] = "auto",
    body_contrast: float = 0.0,
    cell_diameter: float = 0.0,
    cell_diameter_um: float = 0.0,
    min_area_fraction: float = 0.25,
    min_thickness: float = 0.5,
    min_contrast: float = 2.0,
    speck_area_fraction: float = 0.4,
    speck_max_aspect: float = 1.3,
    split_touching_cells: bool = True,
    split_h: float = 0.1,
    min_size: int = 50,
    max_size: int = 10_000,
    body: Literal["auto", "background", "tophat"] = "auto",
    tophat_scale: float = 1.5,
    edge_growth: int = 1,
    edge_tolerance: float = 2.0,
    crowded_tolerance: float = 6.0,
    crowded_reach: int = 7,
    outline_gap: int = 4,
    faint_contrast: float = 0.6,
    clump_h: float = 3.0,
    max_width: float = 14.0,
    pixel_size_um: float | None = None,
) -> np.ndarray:
    """Segment cells in a phase-contrast or bright-field frame.

    Parameters
    ----------
    image : (H, W) ndarray
        The frame (any real dtype; usually uint16). Not modified.
    window_size : int, optional
        Side of the square window of the local standard deviation (odd).
    threshold_method : {"mode_sigma", "valley"}, optional
        How the log-STD threshold is chosen; see :func:`logstd_threshold`.
    n_sigma : float, optional
        Width multiplier of the ``"mode_sigma"`` rule.
    bins : int, optional
        Number of histogram bins.
    min_std : float, optional
        Lowest local standard deviation (grey levels) that can be foreground: smooth 8-bit
        frames have contour lines of one grey level (std <= 0.5) that are not edges.
    footprint_radius : int, optional
        Radius of the disk used for closing and opening (0 skips both).
    iterations : int, optional
        Repetitions of each dilation/erosion in the closing and the opening.
    polarity : {"auto", "dark", "bright", "none"}, optional
        Whether cell bodies are darker ("dark": phase contrast) or brighter ("bright":
        bright-field, some stem cells) than the background; "auto" reads it from the frame;
        "none" keeps the whole LOG-STD mask (halo included).
    body_contrast : float, optional
        Body pixels deviate from the local background by more than this many noise
        standard deviations (ignored with ``polarity="none"``).
    cell_diameter : float, optional
        Typical cell width in px (short axis of a rod); 0 estimates it per frame.
    cell_diameter_um : float, optional
        The same in micrometres (0 = unused); needs ``pixel_size_um``. Set at most one of
        the two.
    min_area_fraction : float, optional
        Objects smaller than this x ``cell_diameter**2`` px are debris.
    min_thickness : float, optional
        Objects with no pixel deeper than this x ``cell_diameter / 2`` are halo fragments.
    min_contrast : float, optional
        Objects whose mean deviation (in the cells' direction) is below this many noise
        standard deviations are rejected.
    speck_area_fraction, speck_max_aspect : float, optional
        In a frame of rods (area-weighted median aspect ratio >= 2), round objects (aspect
        ratio below ``speck_max_aspect``) smaller than ``speck_area_fraction`` x the median
        object area are debris specks (``speck_area_fraction`` 0: off). Frames of round
        cells are left alone.
    split_touching_cells : bool, optional
        Split touching cells with a distance-transform watershed.
    split_h : float, optional
        Marker height of the watershed, x ``cell_diameter`` (larger splits less).
    min_size, max_size : int, optional
        Objects with fewer or more pixels are discarded (absolute bounds).
    body : {"auto", "background", "tophat"}, optional
        "background": body pixels deviate from the 64-px block background in the cells'
        direction. "tophat": they must also stand out of a top-hat at cell scale (white
        for bright cells, black for dark) by more than Li's threshold of that top-hat and
        3 pixel-noise sigma: the glow around bright cells and the background between them
        go (ignored with ``polarity="none"``). "auto": "tophat" for bright cells, whose
        glow lies on their own side of the background where the block test keeps it, and
        "background" for dark cells, whose halo lies on the other side and is dropped
        anyway.
    tophat_scale : float, optional
        Side of the top-hat's square, x the cell width (``body="tophat"``).
    edge_growth : int, optional
        Grow each cell by up to this many px (0 = off) into pixels of the thresholded
        log-STD mask (step 2: edges and filled interiors) whose deviation from the background,
        in the cells' direction, is above ``-edge_tolerance`` noise sigma: gives back the rim
        that neighbouring halos brightened (dense colonies). Ignored with ``polarity="none"``.
    edge_tolerance : float, optional
        How far on the halo's side of the background (noise sigma) a grown pixel may be.
    crowded_tolerance : float, optional
        The same tolerance for pixels between cells (another cell within ``crowded_reach``
        px along the row or column): in a dense colony the neighbours' halos brighten each
        rim, so it lies further on the halo's side. Not above ``edge_tolerance``: off.
    crowded_reach : int, optional
        Distance (px) within which another cell makes a pixel "between cells".
    outline_gap : int, optional
        Radius (px) of a closing of the log-STD mask (done at half resolution, so even
        values) whose enclosed regions are filled when their mean deviation in the cells'
        direction reaches ``min_contrast`` noise sigma: interiors of cells whose outline has
        gaps. Pockets of background enclosed by neighbours stay out (their mean is ~0).
        They are excluded from the background estimate either way. 0 = off.
    faint_contrast : float, optional
        Step 8: objects in the space left free between found cells, next to them, whose
        mean top-hat at cell scale (``tophat_scale`` x the width) is at least this x the
        found cells' median are faint cells and are added (dense colonies; see
        :func:`~pyama_builtin.segmentation.faint.add_faint_cells`). 0 = off; ignored with
        ``polarity="none"``.
    clump_h : float, optional
        Step 9: objects larger than 2.5 x the median object area are cut by a watershed of
        the smoothed frame from its maxima in the cells' direction rising more than this many
        noise sigma (cells packed side by side, whose joint outline has no neck; see
        :func:`~pyama_builtin.segmentation.clumps.split_clumps`). 0 = off. Only for dark
        cells (phase contrast, where the lines are the bright halo): with bright cells it cut
        stem cells from their glow (PSC, docs/algorithms.md round 10).
    max_width : float, optional
        Frames whose cells are wider (px; ``cell_diameter`` or the estimate) are shrunk until
        they are ``SHRUNK_WIDTH`` (10) px wide, segmented there, and the labels enlarged back
        (step 0; the steps' sizes in px suit cells ~8-10 px wide). A shrink by less than
        ~1.4x changed little and costs a second pass, hence 14. 0 = off.
    pixel_size_um : float or None, optional
        Pixel size of the frame in micrometres (passed by the segment stage from the file's
        metadata; None when unknown). Used only to convert ``cell_diameter_um``.

    Returns
    -------
    labels : (H, W) int32 ndarray
        0 is background, cells are numbered 1..N.

    Raises
    ------
    ValueError
        ``cell_diameter_um`` set without a pixel size, or together with ``cell_diameter``.
    """
    arguments = dict(locals())  # every parameter, for a run on the shrunk frame (step 0)
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd integer, got {window_size}")

    width = _given_width(cell_diameter, cell_diameter_um, pixel_size_um)
    if width is not None and _shrinks(width, max_width, image.shape):
        return _segment_shrunk(arguments, width)

    variance = local_variance(image, window_size)
    threshold = logstd_threshold(sample(variance), threshold_method, n_sigma, bins)
    if threshold is None:
        return np.zeros(image.shape, dtype=np.int32)
    # log-STD > t  <=>  variance > exp(2 t): no full-frame logarithm needed.
    floor = max(np.exp(2.0 * threshold), min_std * min_std)
    mask = variance > floor
    strong = None
    if polarity == "auto":
        strong = _strong_edges(variance, floor, footprint_radius, iterations)
    del variance
    mask = closing(mask, footprint_radius, iterations)

    # Holes (smooth cell interiors) are found on the mask shrunk 2x by OR-ing 2 x 2
    # blocks: 4x less work, the rim cannot break (any rim pixel marks its block), and a
    # block-hole is 4 hole pixels. Hole pixels in blocks shared with the rim are left to
    # the fill after the body step. Background and polarity are statistics read there too.
    coarse = or_pool(mask)
    filled = fill_holes(coarse)
    set_blocks(mask, filled & ~coarse)
    # Interiors behind a gap in the outline (bright-field cells on a bright background, a
    # weak side): enclosed once the outline is closed. They are not background (they would
    # raise its level under the cells) and join the mask when they pass the contrast test.
    bridged = None
    if outline_gap >= 2:
        bridged = bridged_regions(coarse, filled, outline_gap // 2)
        filled |= bridged
    coarse = filled
    background = background_level(image[::4, ::4], coarse[::2, ::2], step=4)
    if background is None:  # (almost) all foreground: nothing to compare with
        mask = opening(fill_holes(mask), footprint_radius, iterations)
        return label_by_size(mask, min_size, max_size)
    levels, noise = background
    # The deviation from the background is read on every 2nd row and column (polarity,
    # bridged interiors, top-hat body) and at the pixels that need it (body test, contrast,
    # edge growth): no full-frame float32 copy of the frame (~10 ms at 2048 x 2048).
    half = signed_deviation(image[::2, ::2], levels, BACKGROUND_BLOCK // 2)
    sign = cell_polarity(half, coarse if strong is None else strong, noise, polarity, halo_depth=2)

    def deviation(at: np.ndarray) -> np.ndarray:
        """Deviation in the cells' direction (both directions with ``sign`` 0) at ``at``."""
        value = deviation_at(image, levels, at)
        return value * sign if sign != 0.0 else np.abs(value, out=value)

    mask = np.ascontiguousarray(mask)
    edges = None
    if sign != 0.0:
        half *= sign
        if bridged is not None and bridged.any():
            fill_bridged(mask, bridged, half, min_contrast * noise)
        if edge_growth > 0:
            edges = mask.copy()  # the log-STD mask before the body test (step 7)
        at = np.flatnonzero(mask)
        mask.reshape(-1)[at[~(deviation(at) > body_contrast * noise)]] = False
        if body == "tophat" or (body == "auto" and sign > 0):
            mask &= tophat_body(image, sign, coarse & (half > 0), width, tophat_scale)
    del half
    mask = opening(fill_holes(mask), footprint_radius, iterations)

    pixels = np.flatnonzero(mask)  # per-object sums over cell pixels only (10x ndi.mean)
    labels, n = label(mask, pixels)
    if n == 0:
        return labels
    ids = labels.ravel()[pixels]
    area = np.bincount(ids, minlength=n + 1)
    contrast = np.bincount(ids, weights=deviation(pixels), minlength=n + 1)
    contrast /= np.maximum(area, 1) * noise
    # `pixels` stays: renumbering only the cell pixels is 10x cheaper than the whole frame
    area[(area < min_size) | (area > max_size)] = 0  # out of the absolute size bounds
    slices = object_slices(pixels, ids, n, labels.shape[1])
    if width is None:
        width = estimate_cell_width(labels, slices, area[1:])
        wide = width
        if width <= MIN_WIDTH and max_width:
            # Only fragments measured: at a high magnification a frame of few cells has many
            # more halo fragments than cells; weighted by area the cells count (round 13).
            wide = estimate_cell_width(labels, slices, area[1:], by_area=True)
        if _shrinks(wide, max_width, image.shape):
            return _segment_shrunk(arguments, wide)
    keep = reject_objects(labels, mask, area, contrast, width, min_area_fraction,
                          min_thickness, min_contrast)
    if speck_area_fraction > 0:
        aspect = aspect_ratios(pixels, ids, n, labels.shape[1])
        reject_specks(keep, area, aspect, speck_area_fraction, speck_max_aspect)
    del ids
    if split_touching_cells:
        min_area = max(min_area_fraction * width * width, min_size)
        out = split_touching(labels, keep, area, slices, width, split_h, min_area, pixels=pixels,
                             overwrite=True)
    else:
        out = renumber(labels, np.cumsum(keep).astype(np.int32) * keep, pixels, overwrite=True)
    if edges is not None:
        del labels, mask
        # Candidates: background pixels of the log-STD mask, their deviation read there only.
        candidates = np.flatnonzero(edges.ravel() & (out.ravel() == 0))
        del edges
        value = deviation(candidates)
        strict = value > -edge_tolerance * noise
        if crowded_tolerance <= edge_tolerance:
            out = grow_into(out, candidates[strict], edge_growth)
        else:
            ok = value > -crowded_tolerance * noise
            out = grow_into(out, candidates[ok], edge_growth, ~strict[ok], crowded_reach)
    if faint_contrast > 0 and sign != 0.0:
        out = add_faint_cells(out, image, sign, noise, width, faint_contrast, tophat_scale,
                              min_size, split_h)
    if clump_h > 0 and sign < 0:  # dark cells: bright halo lines between them (round 10)
        out = split_clumps(out, image, sign, noise, clump_h)
    return out


def _shrinks(width: float, max_width: float, shape: tuple[int, int]) -> bool:
    """Whether step 0 shrinks the frame: its cells are wider than ``max_width`` and the shrunk
    frame keeps ``MIN_SHRUNK_SIDE`` px a side (the log-STD histogram needs its background
    pixels: on a 36-px frame two drawn squares' identical edges outnumbered them)."""
    if not max_width or width <= max_width:
        return False
    return min(shape) * min(SHRUNK_WIDTH, max_width) / width >= MIN_SHRUNK_SIDE


def _segment_shrunk(arguments: dict, width: float) -> np.ndarray:
    """Step 0: segment the frame shrunk until its cells (``width`` px) are ``SHRUNK_WIDTH`` px
    wide (at most ``max_width``) and enlarge the labels back; absolute sizes shrink with the
    area."""
    image = np.asarray(arguments["image"])
    target = min(SHRUNK_WIDTH, arguments["max_width"])
    factor = width / target
    inner = dict(arguments, image=shrink(image, factor), max_width=0.0, cell_diameter_um=0.0,
                 cell_diameter=target, pixel_size_um=None,
                 min_size=max(1, round(arguments["min_size"] / factor**2)),
                 max_size=max(1, round(arguments["max_size"] / factor**2)))
    return enlarge_labels(segment_logstd(**inner), image.shape)


def _strong_edges(variance: np.ndarray, floor: float, footprint_radius: int,
                  iterations: int) -> np.ndarray | None:
    """The filled mask of strong edges on the 2x-shrunk grid, where the polarity is read, or
    None when it would be the log-STD mask itself (round 12): at a high signal-to-noise
    ratio the log-STD mask also takes the wide bright halo around a colony, which then
    outweighs the dark bodies in the mask's interior and the frame read as bright cells."""
    strong = strong_edge_variance(sample(variance), floor)
    if strong is None:
        return None
    edges = fill_holes(closing(or_pool(variance > strong), footprint_radius, iterations))
    return edges if edges.any() else None


def _given_width(cell_diameter: float, cell_diameter_um: float | None,
                 pixel_size_um: float | None) -> float | None:
    """The cell width in px from the parameters, or None to estimate it from the frame."""
    if cell_diameter_um:
        if cell_diameter:
            raise ValueError("both cell_diameter (px) and cell_diameter_um are set; set one of them")
        if not pixel_size_um or pixel_size_um <= 0:
            raise ValueError(f"cell_diameter_um={cell_diameter_um} needs the pixel size, which this "
                             "file does not record; give the width in px with cell_diameter instead")
        return max(cell_diameter_um / pixel_size_um, 1.0)
    return cell_diameter if cell_diameter > 0 else None
