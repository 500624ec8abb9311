"""The model function and its starting values (pure numpy; ``t`` in hours)."""

import numpy as np


def onset_rise(t, t_on, amplitude, rate, offset):
    """``offset`` before ``t_on``, then ``offset + amplitude (1 - exp(-rate (t - t_on)))``."""
    dt = np.maximum(np.asarray(t, dtype=np.float64) - t_on, 0.0)
    return amplitude * -np.expm1(-rate * dt) + offset


def onset_rise_guess(t, y, t_on, amplitude, rate, offset):
    """Plateau from the last tenth of the trace, onset where the rise begins."""
    tail = max(1, len(y) // 10)
    plateau = float(np.median(y[-tail:])) - offset
    above = np.flatnonzero(y - offset > 0.1 * plateau)
    start = float(t[above[0]]) if above.size else float(t[0])
    half = np.flatnonzero(y - offset > 0.5 * plateau)
    t_half = float(t[half[0]]) if half.size else start + 1.0
    return {"amplitude": max(plateau, 0.0), "t_on": start,
            "rate": float(np.log(2) / max(t_half - start, 1e-2))}
