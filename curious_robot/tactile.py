"""Tactile fit of a poke: contact onset and a robust line through force against depth.

Pure numpy; no simulator. The slope (N/m) is the stiffness felt by the probe, which tells
soft from hard objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Pairwise slopes are computed on at most this many contact samples (evenly subsampled).
_MAX_PAIRS_SAMPLES = 200
#: N/m, the stiffest press the depth reading resolves (5 N over 5 micrometres): a fit
#: above it (the probe met the table or something rigid; a chaos run once recorded
#: 1.8e8 N/m, which the learner then refused as out of range) is clipped to it and marked
#: not valid, so it is stored but never trained on
MAX_SLOPE = 1e6


@dataclass(frozen=True)
class TactileFit:
    slope: float  # N/m
    intercept: float  # N (force at depth 0 on the fitted line)
    onset_depth: float  # m, depth of the first sample in contact
    max_force: float  # N
    n_contact: int  # samples used by the fit

    #: fewest contact samples for a usable fit (a press that touches only at its very end
    #: gives a line through two samples and an absurd slope)
    MIN_CONTACT = 5

    @property
    def valid(self) -> bool:
        """True when the fit can serve as a regression target: enough contact samples and
        a positive, finite slope the depth reading resolves (below :data:`MAX_SLOPE`)."""
        return (self.n_contact >= self.MIN_CONTACT and math.isfinite(self.slope)
                and 0 < self.slope < MAX_SLOPE)

    def as_outcome(self) -> list[float]:
        """The ``poke`` outcome vector of :mod:`curious_robot.record`."""
        return [self.slope, self.intercept, self.onset_depth, self.max_force]


def fit_tactile(depth, force, min_force: float = 0.05, rel_threshold: float = 0.05
                ) -> TactileFit:
    """Fit force = slope * depth + intercept over the contact part of a press.

    Contact starts at the first sample whose force exceeds ``max(min_force,
    rel_threshold * max(force))``; the fit is Theil-Sen (median of pairwise slopes, median
    intercept), so a few spikes do not move it. The onset depth is where the fitted line
    crosses zero force, kept between the last sample at (near) zero force and the first
    one above the threshold. A press with fewer than two contact samples
    at distinct depths gives slope 0 and ``n_contact`` < 2.

    Raises ValueError when the lengths differ, there are fewer than 3 samples, or a value
    is not finite.
    """
    d = np.asarray(depth, dtype=float).reshape(-1)
    f = np.asarray(force, dtype=float).reshape(-1)
    if d.shape != f.shape:
        raise ValueError(f"depth has {d.size} samples but force has {f.size}")
    if d.size < 3:
        raise ValueError(f"need at least 3 samples, got {d.size}")
    if not (np.isfinite(d).all() and np.isfinite(f).all()):
        raise ValueError("depth and force must be finite")
    max_force = float(f.max())
    threshold = max(min_force, rel_threshold * max_force)
    above = np.flatnonzero(f > threshold)
    if above.size == 0:
        return TactileFit(0.0, 0.0, float(d[-1]), max_force, 0)
    first = int(above[0])
    onset = float(d[first - 1]) if first > 0 else float(d[first])
    dc, fc = d[first:], f[first:]
    keep = fc > threshold
    dc, fc = dc[keep], fc[keep]
    if dc.size < 2 or np.ptp(dc) <= 0:
        return TactileFit(0.0, float(fc.mean()), onset, max_force, int(dc.size))
    if dc.size > _MAX_PAIRS_SAMPLES:
        idx = np.linspace(0, dc.size - 1, _MAX_PAIRS_SAMPLES).round().astype(int)
        ds, fs = dc[idx], fc[idx]
    else:
        ds, fs = dc, fc
    i, j = np.triu_indices(ds.size, k=1)
    dd = ds[j] - ds[i]
    ok = np.abs(dd) > 1e-12
    slope = min(float(np.median((fs[j] - fs[i])[ok] / dd[ok])), MAX_SLOPE)
    intercept = float(np.median(fc - slope * dc))
    if slope > 0:
        # where the fitted line leaves zero force, bounded by the samples around contact
        zero = np.flatnonzero(f[:first] <= min_force)
        lo = float(d[zero[-1]]) if zero.size else float(d[0])
        onset = float(np.clip(-intercept / slope, min(lo, d[first]), max(lo, d[first])))
    return TactileFit(slope, intercept, onset, max_force, int(dc.size))
