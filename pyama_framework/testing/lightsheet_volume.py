"""Synthetic light-sheet volumes with planted dead pixels, for tests and benchmarks.

A synthetic specimen is no evidence that preprocessing suits real data; it is used where
the truth must be known exactly: which pixels are dead, what the clean plane was. Planes
are rendered one at a time, so a 2048 x 2048 x 543 volume never sits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

__all__ = ["DeadPixels", "SyntheticVolume", "write_volume_tiff", "write_background_tiff"]


@dataclass(frozen=True)
class DeadPixels:
    """Planted dead pixels: coordinates and the value each shows in every plane.

    ``mode`` per pixel: 0 stuck at ``value``, 1 hot (clean value + ``value``).
    """

    ys: np.ndarray
    xs: np.ndarray
    mode: np.ndarray
    value: np.ndarray

    @classmethod
    def plant(cls, shape: tuple[int, int], fraction: float, seed: int) -> "DeadPixels":
        """Dead pixels at ``fraction`` of the pixels: a third stuck at 0, a third stuck high
        (4000-60000), a third hot (+500 to +5000)."""
        rng = np.random.default_rng(seed)
        n = max(1, int(round(fraction * shape[0] * shape[1])))
        flat = rng.choice(shape[0] * shape[1], size=n, replace=False)
        ys, xs = np.unravel_index(flat, shape)
        kind = rng.integers(0, 3, n)
        value = np.where(kind == 0, 0, np.where(kind == 1, rng.integers(4000, 60000, n), rng.integers(500, 5000, n)))
        return cls(ys.astype(np.intp), xs.astype(np.intp), (kind == 2).astype(np.uint8), value.astype(np.int64))

    def apply(self, plane: np.ndarray) -> np.ndarray:
        out = plane.copy()
        clean = out[self.ys, self.xs].astype(np.int64)
        out[self.ys, self.xs] = np.clip(np.where(self.mode == 1, clean + self.value, self.value), 0, 65535)
        return out

    def map(self, shape: tuple[int, int]) -> np.ndarray:
        dead = np.zeros(shape, bool)
        dead[self.ys, self.xs] = True
        return dead


@dataclass(frozen=True)
class SyntheticVolume:
    """An ellipsoidal, textured specimen on a camera offset with shot and read noise.

    Attributes
    ----------
    n_z, height, width : int
        Volume shape.
    offset : float
        Camera offset (the background level) in counts.
    brightness : float
        Mean specimen signal above the offset.
    seed : int
        Noise seed; plane ``z`` of view ``view`` at time ``t`` is always the same.
    """

    n_z: int
    height: int
    width: int
    offset: float = 100.0
    brightness: float = 1200.0
    seed: int = 0

    def specimen(self, z: int, t: int = 0) -> np.ndarray:
        """The noise-free (Y, X) float32 signal of plane ``z``; True where inside."""
        y = (np.arange(self.height, dtype=np.float32) - self.height / 2) / (0.35 * self.height)
        x = (np.arange(self.width, dtype=np.float32) - self.width / 2 - 2.0 * t) / (0.38 * self.width)
        zz = (z - self.n_z / 2) / (0.45 * self.n_z)
        inside = y[:, None] ** 2 + x[None, :] ** 2 <= 1.0 - zz * zz
        texture = 1.0 + 0.5 * np.sin(y * 9.0 + z * 0.3)[:, None] * np.cos(x * 7.0)[None, :]
        return np.where(inside, self.brightness * texture, 0.0).astype(np.float32)

    def clean_plane(self, z: int, t: int = 0, view: int = 0) -> np.ndarray:
        """Plane ``z`` with noise, before any dead pixel: uint16."""
        rng = np.random.default_rng((self.seed, t, view, z))
        signal = self.specimen(z, t)
        noisy = signal + self.offset + rng.standard_normal(signal.shape, dtype=np.float32) * np.sqrt(signal + 25.0)
        return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)

    def planes(self, t: int = 0, view: int = 0, dead: DeadPixels | None = None) -> Iterator[np.ndarray]:
        for z in range(self.n_z):
            plane = self.clean_plane(z, t, view)
            yield plane if dead is None else dead.apply(plane)


def write_volume_tiff(path: str | Path, volume: SyntheticVolume, n_t: int, views: Sequence[str],
                      dead: Sequence[DeadPixels | None] | None = None, z_step_um: float = 2.0,
                      pixel_size_um: float = 0.406) -> Path:
    """Write an OME-TIFF (T, Z, C=views, Y, X) the built-in ``tiff`` reader opens, plane by plane.

    Views are the channels, named like light-sheet views (``"cam0_ch0"``). ``dead[v]`` is
    planted into every plane of view ``v``.
    """
    import tifffile

    path = Path(path)
    dead = list(dead) if dead is not None else [None] * len(views)

    def planes() -> Iterator[np.ndarray]:
        iterators = None
        for t in range(n_t):
            iterators = [volume.planes(t, v, dead[v]) for v in range(len(views))]
            for _ in range(volume.n_z):
                for it in iterators:
                    yield next(it)

    shape = (n_t, volume.n_z, len(views), volume.height, volume.width)
    bigtiff = int(np.prod(shape)) * 2 > 2**31
    metadata = {"axes": "TZCYX", "Channel": {"Name": list(views)}, "PhysicalSizeX": pixel_size_um,
                "PhysicalSizeY": pixel_size_um, "PhysicalSizeZ": z_step_um}
    with tifffile.TiffWriter(path, bigtiff=bigtiff, ome=True) as tif:
        tif.write(planes(), shape=shape, dtype=np.uint16, photometric="minisblack", metadata=metadata)
    return path


def write_background_tiff(path: str | Path, shape: tuple[int, int], level: float, n_frames: int = 5,
                          seed: int = 1) -> np.ndarray:
    """A camera background recording (``Background_N.tif``): ``n_frames`` dark frames around a
    fixed pattern at ``level``. Returns the per-pixel median the pipeline should subtract."""
    import tifffile

    rng = np.random.default_rng(seed)
    pattern = level + 6.0 * np.sin(np.arange(shape[1]) / 17.0)[None, :] + np.zeros(shape)
    frames = np.clip(np.rint(pattern[None] + rng.normal(0, 2.0, (n_frames, *shape))), 0, 65535).astype(np.uint16)
    tifffile.imwrite(path, frames)
    return np.clip(np.rint(np.median(frames, axis=0)), 0, 65535).astype(np.uint16)
