"""Shared helpers for the viewing products (cell crops and /1/ levels): normalisation and 2x downsampling."""

from __future__ import annotations

import numpy as np

SAMPLE_FRAMES = 8
PERCENTILES = (1.0, 99.0)


def sample_frames(n_frames: int, k: int = SAMPLE_FRAMES) -> list[int]:
    """Up to ``k`` evenly spaced frame indices (deterministic)."""
    return sorted({int(round(v)) for v in np.linspace(0, n_frames - 1, min(k, n_frames))})


def intensity_range(frames: list[np.ndarray]) -> tuple[float, float]:
    """1st and 99th percentile over the given frames (spec: percentile normalisation)."""
    values = np.concatenate([np.asarray(f, dtype=np.float32).ravel() for f in frames])
    lo, hi = np.percentile(values, PERCENTILES)
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def normalise(frame: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``[lo, hi]`` to ``[0, 1]`` as float32, clipped."""
    out = (np.asarray(frame, dtype=np.float32) - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return np.clip(out, 0.0, 1.0, out=out)


def to_uint8(unit: np.ndarray) -> np.ndarray:
    return np.rint(unit * 255.0).astype(np.uint8)


def half(frame: np.ndarray) -> np.ndarray:
    """2x2 mean downsampling to ``(H // 2, W // 2)``."""
    h, w = frame.shape[-2] // 2, frame.shape[-1] // 2
    trimmed = frame[..., : 2 * h, : 2 * w].astype(np.float32, copy=False)
    return trimmed.reshape(*frame.shape[:-2], h, 2, w, 2).mean(axis=(-3, -1))


def half_labels(labels: np.ndarray) -> np.ndarray:
    """Nearest-neighbour 2x downsampling (label values must not be averaged)."""
    h, w = labels.shape[-2] // 2, labels.shape[-1] // 2
    return labels[..., : 2 * h : 2, : 2 * w : 2]
