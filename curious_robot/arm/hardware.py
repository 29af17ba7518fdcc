"""The hardware backend: the four primitives as joint trajectories sent through a
:class:`RobotIO` (ros2_control topics in the node, or an in-process fake arm in tests),
every trajectory checked by the :class:`~curious_robot.arm.safety.SafetyLayer` before it is
sent and at every joint-state reading while it runs.

The motions follow the simulation's primitive scripts (approach, guarded descent, close,
lift / press / stroke, release, home) with the same parameters (:class:`MotionConfig`);
what the simulation reads from its ground truth is measured here instead: the surface
height from the calibrated depth image, contact from the force sensor, the grasp outcome
from the gripper width, the press depth from the joint states (forward kinematics), a
push's object motion from the depth images before and after. Object ids and truth are
unknown (empty).
"""

from __future__ import annotations

import logging
import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from curious_robot.tactile import fit_tactile
from curious_robot.world.primitives import (INSPECT_POSES, INSPECT_POINT, GraspResult,
                                            InspectResult, PokeResult, PushResult)
from curious_robot.world.world import Aborted

from .backend import (ArmBackend, CameraModel, DryRunDone, Frame, ResetOutcome, SafetyStop,
                      StartupRefused, wrap_angle)
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
        """Start a trajectory now (replacing any running one)."""

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
        if self._dry_q is not None:
            return self._dry_q
        s = self.io.state()
        if s is None:
            raise SafetyStop("no joint states")
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
        """Run a trajectory through ``qs`` under the safety layer; returns "done", "guard"
        (``guard(state)`` said stop: the arm holds there) or "late" (the goal not reached
        in time). Raises ValueError before sending (plan refused), Aborted (e-stop,
        cancel) or SafetyStop (a check failed while moving; the arm holds)."""
        self._check_stop(should_stop)
        qs = [np.asarray(q, float) for q in qs]
        q_from, times = self.plan(qs, min_durations, check_box=check_box)
        if self.cfg.safety.dry_run:
            tips = [self.kin.tool_point(q, self.kin.tip_below_ee) for q in qs]
            self.io.publish_plan(times, qs, tips)
            self._dry_q = qs[-1]
            return "done"
        self.io.send_trajectory(times, qs)
        self.sent += 1
        t0 = self.io.now()
        last = t0
        duration = times[-1]
        tq = np.array([0.0] + list(times))
        path = np.stack([q_from] + qs)
        prev_force = None
        try:
            while True:
                s = self._next_state(last, should_stop)
                last = s.t
                el = s.t - t0
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
                if why:
                    raise SafetyStop(why)
                if progress is not None:
                    lo, hi = span
                    progress(lo + (hi - lo) * min(1.0, el / duration))
                if el >= duration and float(np.max(np.abs(s.q - qs[-1]))) < 0.01:
                    return "done"
                if el > duration + 1.0:
                    log.warning("trajectory goal not reached within 1 s of its end "
                                "(error %.3f rad)", float(np.max(np.abs(s.q - qs[-1]))))
                    return "late"
        except SafetyStop:
            s = self.io.state()
            if s is not None:
                self.io.hold(s.q)
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
            orn = _quat(rot)
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

    # ------------------------------------------------------------ primitives
    def grasp(self, x, y, angle, progress=None, should_stop=None, release: bool = True):
        """Top-down grasp as in the simulation; success: the gripper is not closed after
        the lift (something is in the hand)."""
        m, g = self.cfg.motion, self.cfg.gripper
        self.safety.check_target(x, y, "grasp point")
        if not math.isfinite(angle):
            raise ValueError(f"grasp angle {angle} is not finite")
        angle = angle % math.pi
        patch, heights = self._patch(x, y)
        z_surface = surface_height(heights, m.patch_extent, 0.01)
        z_around = surface_height(heights, m.patch_extent, 0.04)
        z_tip = max(z_surface - m.grasp_depth, z_around - 0.04, m.min_grasp_height)
        tb = self.kin.tip_below_ee
        orn = self.kin.grasp_orientation(self.kin.wrist_angle(angle))
        q_pre = self.kin.ik((x, y, m.approach_height + tb), orn)
        q_grasp = self.kin.ik((x, y, z_tip + tb), orn, q_seed=q_pre)
        q_up = self.kin.ik((x, y, z_tip + tb + m.lift_height), orn, q_seed=q_grasp)
        # the whole plan is checked before anything moves
        self.plan([q_pre, q_grasp, q_up, self.kin.home], q_from=self._q())
        self._begin()
        res = GraspResult(False, 0.0, patch, "", x, y, angle)
        self._retreat(should_stop)
        self.gripper(g.open_width, should_stop)
        self.execute([q_pre], should_stop=should_stop, progress=progress, span=(0.0, 0.2))
        contact = self._contact_guard()
        self._line_to((x, y, z_tip + tb), orn, m.descend_speed, guard=contact,
                      should_stop=should_stop, progress=progress, span=(0.2, 0.35))
        self.gripper(0.0, should_stop, stall=True)
        if progress:
            progress(0.55)
        self._line_to((x, y, z_tip + tb + m.lift_height), orn, m.lift_speed,
                      should_stop=should_stop, progress=progress, span=(0.55, 0.8))
        s = self._state() if not self.cfg.safety.dry_run else None
        res.gripper_width = float(s.gripper_width) if s is not None else 0.0
        res.success = bool(res.gripper_width > g.closed_width)
        if release:
            self.gripper(g.open_width, should_stop)
            self._home(should_stop)
        if progress:
            progress(1.0)
        if release:
            self._end("grasp")
        return res

    def _contact_guard(self, limit: float | None = None):
        s0 = self._state() if not self.cfg.safety.dry_run else None
        tare = s0.force if s0 is not None and s0.force is not None else np.zeros(3)
        lim = self.cfg.safety.contact_force if limit is None else limit

        def guard(s: State) -> bool:
            return s.force is not None and float(np.linalg.norm(s.force - tare)) > lim
        return guard

    def push(self, start_xy, end_xy, progress=None, should_stop=None):
        m = self.cfg.motion
        sx, sy = (float(v) for v in start_xy)
        ex, ey = (float(v) for v in end_xy)
        self.safety.check_target(sx, sy, "push start")
        self.safety.check_target(ex, ey, "push end")
        length = math.hypot(ex - sx, ey - sy)
        if length < 0.01:
            raise ValueError(f"push is too short: {length * 1000:.1f} mm (at least 10 mm)")
        tb = self.kin.tip_below_ee
        orn = self.kin.grasp_orientation(self.kin.wrist_angle(math.atan2(ey - sy, ex - sx)
                                                              + math.pi / 2))
        q_pre = self.kin.ik((sx, sy, m.approach_height + tb), orn)
        q_low = self.kin.ik((sx, sy, m.push_height + tb), orn, q_seed=q_pre)
        q_end = self.kin.ik((ex, ey, m.push_height + tb), orn, q_seed=q_low)
        self.plan([q_pre, q_low, q_end, self.kin.home], q_from=self._q())
        before = self.io.frame(None, timeout=2.0)
        if before is None:
            raise ValueError("no camera frame yet")
        self._begin()
        res = PushResult(before.rgb, before.rgb, 0.0, 0.0, 0.0, "", (sx, sy), (ex, ey),
                         depth_before=before.depth)
        self._retreat(should_stop)
        self.gripper(0.0, should_stop)
        self.execute([q_pre], should_stop=should_stop, progress=progress, span=(0.0, 0.15))
        self._line_to((sx, sy, m.push_height + tb), orn, m.descend_speed,
                      guard=self._contact_guard(), should_stop=should_stop,
                      progress=progress, span=(0.15, 0.25))
        p0 = self.kin.ee_pose(self._q())[0]
        self._line_to((ex, ey, p0[2]), orn, m.push_speed, should_stop=should_stop,
                      progress=progress, span=(0.25, 0.85))
        self._line_to((ex, ey, p0[2] + 0.05), orn, m.lift_speed, should_stop=should_stop)
        self._home(should_stop)
        self._end("push")
        after = self.frame(fresh=True) or self.io.frame(None, timeout=2.0)
        res.after = after.rgb
        res.success = True
        res.dx, res.dy, res.dyaw = self._object_motion(before, after, (sx, sy), (ex, ey))
        if progress:
            progress(1.0)
        return res

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

    def poke(self, x, y, max_force=0.0, progress=None, should_stop=None):
        """Press the closed fingertips (or the configured probe) down until the force limit
        or the depth limit, reading force (wrench norm, tared) against measured depth."""
        m, c = self.cfg.motion, self.cfg.safety
        self.safety.check_target(x, y, "poke point")
        limit = min(max_force if max_force > 0 else m.poke_force_limit, c.max_poke_force)
        patch, heights = self._patch(x, y)
        z_surface = surface_height(heights, m.patch_extent, 0.006)
        off = self.tool_offset
        orn = self.kin.grasp_orientation(self.kin.wrist_angle(0.0))
        tip0 = z_surface + 0.004
        z_bottom = max(z_surface - m.poke_max_depth - 0.004, c.workspace[2][0])
        q_pre = self.kin.ik((x, y, m.approach_height + off), orn)
        q_top = self.kin.ik((x, y, tip0 + off), orn, q_seed=q_pre)
        q_bot = self.kin.ik((x, y, z_bottom + off), orn, q_seed=q_top)
        self.plan([q_pre, q_top, q_bot, self.kin.home], q_from=self._q())
        self._begin()
        res = PokeResult([], [], patch, "", 0.0, False, x, y)
        self._retreat(should_stop)
        self.gripper(0.0, should_stop)
        self.execute([q_pre], should_stop=should_stop, progress=progress, span=(0.0, 0.15))
        how = self._line_to((x, y, tip0 + off), orn, m.descend_speed,
                            guard=self._contact_guard(), should_stop=should_stop,
                            progress=progress, span=(0.15, 0.25))
        if how != "guard":  # else: blocked above the surface seen (no reading)
            self._press(res, x, y, z_bottom, off, orn, limit, should_stop, progress)
        self._line_to((x, y, m.approach_height + off), orn, m.lift_speed,
                      should_stop=should_stop)
        self._home(should_stop)
        self._end("poke")
        if len(res.depth) >= 3:
            res.fit = fit_tactile(res.depth, res.force)
        if progress:
            progress(1.0)
        return res

    def _press(self, res, x, y, z_bottom, off, orn, limit, should_stop, progress) -> None:
        m = self.cfg.motion
        if self.cfg.safety.dry_run:
            self._line_to((x, y, z_bottom + off), orn, m.poke_speed, should_stop=should_stop)
            return
        settle_until = self.io.now() + 0.2
        s = self._state()
        while s.t < settle_until:  # let the arm settle, then tare the force
            self._check_stop(should_stop)
            s = self.io.wait_state(s.t, self.cfg.safety.state_timeout) or s
        tare = s.force if s.force is not None else np.zeros(3)
        z0 = float(self.kin.tool_point(s.q, off)[2])
        contact: list[float] = []

        def press_guard(st: State) -> bool:
            d = z0 - float(self.kin.tool_point(st.q, off)[2])
            f = float(np.linalg.norm(st.force - tare)) if st.force is not None else 0.0
            res.depth.append(d)
            res.force.append(f)
            if f > 0.05 and not contact:
                contact.append(d)
            if f >= limit:
                res.reached_force_limit = True
                return True
            return bool(contact and d - contact[0] > m.poke_max_depth)

        self._line_to((x, y, z_bottom + off), orn, m.poke_speed, guard=press_guard,
                      should_stop=should_stop, progress=progress, span=(0.25, 0.8))

    def inspect(self, object_id, x, y, angle, progress=None, should_stop=None):
        """Grasp at (x, y, angle) (object ids are unknown on hardware), show the object to
        the camera at the inspect point in several wrist poses, put it down."""
        m, g = self.cfg.motion, self.cfg.gripper
        self.safety.check_target(x, y, "inspect grasp point")
        orn_views = []
        for k in range(m.inspect_views):
            turn, t0, t1 = INSPECT_POSES[k % len(INSPECT_POSES)]
            orn_views.append(self.kin.grasp_orientation(self.kin.wrist_angle(angle % math.pi
                                                                             + turn), (t0, t1)))
        qv, q = [], self.kin.home
        for orn in orn_views:  # all reachable and in the box before anything moves
            q = self.kin.ik(INSPECT_POINT, orn, q_seed=q, tol=3e-3)
            qv.append(q)
        self.plan(qv, q_from=self.kin.home)
        gres = self.grasp(x, y, angle, None, should_stop, release=False)
        res = InspectResult(False, gres.patch, [], False, object_id, gres, x, y, gres.angle)
        if not gres.success:
            self.gripper(g.open_width, should_stop)
            self._home(should_stop)
            self._end("inspect")
            if progress:
                progress(1.0)
            return res
        res.success = True
        n_held = 0
        for k, q in enumerate(qv):
            self.execute([q], should_stop=should_stop, progress=progress,
                         span=(0.3 + 0.6 * k / len(qv), 0.3 + 0.6 * (k + 1) / len(qv)))
            s = self._state() if not self.cfg.safety.dry_run else None
            if s is not None and s.gripper_width <= g.closed_width:
                break
            f = self.frame(fresh=True)
            if f is None:
                break
            n_held += 1
            res.views.append(warp_top_down(self.camera_model(), f, INSPECT_POINT[0],
                                           INSPECT_POINT[1], m.view_extent, m.patch_size,
                                           INSPECT_POINT[2] - 0.05)[0])
        res.held_through_all = n_held == len(qv)
        orn = self.kin.grasp_orientation(self.kin.wrist_angle(gres.angle))
        q_down = self.kin.ik((0.0, 0.0, 0.06 + self.kin.tip_below_ee + 0.03), orn,
                             q_seed=self._q())
        self.execute([q_down], should_stop=should_stop)
        self.gripper(g.open_width, should_stop)
        self._home(should_stop)
        self._end("inspect")
        res.truth = {}
        if progress:
            progress(1.0)
        return res

    def close(self) -> None:
        self.kin.close()


def _debounced(force, prev):
    """The smaller of two consecutive force readings: a contact force must last two
    control periods to stop a motion (impacts give one-sample spikes)."""
    if force is None or prev is None:
        return None if force is None else np.zeros(3)
    return force if np.linalg.norm(force) <= np.linalg.norm(prev) else prev


def _quat(r: np.ndarray):
    from curious_robot.motion.geometry import quat_from_matrix

    return quat_from_matrix(r)
