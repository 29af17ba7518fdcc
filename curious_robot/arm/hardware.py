"""The hardware backend: the robot protocol (:class:`curious_robot.motion.robot.Robot`)
over joint trajectories sent through a :class:`RobotIO` (ros2_control topics in the node,
or an in-process fake arm in tests), every trajectory checked by the
:class:`~curious_robot.arm.safety.SafetyLayer` before it is sent and at every joint-state
reading while it runs (a force reading that is not finite or older than
``safety.state_timeout`` stops the arm too).

The primitives are the motion scripts of :mod:`curious_robot.motion`, the same objects the
simulation runs, with this arm's parameters (:class:`MotionConfig`); what the simulation
reads from its ground truth is measured here instead: the surface height from the
calibrated depth image, contact from the force sensor, the grasp outcome from the gripper
width, the press depth from the joint states (forward kinematics), a push's object motion
from the depth images before and after. Object ids and truth are unknown (empty). A stop
(cancel, e-stop) raises :class:`~curious_robot.motion.results.Aborted` to the caller with
the arm holding where it stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from curious_robot.motion.config import MotionParams
from curious_robot.motion.geometry import quat_from_matrix, wrap_angle
from curious_robot.motion.guard import force_fault
from curious_robot.motion.inspect import INSPECT_POINT
from curious_robot.motion.results import (Aborted, DryRunDone, PushResult, SafetyStop,
                                          TrajectoryRejected)
from curious_robot.motion.robot import Pose, Touch

from .backend import ArmBackend, CameraModel, Frame, ResetOutcome, StartupRefused
from .config import HardwareConfig
from .safety import SafetyLayer

log = logging.getLogger(__name__)


@dataclass
class State:
    """One joint-state reading, ordered as the configured arm joints."""

    t: float  # s, the IO's clock (monotonic)
    q: np.ndarray
    dq: np.ndarray
    gripper_width: float
    force: np.ndarray | None = None  # N, newest wrench (3,)
    force_t: float | None = None  # when the force reading arrived (the IO's clock)


class RobotIO(ABC):
    """The arm's topics as the backend uses them; the node implements it over ROS
    (:mod:`curious_robot.arm.ros_io`), tests over an in-process fake arm."""

    @abstractmethod
    def now(self) -> float:
        ...

    @abstractmethod
    def state(self) -> State | None:
        """The newest reading (None before the first)."""

    @abstractmethod
    def wait_state(self, after: float, timeout: float) -> State | None:
        """The first reading newer than ``after`` (None after ``timeout`` s)."""

    @abstractmethod
    def reported_joints(self, timeout: float) -> list[str] | None:
        """Joint names of the robot's joint states (None if none came)."""

    @abstractmethod
    def camera_info(self, timeout: float) -> tuple[int, int, list[float], str] | None:
        """(width, height, K row-major, frame_id) of the camera (None if none came)."""

    @abstractmethod
    def frame(self, after: float | None, timeout: float) -> Frame | None:
        """Newest RGB-D frame (received after ``after`` if given), depth in metres."""

    @abstractmethod
    def send_trajectory(self, times: list[float], positions: list[np.ndarray]) -> None:
        """Start a trajectory now (replacing any running one). Raises
        :class:`~curious_robot.motion.results.TrajectoryRejected` where the controller
        answers (an action goal it refuses); a topic says nothing, see ``execute``'s follow
        check."""

    def controller_problem(self, timeout: float) -> str:
        """At start-up: why the controller cannot take trajectories ('' when it can; the
        topic path cannot tell)."""
        return ""

    def trajectory_error(self) -> str:
        """Why the controller gave up the running trajectory ('' while it has not): an
        aborted action goal and its error code. The topic path never knows."""
        return ""

    @abstractmethod
    def hold(self, q: np.ndarray) -> None:
        """Stop: a trajectory holding ``q`` (the present position), at once."""

    def stop(self) -> None:
        """Stop where the controller is now (e-stop, cancel). On ros2_control an empty
        trajectory: the controller drops the running one and holds its own present state,
        so a joint reading that lags a fast motion cannot pull the arm back to it."""
        s = self.state()
        if s is not None:
            self.hold(s.q)

    @abstractmethod
    def send_gripper(self, values: list[float]) -> None:
        ...

    def publish_plan(self, times, positions, tool_points) -> None:
        """Dry run: show a planned trajectory (and its tool path) without sending it."""
        return None

    def reset_scene(self, seed: int | None) -> tuple[bool, str] | None:
        """Ask the scene to be reset, where something can (fake hardware); None: cannot."""
        return None


# ---------------------------------------------------------------- image helpers
def warp_top_down(cam: CameraModel, frame: Frame, x: float, y: float, extent: float,
                  size: int, z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned top-down patch (columns +x, rows -y) of ``extent`` m centred on table
    point (x, y, z), resampled from the camera image through the calibration: rgb (size,
    size, 3) uint8 and the table-frame height (m) of what is seen at each pixel."""
    import cv2

    res = extent / size
    c = (size - 1) / 2.0
    v, u = np.mgrid[0:size, 0:size]
    pts = np.stack([x + (u - c) * res, y - (v - c) * res, np.full(u.shape, z, float)], -1)
    mu, mv = cam.project(pts)
    mu, mv = mu.astype(np.float32), mv.astype(np.float32)
    rgb = cv2.remap(frame.rgb, mu, mv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    heights = cam.table_points(frame.depth)[..., 2].astype(np.float32)
    h = cv2.remap(np.nan_to_num(heights, nan=0.0), mu, mv, cv2.INTER_NEAREST,
                  borderMode=cv2.BORDER_CONSTANT)
    return np.ascontiguousarray(rgb), h


def surface_height(heights: np.ndarray, extent: float, radius_m: float) -> float:
    """Highest point within ``radius_m`` of a height patch's centre (0: the table)."""
    n = heights.shape[0]
    r = max(1, int(round(radius_m * n / extent)))
    win = heights[n // 2 - r:n // 2 + r, n // 2 - r:n // 2 + r]
    return max(0.0, float(np.max(win)) if win.size else 0.0)


def blobs(cam: CameraModel, depth: np.ndarray, min_height: float, min_pixels: int = 8):
    """Objects in an overhead depth image: list of (centroid xy, principal angle, pixels)."""
    import cv2

    pts = cam.table_points(depth)
    mask = (np.nan_to_num(pts[..., 2], nan=0.0) > min_height).astype(np.uint8)
    mask = cv2.erode(mask, np.ones((2, 2), np.uint8))
    n, labels = cv2.connectedComponents(mask)
    out = []
    for i in range(1, n):
        sel = labels == i
        if sel.sum() < min_pixels:
            continue
        xy = pts[sel][:, :2]
        c = xy.mean(0)
        cov = np.cov((xy - c).T) if len(xy) > 2 else np.eye(2)
        w, vec = np.linalg.eigh(cov)
        out.append((c, math.atan2(vec[1, -1], vec[0, -1]), int(sel.sum())))
    return out


def _not_following(q_from, q, tq, path, el: float) -> str:
    """The follow check: ``el`` s into a trajectory (``tq``, ``path``; lag already taken
    off), why the arm at ``q`` is not following it ('' when it is). Not following: the
    command has moved some joint more than 0.02 rad and the arm has covered less than a
    quarter of that (a controller that rejected the trajectory on its topic, or never got
    it)."""
    want = np.array([np.interp(el, tq, path[:, j]) for j in range(path.shape[1])])
    commanded = float(np.max(np.abs(want - q_from)))
    moved = float(np.max(np.abs(np.asarray(q) - q_from)))
    if commanded > 0.02 and moved < 0.25 * commanded:
        return (f"the controller is not following the trajectory: {el:.2f} s in, the arm "
                f"moved {moved:.3f} rad of the {commanded:.3f} rad commanded (a rejected "
                "trajectory? see the controller's log)")
    return ""


def _seg_dist(p, a, b) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(p - (a + t * ab)))


# ---------------------------------------------------------------- the backend
class HardwareBackend(ArmBackend):
    kind = "hardware"

    def __init__(self, config: HardwareConfig, io: RobotIO, kinematics=None):
        from .kinematics import Kinematics

        self.cfg = config
        self.io = io
        self.kin = kinematics if kinematics is not None else Kinematics(config.arm)
        m = config.motion
        self.patch_extent = float(m.patch_extent)
        self.tool_offset = m.poke_tool_offset if m.poke_tool_offset >= 0 else \
            self.kin.tip_below_ee
        self.safety = SafetyLayer(config.safety, self.kin, self.kin.tip_below_ee)
        # the robot protocol's attributes (curious_robot.motion.robot.Robot)
        self.arm = self.kin
        self.params = MotionParams(
            approach_height=m.approach_height, lift_height=m.lift_height,
            grasp_depth=m.grasp_depth, min_grasp_height=m.min_grasp_height,
            closed_width=config.gripper.closed_width, push_height=m.push_height,
            push_speed=m.push_speed, poke_force_limit=m.poke_force_limit,
            poke_max_depth=m.poke_max_depth, poke_speed=m.poke_speed,
            inspect_views=m.inspect_views, lift_speed=m.lift_speed,
            descend_speed=m.descend_speed, inspect_speed_scale=m.inspect_speed_scale,
            open_width=config.gripper.open_width)
        self.poke_offset = self.tool_offset
        self.floor = config.safety.workspace[2][0]
        self.estop = threading.Event()
        self._motion_end = io.now()
        self._dry_q: np.ndarray | None = None
        self._camera: CameraModel | None = None
        self.sent = 0  # trajectories and gripper commands sent (tests check refusals)

    # ------------------------------------------------------------ start-up checks
    def start(self) -> None:
        """Refuse (StartupRefused) unless the robot reports the configured joints and the
        camera matches the calibration."""
        cfg = self.cfg
        names = self.io.reported_joints(cfg.startup_timeout)
        if names is None:
            raise StartupRefused(f"no joint states on {cfg.topics.joint_states} within "
                                 f"{cfg.startup_timeout:.0f} s")
        want = list(cfg.arm.arm_joints)
        missing = [n for n in want if n not in names]
        if missing:
            raise StartupRefused(f"the robot reports joints {sorted(names)}, the "
                                 f"configuration expects {want}: missing {missing}")
        grip = self.io.state()
        if grip is None or not math.isfinite(grip.gripper_width):
            raise StartupRefused(f"no gripper joints {list(cfg.gripper.joints)} on "
                                 f"{cfg.topics.gripper_state}")
        # every force limit reads this sensor: no motion before it has spoken sense
        deadline = self.io.now() + cfg.startup_timeout
        while True:
            s = self.io.wait_state(self.io.now(), min(cfg.safety.state_timeout,
                                                      cfg.startup_timeout))
            if s is not None and s.force is not None and np.all(np.isfinite(s.force)):
                break
            if self.io.now() >= deadline:
                raise StartupRefused(f"no finite force reading on {cfg.topics.wrench} within "
                                     f"{cfg.startup_timeout:.0f} s: every force limit "
                                     "depends on it")
        why = self.io.controller_problem(cfg.startup_timeout)
        if why:
            raise StartupRefused(why)
        info = self.io.camera_info(cfg.startup_timeout)
        if info is None:
            raise StartupRefused(f"no camera_info on {cfg.topics.camera_info} within "
                                 f"{cfg.startup_timeout:.0f} s")
        width, height, k, frame_id = info
        why = cfg.calibration.mismatch(width, height, k)
        if why:
            raise StartupRefused(f"calibration does not match the camera: {why}")
        self._camera = CameraModel(int(width), int(height), float(k[0]), float(k[4]),
                                   float(k[2]), float(k[5]), cfg.camera_in_table(),
                                   frame_id or "camera")

    # ------------------------------------------------------------ sensing
    def camera_model(self) -> CameraModel:
        if self._camera is None:
            c = self.cfg.calibration
            self._camera = CameraModel(c.width, c.height, c.fx, c.fy, c.cx, c.cy,
                                       self.cfg.camera_in_table())
        return self._camera

    def frame(self, fresh: bool = False) -> Frame | None:
        return self.io.frame(self._motion_end if fresh else None, timeout=2.0 if fresh else 0.0)

    def joint_state(self):
        s = self.io.state()
        if s is None:
            return None
        n = len(s.q)
        g = self.cfg.gripper.command_for(max(s.gripper_width, 0.0))
        return (list(self.cfg.arm.arm_joints) + list(self.cfg.gripper.joints)[:len(g)],
                list(s.q) + g, list(s.dq) + [0.0] * len(g), [0.0] * (n + len(g)))

    def _patch(self, x: float, y: float, extent: float | None = None, z: float = 0.0):
        f = self.io.frame(None, timeout=2.0)
        if f is None:
            raise ValueError("no camera frame yet")
        m = self.cfg.motion
        return warp_top_down(self.camera_model(), f, x, y, extent or m.patch_extent,
                             m.patch_size, z)

    def patch(self, x: float, y: float) -> np.ndarray:
        return self._patch(x, y)[0]

    def reset(self, seed: int | None = None, n_objects: int = 0) -> ResetOutcome:
        self._home()
        r = self.io.reset_scene(seed)
        if r is None:
            return ResetOutcome(True, "arm home; reset the table by hand", [])
        self._motion_end = self.io.now()
        return ResetOutcome(r[0], r[1], [])

    # ------------------------------------------------------------ e-stop
    def emergency_stop(self) -> None:
        self.estop.set()
        if self._dry_q is None:
            self.io.stop()

    def release_stop(self) -> None:
        self.estop.clear()

    # ------------------------------------------------------------ motion execution
    def _q(self) -> np.ndarray:
        """The present joints, where a plan starts: only from a fresh reading."""
        if self._dry_q is not None:
            return self._dry_q
        s = self.io.state()
        if s is None:
            raise SafetyStop("no joint states")
        age = self.io.now() - s.t
        if age > self.cfg.safety.state_timeout:
            raise SafetyStop(f"the newest joint reading is {age:.2f} s old (more than "
                             f"{self.cfg.safety.state_timeout} s): a plan starts only from a "
                             "fresh one")
        return s.q

    def _state(self) -> State:
        s = self.io.state()
        if s is None:
            raise SafetyStop("no joint states")
        return s

    def _next_state(self, after: float, should_stop) -> State:
        """The first joint reading newer than ``after``, during a motion: aborts on a stop
        or cancel first, and stops safely when readings stop coming."""
        self._check_stop(should_stop)
        s = self.io.wait_state(after, self.cfg.safety.state_timeout)
        if s is None:
            raise SafetyStop(f"no joint states for {self.cfg.safety.state_timeout} s")
        return s

    def _check_stop(self, should_stop) -> None:
        if self.estop.is_set() or (should_stop is not None and should_stop()):
            if self._dry_q is None:
                self.io.stop()
            raise Aborted()

    def plan(self, qs, min_durations=None, q_from=None, check_box: bool = True):
        """(q_from, times) of waypoints ``qs``, checked by the safety layer (ValueError)."""
        q_from = self._q() if q_from is None else q_from
        times = self.safety.time_plan(q_from, qs, min_durations)
        self.safety.check_plan(q_from, qs, times, check_box=check_box)
        return q_from, times

    def execute(self, qs, min_durations=None, guard=None, should_stop=None, progress=None,
                span: tuple[float, float] = (0.0, 1.0), check_box: bool = True) -> str:
        """Run a trajectory through ``qs`` under the safety layer; returns "done" or "guard"
        (``guard(state)`` said stop: the arm holds there). Raises ValueError before sending
        (plan refused), Aborted (e-stop, cancel), TrajectoryRejected (the controller refused
        or gave up the trajectory, is not following it, or did not reach its goal within
        1 s of its end) or SafetyStop (another check failed while moving); after either of
        the last two the controller has been told to stop."""
        self._check_stop(should_stop)
        qs = [np.asarray(q, float) for q in qs]
        q_from, times = self.plan(qs, min_durations, check_box=check_box)
        if self.cfg.safety.dry_run:
            tips = [self.kin.tool_point(q, self.kin.tip_below_ee) for q in qs]
            self.io.publish_plan(times, qs, tips)
            self._dry_q = qs[-1]
            return "done"
        t0 = self.io.now()
        last = t0
        duration = times[-1]
        tq = np.array([0.0] + list(times))
        path = np.stack([q_from] + qs)
        prev_force = None
        follow_at = self.cfg.safety.command_lag + self.cfg.safety.follow_timeout
        try:
            self.io.send_trajectory(times, qs)
            self.sent += 1
            while True:
                s = self._next_state(last, should_stop)
                last = s.t
                el = s.t - t0
                why = self.io.trajectory_error()
                if why:
                    raise TrajectoryRejected(f"the controller gave up the trajectory: {why}")
                # a force sensor that reports nonsense or went silent stops the arm
                why = force_fault(s.force, s.force_t, s.t, self.cfg.safety.state_timeout)
                if why:
                    raise SafetyStop(why)
                if guard is not None and guard(s):
                    self.io.hold(s.q)
                    self._settle(s.q)
                    return "guard"
                # the arm follows its command with some lag (transport, controller): the
                # reading is compared with the nearest command of the last `lag` seconds
                lags = np.linspace(0.0, self.cfg.safety.command_lag, 5)
                cands = [np.array([np.interp(el - d, tq, path[:, j])
                                   for j in range(path.shape[1])]) for d in lags]
                q_cmd = min(cands, key=lambda c: float(np.max(np.abs(c - s.q))))
                why = self.safety.check_state(s.q, s.dq, _debounced(s.force, prev_force),
                                              q_cmd)
                prev_force = s.force
                # the follow check: once, follow_timeout into the motion, and whenever
                # another check fails (an arm that never started shows as tracking error)
                if (why or el >= follow_at) and el > self.cfg.safety.command_lag:
                    follow_at = float("inf")
                    late = _not_following(q_from, s.q, tq, path,
                                          el - self.cfg.safety.command_lag)
                    if late:
                        raise TrajectoryRejected(late)
                if why:
                    raise SafetyStop(why)
                if progress is not None:
                    lo, hi = span
                    progress(lo + (hi - lo) * min(1.0, el / duration))
                if el >= duration and float(np.max(np.abs(s.q - qs[-1]))) < 0.01:
                    return "done"
                if el > duration + 1.0:  # what comes next would start from a wrong pose
                    raise TrajectoryRejected(
                        "the trajectory's goal was not reached within 1 s of its end "
                        f"(error {float(np.max(np.abs(s.q - qs[-1]))):.3f} rad): the "
                        "controller did not finish it")
        except SafetyStop:
            # the controller's own stop (ros2_control: an empty trajectory), never a hold at
            # a reading that may be stale: that would pull a moving arm back to it
            self.io.stop()
            raise
        finally:
            self._motion_end = self.io.now()

    def _settle(self, q_hold, timeout: float = 0.5) -> None:
        """After a guarded stop: wait until the arm rests at the hold position (the contact
        force relaxes) before the next motion's checks begin."""
        t_end = self.io.now() + timeout
        s = self.io.state()
        while s is not None and s.t < t_end:
            if float(np.max(np.abs(s.dq))) < 0.02 and float(np.max(np.abs(s.q - q_hold))) < 0.005:
                return
            s = self.io.wait_state(s.t, self.cfg.safety.state_timeout)

    def gripper(self, width: float, should_stop=None, stall: bool = False) -> float:
        """Command an opening and wait until it is reached (or, with ``stall``, until the
        fingers stop on an object); returns the measured width."""
        g = self.cfg.gripper
        self._check_stop(should_stop)
        if self.cfg.safety.dry_run:
            return width
        self.io.send_gripper(g.command_for(width))
        self.sent += 1
        t0 = self.io.now()
        last, hist = t0, []
        while True:
            s = self._next_state(last, should_stop)
            last = s.t
            # the arm holds still while the fingers move: a squeeze on a slanted object
            # presses it into the table, bounded by the gripper's own force, not a crash
            why = self.safety.check_state(s.q, s.dq, None, None)
            if why:
                self.io.hold(s.q)
                raise SafetyStop(why)
            hist.append((s.t, s.gripper_width))
            if abs(s.gripper_width - width) < 0.002:
                return s.gripper_width
            old = [w for t, w in hist if t <= s.t - 0.1]
            if stall and s.t - t0 > 0.15 and old and abs(old[-1] - s.gripper_width) < 5e-4:
                return s.gripper_width
            if s.t - t0 > g.timeout:
                return s.gripper_width

    def _line_to(self, p1, orn, speed: float, **kw) -> str:
        q0 = self._q()
        qs = self.kin.line(q0, p1, orn)
        p0 = self.kin.ee_pose(q0)[0]
        seg = float(np.linalg.norm(np.asarray(p1) - p0)) / len(qs)
        return self.execute(qs, [seg / speed] * len(qs), **kw)

    def _retreat(self, should_stop=None) -> None:
        """Straight up to the approach height if the hand is below it (after a stop)."""
        q = self._q()
        tip = self.kin.tool_point(q, self.kin.tip_below_ee)
        h = self.cfg.motion.approach_height
        if tip[2] < h - 0.01:
            ee, rot = self.kin.ee_pose(q)
            orn = quat_from_matrix(rot)
            self._line_to((ee[0], ee[1], ee[2] + h - tip[2]), orn,
                          self.cfg.motion.lift_speed, should_stop=should_stop,
                          check_box=False)

    def _home(self, should_stop=None) -> None:
        self._retreat(should_stop)
        self.execute([self.kin.home], should_stop=should_stop)

    def _begin(self) -> None:
        self._dry_q = self._state().q.copy() if self.cfg.safety.dry_run else None

    def _end(self, what: str) -> None:
        if self.cfg.safety.dry_run:
            self._dry_q = None
            raise DryRunDone(f"{what} planned and published, not executed")

    # ------------------------------------------------------------ the robot protocol
    @property
    def robot(self):
        """This backend is the motion scripts' robot
        (:class:`curious_robot.motion.robot.Robot`)."""
        return self

    def target_area(self):
        (x0, x1), (y0, y1) = self.safety.config.target_workspace
        return (float(x0), float(x1)), (float(y0), float(y1))

    def check_target(self, x, y, what):
        self.safety.check_target(x, y, what)

    def check_plan(self, waypoints, from_home=False, then_home=True):
        """Solve :class:`Pose` waypoints (IK seeded by the previous waypoint) and check the
        whole trajectory with the safety layer before anything moves (ValueError)."""
        q_from = self.kin.home if from_home else self._q()
        qs, prev = [], self.kin.home
        for w in waypoints:
            if isinstance(w, Pose):
                w = self.kin.ik(w.position, w.orientation, q_seed=prev, tol=w.tol)
            qs.append(np.asarray(w, float))
            prev = qs[-1]
        if then_home:
            qs.append(self.kin.home)
        self.plan(qs, q_from=q_from)

    def check_stop(self, should_stop):
        self._check_stop(should_stop)

    def prepare(self):
        return {"recovered": 0.0}  # nothing to maintain; the truth is dropped (report)

    def steps(self):
        return 0

    def begin(self, should_stop):
        """Dry run: plans start from the present joints; leave a low pose straight up."""
        self._begin()
        self._retreat(should_stop)

    def end(self, what):
        self._end(what)

    def after_abort(self, exc):
        raise exc  # the node reports the stop; the arm holds where it stopped

    def report(self, result):
        """No ground truth on hardware; a push that ran to the end succeeded."""
        result.truth = {}
        if isinstance(result, PushResult):
            result.success = True
        return result

    def look(self, x, y):
        rgb, heights = self._patch(x, y)
        return _HeightView(rgb, None, heights, self.cfg.motion.patch_extent)

    def scene(self, fresh=False):
        f = (self.frame(fresh=True) if fresh else None) or self.io.frame(None, timeout=2.0)
        if f is None:
            raise ValueError("no camera frame yet")
        return f

    def object_near(self, x, y):
        return ""  # object ids are unknown on hardware

    def grasp_truth(self, object_id, angle, x, y):
        return {}

    def mark_objects(self):
        return None

    def lifted(self, mark):
        return None  # the gripper width tells whether something is held

    def object_motion(self, mark, before, after, start, end, object_id):
        return (object_id, *self._object_motion(before, after, start, end))

    def holding(self, object_id):
        s = self._state() if not self.cfg.safety.dry_run else None
        return s is None or s.gripper_width > self.cfg.gripper.closed_width

    def view_held(self, object_id):
        f = self.frame(fresh=True)
        if f is None:
            return None
        m = self.cfg.motion
        return warp_top_down(self.camera_model(), f, INSPECT_POINT[0], INSPECT_POINT[1],
                             m.view_extent, m.patch_size, INSPECT_POINT[2] - 0.05)[0]

    def inspect_target(self, object_id, x, y, angle):
        """The given grasp (object ids are unknown on hardware)."""
        self.safety.check_target(x, y, "inspect grasp point")
        return object_id, x, y, angle

    def gripper_width(self):
        s = self._state() if not self.cfg.safety.dry_run else None
        return float(s.gripper_width) if s is not None else 0.0

    def joints(self):
        return self._q()

    def ee_position(self):
        return self.kin.ee_pose(self._q())[0]

    def ik(self, pos, orn, q_seed=None, tol=5e-4):
        return self.kin.ik(pos, orn, q_seed=q_seed, tol=tol)

    def poke_force_limit(self, requested):
        m, c = self.cfg.motion, self.cfg.safety
        return min(requested if requested > 0 else m.poke_force_limit, c.max_poke_force)

    def preset_gripper(self, closed, should_stop):
        self.gripper(0.0 if closed else self.cfg.gripper.open_width, should_stop)

    def close_gripper(self, should_stop):
        self.gripper(0.0, should_stop, stall=True)

    def open_gripper(self, should_stop):
        self.gripper(self.cfg.gripper.open_width, should_stop)

    def approach(self, q, should_stop, progress=None, span=(0.0, 1.0)):
        self.execute([q], should_stop=should_stop, progress=progress, span=span)
        return True

    def descend(self, q_top, q_bottom, bottom, orn, step_m, length, should_stop,
                progress=None, span=(0.0, 1.0)):
        """A straight line down at ``descend_speed``, stopped by the contact force."""
        z0 = float(self.kin.ee_pose(self._q())[0][2])
        how = self._line_to(bottom, orn, self.cfg.motion.descend_speed,
                            guard=self._contact_guard(), should_stop=should_stop,
                            progress=progress, span=span)
        if how != "guard":
            return 1.0
        z = float(self.kin.ee_pose(self._q())[0][2])
        frac = (z0 - z) / (z0 - bottom[2]) if z0 > bottom[2] else 0.0
        return float(min(max(frac, 0.0), math.nextafter(1.0, 0.0)))

    def move_joints(self, q, should_stop, speed_scale=1.0, duration=None, progress=None,
                    span=(0.0, 1.0)):
        """One trajectory point, at the safety layer's speed limits (or in ``duration``)."""
        self.execute([q], None if duration is None else [duration], should_stop=should_stop,
                     progress=progress, span=span)

    def move_line(self, pos, orn, speed, should_stop, progress=None, span=(0.0, 1.0)):
        self._line_to(pos, orn, speed, should_stop=should_stop, progress=progress, span=span)

    def press(self, top, bottom, q_top, q_bottom, orn, guard, should_stop, progress=None,
              span=(0.0, 1.0)):
        """Let the arm settle, tare the force, then a straight line down at ``poke_speed``
        under ``guard`` (depth from the joint states by forward kinematics, force the
        tared wrench norm); then straight up to the approach height."""
        m, off = self.cfg.motion, self.tool_offset
        x, y, z_bottom = bottom
        if self.cfg.safety.dry_run:
            self._line_to((x, y, z_bottom + off), orn, m.poke_speed, should_stop=should_stop)
        else:
            settle_until = self.io.now() + 0.2
            s = self._state()
            while s.t < settle_until:  # let the arm settle, then tare the force
                self._check_stop(should_stop)
                s = self.io.wait_state(s.t, self.cfg.safety.state_timeout) or s
            tare = s.force if s.force is not None else np.zeros(3)
            z0 = float(self.kin.tool_point(s.q, off)[2])

            def press_guard(st: State) -> bool:
                d = z0 - float(self.kin.tool_point(st.q, off)[2])
                f = float(np.linalg.norm(st.force - tare)) if st.force is not None else 0.0
                return guard(d, f)

            self._line_to((x, y, z_bottom + off), orn, m.poke_speed, guard=press_guard,
                          should_stop=should_stop, progress=progress, span=span)
        self._line_to((x, y, m.approach_height + off), orn, m.lift_speed,
                      should_stop=should_stop)
        return Touch()

    def hold_others(self, object_id):
        return contextlib.nullcontext()  # real objects stay put without help

    def dwell(self, seconds):
        return None  # trajectories end at rest: execute waits for the goal

    def settle(self):
        return None

    def finish(self, should_stop, closed=False):
        """Gripper open (unless ``closed``), straight up if low, home."""
        if not closed:
            self.gripper(self.cfg.gripper.open_width, should_stop)
        self._home(should_stop)
        return 0.0

    # ------------------------------------------------------------ helpers
    def _contact_guard(self, limit: float | None = None):
        s0 = self._state() if not self.cfg.safety.dry_run else None
        tare = s0.force if s0 is not None and s0.force is not None else np.zeros(3)
        lim = self.cfg.safety.contact_force if limit is None else limit

        def guard(s: State) -> bool:
            return s.force is not None and float(np.linalg.norm(s.force - tare)) > lim
        return guard

    def _object_motion(self, before: Frame, after: Frame, start, end):
        """Motion (dx, dy, dyaw) of the object nearest to the push path, from the depth
        images before and after (0s if none is found)."""
        cam, thr = self.camera_model(), self.cfg.motion.table_height_threshold
        b, a = blobs(cam, before.depth, thr), blobs(cam, after.depth, thr)
        if not b or not a:
            return 0.0, 0.0, 0.0
        s, e = np.asarray(start, float), np.asarray(end, float)
        # the first object along the stroke: near the path, nearest to its start
        near = [o for o in b if _seg_dist(o[0], s, e) < 0.06] or b
        c0, yaw0, _n = min(near, key=lambda o: (_seg_dist(o[0], s, e) > 0.03,
                                                float(np.linalg.norm(o[0] - s))))
        c1, yaw1, _n = min(a, key=lambda o: float(np.linalg.norm(o[0] - c0)))
        d = c1 - c0
        if float(np.linalg.norm(d)) > np.linalg.norm(e - s) + 0.05:
            return 0.0, 0.0, 0.0
        dyaw = (wrap_angle(yaw1 - yaw0) + math.pi / 2) % math.pi - math.pi / 2
        return float(d[0]), float(d[1]), float(dyaw)

    def close(self) -> None:
        self.kin.close()


def _debounced(force, prev):
    """The smaller of two consecutive force readings: a contact force must last two
    control periods to stop a motion (impacts give one-sample spikes)."""
    if force is None or prev is None:
        return None if force is None else np.zeros(3)
    return force if np.linalg.norm(force) <= np.linalg.norm(prev) else prev


@dataclass
class _HeightView:
    """A patch resampled from the camera, with the table-frame height of each pixel."""

    rgb: np.ndarray
    depth: np.ndarray | None
    height_map: np.ndarray
    extent: float

    def surface(self, radius_m: float) -> float:
        return surface_height(self.height_map, self.extent, radius_m)

    def heights(self) -> tuple[np.ndarray, float]:
        return self.height_map, self.extent / self.height_map.shape[1]
