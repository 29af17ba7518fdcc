"""Kinematics of an arm from its URDF, with PyBullet in DIRECT mode as a pure kinematics
engine (no physics is stepped, nothing but the arm is loaded; a private client).

The same conventions as the simulated world (:class:`curious_robot.world.World`): poses in
the table frame, the ee point is ``ArmConfig.ee_link``, grasp orientations point the
approach axis down with the fingers closing along a table angle.
"""

from __future__ import annotations

import math

import numpy as np

from curious_robot.world.config import ArmConfig, resolve_path
from curious_robot.world.ik import IKChain
from curious_robot.world.world import grasp_orientation


class Kinematics:
    def __init__(self, arm: ArmConfig):
        import pybullet as pb
        from pybullet_utils import bullet_client

        self.config = a = arm
        self.p = p = bullet_client.BulletClient(connection_mode=pb.DIRECT)
        self.body = p.loadURDF(str(resolve_path(a.urdf)), a.base_position,
                               p.getQuaternionFromEuler([0, 0, a.base_yaw]), useFixedBase=True)
        joints, links, limits = {}, {}, {}
        for j in range(p.getNumJoints(self.body)):
            info = p.getJointInfo(self.body, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
            limits[j] = (info[8], info[9], info[11])
        self.urdf_joints = list(joints)
        try:
            self._arm_j = [joints[n] for n in a.arm_joints]
            self._finger_j = [joints[n] for n in a.finger_joints]
            self._ee = links[a.ee_link]
        except KeyError as exc:
            raise ValueError(f"arm {a.name}: no joint or link named {exc.args[0]!r} in "
                             f"{a.urdf}") from None
        self.lower = np.array([limits[j][0] for j in self._arm_j])
        self.upper = np.array([limits[j][1] for j in self._arm_j])
        #: URDF velocity limits (rad/s; 2.0 where the URDF gives none)
        self.velocity_limits = np.array([limits[j][2] or 2.0 for j in self._arm_j])
        self.home = np.array(a.home)
        self._chain = IKChain(p, self.body, self._ee, self._arm_j, self.home)
        self._set(self.home, a.finger_open)
        # how far the closed fingertips reach beyond the ee point along the approach axis
        self._set(self.ik((0.0, 0.0, 0.3), self.grasp_orientation(0.0)), 0.0)
        low = min(p.getAABB(self.body, j)[0][2] for j in self._finger_j)
        self.tip_below_ee = float(self.ee_pose(self.q)[0][2] - low)
        self._set(self.home, a.finger_open)
        f = self.ee_pose(self.home)[1] @ np.array(a.finger_axis)
        self._home_finger_yaw = math.atan2(f[1], f[0])

    def close(self) -> None:
        try:
            self.p.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass

    # ------------------------------------------------------------ state
    @property
    def q(self) -> np.ndarray:
        return np.array([s[0] for s in self.p.getJointStates(self.body, self._arm_j)])

    def _set(self, q, finger: float | None = None) -> None:
        for j, v in zip(self._arm_j, q):
            self.p.resetJointState(self.body, j, float(v))
        if finger is not None:
            for j in self._finger_j:
                self.p.resetJointState(self.body, j, float(finger))

    def ee_pose(self, q) -> tuple[np.ndarray, np.ndarray]:
        """Table-frame position (3,) and rotation (3, 3) of the ee point at joints ``q``."""
        self._set(q)
        st = self.p.getLinkState(self.body, self._ee, computeForwardKinematics=1)
        return (np.asarray(st[4]),
                np.asarray(self.p.getMatrixFromQuaternion(st[5])).reshape(3, 3))

    def tool_point(self, q, offset: float) -> np.ndarray:
        """The point ``offset`` m beyond the ee point along the approach axis."""
        pos, rot = self.ee_pose(q)
        return pos - offset * (rot @ np.array(self.config.approach_axis))

    # ------------------------------------------------------------ orientations
    def grasp_orientation(self, angle: float, tilt: tuple[float, float] = (0.0, 0.0)):
        """Quaternion of the ee pointing down, fingers closing along ``angle`` (as World)."""
        return grasp_orientation(self.config, angle, tilt)

    def wrist_angle(self, angle: float) -> float:
        """The grasp angle equivalent to ``angle`` (mod pi) that turns the wrist least."""
        d = (angle - self._home_finger_yaw + math.pi / 2) % math.pi - math.pi / 2
        return self._home_finger_yaw + d

    # ------------------------------------------------------------ inverse kinematics
    def ik(self, pos, orn, q_seed=None, tol: float = 5e-4, rounds: int = 3) -> np.ndarray:
        """Joint positions placing the ee at ``pos`` / ``orn`` within the joint limits
        (:meth:`IKChain.solve`, seeded by ``q_seed`` or home); ValueError if out of reach
        (> 5 mm)."""
        return self._chain.solve(pos, orn, q_seed if q_seed is not None else self.home,
                                 tol, rounds)

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
