"""The grasp script: a top-down grasp at (x, y) with the fingers closing along ``angle``;
lift; judge; release.

Approach above the point, descend (guarded) to the grasp height taken from the depth
patch, close until the fingers stall, lift, judge, open and go home. Success: the gripper
is not fully closed after the lift and, where the robot can tell (simulation), an object
rose with the gripper by at least half the lift height.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from .results import Aborted, GraspResult
from .robot import Pose
from .script import Script, report

log = logging.getLogger(__name__)


def grasp_height(surface: float, around: float, params) -> float:
    """Fingertip height (m) of a grasp: ``grasp_depth`` below the surface seen at the
    point, keeping the palm (about 4.5 cm above the fingertips) clear of what stands
    within 4 cm (``around``), never below ``min_grasp_height``."""
    return max(surface - params.grasp_depth, around - 0.04, params.min_grasp_height)


def _closing_axes(shape, res: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel of a patch (columns +x, rows -y, centred on the grasp point, ``res`` m
    per pixel) in m along the closing direction ``angle`` and across it."""
    n_rows, n_cols = shape
    v, u = np.mgrid[0:n_rows, 0:n_cols]
    dx, dy = (u - (n_cols - 1) / 2.0) * res, -(v - (n_rows - 1) / 2.0) * res
    c, s = math.cos(angle), math.sin(angle)
    return dx * c + dy * s, -dx * s + dy * c


def enclosed_width(heights: np.ndarray, res: float, angle: float, z: float,
                   band: float = 0.01, margin: float = 0.003) -> float:
    """What the fingers must close around, from the depth patch (``heights``, m per pixel
    ``res``; columns +x, rows -y, centred on the grasp point): the length along the
    closing direction ``angle`` of the run of pixels through the centre, within ``band``
    m of the closing line, that stand more than ``margin`` above the fingertips' grasp
    height ``z`` (they would block a finger coming down). 0 when nothing stands there."""
    h = np.asarray(heights, float)
    along, across = _closing_axes(h.shape, res, angle)
    tall = (np.abs(across) <= band) & (np.nan_to_num(h, nan=0.0) > z + margin)
    bins = np.round(along[tall] / res).astype(int)
    if bins.size == 0 or not np.any(np.abs(bins) <= 1):
        return 0.0
    occupied = set(bins.tolist())
    lo = hi = 0
    while any(b in occupied for b in (lo - 1, lo - 2)):  # a one-pixel gap is no gap
        lo -= 1
    while any(b in occupied for b in (hi + 1, hi + 2)):
        hi += 1
    return float((hi - lo + 1) * res)


def finger_clearance(heights: np.ndarray, res: float, angle: float, z: float,
                     opening: float, pad: tuple[float, float] = (0.012, 0.02)
                     ) -> tuple[float, float]:
    """How far above the fingertips' grasp height ``z`` the highest point under each open
    finger stands where it comes down (``heights`` and ``res`` as in
    :func:`enclosed_width`; the fingers ``opening`` m apart along ``angle``; a finger's
    landing spot: ``pad`` m along x across the closing line, centred just outside it).
    Positive: the finger lands on something before reaching the grasp height and the
    descent stops there. Returns (higher, lower) of the two fingers' values."""
    h = np.nan_to_num(np.asarray(heights, float), nan=0.0)
    along, across = _closing_axes(h.shape, res, angle)
    out = []
    for side in (-1.0, 1.0):
        spot = (np.abs(along - side * (0.5 * opening + 0.5 * pad[0])) <= 0.5 * pad[0]) & \
            (np.abs(across) <= 0.5 * pad[1])
        out.append(float(h[spot].max()) - z if spot.any() else -z)
    return max(out), min(out)


class Grasp(Script):
    name = "grasp"

    def run(self, robot, x: float, y: float, angle: float, progress=None,
            should_stop=None) -> GraspResult:
        """Grasp, lift, judge, release (see the module docstring). On a stop the robot
        decides (:meth:`Robot.after_abort`): the arm goes home and the result says
        ``aborted``, or the stop propagates."""
        try:
            res = self.core(robot, x, y, angle, progress, should_stop)
        except Aborted as exc:
            robot.after_abort(exc)
            log.info("grasp at (%.3f, %.3f) aborted", x, y)
            robot.finish(should_stop)
            view = robot.look(x, y)
            res = GraspResult(False, robot.gripper_width(), view.rgb, "", x, y,
                              angle % math.pi, depth_patch=view.depth, aborted=True)
        return robot.report(res)

    def core(self, robot, x: float, y: float, angle: float, progress=None,
             should_stop=None, release: bool = True) -> GraspResult:
        """The grasp; with ``release`` False the object stays in the closed hand above the
        grasp point (inspect goes on from there). Raises Aborted on a stop."""
        p, arm = robot.params, robot.arm
        robot.check_target(x, y, "grasp point")
        if not math.isfinite(angle):
            raise ValueError(f"grasp angle {angle} is not finite")
        angle = angle % math.pi
        truth = robot.prepare()
        start = robot.steps()
        view = robot.look(x, y)
        res = GraspResult(False, 0.0, view.rgb, robot.object_near(x, y), x, y, angle,
                          depth_patch=view.depth, truth=truth)
        truth.update(robot.grasp_truth(res.object_id, angle, x, y))
        report(progress, 0.05)  # looked: beyond 0.05 the arm is moving
        z_tip = grasp_height(view.surface(0.01), view.surface(0.04), p)
        heights, res_m = view.heights()
        truth["enclosed_width"] = enclosed_width(heights, res_m, angle, z_tip)
        # the fingers land beside the point, the open gripper's width apart
        truth["finger_clearance_high"], truth["finger_clearance_low"] = finger_clearance(
            heights, res_m, angle, z_tip, p.open_width)
        # what stands above the fingertips where a finger that lands on something stops:
        # the part the closing fingers can still pinch
        truth["pinch_width"] = enclosed_width(
            heights, res_m, angle, z_tip + max(0.0, truth["finger_clearance_high"]))
        z_ee = z_tip + arm.tip_below_ee
        orn = arm.grasp_orientation(arm.wrist_angle(angle))
        q_pre = robot.ik((x, y, p.approach_height + arm.tip_below_ee), orn)
        q_grasp = robot.ik((x, y, z_ee), orn, q_seed=q_pre)
        robot.check_plan([q_pre, q_grasp, Pose((x, y, z_ee + p.lift_height), orn)])
        robot.begin(should_stop)
        robot.preset_gripper(False, should_stop)
        robot.check_stop(should_stop)
        if not robot.approach(q_pre, should_stop, progress, (0.05, 0.2)):
            truth["blocked"] = 1.0
            res.steps = robot.steps() - start
            return res
        truth["descent_fraction"] = robot.descend(
            q_pre, q_grasp, (x, y, z_ee), orn, 0.004, p.approach_height - z_tip,
            should_stop, progress, (0.2, 0.3))
        report(progress, 0.3)
        robot.check_stop(should_stop)
        mark = robot.mark_objects()
        robot.close_gripper(should_stop)
        report(progress, 0.55)
        q_now = robot.joints()
        q_up = robot.ik((x, y, z_ee + p.lift_height), orn, q_seed=q_now)
        robot.move_joints(q_up, should_stop, duration=p.lift_height / p.lift_speed,
                          progress=progress, span=(0.55, 0.8))
        robot.dwell(0.05)
        res.gripper_width = robot.gripper_width()
        held = res.gripper_width > p.closed_width
        lift = robot.lifted(mark)
        if lift is None:  # the robot cannot tell what rose: the gripper width decides
            res.success = bool(held)
        else:
            lifted, rise = lift
            truth["lift"] = rise
            res.success = bool(lifted and rise > 0.5 * p.lift_height and held)
            if lifted and res.success:
                res.object_id = lifted
        report(progress, 0.85)
        if release:
            robot.open_gripper(should_stop)
            robot.dwell(1 / 15)
            truth["recovered"] += robot.finish(should_stop)
        res.steps = robot.steps() - start
        report(progress, 1.0)
        if release:
            robot.end("grasp")
        return res


GRASP = Grasp()
