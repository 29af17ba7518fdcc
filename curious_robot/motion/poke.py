"""The poke script: press the probe down at (x, y) until the force limit (or the depth
limit) and fit force against depth.

Approach above the point, descend (guarded) to just above the surface seen, press under
a :class:`~curious_robot.motion.guard.PressGuard` (depth: the measured fall of the
poking point since the press began; force: the normal contact force), back off, go home.
A descent stopped by contact above the surface seen is "blocked": no press.
"""

from __future__ import annotations

import logging

from curious_robot.tactile import fit_tactile

from .guard import PressGuard
from .results import Aborted, PokeResult
from .script import Script, report

log = logging.getLogger(__name__)

#: the press starts this far above the surface seen, and goes at most this far below the
#: depth limit, m
PRESS_MARGIN = 0.004


class Poke(Script):
    name = "poke"

    def run(self, robot, x: float, y: float, max_force: float = 0.0, progress=None,
            should_stop=None) -> PokeResult:
        """Poke (see the module docstring); ``max_force`` > 0 asks for a lower force limit
        where the robot allows it (:meth:`Robot.poke_force_limit`)."""
        p, arm = robot.params, robot.arm
        robot.check_target(x, y, "poke point")
        limit = robot.poke_force_limit(max_force)
        truth = robot.prepare()
        start = robot.steps()
        view = robot.look(x, y)
        res = PokeResult([], [], view.rgb, robot.object_near(x, y), 0.0, False, x, y,
                         depth_patch=view.depth, truth=truth)
        z_surface = view.surface(0.006)
        off = robot.poke_offset
        orn = arm.grasp_orientation(arm.wrist_angle(0.0))
        tip0 = z_surface + PRESS_MARGIN  # start the press just above the surface seen
        q_pre = robot.ik((x, y, p.approach_height + off), orn)
        q_top = robot.ik((x, y, tip0 + off), orn, q_seed=q_pre)
        z_bottom = max(z_surface - p.poke_max_depth - PRESS_MARGIN, robot.floor)
        q_bot = robot.ik((x, y, z_bottom + off), orn, q_seed=q_top)
        robot.check_plan([q_pre, q_top, q_bot])
        robot.begin(should_stop)
        robot.preset_gripper(True, should_stop)
        try:
            if not robot.approach(q_pre, should_stop, progress, (0.0, 0.15)) or robot.descend(
                    q_pre, q_top, (x, y, tip0 + off), orn, 0.005, p.approach_height - tip0,
                    should_stop, progress, (0.15, 0.2)) < 1.0:
                truth["blocked"] = 1.0
            else:
                report(progress, 0.2)
                guard = PressGuard(limit, p.poke_max_depth)
                touch = robot.press((x, y, tip0), (x, y, z_bottom), q_top, q_bot, orn, guard,
                                    should_stop, progress, (0.2, 0.8))
                res.depth, res.force = guard.depths, guard.forces
                res.reached_force_limit = guard.reached_force_limit
                report(progress, 0.8)
                if touch.object_id:
                    res.object_id, res.stiffness = touch.object_id, touch.stiffness
                truth.update(touch.truth or {})
                if len(res.depth) >= 3:
                    res.fit = fit_tactile(res.depth, res.force)
        except Aborted as exc:
            robot.after_abort(exc)
            log.info("poke at (%.3f, %.3f) aborted", x, y)
            res.aborted = True
        truth["recovered"] += robot.finish(should_stop)
        robot.end("poke")
        res.steps = robot.steps() - start
        report(progress, 1.0)
        return robot.report(res)


POKE = Poke()
