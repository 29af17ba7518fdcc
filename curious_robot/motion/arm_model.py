"""The arm model: an arm's URDF loaded into a PyBullet client, its joints, limits, ee
point, inverse kinematics, fingertip reach and wrist conventions. One class for both
backends: the simulated world loads it into its physics client
(:class:`curious_robot.world.World`), the hardware backend into a private DIRECT client as
a pure kinematics engine (:class:`curious_robot.arm.kinematics.Kinematics`).

Conventions: poses in the table frame; the ee point is ``ArmConfig.ee_link``; grasp
orientations point the approach axis down with the fingers closing along a table angle.
"""

from __future__ import annotations

import math

import numpy as np

from .config import ArmConfig, resolve_path
from .geometry import grasp_orientation, wrist_angle
from .ik import IKChain


class ArmModel:
    """``ArmModel(p, arm)`` loads ``arm``'s URDF (fixed base) into PyBullet client ``p``.

    ``on_load(model)``, if given, runs once the joints are known and before the model
    first moves the arm: the simulated world sets its frictions, visuals and collision
    filters there (where its physics was tuned with them; moving the arm first would
    reorder the collision pairs and change the simulation)."""

    def __init__(self, p, arm: ArmConfig, on_load=None):
        self.config = a = arm
        self.p = p
        self.body = p.loadURDF(str(resolve_path(a.urdf)), a.base_position,
                               p.getQuaternionFromEuler([0, 0, a.base_yaw]), useFixedBase=True)
        joints, links = {}, {}
        #: joint index -> (lower, upper, velocity limit) from the URDF
        self.limits: dict[int, tuple[float, float, float]] = {}
        for j in range(p.getNumJoints(self.body)):
            info = p.getJointInfo(self.body, j)
            joints[info[1].decode()] = j
            links[info[12].decode()] = j
            self.limits[j] = (info[8], info[9], info[11])
        #: every joint of the URDF by name, in index order
        self.urdf_joints = list(joints)
        try:
            self.arm_joints = [joints[n] for n in a.arm_joints]
            self.finger_joints = [joints[n] for n in a.finger_joints]
            self.ee = links[a.ee_link]
        except KeyError as exc:
            raise ValueError(f"arm {a.name}: no joint or link named {exc.args[0]!r} in "
                             f"{a.urdf}") from None
        #: the hand link's index (None if the URDF has no such link)
        self.hand = links.get(a.hand_link)
        self.lower = np.array([self.limits[j][0] for j in self.arm_joints])
        self.upper = np.array([self.limits[j][1] for j in self.arm_joints])
        #: URDF velocity limits (rad/s; 2.0 where the URDF gives none)
        self.velocity_limits = np.array([self.limits[j][2] or 2.0 for j in self.arm_joints])
        self.home = np.array(a.home)
        if on_load is not None:
            on_load(self)
        self.set(self.home, a.finger_open)
        self.chain = IKChain(p, self.body, self.ee, self.arm_joints, self.home)
        # how far the closed fingertips reach beyond the ee point along the approach axis
        self.set(self.ik((0.0, 0.0, 0.3), self.grasp_orientation(0.0)), 0.0)
        low = min(p.getAABB(self.body, j)[0][2] for j in self.finger_joints)
        self.tip_below_ee = float(self.ee_position()[2] - low)
        self.set(self.home, a.finger_open)
        # yaw of the finger axis at home: grasp angles are mapped to the equivalent one
        # (angle or angle + pi) that is closer to it, so the wrist turns less
        f = self.ee_rotation() @ np.array(a.finger_axis)
        self.home_finger_yaw = math.atan2(f[1], f[0])

    # ------------------------------------------------------------ state
    @property
    def q(self) -> np.ndarray:
        """The arm joints' present positions in the client."""
        return np.array([s[0] for s in self.p.getJointStates(self.body, self.arm_joints)])

    def fingers(self) -> list[float]:
        return [s[0] for s in self.p.getJointStates(self.body, self.finger_joints)]

    def set(self, q, finger: float | None = None) -> None:
        """Teleport the arm joints to ``q`` (and the fingers to ``finger``), zero velocity."""
        p = self.p
        for j, v in zip(self.arm_joints, q):
            p.resetJointState(self.body, j, float(v))
        if finger is not None:
            for j in self.finger_joints:
                p.resetJointState(self.body, j, float(finger))

    def ee_position(self) -> np.ndarray:
        st = self.p.getLinkState(self.body, self.ee, computeForwardKinematics=1)
        return np.asarray(st[4])

    def ee_rotation(self) -> np.ndarray:
        st = self.p.getLinkState(self.body, self.ee, computeForwardKinematics=1)
        return np.asarray(self.p.getMatrixFromQuaternion(st[5])).reshape(3, 3)

    def ee_pose(self, q) -> tuple[np.ndarray, np.ndarray]:
        """Table-frame position (3,) and rotation (3, 3) of the ee point at joints ``q``
        (moves the model's arm there)."""
        self.set(q)
        st = self.p.getLinkState(self.body, self.ee, computeForwardKinematics=1)
        return (np.asarray(st[4]),
                np.asarray(self.p.getMatrixFromQuaternion(st[5])).reshape(3, 3))

    def tool_point(self, q, offset: float) -> np.ndarray:
        """The point ``offset`` m beyond the ee point along the approach axis at ``q``."""
        pos, rot = self.ee_pose(q)
        return pos - offset * (rot @ np.array(self.config.approach_axis))

    # ------------------------------------------------------------ orientations
    def grasp_orientation(self, angle: float, tilt: tuple[float, float] = (0.0, 0.0)):
        """Quaternion of the ee pointing down, fingers closing along ``angle``."""
        return grasp_orientation(self.config, angle, tilt)

    def wrist_angle(self, angle: float) -> float:
        """The grasp angle equivalent to ``angle`` (mod pi) that turns the wrist least."""
        return wrist_angle(self.home_finger_yaw, angle)

    # ------------------------------------------------------------ inverse kinematics
    def ik(self, pos, orn, q_seed=None, tol: float = 5e-4, rounds: int = 3) -> np.ndarray:
        """Joint positions placing the ee at ``pos`` / ``orn`` within the joint limits
        (:meth:`IKChain.solve`, seeded by ``q_seed`` or the model's present joints). Leaves
        the arm and fingers where they were. ValueError if out of reach (> 5 mm)."""
        q_now = self.q
        fingers = self.fingers()
        try:
            return self.chain.solve(pos, orn, q_seed if q_seed is not None else q_now,
                                    tol, rounds)
        finally:
            self.set(q_now)
            for j, v in zip(self.finger_joints, fingers):
                self.p.resetJointState(self.body, j, v)
