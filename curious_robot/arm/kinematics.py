"""The hardware backend's kinematics: the shared arm model
(:class:`curious_robot.motion.arm_model.ArmModel`) in a private PyBullet DIRECT client, a
pure kinematics engine (no physics is stepped, nothing but the arm is loaded)."""

from __future__ import annotations

import math

import numpy as np

from curious_robot.motion.arm_model import ArmModel
from curious_robot.motion.config import ArmConfig


class Kinematics(ArmModel):
    def __init__(self, arm: ArmConfig):
        import pybullet as pb
        from pybullet_utils import bullet_client

        super().__init__(bullet_client.BulletClient(connection_mode=pb.DIRECT), arm)

    def close(self) -> None:
        try:
            self.p.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass

    def ik(self, pos, orn, q_seed=None, tol: float = 5e-4, rounds: int = 3) -> np.ndarray:
        """As :meth:`ArmModel.ik`, seeded by ``q_seed`` or home."""
        return super().ik(pos, orn, q_seed if q_seed is not None else self.home, tol, rounds)

    def line(self, q_start, p1, orn, waypoint_m: float = 0.01) -> list[np.ndarray]:
        """Joint positions moving the ee in a straight line from where it is at ``q_start``
        to ``p1`` (one IK solution per ``waypoint_m``), excluding ``q_start``."""
        p0 = self.ee_pose(q_start)[0]
        p1 = np.asarray(p1, float)
        k = max(1, int(math.ceil(float(np.linalg.norm(p1 - p0)) / waypoint_m)))
        qs, q = [], np.asarray(q_start, float)
        for i in range(1, k + 1):
            q = self.ik(p0 + (p1 - p0) * (i / k), orn, q_seed=q)
            qs.append(q)
        return qs
