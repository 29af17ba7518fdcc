"""Inverse kinematics over one arm in a PyBullet client, used by
:class:`curious_robot.motion.arm_model.ArmModel` (so the simulated world and the hardware
backend place the hand alike)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class IKChain:
    """The arm joints of ``body`` in client ``p``, their limits, and the ee link."""

    p: object  # a pybullet BulletClient
    body: int
    ee: int  # link index of the ee point
    arm_joints: list[int]
    home: np.ndarray

    def __post_init__(self):
        p = self.p
        movable = [j for j in range(p.getNumJoints(self.body))
                   if p.getJointInfo(self.body, j)[2] != p.JOINT_FIXED]
        limits = {j: p.getJointInfo(self.body, j)[8:10] for j in movable}
        #: joint index -> its index in PyBullet's IK solution (movable joints only)
        self.dof = {j: i for i, j in enumerate(movable)}
        self.lower = np.array([limits[j][0] for j in self.arm_joints])
        self.upper = np.array([limits[j][1] for j in self.arm_joints])
        self._ik_lo = [limits[j][0] for j in movable]
        self._ik_hi = [limits[j][1] for j in movable]
        self._ik_range = [h - lo for lo, h in zip(self._ik_lo, self._ik_hi)]
        self._rest = [0.0] * len(movable)
        for j, v in zip(self.arm_joints, self.home):
            self._rest[self.dof[j]] = float(v)

    def set(self, q) -> None:
        for j, v in zip(self.arm_joints, q):
            self.p.resetJointState(self.body, j, float(v))

    def ee_position(self) -> np.ndarray:
        return np.asarray(self.p.getLinkState(self.body, self.ee,
                                              computeForwardKinematics=1)[4])

    def solve(self, pos, orn, seed, tol: float = 5e-4, rounds: int = 3) -> np.ndarray:
        """Joint positions placing the ee at ``pos`` / ``orn`` within the joint limits.

        Each round runs PyBullet's null-space IK (joint limits, rest pose = home) and then
        refines it with plain IK from that solution (up to 100 iterations each), clipped to
        the limits, until the position error is below ``tol`` metres; if ``seed`` does not
        get there, it starts again from the home pose. Moves the arm (the caller restores
        it if it must). Raises ValueError if the pose is unreachable (error above 5 mm)."""
        p = self.p
        q = np.array(seed, float)
        err, best = math.inf, q
        seeds = [q] if np.allclose(q, self.home) else [q, self.home.copy()]
        for q in seeds:
            for _ in range(rounds):
                self.set(q)
                sol = p.calculateInverseKinematics(
                    self.body, self.ee, pos, orn, lowerLimits=self._ik_lo,
                    upperLimits=self._ik_hi, jointRanges=self._ik_range,
                    restPoses=self._rest, maxNumIterations=100, residualThreshold=1e-5)
                q = np.clip([sol[self.dof[j]] for j in self.arm_joints], self.lower,
                            self.upper)
                self.set(q)
                # the null-space solve leaves millimetres of error: refine without it
                sol = p.calculateInverseKinematics(self.body, self.ee, pos, orn,
                                                   maxNumIterations=100,
                                                   residualThreshold=1e-6)
                q = np.clip([sol[self.dof[j]] for j in self.arm_joints], self.lower,
                            self.upper)
                self.set(q)
                e = float(np.linalg.norm(self.ee_position() - np.asarray(pos)))
                if e < err:
                    err, best = e, q
                if err < tol:
                    break
            if err < tol:
                break
        if err > max(5 * tol, 0.005):
            raise ValueError(f"pose {tuple(round(float(v), 3) for v in pos)} is out of the "
                             f"arm's reach (IK error {err * 1000:.1f} mm)")
        return best
