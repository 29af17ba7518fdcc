"""The push script: the closed gripper pushes from ``start_xy`` to ``end_xy`` just above
the table.

Approach above the start, descend (guarded) to the push height, stroke in a straight line
to the end, lift a little, go home; the object's motion comes from the robot (simulation:
its pose; hardware: the depth images before and after).
"""

from __future__ import annotations

import logging
import math

from .results import Aborted, PushResult
from .robot import Pose
from .script import Script, report

log = logging.getLogger(__name__)

MIN_LENGTH = 0.01  # m, the shortest push


def push_direction(start_xy, end_xy) -> float:
    """Grasp angle of a push: the fingers lie across the stroke, so the closed gripper
    pushes with its broad side."""
    return math.atan2(end_xy[1] - start_xy[1], end_xy[0] - start_xy[0]) + math.pi / 2


def check_length(start_xy, end_xy) -> float:
    """The stroke's length (m); ValueError when it is shorter than :data:`MIN_LENGTH`."""
    length = math.hypot(end_xy[0] - start_xy[0], end_xy[1] - start_xy[1])
    if length < MIN_LENGTH:
        raise ValueError(f"push is too short: {length * 1000:.1f} mm (at least "
                         f"{MIN_LENGTH * 1000:.0f} mm)")
    return length


class Push(Script):
    name = "push"

    def run(self, robot, start_xy, end_xy, progress=None, should_stop=None) -> PushResult:
        """Push (see the module docstring). On a stop the arm goes home and the result
        says ``aborted``, or the stop propagates (:meth:`Robot.after_abort`)."""
        p, arm = robot.params, robot.arm
        sx, sy = (float(v) for v in start_xy)
        ex, ey = (float(v) for v in end_xy)
        robot.check_target(sx, sy, "push start")
        robot.check_target(ex, ey, "push end")
        check_length((sx, sy), (ex, ey))
        truth = robot.prepare()
        start = robot.steps()
        before = robot.scene()
        mark = robot.mark_objects()
        res = PushResult(before.rgb, before.rgb, 0.0, 0.0, 0.0, robot.object_near(sx, sy),
                         (sx, sy), (ex, ey), depth_before=before.depth, truth=truth)
        orn = arm.grasp_orientation(arm.wrist_angle(push_direction((sx, sy), (ex, ey))))
        z_ee = p.push_height + arm.tip_below_ee
        try:
            report(progress, 0.1)
            q_pre = robot.ik((sx, sy, p.approach_height + arm.tip_below_ee), orn)
            q_low = robot.ik((sx, sy, z_ee), orn, q_seed=q_pre)
            robot.check_plan([q_pre, q_low, Pose((ex, ey, z_ee), orn)])
            robot.begin(should_stop)
            robot.preset_gripper(True, should_stop)
            if not robot.approach(q_pre, should_stop, progress, (0.1, 0.15)):
                truth["blocked"] = 1.0
            else:
                truth["descent_fraction"] = robot.descend(
                    q_pre, q_low, (sx, sy, z_ee), orn, 0.004,
                    p.approach_height - p.push_height, should_stop, progress, (0.15, 0.25))
                report(progress, 0.25)
                p0 = robot.ee_position()
                robot.move_line((ex, ey, p0[2]), orn, p.push_speed, should_stop, progress,
                                (0.25, 0.85))
                q_now = robot.joints()
                q_up = robot.ik((ex, ey, p0[2] + 0.05), orn, q_seed=q_now)
                robot.move_joints(q_up, should_stop)
            reset = robot.finish(should_stop, closed=True)
            if reset:  # the scene was rebuilt: there is no displacement to measure
                raise ValueError("the simulation blew up during the push and the scene "
                                 "was reset; its outcome is lost")
            robot.settle()
        except Aborted as exc:
            robot.after_abort(exc)
            log.info("push aborted")
            robot.finish(should_stop)
            res.aborted = True
        robot.end("push")
        after = robot.scene(fresh=True)
        res.after = after.rgb
        res.object_id, res.dx, res.dy, res.dyaw = robot.object_motion(
            mark, before, after, (sx, sy), (ex, ey), res.object_id)
        res.steps = robot.steps() - start
        report(progress, 1.0)
        return robot.report(res)


PUSH = Push()
