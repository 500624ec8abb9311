"""Built-in per-cell features (registration only; no numpy import here).

Each feature registers a simple per-cell function and a vectorised per-frame fast path that
returns the same values; both are imported lazily from :mod:`.shape` (phase channel) and
:mod:`.intensity` (fluorescence channels). A lab's feature plugin looks exactly like this.
"""

from __future__ import annotations

from pyama_framework import FeatureRegistration, hookimpl

# name -> (channel kind, module, one-line summary)
_FEATURES = {
    "area": ("phase", "shape", "Number of pixels in the cell mask"),
    "aspect_ratio": ("phase", "shape", "Major / minor axis length of the moment ellipse (NaN if the minor axis is 0)"),
    "eccentricity": ("phase", "shape", "Eccentricity of the moment ellipse, 0 (circle) to 1 (line)"),
    "perimeter": ("phase", "shape", "Perimeter of the mask, as scikit-image regionprops"),
    "circularity": ("phase", "shape", "4 pi area / perimeter**2; 1 for a disk"),
    "solidity": ("phase", "shape", "Area / convex hull area"),
    "intensity_total": ("fluorescence", "intensity", "Sum over the cell of raw - weighted background"),
    "intensity_total_unmixed": ("fluorescence", "intensity",
                                "intensity_total with the blurred light of touching neighbours split between them "
                                "(PSF model, extraction.psf_sigma)"),
    "intensity_mean": ("fluorescence", "intensity", "Mean over the cell of raw - weighted background"),
    "intensity_median": ("fluorescence", "intensity", "Median over the cell of raw - weighted background"),
    "intensity_max": ("fluorescence", "intensity", "Maximum over the cell of raw - weighted background"),
    "intensity_std": ("fluorescence", "intensity", "Standard deviation (ddof=0) over the cell of raw - weighted background"),
}


@hookimpl
def pyama_features():
    for name, (channel_kind, module, summary) in _FEATURES.items():
        yield FeatureRegistration(
            name=name,
            summary=summary,
            implementation=f"pyama_builtin.features.{module}:{name}",
            frame_implementation=f"pyama_builtin.features.{module}:{name}_frame",
            channel_kind=channel_kind,
            uses_neighbours=name == "intensity_total_unmixed",
        )
