"""A fake ros2_control arm played by a PyBullet world, and an in-process RobotIO over it.

:class:`FakeArm` behaves as a joint trajectory controller plus a gripper position
controller, a wrist force sensor and an overhead RGB-D camera: at a fixed control rate it
moves its position command along the newest received trajectory (linear interpolation,
each joint clamped to its URDF velocity limit), lets PyBullet's motors follow the command
(real contacts: objects are pushed, lifted, pressed) and reports joint states, the
gripper width, the net contact force on the arm (what a wrist force/torque sensor sees)
and camera frames. ``nodes/fake_hardware.py`` serves it on ROS topics; :class:`LocalIO`
connects it straight to a :class:`~curious_robot.arm.hardware.HardwareBackend` in one
process, one control period per reading (tests, benchmarks: no wall clock involved).
"""

from __future__ import annotations

import threading

import numpy as np

from curious_robot.motion.results import TrajectoryRejected

from .backend import Frame
from .config import HardwareConfig
from .hardware import RobotIO, State


class FakeArm:
    def __init__(self, world, control_rate: float = 60.0, joint_prefix: str = ""):
        self.world = world
        a = world.config.arm
        p = world.p
        self.arm_joints = list(a.arm_joints)
        self.finger_joints = list(a.finger_joints)
        self.prefix = joint_prefix  # reported names get it (tests of the name check)
        self.period = 1.0 / control_rate
        self.steps = max(1, int(round(self.period / world.config.time_step)))
        self.period = self.steps * world.config.time_step  # whole physics steps
        index = {p.getJointInfo(world.arm, j)[1].decode(): j
                 for j in range(p.getNumJoints(world.arm))}
        self.vmax = np.array([p.getJointInfo(world.arm, index[n])[11] or 2.0
                              for n in self.arm_joints])
        self.time = 0.0
        self.lock = threading.RLock()
        self._cmd = world.arm_q()
        self._traj: tuple[float, np.ndarray, np.ndarray] | None = None
        self._finger = float(a.finger_open)
        #: a controller fault (tests): every trajectory is refused with this reason
        self.refuse = ""
        self.trajectories = 0  # received, for tests
        self.holds = 0  # hold or stop commands received (tests)
        self.stops = 0  # of those, controller stops (an empty trajectory)
        #: (commanded, actual) joint positions of every hold(q): how far a hold pulled
        self.hold_log: list[tuple[np.ndarray, np.ndarray]] = []
        self.world.hold_arm(self._finger)

    # ------------------------------------------------------------ commands
    def command(self, names, times, positions) -> str:
        """A JointTrajectory: joint ``names``, arrival ``times`` (s from now) and positions.
        Returns '' when accepted, else why it was rejected (as the controller would)."""
        names = [n[len(self.prefix):] if self.prefix and n.startswith(self.prefix) else n
                 for n in names]
        if self.refuse:
            return self.refuse
        if sorted(names) != sorted(self.arm_joints):
            return f"trajectory joints {names} do not match the controller's {self.arm_joints}"
        order = [names.index(n) for n in self.arm_joints]
        pos = np.asarray(positions, float)[:, order]
        t = np.asarray(times, float)
        if len(t) != len(pos) or len(t) == 0 or np.any(np.diff(t) <= 0) or t[0] < 0:
            return "trajectory times must be increasing and as many as the points"
        with self.lock:
            self.trajectories += 1
            self._traj = (self.time, np.concatenate([[0.0], t]),
                          np.vstack([self._cmd[None], pos]))
        return ""

    def hold(self, q=None) -> None:
        """A trajectory holding ``q`` at once, as a controller takes it: the arm goes to
        ``q`` (within its velocity limits), so a hold at a stale reading pulls a moving arm
        back to it. Without ``q``: :meth:`stop`."""
        if q is None:
            return self.stop()
        with self.lock:
            self.holds += 1
            self._traj = None
            self._cmd = np.asarray(q, float).copy()
            self.hold_log.append((self._cmd.copy(), self.world.arm_q()))

    def stop(self) -> None:
        """The controller's stop (an empty trajectory): it holds its own present state."""
        with self.lock:
            self.holds += 1
            self.stops += 1
            self._traj = None
            self._cmd = self.world.arm_q()

    def gripper(self, values) -> None:
        """Per-finger joint positions (the mean is used: the fingers are symmetric)."""
        lo, hi = 0.0, float(self.world.config.arm.finger_open)
        with self.lock:
            self._finger = float(np.clip(np.mean(values), lo, hi))
            self.world.drive_fingers(self._finger)

    @property
    def moving(self) -> bool:
        return self._traj is not None

    # ------------------------------------------------------------ the control loop
    def tick(self) -> None:
        """One control period: advance the command, let the motors follow, step physics."""
        with self.lock:
            t = self.time + self.period
            if self._traj is not None:
                t0, times, pos = self._traj
                el = t - t0
                target = np.array([np.interp(el, times, pos[:, j]) for j in range(pos.shape[1])])
                if el >= times[-1] and np.allclose(self._cmd, pos[-1], atol=1e-9):
                    self._traj = None
            else:
                target = self._cmd
            step = np.clip(target - self._cmd, -self.vmax * self.period,
                           self.vmax * self.period)
            self._cmd = self._cmd + step
            self.world.track([self._cmd], steps_per_point=self.steps)
            self.time = t

    def maintain(self) -> None:
        """Respawn objects that left the table (only while the arm is idle)."""
        with self.lock:
            if self._traj is None and sum(self.world.maintain().values()):
                self._cmd = self.world.arm_q()

    def reset(self) -> str:
        with self.lock:
            self.world.reset()
            self._traj = None
            self._cmd = self.world.arm_q()
            self._finger = float(self.world.config.arm.finger_open)
            self.world.hold_arm(self._finger)
            return f"{len(self.world.objects())} objects on the table"

    # ------------------------------------------------------------ sensors
    def joint_state(self):
        with self.lock:
            names, pos, vel, eff = self.world.joint_state()
        return [self.prefix + n for n in names], pos, vel, eff

    def wrench(self) -> np.ndarray:
        """Net contact force and torque (about the ee point) on the arm from everything
        else, table frame: (fx, fy, fz, tx, ty, tz)."""
        w = self.world
        with self.lock:
            f, tau = np.zeros(3), np.zeros(3)
            ee = w.ee_position()
            for c in w.p.getContactPoints(bodyA=w.arm):
                if c[2] == w.arm:
                    continue
                fc = (c[9] * np.asarray(c[7]) + c[10] * np.asarray(c[11])
                      + c[12] * np.asarray(c[13]))
                f += fc
                tau += np.cross(np.asarray(c[5]) - ee, fc)
        return np.concatenate([f, tau])

    def gripper_width(self) -> float:
        with self.lock:
            return self.world.gripper_width()

    def capture(self) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            return self.world.capture()

    def camera_info(self) -> tuple[int, int, list[float]]:
        c = self.world.camera
        return int(c.width), int(c.height), [c.fx, 0.0, c.cx, 0.0, c.fy, c.cy, 0.0, 0.0, 1.0]


class LocalIO(RobotIO):
    """RobotIO straight onto a FakeArm in this process: every reading is one control tick
    (simulated time), so a backend over it runs as fast as the physics allows."""

    def __init__(self, fake: FakeArm, config: HardwareConfig, answers: bool = True):
        self.fake = fake
        self.cfg = config
        #: True: a refused trajectory raises at once (the FollowJointTrajectory action
        #: path); False: it is dropped without a word (the topic path)
        self.answers = answers
        self.on_tick = None  # called after each tick (tests: e-stop at a given moment)
        self.plans: list = []

    def now(self) -> float:
        return self.fake.time

    def _read(self) -> State:
        names, pos, vel, _eff = self.fake.joint_state()
        by = dict(zip(names, zip(pos, vel)))
        q = np.array([by[n][0] for n in self.cfg.arm.arm_joints])
        dq = np.array([by[n][1] for n in self.cfg.arm.arm_joints])
        g = self.cfg.gripper
        width = g.width_of([by[n][0] for n in g.joints]) if all(n in by for n in g.joints) \
            else float("nan")
        return State(self.fake.time, q, dq, width, self.fake.wrench()[:3], self.fake.time)

    def state(self) -> State | None:
        try:
            return self._read()
        except KeyError:
            return None

    def wait_state(self, after: float, timeout: float) -> State | None:
        while self.fake.time <= after:
            self.fake.tick()
            if self.on_tick is not None:
                self.on_tick(self)
        return self.state()

    def reported_joints(self, timeout: float) -> list[str] | None:
        return self.fake.joint_state()[0]

    def camera_info(self, timeout: float):
        w, h, k = self.fake.camera_info()
        return w, h, k, "camera"

    def frame(self, after: float | None, timeout: float) -> Frame | None:
        rgb, depth = self.fake.capture()
        return Frame(rgb, depth, self.fake.time)

    def send_trajectory(self, times, positions) -> None:
        why = self.fake.command(list(self.cfg.arm.arm_joints), times, np.asarray(positions))
        if why and self.answers:
            raise TrajectoryRejected(f"the controller refused the trajectory: {why}")

    def hold(self, q) -> None:
        self.fake.hold(q)

    def stop(self) -> None:
        self.fake.stop()

    def send_gripper(self, values) -> None:
        self.fake.gripper(values)

    def publish_plan(self, times, positions, tool_points) -> None:
        self.plans.append((list(times), [np.asarray(q) for q in positions]))

    def reset_scene(self, seed):
        return True, self.fake.reset()
