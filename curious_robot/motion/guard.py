"""Guards: the checks that stop a motion when a limit is hit or a sensor stops making
sense. Pure; both robots feed them their readings."""

from __future__ import annotations

import math

import numpy as np

from .results import SafetyStop


def force_fault(force, stamp: float | None, now: float, max_age: float) -> str:
    """Why a force reading cannot be trusted ('' if it can): not finite, or older than
    ``max_age`` s at ``now`` (the sensor went silent). ``force`` None: no sensor."""
    if force is None:
        return ""
    f = np.asarray(force, float)
    if not np.all(np.isfinite(f)):
        return f"force reading {f.tolist()} is not finite"
    if stamp is not None and now - stamp > max_age:
        return f"no force reading for {now - stamp:.2f} s (at most {max_age:.2f} s)"
    return ""


class PressGuard:
    """The stop rule of a poke's press, fed one (depth, force) reading at a time: stop at
    the force ``limit`` or ``max_depth`` beyond the first contact (force above
    ``contact``). Keeps the readings. A reading that is not finite raises SafetyStop."""

    def __init__(self, limit: float, max_depth: float, contact: float = 0.05):
        if not (limit > 0 and max_depth > 0):
            raise ValueError(f"press guard needs a positive limit and depth, got "
                             f"{limit}, {max_depth}")
        self.limit = float(limit)
        self.max_depth = float(max_depth)
        self.contact = float(contact)
        self.depths: list[float] = []
        self.forces: list[float] = []
        self.contact_depth: float | None = None
        self.reached_force_limit = False

    def __call__(self, depth: float, force: float) -> bool:
        """Record a reading; True: stop the press here."""
        if not (math.isfinite(depth) and math.isfinite(force)):
            raise SafetyStop(f"press reading depth {depth}, force {force} is not finite")
        self.depths.append(float(depth))
        self.forces.append(float(force))
        if force > self.contact and self.contact_depth is None:
            self.contact_depth = depth
        if force >= self.limit:
            self.reached_force_limit = True
            return True
        return self.contact_depth is not None and depth - self.contact_depth > self.max_depth
