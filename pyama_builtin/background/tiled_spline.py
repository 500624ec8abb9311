"""Fluorescence background: a smooth spline fitted to tile medians of cell-free pixels.

1. Pixels within ``dilation_radius`` of a cell (``labels != 0``) are excluded.
2. The frame is cut into small square tiles; the median of a tile's cell-free pixels is one
   data point, weighted by the share of the tile that is cell-free. Tiles with too little
   background get no weight.
3. A cubic tensor-product B-spline with knots every ``knot_spacing`` pixels, covering the
   whole frame, is fitted to the tile medians by weighted, penalised least squares (a
   P-spline). Fitting rather than interpolating averages out the noise and bias of single
   tiles; since the spline is defined up to the frame border there is nothing to
   extrapolate at the edges; the penalty on third differences of the coefficients (zero for
   any quadratic surface, so vignetting is not flattened) fills regions without data, such as
   tiles covered by cells, smoothly from their neighbours.
4. Tiles further than ``_OUTLIER_SIGMA`` robust standard deviations from the fit (e.g. an
   unsegmented bright object) are dropped and the spline is fitted again.

Statistics are computed on 2 x 2 binned pixels, which leaves tile medians practically
unchanged and quarters the work.

Why not ``RectBivariateSpline`` interpolating overlapping tile medians (pyama-core): the
surface then follows every tile's error; next to a cell a tile's free pixels lie on one side
of it, so on a steep background its median is off by several counts; and the outer half
tile is extrapolated. Measured on the synthetic scenes (512-2048 px, tiles of 64-256 px,
with or without extra edge tiles, clamped or extrapolated edges, up to 5 refinement
passes): 99th-percentile errors of 1-9 % and outer-band maxima of 10-70 %, against 0.1-0.3 %
and 0.6-1.3 % for this fit (``benchmarks/background_features.py``).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import BSpline

BIN = 2  # statistics are computed on BIN x BIN binned pixels
_DEGREE = 3  # cubic spline
_SMOOTHING = 1e-2  # penalty weight, relative to the weight of one fully cell-free tile
_OUTLIER_SIGMA = 4.0  # tiles further than this many robust SDs from the fit are dropped


def estimate_background(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    tile_size: int = 16,
    knot_spacing: int = 128,
    dilation_radius: int = 10,
    min_background_fraction: float = 0.25,
) -> np.ndarray:
    """Estimate a smooth fluorescence background from the pixels away from cells.

    Parameters
    ----------
    image : (H, W) ndarray
        Raw fluorescence frame (any real dtype, usually uint16).
    labels : (H, W) integer ndarray
        Segmentation of the same frame; ``0`` is background, anything else a cell.
    tile_size : int, optional
        Side of the square tiles whose medians are fitted, in pixels.
    knot_spacing : int, optional
        Distance between the spline's knots, in pixels: the smallest scale of background
        variation the surface follows.
    dilation_radius : int, optional
        Pixels closer than this to a cell are not used (they carry the cell's blur).
    min_background_fraction : float, optional
        Tiles whose cell-free pixels make up less than this fraction of their area are not
        used.

    Returns
    -------
    background : (H, W) float32 ndarray
        Estimated background intensity at every pixel, in the units of ``image``.

    Notes
    -----
    The exclusion radius is applied on 2 x 2 binned pixels, so it is exact to about one
    pixel. If no tile has enough cell-free pixels (e.g. a frame covered by cells), the
    result is constant: the median of the cell-free pixels, or of the whole frame if there
    are none.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((64, 64), 100, dtype=np.uint16)
    >>> labels = np.zeros((64, 64), dtype=np.uint16)
    >>> labels[20:30, 20:30] = 1
    >>> bool(np.allclose(estimate_background(image, labels), 100, atol=1e-3))
    True
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.ndim != 2 or image.shape != labels.shape:
        raise ValueError(
            f"image and labels must be 2-D and of the same shape, got {image.shape} and "
            f"{labels.shape}"
        )
    height, width = image.shape
    if height < BIN or width < BIN:
        raise ValueError(f"frame must be at least {BIN} x {BIN} pixels, got {image.shape}")

    binned, foreground = _bin(image, labels != 0)
    excluded = _dilate_disk(foreground, dilation_radius / BIN)
    tile = max(1, round(tile_size / BIN))
    medians, fraction = _tile_medians(np.where(excluded, np.nan, binned), tile)
    weight = np.where(fraction >= max(min_background_fraction, 1e-9), fraction, 0.0)
    if not weight.any():
        # Nothing to fit: the best we can say is one number for the whole frame.
        free = binned[~excluded]
        level = np.median(free) if free.size else np.median(image)
        return np.full((height, width), level, dtype=np.float32)

    knots_y, knots_x = _knots(height, knot_spacing), _knots(width, knot_spacing)
    # Binned pixel j covers pixels BIN*j .. BIN*j + BIN - 1; a tile's centre is that of its
    # in-frame part.
    fit = _GridSplineFit(
        _basis(_tile_centres(binned.shape[0], tile), knots_y),
        _basis(_tile_centres(binned.shape[1], tile), knots_x),
        np.where(weight > 0, medians, 0.0),
    )
    coefficients = fit.solve(weight)
    used = weight > 0
    residual = np.where(used, medians - fit.evaluate(coefficients), 0.0)
    spread = 1.4826 * np.median(np.abs(residual[used] - np.median(residual[used])))
    # The floor keeps a near-perfect fit (noise-free data) from calling every tile an outlier.
    outlier = np.abs(residual) > _OUTLIER_SIGMA * max(spread, 1e-6 * np.abs(medians[used]).max())
    if outlier.any():
        coefficients = fit.solve(np.where(outlier, 0.0, weight))

    basis_y = _basis(np.arange(height, dtype=np.float64), knots_y).astype(np.float32)
    basis_x = _basis(np.arange(width, dtype=np.float64), knots_x).astype(np.float32)
    return (basis_y @ coefficients.astype(np.float32)) @ basis_x.T


def _bin(image: np.ndarray, foreground: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each BIN x BIN block, and whether the block touches the foreground.

    A last odd row or column that does not fill a block is left out.
    """
    h, w = (image.shape[0] // BIN) * BIN, (image.shape[1] // BIN) * BIN
    image, foreground = image[:h, :w], foreground[:h, :w]
    if BIN == 2 and image.dtype.kind in "biu" and image.dtype.itemsize <= 2:
        # Row pairs, then column pairs: float32 sums of four values below 2**16 are exact in
        # any order, so this equals the loop below (4x faster: two passes, not four
        # strided integer-to-float casts).
        binned = image[0::2].astype(np.float32)
        binned += image[1::2]
        binned = binned[:, 0::2] + binned[:, 1::2]
        rows = foreground[0::2] | foreground[1::2]
        touched = rows[:, 0::2] | rows[:, 1::2]
    else:
        binned = np.zeros((h // BIN, w // BIN), dtype=np.float32)
        touched = np.zeros((h // BIN, w // BIN), dtype=bool)
        for dy in range(BIN):
            for dx in range(BIN):
                binned += image[dy::BIN, dx::BIN]
                touched |= foreground[dy::BIN, dx::BIN]
    binned /= BIN**2
    return binned, touched


def _dilate_disk(mask: np.ndarray, radius: float) -> np.ndarray:
    """Binary dilation of ``mask`` by a disk of ``radius`` pixels.

    The disk's row at offset ``dy`` spans ``floor(sqrt(radius**2 - dy**2))`` pixels either
    side; ``cv2.dilate`` with that kernel (0.7 vs 6.4 ms for a union of row-shifted 1-D maximum
    filters, 1024 x 1024 binned mask of 600 cells, radius 5; the same result).
    """
    from ..cvops import dilate

    r = int(np.floor(radius))
    if r <= 0 or not mask.any():
        return mask.copy()
    dy = np.arange(-r, r + 1)
    half = np.floor(np.sqrt(radius * radius - dy * dy)).astype(int)
    kernel = (np.abs(np.arange(-r, r + 1))[None, :] <= half[:, None]).astype(np.uint8)
    return dilate(mask, kernel)


def _tile_medians(values: np.ndarray, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of the non-NaN ``values`` in each ``tile`` x ``tile`` tile (NaN if none), and
    their share of the tile's in-frame area; both (n_tiles_y, n_tiles_x)."""
    height, width = values.shape
    ny, nx = -(-height // tile), -(-width // tile)
    padded = np.full((ny * tile, nx * tile), np.nan, dtype=np.float32)
    padded[:height, :width] = values
    rows = padded.reshape(ny, tile, nx, tile).transpose(0, 2, 1, 3).reshape(ny * nx, tile * tile)

    count = np.count_nonzero(~np.isnan(rows), axis=1)
    # NaNs sort last, so the median of row i sits in the middle of its first count[i] entries.
    ordered = np.sort(rows, axis=1)
    lower = np.take_along_axis(ordered, (np.maximum(count - 1, 0) // 2)[:, None], axis=1)[:, 0]
    upper = np.take_along_axis(ordered, (count // 2)[:, None], axis=1)[:, 0]
    medians = (lower.astype(np.float64) + upper) / 2

    area = np.outer(_tile_lengths(height, tile), _tile_lengths(width, tile))
    return medians.reshape(ny, nx), count.reshape(ny, nx) / area


def _tile_lengths(length: int, tile: int) -> np.ndarray:
    """In-frame length of each tile along an axis of ``length`` binned pixels."""
    return np.minimum(tile, length - np.arange(0, length, tile))


def _tile_centres(length: int, tile: int) -> np.ndarray:
    """Centre of each tile's in-frame part, in (unbinned) pixel coordinates."""
    starts = np.arange(0, length, tile)
    centres = starts + (_tile_lengths(length, tile) - 1) / 2  # binned coordinates
    return centres * BIN + (BIN - 1) / 2


def _knots(length: int, spacing: float) -> np.ndarray:
    """Knots of a cubic spline whose base interval is [-0.5, length - 0.5] (the whole frame),
    evenly spaced at most ``spacing`` apart. The knots continue at the same spacing past both
    ends (not clamped), so the B-splines at the border are as wide, and as well constrained
    by data, as the others."""
    intervals = max(1, int(np.ceil(length / spacing)))
    step = length / intervals
    return -0.5 + step * np.arange(-_DEGREE, intervals + _DEGREE + 1)


def _basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Dense B-spline basis matrix, (len(x), n_coefficients)."""
    return BSpline.design_matrix(x, knots, _DEGREE).toarray()


class _GridSplineFit:
    """Weighted, penalised least-squares fit of a tensor-product spline to values on a
    rectilinear grid, ``values[i, j]`` at ``(y_i, x_j)``.

    The basis of the tensor-product spline factorises, so the normal equations are built
    from the 1-D basis matrices with a few small matrix products instead of a
    (points x coefficients) design matrix.
    """

    def __init__(self, basis_y: np.ndarray, basis_x: np.ndarray, values: np.ndarray):
        self.basis_y, self.basis_x, self.values = basis_y, basis_x, values
        n_y, n_x = basis_y.shape[1], basis_x.shape[1]
        # Products of pairs of basis functions at each grid line: (grid points, n * n).
        self.pairs_y = (basis_y[:, :, None] * basis_y[:, None, :]).reshape(len(basis_y), -1)
        self.pairs_x = (basis_x[:, :, None] * basis_x[:, None, :]).reshape(len(basis_x), -1)
        self.penalty = _penalty(n_y, n_x)

    def solve(self, weight: np.ndarray) -> np.ndarray:
        """Coefficients (n_y, n_x) minimising sum(weight * (values - fit)**2) + penalty."""
        n_y, n_x = self.basis_y.shape[1], self.basis_x.shape[1]
        # normal[(i, j), (k, l)] = sum_yx w[y, x] By[y, i] By[y, k] Bx[x, j] Bx[x, l]
        normal = (self.pairs_y.T @ weight @ self.pairs_x).reshape(n_y, n_y, n_x, n_x)
        normal = normal.transpose(0, 2, 1, 3).reshape(n_y * n_x, n_y * n_x)
        rhs = self.basis_y.T @ (weight * self.values) @ self.basis_x
        solution = np.linalg.solve(normal + _SMOOTHING * self.penalty, rhs.ravel())
        return solution.reshape(n_y, n_x)

    def evaluate(self, coefficients: np.ndarray) -> np.ndarray:
        """The fitted surface at the grid points."""
        return self.basis_y @ coefficients @ self.basis_x.T


def _penalty(n_y: int, n_x: int) -> np.ndarray:
    """Squared third differences of the coefficients along each axis (zero for quadratic
    surfaces), plus a trace of squared first differences so that even a single data point
    determines the fit (as a constant)."""

    def along(n: int) -> np.ndarray:
        d3, d1 = np.diff(np.eye(n), 3, axis=0), np.diff(np.eye(n), 1, axis=0)
        return d3.T @ d3 + 1e-3 * (d1.T @ d1)

    return np.kron(along(n_y), np.eye(n_x)) + np.kron(np.eye(n_y), along(n_x))
