"""The inspect script: grasp an object, show it to a camera in several wrist poses (one
view each), put it down.

The grasp is the grasp script's (kept closed); the wrist poses are :data:`INSPECT_POSES`
at :data:`INSPECT_POINT`; a view is taken while the object is still held.
"""

from __future__ import annotations

import math

from .grasp import GRASP
from .results import Aborted, InspectResult
from .robot import Pose
from .script import Script, report

#: Wrist poses of the inspect views: (turn about the vertical, tilt about the finger axis,
#: tilt about the other horizontal axis), radians; cycled if more views are asked for.
INSPECT_POSES = ((0.0, 0.0, 0.0), (math.pi / 2, 0.0, 0.0), (0.0, 0.6, 0.0),
                 (0.0, 0.0, 0.6), (math.pi / 2, -0.6, 0.0), (0.0, 0.0, -0.6))
INSPECT_POINT = (0.0, 0.0, 0.28)  # where the hand shows the object (table frame)
PUT_DOWN_HEIGHT = 0.06  # m, the held object's put-down height over the table centre


def view_orientation(arm, angle: float, k: int):
    """Ee orientation of the ``k``-th view of an object grasped along ``angle``."""
    turn, t0, t1 = INSPECT_POSES[k % len(INSPECT_POSES)]
    return arm.grasp_orientation(arm.wrist_angle(angle + turn), (t0, t1))


class Inspect(Script):
    name = "inspect"

    def run(self, robot, object_id: str, x: float, y: float, angle: float, progress=None,
            should_stop=None) -> InspectResult:
        """Inspect (see the module docstring); the robot picks the grasp
        (:meth:`Robot.inspect_target`: the simulation grasps ``object_id`` across its
        narrow side, hardware at (x, y, angle))."""
        p, arm = robot.params, robot.arm
        object_id, x, y, angle = robot.inspect_target(object_id, x, y, angle)
        # every view reachable (and in the safety box) before anything moves
        robot.check_plan([Pose(INSPECT_POINT, view_orientation(arm, angle % math.pi, k),
                               3e-3) for k in range(p.inspect_views)],
                         from_home=True, then_home=False)
        start = robot.steps()
        try:
            g = GRASP.core(robot, x, y, angle, None, should_stop, release=False)
        except Aborted as exc:
            robot.after_abort(exc)
            robot.finish(should_stop)
            return robot.report(InspectResult(
                False, robot.look(x, y).rgb, [], False, object_id, None, x, y, angle,
                aborted=True, steps=robot.steps() - start))
        res = InspectResult(False, g.patch, [], False, object_id, g, x, y, g.angle,
                            truth=dict(g.truth))
        # where the robot knows what it lifted, it must be the object asked for
        if not (g.success and (not g.object_id or g.object_id == object_id)):
            res.truth["recovered"] += robot.finish(should_stop)
            res.steps = robot.steps() - start
            robot.end("inspect")
            report(progress, 1.0)
            return robot.report(res)
        res.success = True
        report(progress, 0.3)
        try:
            with robot.hold_others(object_id):
                self._views(robot, object_id, g.angle, res, progress, should_stop)
            res.held_through_all = len(res.views) == p.inspect_views
            # put it down: lower over the table centre, open
            orn = arm.grasp_orientation(arm.wrist_angle(g.angle))
            q = robot.ik((0.0, 0.0, PUT_DOWN_HEIGHT + arm.tip_below_ee + 0.03), orn,
                         q_seed=robot.joints())
            robot.move_joints(q, should_stop, speed_scale=0.7)
        except Aborted as exc:
            robot.after_abort(exc)
            res.aborted = True
        robot.open_gripper(should_stop)
        robot.dwell(1 / 15)
        res.truth["recovered"] += robot.finish(should_stop)
        res.truth["views_held"] = float(len(res.views))
        res.steps = robot.steps() - start
        robot.end("inspect")
        report(progress, 1.0)
        return robot.report(res)

    @staticmethod
    def _views(robot, object_id, angle, res, progress, should_stop) -> None:
        """Turn the held object through the view poses, one view each (into
        ``res.views``), until it is no longer held."""
        p, arm = robot.params, robot.arm
        for k in range(p.inspect_views):
            orn = view_orientation(arm, angle, k)
            q = robot.ik(INSPECT_POINT, orn, q_seed=robot.joints(), tol=3e-3)
            robot.move_joints(q, should_stop, speed_scale=p.inspect_speed_scale,
                              progress=progress,
                              span=(0.3 + 0.6 * k / p.inspect_views,
                                    0.3 + 0.6 * (k + 1) / p.inspect_views))
            robot.dwell(1 / 30)
            if not robot.holding(object_id):
                return
            view = robot.view_held(object_id)
            if view is None:
                return
            res.views.append(view)
            report(progress, 0.3 + 0.6 * (k + 1) / p.inspect_views)


INSPECT = Inspect()
