"""Write rendered scenes as one OME-TIFF (one image series per FOV), frame by frame.

Any scene with ``n_frames``, ``n_fluorescence``, ``height``, ``width`` and ``frame(t)``
returning ``phase`` and a tuple of ``fluorescence`` images works: :class:`.synthetic.SyntheticScene`,
:class:`.rodsim.RodScene`, :class:`.colony.ColonyScene`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = ["write_ome_tiff"]


def _planes(scene: Any) -> Iterator[np.ndarray]:
    """The scene's planes in TCYX order, rendering one frame at a time."""
    for t in range(scene.n_frames):
        frame = scene.frame(t)
        yield frame.phase
        yield from frame.fluorescence
        del frame  # let the frame go before the next one is rendered


def write_ome_tiff(
    path: str | Path,
    scenes: Sequence[Any],
    *,
    channel_names: Sequence[str] | None = None,
    pixel_size_um: float = 0.65,
    frame_interval_s: float = 600.0,
) -> Path:
    """Write scenes to one OME-TIFF, one image series (FOV) per scene.

    Each series is uint16 with axes TCYX and channels ``[phase, fl_1, ...]``. Frames are
    rendered and written one at a time, so memory does not grow with the movie length.

    Parameters
    ----------
    path : str or Path
        Output file (``.ome.tif``).
    scenes : sequence of SyntheticScene, :class:`.rodsim.RodScene` or :class:`.colony.ColonyScene`
        The FOVs; all must have the same frame shape, frame count and channel count.
    channel_names : sequence of str, optional
        Channel names; default ``["phase", "fl_1", ...]``.
    pixel_size_um : float
        Pixel size written as PhysicalSizeX/Y (micrometres).
    frame_interval_s : float
        Time between frames, written as TimeIncrement and per-plane DeltaT (seconds).

    Returns
    -------
    Path
        ``path``.
    """
    import tifffile

    scenes = list(scenes)
    if not scenes:
        raise ValueError("write_ome_tiff needs at least one scene")
    first = scenes[0]
    shape = (first.n_frames, 1 + first.n_fluorescence, first.height, first.width)
    for index, scene in enumerate(scenes):
        other = (scene.n_frames, 1 + scene.n_fluorescence, scene.height, scene.width)
        if other != shape:
            raise ValueError(f"scene {index} has (T, C, Y, X) {other}, scene 0 has {shape}; all must match")
    n_t, n_c = shape[:2]
    names = ["phase"] + [f"fl_{c}" for c in range(1, n_c)] if channel_names is None else list(channel_names)
    if len(names) != n_c:
        raise ValueError(f"{len(names)} channel names given for {n_c} channels")
    path = Path(path)
    n_planes = n_t * n_c
    # Classic TIFF offsets are 32-bit; switch to BigTIFF only when the file needs it.
    bigtiff = len(scenes) * n_planes * shape[2] * shape[3] * 2 > 2**31
    with tifffile.TiffWriter(path, bigtiff=bigtiff, ome=True) as tif:
        for index, scene in enumerate(scenes):
            metadata = {
                "axes": "TCYX",
                "Name": f"FOV {index}",
                "Channel": {"Name": names},
                "PhysicalSizeX": pixel_size_um,
                "PhysicalSizeXUnit": "µm",
                "PhysicalSizeY": pixel_size_um,
                "PhysicalSizeYUnit": "µm",
                "TimeIncrement": frame_interval_s,
                "TimeIncrementUnit": "s",
                # Planes are stored with C varying fastest, then T.
                "Plane": {
                    "DeltaT": [t * frame_interval_s for t in range(n_t) for _ in range(n_c)],
                    "DeltaTUnit": ["s"] * n_planes,
                },
            }
            planes = _planes(scene)  # a generator: tifffile pulls one plane at a time
            tif.write(planes, shape=shape, dtype=np.uint16, photometric="minisblack", metadata=metadata)
    return path
