"""The robot's primitives on a :class:`~curious_robot.world.world.World`: grasp, push, poke,
inspect. Each returns a result dataclass holding what the learner needs and, in ``truth``,
the simulation ground truth (never shown to the learner).

Free-space motions are kinematic; closing, lifting, the push stroke, the poke press and the
inspect wrist motions are simulated. Each primitive accepts ``progress(fraction)`` and
``should_stop()`` hooks; a stop returns the result with ``aborted=True`` after putting the
arm back home with the gripper open.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..tactile import TactileFit, fit_tactile
from .camera import Camera
from .objects import width_along
from .world import Aborted, Progress, ShouldStop, World

log = logging.getLogger(__name__)

PROBE_LENGTH = 0.075  # m from the probe's mount to the bottom of its ball (probe.urdf)
LIFT_SPEED = 0.4  # m/s


@dataclass
class GraspResult:
    success: bool
    gripper_width: float  # m, after the lift
    patch: np.ndarray  # uint8 RGB patch centred on (x, y), before the grasp
    object_id: str  # the object lifted, else the one nearest to (x, y)
    x: float = 0.0
    y: float = 0.0
    angle: float = 0.0  # in [0, pi)
    depth_patch: np.ndarray | None = None
    truth: dict[str, float] = field(default_factory=dict)
    aborted: bool = False
    steps: int = 0  # simulation steps the attempt took


@dataclass
class PushResult:
    before: np.ndarray  # scene RGB before
    after: np.ndarray  # scene RGB after
    dx: float
    dy: float
    dyaw: float
    object_id: str  # the object that moved most, else the one nearest to the start
    start: tuple[float, float] = (0.0, 0.0)
    end: tuple[float, float] = (0.0, 0.0)
    depth_before: np.ndarray | None = None
    truth: dict[str, float] = field(default_factory=dict)
    aborted: bool = False
    steps: int = 0


@dataclass
class PokeResult:
    depth: list[float]  # m, measured press depth of the probe tip since the press began
    force: list[float]  # N, normal contact force on the probe
    patch: np.ndarray
    object_id: str
    stiffness: float  # truth: contact stiffness of the object (N/m), 0 if none touched
    reached_force_limit: bool
    x: float = 0.0
    y: float = 0.0
    fit: TactileFit | None = None
    depth_patch: np.ndarray | None = None
    truth: dict[str, float] = field(default_factory=dict)
    aborted: bool = False
    steps: int = 0


@dataclass
class InspectResult:
    success: bool  # the grasp held the object
    patch: np.ndarray  # before the grasp, centred on the grasp point
    views: list[np.ndarray]  # RGB images of the held object, one per wrist pose
    held_through_all: bool
    object_id: str
    grasp: GraspResult | None = None
    x: float = 0.0
    y: float = 0.0
    angle: float = 0.0
    truth: dict[str, float] = field(default_factory=dict)
    aborted: bool = False
    steps: int = 0


def _report(progress: Progress | None, fraction: float) -> None:
    if progress is not None:
        progress(float(min(1.0, max(0.0, fraction))))


def _check_stop(should_stop: ShouldStop | None) -> None:
    if should_stop is not None and should_stop():
        raise Aborted()


def _surface_height(world: World, depth: np.ndarray, radius_m: float = 0.01) -> float:
    """Highest table-frame z seen within ``radius_m`` of a patch's centre."""
    cam = world.patch_camera(0.0, 0.0)
    r = max(1, int(round(radius_m * cam.fx / world.config.camera_height)))
    h, w = depth.shape
    win = depth[h // 2 - r:h // 2 + r, w // 2 - r:w // 2 + r]
    return float(world.config.camera_height - win.min())


def _prepare(world: World) -> float:
    recovered = sum(world.maintain().values())
    world.settle()
    return float(recovered)


def _finish(world: World, finger: float | None = None) -> float:
    """Arm home (gripper open), scene maintained; returns 1.0 if a recovery happened."""
    world.go_home(finger if finger is not None else world.config.arm.finger_open)
    return float(sum(world.maintain().values()))


def _grasp_core(world: World, x: float, y: float, angle: float, progress, should_stop,
                release: bool = True) -> GraspResult:
    cfg = world.config
    world.check_in_workspace(x, y, what="grasp point")
    if not math.isfinite(angle):
        raise ValueError(f"grasp angle {angle} is not finite")
    angle = angle % math.pi
    truth = {"recovered": _prepare(world)}
    start = world.step_count
    patch, depth = world.patch(x, y)
    nearest = world.object_at(x, y)
    result = GraspResult(False, 0.0, patch, nearest.object_id if nearest else "", x, y, angle,
                         depth_patch=depth, truth=truth)
    if nearest is not None:
        w = world.footprint(nearest.object_id)
        truth.update(width_along_angle=width_along(w, angle), min_width=float(w.min()),
                     best_angle=float(np.argmin(w)) * math.pi / len(w),
                     stiffness=nearest.stiffness, mass=nearest.mass)
    _report(progress, 0.1)
    z_surface = _surface_height(world, depth)
    # keep the palm (about 4.5 cm above the fingertips) clear of whatever stands nearby
    z_around = _surface_height(world, depth, radius_m=0.04)
    z_tip = max(z_surface - cfg.grasp_depth, z_around - 0.04, cfg.min_grasp_height)
    z_ee = z_tip + world.tip_below_ee
    orn = world.grasp_orientation(world.wrist_angle(angle))
    q_pre = world.ik((x, y, cfg.approach_height + world.tip_below_ee), orn)
    q_grasp = world.ik((x, y, z_ee), orn, q_seed=q_pre)
    world.set_fingers(cfg.arm.finger_open)
    _check_stop(should_stop)
    if not world.move_kinematic(q_pre):
        truth["blocked"] = 1.0
        result.steps = world.step_count - start
        return result
    frac = world.descend(q_pre, q_grasp, 0.004, cfg.approach_height - z_tip)
    truth["descent_fraction"] = frac
    _report(progress, 0.3)
    _check_stop(should_stop)
    # close (dynamic) until the fingers stall
    heights = {o.body: o.position[2] for o in world.objects()}
    world.hold_arm()
    world.drive_fingers(0.0)
    max_close = int(cfg.arm.finger_open / cfg.arm.finger_speed / cfg.time_step) + 24
    prev = world.gripper_width()
    for i in range(0, max_close, 4):
        _check_stop(should_stop)
        world.step(4)
        wdt = world.gripper_width()
        if i >= 12 and abs(wdt - prev) < 2e-4:
            break
        prev = wdt
    _report(progress, 0.55)
    # lift (dynamic)
    q_now = world.arm_q()
    q_up = world.ik((x, y, z_ee + cfg.lift_height), orn, q_seed=q_now)
    n_lift = max(1, int(math.ceil(cfg.lift_height / LIFT_SPEED / cfg.time_step)))
    world.track([q_now + (q_up - q_now) * (i / n_lift) for i in range(1, n_lift + 1)],
                should_stop=should_stop)
    world.step(12)
    result.gripper_width = world.gripper_width()
    lifted, rise = None, 0.0
    for o in world.objects():
        if o.body in heights and world.arm_contacts(o.body, world.finger_links):
            r = o.position[2] - heights[o.body]
            if r > rise:
                lifted, rise = o, r
    truth["lift"] = rise
    result.success = bool(lifted is not None and rise > 0.5 * cfg.lift_height
                          and result.gripper_width > cfg.closed_width)
    if lifted is not None and result.success:
        result.object_id = lifted.object_id
    _report(progress, 0.85)
    if release:
        world.drive_fingers(cfg.arm.finger_open)
        world.step(16)
        truth["recovered"] += _finish(world)
    result.steps = world.step_count - start
    _report(progress, 1.0)
    return result


def grasp(world: World, x: float, y: float, angle: float, progress: Progress | None = None,
          should_stop: ShouldStop | None = None) -> GraspResult:
    """Top-down grasp at (x, y), fingers closing along ``angle``; lift; judge; release.

    Success: an object rose with the gripper by at least half the lift height and the
    gripper is not fully closed. The grasp height is taken from the depth patch.
    """
    try:
        return _grasp_core(world, x, y, angle, progress, should_stop)
    except Aborted:
        log.info("grasp at (%.3f, %.3f) aborted", x, y)
        _finish(world)
        patch, depth = world.patch(x, y)
        return GraspResult(False, world.gripper_width(), patch, "", x, y, angle % math.pi,
                           depth_patch=depth, aborted=True)


def _displacements(world: World, before: dict) -> dict[int, tuple[float, float, float]]:
    out = {}
    for o in world.objects():
        if o.body in before:
            x0, y0, yaw0 = before[o.body]
            dyaw = (o.yaw - yaw0 + math.pi) % (2 * math.pi) - math.pi
            out[o.body] = (o.position[0] - x0, o.position[1] - y0, dyaw)
    return out


def push(world: World, start_xy, end_xy, progress: Progress | None = None,
         should_stop: ShouldStop | None = None) -> PushResult:
    """Push with the closed gripper from ``start_xy`` to ``end_xy`` just above the table."""
    cfg = world.config
    sx, sy = (float(v) for v in start_xy)
    ex, ey = (float(v) for v in end_xy)
    world.check_in_workspace(sx, sy, what="push start")
    world.check_in_workspace(ex, ey, what="push end")
    length = math.hypot(ex - sx, ey - sy)
    if length < 0.01:
        raise ValueError(f"push is too short: {length * 1000:.1f} mm (at least 10 mm)")
    truth = {"recovered": _prepare(world)}
    start = world.step_count
    before, depth = world.capture()
    poses = {o.body: (o.position[0], o.position[1], o.yaw) for o in world.objects()}
    ids = {o.body: o.object_id for o in world.objects()}
    nearest = world.object_at(sx, sy)
    result = PushResult(before, before, 0.0, 0.0, 0.0, nearest.object_id if nearest else "",
                        (sx, sy), (ex, ey), depth_before=depth, truth=truth)
    try:
        _report(progress, 0.1)
        orn = world.grasp_orientation(world.wrist_angle(math.atan2(ey - sy, ex - sx)
                                                        + math.pi / 2))
        z_ee = cfg.push_height + world.tip_below_ee
        q_pre = world.ik((sx, sy, cfg.approach_height + world.tip_below_ee), orn)
        q_low = world.ik((sx, sy, z_ee), orn, q_seed=q_pre)
        world.set_fingers(0.0)
        if not world.move_kinematic(q_pre):
            truth["blocked"] = 1.0
        else:
            frac = world.descend(q_pre, q_low, 0.004, cfg.approach_height - cfg.push_height)
            truth["descent_fraction"] = frac
            _report(progress, 0.25)
            p0 = world.ee_position()
            path = world.cartesian_path(p0, (ex, ey, p0[2]), orn, cfg.push_speed,
                                        q_seed=world.arm_q())
            world.hold_arm()
            world.drive_fingers(0.0)
            n = len(path)
            for i in range(0, n, 10):
                world.track(path[i:i + 10], should_stop=should_stop)
                _report(progress, 0.25 + 0.6 * (i + 10) / n)
            q_now = world.arm_q()
            q_up = world.ik((ex, ey, p0[2] + 0.05), orn, q_seed=q_now)
            world.track(world.joint_path(q_now, q_up), should_stop=should_stop)
        truth["recovered"] += _finish(world, 0.0)
        world.settle()
    except Aborted:
        log.info("push aborted")
        _finish(world)
        result.aborted = True
    result.after = world.capture()[0]
    disp = _displacements(world, poses)
    if disp:
        body = max(disp, key=lambda b: math.hypot(*disp[b][:2]))
        if math.hypot(*disp[body][:2]) > 0.002:
            result.object_id = ids[body]
        else:
            body = next((b for b, i in ids.items() if i == result.object_id), body)
        if body in disp:
            result.dx, result.dy, result.dyaw = disp[body]
    result.steps = world.step_count - start
    _report(progress, 1.0)
    return result


def poke(world: World, x: float, y: float, progress: Progress | None = None,
         should_stop: ShouldStop | None = None) -> PokeResult:
    """Press the probe down at (x, y) until the force limit (or the depth limit).

    Depth is the measured fall of the probe tip since the press began (not the commanded
    one); force is the probe's contact normal force (the largest of its contact points:
    PyBullet's persistent manifold can hold several near-duplicate points of one contact,
    each a spring of the object's stiffness, which would multiply the felt stiffness).

    Simulation stand-in: the object under the probe (ray test) is held in place by a
    temporary fixed constraint during the press, as the table would hold a real object;
    otherwise PyBullet's soft object-table contact and the rocking of the random meshes
    dominate the press depth. The pin's own small give is subtracted from the depth. The
    press runs with ``poke_solver_iterations`` (the default 50 iterations do not converge
    for stiff contacts and under-read their force).
    """
    cfg = world.config
    world.check_in_workspace(x, y, what="poke point")
    truth = {"recovered": _prepare(world)}
    start = world.step_count
    patch, depth_img = world.patch(x, y)
    nearest = world.object_at(x, y)
    result = PokeResult([], [], patch, nearest.object_id if nearest else "", 0.0, False, x, y,
                        depth_patch=depth_img, truth=truth)
    z_surface = _surface_height(world, depth_img, radius_m=0.006)
    orn = world.grasp_orientation(world.wrist_angle(0.0))
    tip0 = z_surface + 0.004  # start the press just above the surface seen
    q_pre = world.ik((x, y, cfg.approach_height + PROBE_LENGTH), orn)
    q_top = world.ik((x, y, tip0 + PROBE_LENGTH), orn, q_seed=q_pre)
    z_bottom = z_surface - cfg.poke_max_depth - 0.004
    q_bot = world.ik((x, y, z_bottom + PROBE_LENGTH), orn, q_seed=q_top)
    world.set_fingers(0.0)
    probe = pin = None
    try:
        if not world.move_kinematic(q_pre):
            truth["blocked"] = 1.0
            raise _Skip()
        frac = world.descend(q_pre, q_top, 0.005, cfg.approach_height - tip0)
        if frac < 1.0:
            truth["blocked"] = 1.0
            raise _Skip()
        _report(progress, 0.2)
        # the object under the probe is held in place during the press (see poke's doc)
        hit = world.p.rayTest((x, y, tip0 + 0.05), (x, y, -0.01))[0][0]
        pinned = world.info_of_body(hit)
        if pinned is not None:
            pin = world.pin(hit)
            z_pinned = world.p.getBasePositionAndOrientation(hit)[0][2]
        probe = world.attach_probe()
        world.p.setPhysicsEngineParameter(numSolverIterations=cfg.poke_solver_iterations)
        world.hold_arm()
        world.drive_fingers(0.0)
        world.step(4)
        tip_start = world.probe_tip(probe)[2]
        z_top_cmd = tip0
        z_cmd = z_top_cmd
        in_contact = False
        depths, forces, bodies = [], [], {}
        contact_depth = None
        max_steps = int((cfg.poke_max_depth + 0.014) / cfg.poke_speed / cfg.time_step)
        p = world.p
        dz_max = cfg.poke_speed * cfg.time_step
        dz = dz_max
        for i in range(max_steps * 4):
            if i % 16 == 0:
                _check_stop(should_stop)
            # in contact, slow down so that the force rises by about 1/60 of the limit per
            # step: hard objects get as many samples as soft ones
            if len(forces) >= 2 and forces[-1] > 0.05 and depths[-1] > depths[-2]:
                rate = (forces[-1] - forces[-2]) / (depths[-1] - depths[-2])
                if rate > 0:
                    dz = float(np.clip(cfg.poke_force_limit / 60 / rate, dz_max / 8, dz_max))
            z_cmd -= dz
            s = min(1.0, (z_top_cmd - z_cmd) / (z_top_cmd - z_bottom))
            world.track([q_top + (q_bot - q_top) * s])
            f = 0.0
            for c in p.getContactPoints(bodyA=probe):
                f = max(f, c[9])
                bodies[c[2]] = bodies.get(c[2], 0.0) + c[9]
            d = tip_start - world.probe_tip(probe)[2]
            if pinned is not None:  # the pin gives a little: count only the press into it
                d -= z_pinned - p.getBasePositionAndOrientation(hit)[0][2]
            depths.append(float(d))
            forces.append(float(f))
            if f > 0.05 and not in_contact:
                in_contact, contact_depth = True, d
            if f >= cfg.poke_force_limit:
                result.reached_force_limit = True
                break
            if contact_depth is not None and d - contact_depth > cfg.poke_max_depth:
                break
            if s >= 1.0:
                break
        result.depth, result.force = depths, forces
        _report(progress, 0.8)
        # back off a little under physics before the probe is removed
        q_now = world.arm_q()
        world.track(world.joint_path(q_now, q_top, speed_scale=0.5))
        body = max(bodies, key=bodies.get) if bodies else None
        info = world.info_of_body(body) if body is not None else None
        if info is not None:
            result.object_id = info.object_id
            result.stiffness = info.stiffness
            truth.update(stiffness=info.stiffness, damping=info.damping, mass=info.mass)
        elif body is not None:
            truth["touched_table"] = 1.0
        if len(depths) >= 3:
            result.fit = fit_tactile(depths, forces)
    except _Skip:
        pass
    except Aborted:
        log.info("poke at (%.3f, %.3f) aborted", x, y)
        result.aborted = True
    finally:
        if probe is not None:
            world.detach_probe(probe)
            world.p.setPhysicsEngineParameter(numSolverIterations=cfg.solver_iterations)
        if pin is not None:
            world.p.removeConstraint(pin)
    truth["recovered"] += _finish(world)
    result.steps = world.step_count - start
    _report(progress, 1.0)
    return result


class _Skip(Exception):
    """Internal: leave a primitive early without an error (e.g. approach blocked)."""


#: Wrist poses of the inspect views: (turn about the vertical, tilt about the finger axis,
#: tilt about the other horizontal axis), radians; cycled if more views are asked for.
INSPECT_POSES = ((0.0, 0.0, 0.0), (math.pi / 2, 0.0, 0.0), (0.0, 0.6, 0.0),
                 (0.0, 0.0, 0.6), (math.pi / 2, -0.6, 0.0), (0.0, 0.0, -0.6))
INSPECT_POINT = (0.0, 0.0, 0.28)  # where the hand shows the object (table frame)


def inspect(world: World, object_id: str, progress: Progress | None = None,
            should_stop: ShouldStop | None = None) -> InspectResult:
    """Grasp ``object_id`` across its narrow side and image it held in several wrist poses.

    The views come from a camera beside the hand (looking along -x); with ``hide_arm`` the
    arm is invisible, so they show the object alone.
    """
    cfg = world.config
    info = world.object(object_id)  # ValueError for an unknown id
    _prepare(world)
    verts = world.object_vertices(object_id)
    cx, cy = 0.5 * (verts[:, :2].max(0) + verts[:, :2].min(0))
    cx, cy = float(np.clip(cx, *world.workspace[0])), float(np.clip(cy, *world.workspace[1]))
    angle = world.best_grasp_angle(object_id)
    start = world.step_count
    try:
        g = _grasp_core(world, cx, cy, angle, None, should_stop, release=False)
    except Aborted:
        _finish(world)
        patch = world.patch(cx, cy)[0]
        return InspectResult(False, patch, [], False, object_id, None, cx, cy, angle,
                             aborted=True, steps=world.step_count - start)
    res = InspectResult(False, g.patch, [], False, object_id, g, cx, cy, g.angle,
                        truth=dict(g.truth))
    held = g.success and g.object_id == object_id
    if not held:
        res.truth["recovered"] += _finish(world)
        res.steps = world.step_count - start
        _report(progress, 1.0)
        return res
    res.success = True
    _report(progress, 0.3)
    n_held = 0
    try:
        base_angle = g.angle
        for k in range(cfg.inspect_views):
            turn, t0, t1 = INSPECT_POSES[k % len(INSPECT_POSES)]
            orn = world.grasp_orientation(world.wrist_angle(base_angle + turn), (t0, t1))
            q_now = world.arm_q()
            q = world.ik(INSPECT_POINT, orn, q_seed=q_now, tol=3e-3)
            world.track(world.joint_path(q_now, q, speed_scale=0.4), should_stop=should_stop)
            world.step(8)
            if not world.is_held(info):
                break
            n_held += 1
            res.views.append(_view(world, info))
            _report(progress, 0.3 + 0.6 * (k + 1) / cfg.inspect_views)
        res.held_through_all = n_held == cfg.inspect_views
        # put it down: lower over the table centre, open
        orn = world.grasp_orientation(world.wrist_angle(base_angle))
        q_now = world.arm_q()
        q = world.ik((0.0, 0.0, 0.06 + world.tip_below_ee + 0.03), orn, q_seed=q_now)
        world.track(world.joint_path(q_now, q, speed_scale=0.7), should_stop=should_stop)
    except Aborted:
        res.aborted = True
    world.drive_fingers(cfg.arm.finger_open)
    world.step(16)
    res.truth["recovered"] += _finish(world)
    res.truth["views_held"] = float(n_held)
    res.steps = world.step_count - start
    _report(progress, 1.0)
    return res


def _view(world: World, info) -> np.ndarray:
    """Image of a held object from a camera beside it, looking along -x."""
    pos = np.asarray(world.p.getBasePositionAndOrientation(info.body)[0])
    verts = world.object_vertices(info.object_id)
    centre = 0.5 * (verts.max(0) + verts.min(0)) if len(verts) else pos
    dist = 0.4
    extent = 0.18
    fov = math.degrees(2 * math.atan(0.5 * extent / dist))
    size = world.config.patch_size
    cam = Camera(size, size, tuple(centre + np.array([dist, 0.0, 0.0])), tuple(centre),
                 (0.0, 0.0, 1.0), fov, near=0.1, far=2.0)
    return world._render(cam, depth=False)[0]
