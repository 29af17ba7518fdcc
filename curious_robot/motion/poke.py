"""The poke script: press the probe down at the most level spot of the object near
(x, y) until the force limit (or the depth limit) and fit force against depth.

The spot: pressed on a slope, the probe's ball slides down it (40-45 deg: 2-5 mm in a
press) and the felt stiffness is a fraction of the material's (0.1-0.3 of it in the
simulation, against 0.9-1.0 on level spots), so the felt stiffness would say more about
where the probe landed than what the object is made of (Spearman rank correlation of
felt and true stiffness, 60 pokes near object centres in each of 3 worlds: 0.77 / 0.55 /
0.78 pressing where asked, 0.85 / 0.77 / 0.89 at the level spot). So the script looks at the
depth patch first and presses the most level spot within ``LEVEL_RADIUS`` of the
requested point whose surroundings (the ball's radius) are all object
(:func:`level_spot`), as a person poking to feel a material would. The spot pressed, its
tilt and the shift are kept in the result's truth (``pressed_x``, ``pressed_y``,
``surface_tilt_deg``, ``level_shift``).

Approach above the point, descend (guarded) to just above the surface seen, press under
a :class:`~curious_robot.motion.guard.PressGuard` (depth: the measured fall of the
poking point since the press began; force: the normal contact force), back off, go home.
A descent stopped by contact above the surface seen is "blocked": no press.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from curious_robot.tactile import fit_tactile

from .guard import PressGuard
from .results import Aborted, PokeResult
from .script import Script, report

log = logging.getLogger(__name__)

#: the press starts this far above the surface seen, and goes at most this far below the
#: depth limit, m
PRESS_MARGIN = 0.004
#: the most level spot is looked for within this distance of the requested point, m
LEVEL_RADIUS = 0.02
#: the probe ball's radius (sim/tools/probe.urdf), m: a spot's surroundings this wide must
#: all be object
BALL_RADIUS = 0.005
#: pixels higher than this above the table are object, m
OBJECT_HEIGHT = 0.004


def level_spot(heights: np.ndarray, res: float, radius: float = LEVEL_RADIUS,
               ball: float = BALL_RADIUS, min_height: float = OBJECT_HEIGHT
               ) -> tuple[float, float, float] | None:
    """The most level spot of a height patch (``heights``, m per pixel ``res``; columns
    +x, rows -y, centred on the requested point) within ``radius`` of its centre: (dx, dy)
    from the centre in m and its tilt in degrees; None when no pixel within ``radius``
    has a ball-wide neighbourhood of object around it. Tilt: of the surface smoothed over
    the ball's width (tried and worse: the mean or the largest slope under the ball); a
    spot farther out pays 10 deg per ``radius``, so of two nearly level spots the nearer
    wins."""
    import cv2

    h = np.nan_to_num(np.asarray(heights, np.float32), nan=0.0)
    n_rows, n_cols = h.shape
    k = max(1, int(round(ball / res)))
    box = 2 * k + 1
    on = (h > min_height).astype(np.uint8)
    inside = cv2.erode(on, np.ones((box, box), np.uint8), borderValue=0) > 0
    gy, gx = np.gradient(cv2.blur(h, (box, box)), res)
    tilt = np.degrees(np.arctan(np.hypot(gx, gy)))
    cy, cx = (n_rows - 1) / 2.0, (n_cols - 1) / 2.0
    v, u = np.mgrid[0:n_rows, 0:n_cols]
    dist = np.hypot(u - cx, v - cy) * res
    ok = inside & (dist <= radius)
    if not ok.any():
        return None
    score = np.where(ok, tilt + 10.0 * dist / radius, np.inf)
    i = int(np.argmin(score))
    r, c = divmod(i, n_cols)
    return float((c - cx) * res), float(-(r - cy) * res), float(tilt[r, c])


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
        spot = level_spot(*view.heights())
        if spot is not None:
            dx, dy, tilt = spot
            try:
                robot.check_target(x + dx, y + dy, "poke point")
            except ValueError:  # the level spot is outside the area: press where asked
                spot = None
            else:
                x, y = x + dx, y + dy
                if math.hypot(dx, dy) > 1e-9:
                    view = robot.look(x, y)
                truth.update(surface_tilt_deg=tilt, level_shift=math.hypot(dx, dy))
        truth.update(pressed_x=x, pressed_y=y)
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
