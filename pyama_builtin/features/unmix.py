"""Cell totals with the light of touching neighbours split between them (PSF unmixing).

A sum over a cell's measurement mask also collects the blurred light of a neighbour that
touches it: next to a 20x brighter cell a dim cell reads +10 % or more, whatever its mask.
Here the corrected fluorescence is modelled as

    F(p) = sum_i a_i T_i(p),    T_i = M_i (*) G_sigma

with ``M_i`` cell ``i``'s own (tracked) mask and ``G_sigma`` a Gaussian PSF. The amplitudes
``a`` solve the least-squares normal equations ``K a = b`` with ``K_ij = <T_i, T_j>`` and
``b_i = <T_i, F>``; only cells whose blurred footprints overlap are coupled, so ``K`` is
block diagonal over clusters of neighbouring cells (solved per cluster).

The model only has to be right about what crosses the border between two cells, not about a
cell's own profile: the total of cell ``i`` is its measured sum corrected by the modelled
exchange (see :func:`unmixed_totals`). An isolated cell's total therefore stays its plain
measurement-mask sum plus the modelled light beyond the mask.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# OpenCV through cvops: its thread pool sized like the other native pools (one per FOV),
# also when the extract stage runs in a worker that never segmented (a resumed run).
from ..cvops import cv2

__all__ = ["fit_psf_sigma", "neighbour_correction", "psf_footprints", "unexplained_light", "unmix_amplitudes",
           "unmixed_totals"]

_TRUNCATE = 4.0  # Gaussian kernel radius in sigmas


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(int(np.ceil(_TRUNCATE * sigma)), 1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def psf_footprints(labels: np.ndarray, cell_ids: np.ndarray, bboxes: np.ndarray, sigma: float
                   ) -> tuple[list[np.ndarray], np.ndarray]:
    """Each cell's mask blurred by a Gaussian PSF, on its box widened by the kernel radius.

    Parameters
    ----------
    labels : (H, W) integer ndarray
        The cells' own masks (label = cell ID, 0 = background).
    cell_ids : (N,) int ndarray
        IDs of the cells, ascending.
    bboxes : (N, 4) int ndarray
        Half-open boxes ``[y0, x0, y1, x1)`` of the cells in ``labels``.
    sigma : float
        PSF standard deviation in px (> 0).

    Returns
    -------
    footprints : list of N float64 ndarrays
        ``M_i (*) G_sigma`` on box ``i`` (light leaving the frame is dropped, as on a camera).
    boxes : (N, 4) int64 ndarray
        The widened boxes, clipped to the frame.
    """
    kernel = _gaussian_kernel(sigma)
    r = len(kernel) // 2
    height, width = labels.shape
    boxes = np.asarray(bboxes, dtype=np.int64) + np.array([-r, -r, r, r])
    boxes = np.clip(boxes, 0, [height, width, height, width])
    footprints = []
    for cell, (y0, x0, y1, x1) in zip(np.asarray(cell_ids).tolist(), boxes.tolist()):
        mask = (labels[y0:y1, x0:x1] == cell).astype(np.float64)
        footprints.append(cv2.sepFilter2D(mask, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT))
    return footprints, boxes


def _overlapping_pairs(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i < j`` whose boxes intersect (sweep over the boxes sorted by y0)."""
    n = len(boxes)
    if n < 2:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    order = np.argsort(boxes[:, 0], kind="stable")
    sorted_boxes = boxes[order]
    # candidates: j after i in y0 order with y0_j < y1_i
    reach = np.searchsorted(sorted_boxes[:, 0], sorted_boxes[:, 2], side="left")
    counts = np.maximum(reach - np.arange(n) - 1, 0)
    first = np.repeat(np.arange(n), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    second = first + 1 + offsets
    a, b = sorted_boxes[first], sorted_boxes[second]
    hit = (a[:, 1] < b[:, 3]) & (b[:, 1] < a[:, 3])
    i, j = order[first[hit]], order[second[hit]]
    return np.minimum(i, j), np.maximum(i, j)


def _intersection(box_a, box_b):
    y0, x0 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    y1, x1 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    return (slice(y0 - box_a[0], y1 - box_a[0]), slice(x0 - box_a[1], x1 - box_a[1])), \
           (slice(y0 - box_b[0], y1 - box_b[0]), slice(x0 - box_b[1], x1 - box_b[1]))


def _corrected(image, background, box) -> np.ndarray:
    y0, x0, y1, x1 = box
    crop = image[y0:y1, x0:x1].astype(np.float64)
    if background is not None:
        crop -= background[y0:y1, x0:x1]
    return crop


def unmix_amplitudes(image: np.ndarray, background: np.ndarray | None, footprints: list[np.ndarray],
                     boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares amplitudes ``a`` of ``image ~ sum_i a_i T_i`` (normal equations per cluster).

    Parameters
    ----------
    image : (H, W) ndarray
        Raw fluorescence.
    background : (H, W) ndarray or None
        Subtracted from ``image`` (in float64) where a footprint is.
    footprints, boxes
        From :func:`psf_footprints`.

    Returns
    -------
    amplitude : (N,) float64 ndarray
        NaN for a cell with an empty footprint.
    rhs : (N,) float64 ndarray
        ``b_i = <T_i, image - background>``.
    """
    n = len(footprints)
    diagonal = np.array([float(np.vdot(t, t)) for t in footprints])
    rhs = np.array([float(np.vdot(t, _corrected(image, background, box)))
                    for t, box in zip(footprints, boxes.tolist())])
    first, second = _overlapping_pairs(boxes)
    values = np.empty(first.size)
    box_list = boxes.tolist()
    for k, (i, j) in enumerate(zip(first.tolist(), second.tolist())):
        in_i, in_j = _intersection(box_list[i], box_list[j])
        values[k] = float(np.vdot(footprints[i][in_i], footprints[j][in_j]))
    coupled = values > 1e-9 * np.sqrt(diagonal[first] * diagonal[second])
    first, second, values = first[coupled], second[coupled], values[coupled]
    amplitude = np.full(n, np.nan)
    present = diagonal > 0
    n_clusters, cluster = connected_components(coo_matrix((np.ones(first.size), (first, second)), shape=(n, n)),
                                               directed=False)
    order = np.argsort(cluster, kind="stable")
    starts = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    single = np.diff(starts) == 1
    # isolated cells: a_i = b_i / K_ii
    alone = order[starts[:-1][single]]
    ok = alone[present[alone]]
    amplitude[ok] = rhs[ok] / diagonal[ok]
    position = np.empty(n, dtype=np.intp)
    for c in np.flatnonzero(~single):
        members = order[starts[c]:starts[c + 1]]
        position[members] = np.arange(members.size)
        gram = np.diag(diagonal[members])
        inside = cluster[first] == c
        fi, se = position[first[inside]], position[second[inside]]
        gram[fi, se] = values[inside]
        gram[se, fi] = values[inside]
        amplitude[members] = np.linalg.solve(gram, rhs[members])
    return amplitude, rhs


def neighbour_correction(image: np.ndarray, background: np.ndarray | None, labels: np.ndarray,
                         measured: np.ndarray, cell_ids: np.ndarray, bboxes: np.ndarray, sigma: float
                         ) -> np.ndarray:
    """What to add to each cell's measurement-mask sum to remove its neighbours' light.

    With ``D_i`` cell ``i``'s measurement mask and ``a``, ``T`` as in the module docstring::

        correction_i = -sum_{j != i} a_j <T_j, D_i> + a_i (sum T_i - <T_i, D_i>)

    the modelled light of the other cells inside ``D_i`` is removed and the modelled light of
    cell ``i`` outside it (in a neighbour's mask or beyond the growth) is added back. Only
    the light crossing a border depends on the model, so an error in the model's profile
    of a cell (soft edge, a gradient along it) mostly cancels.

    Parameters
    ----------
    image : (H, W) ndarray
        Raw fluorescence.
    background : (H, W) ndarray or None
        Background to subtract from ``image``.
    labels : (H, W) integer ndarray
        The cells' own (tracked) masks: where the light is emitted.
    measured : (H, W) integer ndarray
        Measurement masks (e.g. ``labels`` grown into the background), same IDs.
    cell_ids : (N,) int ndarray
        IDs of the cells, ascending.
    bboxes : (N, 4) int ndarray
        Boxes ``[y0, x0, y1, x1)`` of the cells in ``labels``.
    sigma : float
        PSF standard deviation in px; ``<= 0`` gives zeros (no unmixing).

    Returns
    -------
    (N,) float64 ndarray
    """
    cell_ids = np.asarray(cell_ids, dtype=np.int64)
    n = len(cell_ids)
    if sigma <= 0 or n == 0:
        return np.zeros(n)
    footprints, boxes = psf_footprints(labels, cell_ids, bboxes, sigma)
    amplitude, _ = unmix_amplitudes(image, background, footprints, boxes)
    table = _index_table(measured, cell_ids)
    light = np.zeros(n)
    own_inside = np.zeros(n)
    owners, weights = [], []  # where each cell's modelled light lands: (mask + 1, light)
    for j, (t, (y0, x0, y1, x1)) in enumerate(zip(footprints, boxes.tolist())):
        if not np.isfinite(amplitude[j]):
            continue
        where = table[measured[y0:y1, x0:x1]].ravel()
        spread = t.ravel()
        light[j] = spread.sum()
        own_inside[j] = spread[where == j + 1].sum()
        owners.append(where)
        weights.append(spread * amplitude[j])
    received = (np.bincount(np.concatenate(owners), weights=np.concatenate(weights), minlength=n + 1)[1:]
                if owners else np.zeros(n))
    amplitude = np.nan_to_num(amplitude)
    other = received - amplitude * own_inside  # light of the other cells inside each mask
    return amplitude * (light - own_inside) - other


def unmixed_totals(image: np.ndarray, background: np.ndarray | None, labels: np.ndarray,
                   measured: np.ndarray | None, cell_ids: np.ndarray, bboxes: np.ndarray, sigma: float
                   ) -> np.ndarray:
    """Each cell's total light with its neighbours' blurred light removed.

    The sum of ``image - background`` over the cell's measurement mask (``measured``; its
    own mask when None) plus :func:`neighbour_correction`. Arguments as there.

    Returns
    -------
    (N,) float64 ndarray
        NaN for a cell with no pixel in ``measured``.
    """
    cell_ids = np.asarray(cell_ids, dtype=np.int64)
    measured = labels if measured is None else measured
    n = len(cell_ids)
    table = _index_table(measured, cell_ids)
    flat = np.flatnonzero(measured.ravel())
    owner = table[measured.ravel()[flat]]
    values = image.ravel()[flat].astype(np.float64)
    if background is not None:
        values -= background.ravel()[flat]
    plain = np.bincount(owner, weights=values, minlength=n + 1)[1:]
    count = np.bincount(owner, minlength=n + 1)[1:]
    total = plain + neighbour_correction(image, background, labels, measured, cell_ids, bboxes, sigma)
    return np.where(count > 0, total, np.nan)


def _index_table(labels: np.ndarray, cell_ids: np.ndarray) -> np.ndarray:
    """Lookup table: label -> position of the cell in ``cell_ids`` + 1 (0 when not listed)."""
    top = max(int(labels.max()) if labels.size else 0, int(cell_ids.max()) if cell_ids.size else 0)
    table = np.zeros(top + 1, dtype=np.intp)
    table[cell_ids] = np.arange(1, len(cell_ids) + 1)
    return table


def unexplained_light(corrected: np.ndarray, labels: np.ndarray, cell_ids: np.ndarray, gap: int = 3,
                      threshold: float = 0.25) -> np.ndarray:
    """Pixels with light that no mask accounts for (a cell the segmentation missed or merged away).

    A pixel more than ``gap`` px from every mask whose value exceeds ``threshold`` times the
    median of the cells' mean intensities.

    Parameters
    ----------
    corrected : (H, W) float ndarray
        Fluorescence minus background.
    labels : (H, W) integer ndarray
        The cells' own masks.
    cell_ids : (N,) int ndarray
        Cells whose mean intensities set the level (IDs in ``labels``).
    gap : int
        Distance from the masks in px; beyond 3 px a masked cell's blurred light is a few %
        of its level at the effective sigmas met (<= 2.7 px).
    threshold : float
        Fraction of the median cell mean intensity.

    Returns
    -------
    (H, W) bool ndarray
    """
    cell_ids = np.asarray(cell_ids, dtype=np.int64)
    masked = labels > 0
    on = np.flatnonzero(masked)  # the sums read the cells' pixels only (a few % of a frame)
    owner = _index_table(labels, cell_ids)[labels.ravel()[on]]
    sums = np.bincount(owner, weights=corrected.ravel()[on], minlength=cell_ids.size + 1)[1:]
    counts = np.bincount(owner, minlength=cell_ids.size + 1)[1:]
    if not counts.any():
        return np.zeros(labels.shape, dtype=bool)
    level = threshold * float(np.median(sums[counts > 0] / counts[counts > 0]))
    if not level > 0:  # no cell above the background: nothing to compare with
        return np.zeros(labels.shape, dtype=bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap + 1, 2 * gap + 1))
    near = cv2.dilate(masked.view(np.uint8), kernel) > 0
    return ~near & (corrected > level)


def _fit_objective(image, background, labels, cell_ids, bboxes, sigma) -> float:
    """``a . b`` at the least-squares solution: ``|F|^2 - |F - model|^2``, larger is better."""
    footprints, boxes = psf_footprints(labels, cell_ids, bboxes, sigma)
    amplitude, rhs = unmix_amplitudes(image, background, footprints, boxes)
    return float(np.nansum(amplitude * rhs))


def fit_psf_sigma(image: np.ndarray, background: np.ndarray | None, labels: np.ndarray, cell_ids: np.ndarray,
                  bboxes: np.ndarray, bounds: tuple[float, float] = (0.5, 4.0), max_cells: int = 80, gap: int = 3,
                  threshold: float = 0.25) -> float:
    """The PSF sigma that best explains ``image`` as blurred uniform cells (least squares).

    What is fitted is an *effective* sigma: the optics' PSF, the cells' soft edges and how
    the masks sit on them together, i.e. what :func:`unmixed_totals` needs. Whole clusters of
    neighbouring cells are used (a cell without its neighbours would pull sigma up), taken in
    the order of their first cell until ``max_cells`` cells are reached (the cluster crossing
    it whole); pixels with light that no mask accounts for (:func:`unexplained_light`) are
    set to the background level. Brent's bounded search on ``log sigma`` (to 1 %).

    Parameters
    ----------
    image, background, labels, cell_ids, bboxes
        As in :func:`neighbour_correction`.
    bounds : (float, float)
        Search interval for sigma in px.
    max_cells : int
        Cells used for the fit (the cost is proportional), at least; more when the last
        cluster taken is larger.
    gap, threshold
        As in :func:`unexplained_light`.

    Returns
    -------
    float
        Sigma in px (``bounds[0]`` when there is no cell).
    """
    cell_ids = np.asarray(cell_ids, dtype=np.int64)
    if cell_ids.size == 0:
        return float(bounds[0])
    reach = int(np.ceil(_TRUNCATE * bounds[1]))
    height, width = labels.shape
    wide = np.clip(np.asarray(bboxes, dtype=np.int64) + np.array([-reach, -reach, reach, reach]), 0,
                   [height, width, height, width])
    first, second = _overlapping_pairs(wide)
    n = len(cell_ids)
    _, cluster = connected_components(coo_matrix((np.ones(first.size), (first, second)), shape=(n, n)),
                                      directed=False)
    sizes = np.bincount(cluster)
    # clusters in the order of their first cell
    firsts = np.full(sizes.size, n)
    np.minimum.at(firsts, cluster, np.arange(n))
    order = np.argsort(firsts, kind="stable")
    # whole clusters until max_cells is reached (the one crossing it included: a large colony
    # skipped for its size left a speck to decide sigma)
    before = np.cumsum(sizes[order]) - sizes[order]
    keep_clusters = order[before < max(int(max_cells), 1)]
    chosen = np.flatnonzero(np.isin(cluster, keep_clusters))
    ids, boxes = cell_ids[chosen], np.asarray(bboxes)[chosen]
    # the fit only reads the region of the widest footprints (reach)
    oy, ox = wide[chosen, 0].min(), wide[chosen, 1].min()
    crop = (slice(oy, wide[chosen, 2].max()), slice(ox, wide[chosen, 3].max()))
    fitted = image[crop].astype(np.float64)
    if background is not None:
        fitted -= background[crop]
    # light no mask accounts for would be "explained" by widening the masked neighbours' PSF
    # (sigma ran to the bound): such pixels are set to the background level
    fitted[unexplained_light(fitted, labels[crop], ids, gap, threshold)] = 0.0
    crop_labels, crop_boxes = labels[crop], boxes - np.array([oy, ox, oy, ox])

    def loss(log_sigma):
        return -_fit_objective(fitted, None, crop_labels, ids, crop_boxes, float(np.exp(log_sigma)))

    # Brent's bounded search (parabolic steps on a smooth objective): 7-9 evaluations for 1 %
    # in sigma, where the golden section took 12 for 2 %; each evaluation is one solve.
    best = minimize_scalar(loss, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                           options={"xatol": 0.01})
    return float(np.exp(best.x))
