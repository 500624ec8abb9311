"""The plugin kit's fixture movie: a small seeded synthetic movie with ground truth, and
writers that save it as OME-TIFF, ND2 or CZI for reader and end-to-end tests.

Used by the pytest plugin (:mod:`pyama_framework.testing.pytest_plugin`) and the
conformance suites (:mod:`pyama_framework.testing.conformance`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .synthetic import SyntheticScene

FORMATS = {"ome-tiff": ".ome.tif", "nd2": ".nd2", "czi": ".czi"}
CHANNEL_NAMES = ("Phase", "GFP")
PIXEL_SIZE_UM = 0.65
FRAME_INTERVAL_S = 600.0


@dataclass(frozen=True)
class FixtureMovie:
    """Pixels and ground truth of a small synthetic movie, axes ``(fov, t, y, x)``.

    Attributes
    ----------
    scenes : tuple of SyntheticScene
        The generators, one per FOV (seeded: the same movie every time).
    phase, fluorescence : (F, T, H, W) uint16 ndarray
        Phase-contrast channel (channel 0) and the fluorescence channel (channel 1).
    labels : (F, T, H, W) uint16 ndarray
        True cell masks; a cell's pixels carry its track ID in every frame, 0 is background.
    background : (F, T, H, W) float32 ndarray
        True fluorescence background.
    """

    scenes: tuple[SyntheticScene, ...]
    phase: np.ndarray
    fluorescence: np.ndarray
    labels: np.ndarray
    background: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.phase.shape

    def fovs(self) -> list["_FovView"]:
        """One scene-like view per FOV (``n_frames``, ``frame(t)``...) over the stored pixels,
        for writers that take scenes (no re-rendering)."""
        return [_FovView(self, fov) for fov in range(self.shape[0])]

    def stack(self) -> np.ndarray:
        """All pixels as ``(F, T, C, H, W)`` uint16, channels ``[phase, fluorescence]``."""
        return np.stack([self.phase, self.fluorescence], axis=2)


@dataclass(frozen=True)
class _FovView:
    """One FOV of a :class:`FixtureMovie` with the scene interface of ``write_ome_tiff``."""

    movie: FixtureMovie
    fov: int
    n_fluorescence: int = 1

    @property
    def n_frames(self) -> int:
        return self.movie.shape[1]

    @property
    def height(self) -> int:
        return self.movie.shape[2]

    @property
    def width(self) -> int:
        return self.movie.shape[3]

    def frame(self, t: int) -> SimpleNamespace:
        return SimpleNamespace(phase=self.movie.phase[self.fov, t],
                               fluorescence=(self.movie.fluorescence[self.fov, t],))


@functools.lru_cache(maxsize=4)  # rendered once per process; the arrays are read-only
def fixture_movie(n_fovs: int = 2, n_frames: int = 6, size: int = 128, n_cells: int = 8,
                  seed: int = 50) -> FixtureMovie:
    """Render the fixture movie.

    Parameters
    ----------
    n_fovs, n_frames : int
        Fields of view and time points.
    size : int
        Frame height and width in pixels.
    n_cells : int
        Cells per FOV.
    seed : int
        Seed of FOV 0; FOV ``i`` uses ``seed + i``.

    Returns
    -------
    FixtureMovie
        With read-only arrays (one movie is shared by every test of a process).
    """
    scenes = tuple(SyntheticScene(height=size, width=size, n_frames=n_frames, n_cells=n_cells,
                                  n_fluorescence=1, seed=seed + fov) for fov in range(n_fovs))
    shape = (n_fovs, n_frames, size, size)
    phase, fluorescence, labels = (np.zeros(shape, np.uint16) for _ in range(3))
    background = np.zeros(shape, np.float32)
    for fov, scene in enumerate(scenes):
        for frame in scene.frames():
            phase[fov, frame.t] = frame.phase
            fluorescence[fov, frame.t] = frame.fluorescence[0]
            labels[fov, frame.t] = frame.labels
            background[fov, frame.t] = frame.background[0]
    for array in (phase, fluorescence, labels, background):
        array.setflags(write=False)
    return FixtureMovie(scenes, phase, fluorescence, labels, background)


def write_movie(movie: FixtureMovie, path: str | Path, file_format: str = "ome-tiff") -> Path:
    """Write ``movie`` as one multi-FOV file.

    Parameters
    ----------
    movie : FixtureMovie
    path : str or Path
        Output file; its suffix should match the format (see :data:`FORMATS`).
    file_format : {"ome-tiff", "nd2", "czi"}
        OME-TIFF via tifffile, ND2 via :func:`~pyama_framework.testing.nd2_writer.write_nd2`,
        CZI via pylibCZIrw (installed with the ``test`` extra).

    Returns
    -------
    Path
    """
    path = Path(path)
    if file_format == "ome-tiff":
        from .ome_tiff import write_ome_tiff

        return write_ome_tiff(path, movie.fovs(), channel_names=CHANNEL_NAMES, pixel_size_um=PIXEL_SIZE_UM,
                              frame_interval_s=FRAME_INTERVAL_S)
    if file_format == "nd2":
        from .nd2_writer import write_nd2

        return write_nd2(path, movie.stack(), channel_names=CHANNEL_NAMES, pixel_size_um=PIXEL_SIZE_UM,
                         frame_interval_ms=FRAME_INTERVAL_S * 1000)
    if file_format == "czi":
        return _write_czi(movie, path)
    raise ValueError(f"unknown file format {file_format!r}; choose one of: {', '.join(FORMATS)}")


def _write_czi(movie: FixtureMovie, path: Path) -> Path:
    """One CZI scene per FOV, written by libCZI (pylibCZIrw)."""
    from pylibCZIrw import czi as pyczi

    data = movie.stack()
    with pyczi.create_czi(str(path), exist_ok=True) as czi:
        for p in range(data.shape[0]):
            for t in range(data.shape[1]):
                for c in range(data.shape[2]):
                    czi.write(np.ascontiguousarray(data[p, t, c]), plane={"T": t, "Z": 0, "C": c}, scene=p,
                              location=(1000 * p, 0))
        czi.write_metadata(channel_names=dict(enumerate(CHANNEL_NAMES)),
                           scale_x=PIXEL_SIZE_UM * 1e-6, scale_y=PIXEL_SIZE_UM * 1e-6)  # CZI stores metres
    return path
