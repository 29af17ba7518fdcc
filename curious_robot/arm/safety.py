"""The safety layer of the hardware backend: every planned trajectory is checked before it
is sent, every joint-state reading while it runs.

Before a motion (a failure refuses the request, nothing is sent):
  - every waypoint within the URDF joint limits;
  - the tool point (fingertips / poking point) and the ee point of every waypoint, and of
    the straight joint-space segments between them (sampled), inside ``safety.workspace``;
  - the timing: no joint faster than ``joint_speed_scale`` x its URDF velocity limit.
During a motion (a failure halts the arm where it is, :class:`SafetyStop`):
  - measured joint speeds below ``measured_speed_margin`` x the planned limit;
  - contact force below ``max_force``;
  - tool point inside the workspace box (1 cm of slack for tracking);
  - measured vs. commanded joint positions within ``max_tracking_error``;
  - joint states arriving at least every ``state_timeout`` seconds.
"""

from __future__ import annotations

import math

import numpy as np

from .config import SafetyConfig


class SafetyLayer:
    def __init__(self, config: SafetyConfig, kinematics, tool_offset: float):
        self.config = config
        self.kin = kinematics
        self.tool_offset = float(tool_offset)
        self.vmax = kinematics.velocity_limits * config.joint_speed_scale

    # ------------------------------------------------------------ before
    def check_target(self, x: float, y: float, what: str = "target") -> None:
        """ValueError if a primitive's (x, y) target is outside the target workspace."""
        (x0, x1), (y0, y1) = self.config.target_workspace
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"{what} ({x}, {y}) is not finite")
        if not (x0 <= x <= x1 and y0 <= y <= y1):
            raise ValueError(f"{what} ({x:.3f}, {y:.3f}) is outside the workspace "
                             f"x [{x0}, {x1}], y [{y0}, {y1}]")

    def _point_outside(self, p: np.ndarray, slack: float = 0.0) -> bool:
        return any(not (lo - slack <= v <= hi + slack)
                   for v, (lo, hi) in zip(p, self.config.workspace))

    def box_violation(self, q, slack: float = 0.0) -> str:
        """Why the arm at ``q`` leaves the workspace box ('' if it does not)."""
        ee, rot = self.kin.ee_pose(q)
        tip = ee - self.tool_offset * (rot @ np.array(self.kin.config.approach_axis))
        for name, p in (("tool point", tip), ("ee point", ee)):
            if self._point_outside(p, slack):
                (x0, x1), (y0, y1), (z0, z1) = self.config.workspace
                return (f"{name} ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) would leave the "
                        f"safety box x [{x0}, {x1}] y [{y0}, {y1}] z [{z0}, {z1}]")
        return ""

    def time_plan(self, q_from, qs, min_durations=None) -> list[float]:
        """Arrival times (s, from now) of the waypoints ``qs`` at the planned speed limit
        (or slower where ``min_durations`` asks)."""
        times, t, prev = [], 0.0, np.asarray(q_from, float)
        for i, q in enumerate(qs):
            q = np.asarray(q, float)
            dt = float(np.max(np.abs(q - prev) / self.vmax))
            if min_durations is not None:
                dt = max(dt, float(min_durations[i]))
            t += max(dt, 1e-3)
            times.append(t)
            prev = q
        return times

    def check_plan(self, q_from, qs, times, check_box: bool = True) -> None:
        """ValueError naming the first problem of a planned trajectory."""
        if len(qs) != len(times) or not qs:
            raise ValueError("trajectory needs as many times as waypoints (and at least one)")
        prev, t_prev = np.asarray(q_from, float), 0.0
        for i, (q, t) in enumerate(zip(qs, times)):
            q = np.asarray(q, float)
            if not np.all(np.isfinite(q)):
                raise ValueError(f"waypoint {i} is not finite")
            if np.any(q < self.kin.lower - 1e-6) or np.any(q > self.kin.upper + 1e-6):
                raise ValueError(f"waypoint {i} is outside the joint limits")
            dt = t - t_prev
            if dt <= 0:
                raise ValueError(f"waypoint {i}: times must increase")
            speed = np.abs(q - prev) / dt
            if np.any(speed > self.vmax * (1 + 1e-6)):
                j = int(np.argmax(speed / self.vmax))
                raise ValueError(f"waypoint {i}: joint {self.kin.config.arm_joints[j]} would "
                                 f"move at {speed[j]:.2f} rad/s, limit {self.vmax[j]:.2f}")
            if check_box:
                n = max(1, int(math.ceil(float(np.max(np.abs(q - prev))) / 0.05)))
                for k in range(1, n + 1):
                    why = self.box_violation(prev + (q - prev) * (k / n))
                    if why:
                        raise ValueError(f"waypoint {i}: {why}")
            prev, t_prev = q, t

    # ------------------------------------------------------------ during
    def check_state(self, q, dq, force, q_cmd) -> str:
        """Why the arm must stop now ('' if all is well)."""
        c = self.config
        if dq is not None and len(dq):
            speed = np.abs(np.asarray(dq, float))
            lim = self.vmax * c.measured_speed_margin
            if np.any(speed > lim):
                j = int(np.argmax(speed / lim))
                return (f"joint {self.kin.config.arm_joints[j]} moves at {speed[j]:.2f} rad/s, "
                        f"above {lim[j]:.2f}")
        if force is not None:
            f = float(np.linalg.norm(force))
            if f > c.max_force:
                return f"contact force {f:.1f} N is above the limit {c.max_force:.1f} N"
        if q_cmd is not None:
            err = float(np.max(np.abs(np.asarray(q, float) - np.asarray(q_cmd, float))))
            if err > c.max_tracking_error:
                return f"tracking error {err:.3f} rad is above {c.max_tracking_error} rad"
        why = self.box_violation(q, slack=0.01)
        return why
