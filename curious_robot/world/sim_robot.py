"""The simulated world as a :class:`~curious_robot.motion.robot.Robot`: the motion scripts
of :mod:`curious_robot.motion` run on a :class:`~curious_robot.world.world.World` through
this adapter.

Free-space motions are kinematic (collision-checked teleports that advance the step
counter by their duration); closing, lifting, the push stroke, the poke press and the
inspect wrist motions are simulated. What the simulation knows beyond the sensors (object
ids, what was lifted, stiffness) goes into each result's ``truth`` (never shown to the
learner). A stop (``should_stop``) ends a primitive with the arm home and the gripper
open, and the result says ``aborted``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np

from curious_robot.motion.config import MotionParams, PrimitiveDefaults
from curious_robot.motion.results import Aborted
from curious_robot.motion.robot import Touch

from .camera import Camera
from .objects import band_width, load_manifest, mesh_faces, width_along

log = logging.getLogger(__name__)

#: a press slows to ``poke_speed`` this far above the surface under the probe, m
CONTACT_GAP = 0.0005
#: half the width of the fingers' pads, m: the band of the object a grasp closes on
FINGER_BAND = 0.01
PROBE_LENGTH = 0.075  # m from the probe's mount to the bottom of its ball (probe.urdf)


#: m: objects this close to a held one are not held still around it (hold_others)
HOLD_CLEARANCE = 0.01


@dataclass
class SimView:
    """A rendered patch; heights come from its depth image (camera straight above)."""

    rgb: np.ndarray
    depth: np.ndarray
    world: object

    def surface(self, radius_m: float) -> float:
        w = self.world
        cam = w.patch_camera(0.0, 0.0)
        r = max(1, int(round(radius_m * cam.fx / w.config.camera_height)))
        h, wd = self.depth.shape
        win = self.depth[h // 2 - r:h // 2 + r, wd // 2 - r:wd // 2 + r]
        return float(w.config.camera_height - win.min())

    def heights(self) -> tuple[np.ndarray, float]:
        cfg = self.world.config  # the patch camera looks straight down from camera_height
        return cfg.camera_height - self.depth, cfg.patch_extent / self.depth.shape[1]


@dataclass
class SimScene:
    rgb: np.ndarray
    depth: np.ndarray


class SimRobot:
    """A :class:`~curious_robot.motion.robot.Robot` over one world (``world.robot``)."""

    poke_offset = PROBE_LENGTH
    floor = -math.inf  # the press is stopped by the guard, the table by contact

    def __init__(self, world):
        self.world = w = world
        c = w.config
        self.arm = w.model
        self.params = MotionParams(
            approach_height=c.approach_height, lift_height=c.lift_height,
            grasp_depth=c.grasp_depth, min_grasp_height=c.min_grasp_height,
            closed_width=c.closed_width, push_height=c.push_height, push_speed=c.push_speed,
            poke_force_limit=c.poke_force_limit, poke_max_depth=c.poke_max_depth,
            poke_speed=c.poke_speed, inspect_views=c.inspect_views,
            lift_speed=PrimitiveDefaults.lift_speed,
            descend_speed=PrimitiveDefaults.descend_speed,
            inspect_speed_scale=c.inspect_speed_scale, open_width=2.0 * c.arm.finger_open)

    # ------------------------------------------------------------ checks and bookkeeping
    def target_area(self):
        (x0, x1), (y0, y1) = self.world.workspace[:2]
        return (float(x0), float(x1)), (float(y0), float(y1))

    def check_target(self, x, y, what):
        self.world.check_in_workspace(x, y, what=what)

    def check_plan(self, waypoints, from_home=False, then_home=True):
        return None  # motions are collision-checked as they run

    def check_stop(self, should_stop):
        if should_stop is not None and should_stop():
            raise Aborted()

    def prepare(self):
        recovered = sum(self.world.maintain().values())
        self.world.settle()
        return {"recovered": float(recovered)}

    def steps(self):
        return self.world.step_count

    def begin(self, should_stop):
        return None

    def end(self, what):
        return None

    def after_abort(self, exc):
        return None  # the script puts the arm home and reports the result as aborted

    def report(self, result):
        return result

    # ------------------------------------------------------------ sensing
    def look(self, x, y):
        rgb, depth = self.world.patch(x, y)
        return SimView(rgb, depth, self.world)

    def scene(self, fresh=False):
        return SimScene(*self.world.capture())

    def object_near(self, x, y):
        o = self.world.object_at(x, y)
        return o.object_id if o is not None else ""

    def grasp_truth(self, object_id, angle, x, y):
        """Object properties and its geometry across the jaws: the whole footprint's width
        along the closing direction, its narrowest width and angle, and ``local_width``,
        the silhouette's width between the fingers (a band of the fingers' width through
        the grasp point), what the jaws actually close on."""
        if not object_id:
            return {}
        w = self.world
        o = w.object(object_id)
        f = w.footprint(object_id)
        model = next(m for m in load_manifest(w.config.objects_manifest)
                     if m.id == o.model_id)
        verts = w.object_vertices(object_id)
        local = band_width(verts, mesh_faces(model.mesh), x, y, angle, band=FINGER_BAND)
        # the grasp point from the centre of the object's bounding box, along the closing
        # direction and across it (the gripper is symmetric: magnitudes)
        cx, cy = 0.5 * (verts[:, :2].max(0) + verts[:, :2].min(0))
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = x - cx, y - cy
        return dict(width_along_angle=width_along(f, angle), min_width=float(f.min()),
                    best_angle=float(np.argmin(f)) * math.pi / len(f),
                    local_width=local, stiffness=o.stiffness, mass=o.mass,
                    friction=o.friction, offset_along=float(abs(dx * c + dy * s)),
                    offset_across=float(abs(-dx * s + dy * c)),
                    top_height=float(verts[:, 2].max()))

    def mark_objects(self):
        objs = self.world.objects()
        return ({o.body: (o.position[0], o.position[1], o.yaw, o.position[2]) for o in objs},
                {o.body: o.object_id for o in objs})

    def lifted(self, mark):
        w = self.world
        poses = mark[0]
        lifted, rise = "", 0.0
        for o in w.objects():
            if o.body in poses and w.arm_contacts(o.body, w.finger_links):
                r = o.position[2] - poses[o.body][3]
                if r > rise:
                    lifted, rise = o.object_id, r
        return lifted, rise

    def object_motion(self, mark, before, after, start, end, object_id):
        poses, ids = mark
        disp = {}
        for o in self.world.objects():
            # the same body and the same object (PyBullet reuses a removed body's id)
            if o.body in poses and ids[o.body] == o.object_id:
                x0, y0, yaw0 = poses[o.body][:3]
                dyaw = (o.yaw - yaw0 + math.pi) % (2 * math.pi) - math.pi
                disp[o.body] = (o.position[0] - x0, o.position[1] - y0, dyaw)
        dx = dy = dyaw = 0.0
        if disp:
            body = max(disp, key=lambda b: math.hypot(*disp[b][:2]))
            if math.hypot(*disp[body][:2]) > 0.002:
                object_id = ids[body]
            else:
                body = next((b for b, i in ids.items() if i == object_id), body)
            if body in disp:
                dx, dy, dyaw = disp[body]
        return object_id, dx, dy, dyaw

    def holding(self, object_id):
        return self.world.is_held(self.world.object(object_id))

    def view_held(self, object_id):
        """Image of a held object from a camera beside it, looking along -x (with
        ``hide_arm`` the arm is invisible: the object alone)."""
        w = self.world
        info = w.object(object_id)
        pos = np.asarray(w.p.getBasePositionAndOrientation(info.body)[0])
        verts = w.object_vertices(object_id)
        centre = 0.5 * (verts.max(0) + verts.min(0)) if len(verts) else pos
        dist = 0.4
        extent = 0.18
        fov = math.degrees(2 * math.atan(0.5 * extent / dist))
        size = w.config.patch_size
        cam = Camera(size, size, tuple(centre + np.array([dist, 0.0, 0.0])), tuple(centre),
                     (0.0, 0.0, 1.0), fov, near=0.1, far=2.0)
        return w.render(cam, depth=False)[0]

    def inspect_target(self, object_id, x, y, angle):
        """Grasp across the object's narrow side at its centre (ground truth); without an
        id, the object nearest to (x, y)."""
        w = self.world
        if not object_id:
            near = w.object_at(x, y)
            if near is None:
                raise ValueError(f"no object at ({x:.3f}, {y:.3f})")
            object_id = near.object_id
        w.object(object_id)  # ValueError for an unknown id
        self.prepare()
        verts = w.object_vertices(object_id)
        cx, cy = 0.5 * (verts[:, :2].max(0) + verts[:, :2].min(0))
        cx, cy = float(np.clip(cx, *w.workspace[0])), float(np.clip(cy, *w.workspace[1]))
        return object_id, cx, cy, w.best_grasp_angle(object_id)

    def gripper_width(self):
        return self.world.gripper_width()

    def joints(self):
        return self.world.arm_q()

    def ee_position(self):
        return self.world.ee_position()

    def ik(self, pos, orn, q_seed=None, tol=5e-4):
        return self.world.ik(pos, orn, q_seed=q_seed, tol=tol)

    def poke_force_limit(self, requested):
        return self.world.config.poke_force_limit  # the simulation presses to its own

    # ------------------------------------------------------------ motion
    def preset_gripper(self, closed, should_stop):
        self.world.set_fingers(0.0 if closed else self.world.config.arm.finger_open)

    def close_gripper(self, should_stop):
        """Close (dynamic) until the fingers stall."""
        w, cfg = self.world, self.world.config
        w.hold_arm()
        w.drive_fingers(0.0)
        max_close = int(cfg.arm.finger_open / cfg.arm.finger_speed / cfg.time_step) + 24
        prev = w.gripper_width()
        for i in range(0, max_close, 4):
            self.check_stop(should_stop)
            w.step(4)
            wdt = w.gripper_width()
            if i >= 12 and abs(wdt - prev) < 2e-4:
                break
            prev = wdt

    def open_gripper(self, should_stop):
        self.world.drive_fingers(self.world.config.arm.finger_open)

    def approach(self, q, should_stop, progress=None, span=(0.0, 1.0)):
        return self.world.move_kinematic(q)

    def descend(self, q_top, q_bottom, bottom, orn, step_m, length, should_stop,
                progress=None, span=(0.0, 1.0)):
        return self.world.descend(q_top, q_bottom, step_m, length)

    def move_joints(self, q, should_stop, speed_scale=1.0, duration=None, progress=None,
                    span=(0.0, 1.0)):
        w = self.world
        q_now = w.arm_q()
        if duration is None:
            path = w.joint_path(q_now, q, speed_scale=speed_scale)
        else:
            n = max(1, int(math.ceil(duration / w.config.time_step)))
            path = [q_now + (q - q_now) * (i / n) for i in range(1, n + 1)]
        w.track(path, should_stop=should_stop)

    def move_line(self, pos, orn, speed, should_stop, progress=None, span=(0.0, 1.0)):
        """Simulated straight stroke: joint positions one per physics step along the line,
        tracked by the motors in chunks of 10 steps (progress after each)."""
        w = self.world
        path = w.cartesian_path(w.ee_position(), pos, orn, speed, q_seed=w.arm_q())
        w.hold_arm()
        w.drive_fingers(0.0)
        n = len(path)
        lo, hi = span
        for i in range(0, n, 10):
            w.track(path[i:i + 10], should_stop=should_stop)
            if progress is not None:
                progress(float(min(1.0, max(0.0, lo + (hi - lo) * (i + 10) / n))))

    def press(self, top, bottom, q_top, q_bottom, orn, guard, should_stop, progress=None,
              span=(0.0, 1.0)):
        """The probe is mounted on the ee and pressed down, commanded along the joint
        line ``q_top`` -> ``q_bottom`` at up to ``poke_speed``; in contact it slows so
        that the force rises by about 1/60 of the limit per step (hard objects get as many
        samples as soft ones). Depth is the measured fall of the probe tip since the press
        began; force the probe's contact normal force (the largest of its contact points:
        PyBullet's persistent manifold can hold several near-duplicate points of one
        contact, each a spring of the object's stiffness, which would multiply the felt
        stiffness). Then it backs off to ``q_top`` under physics before the probe goes.

        Free travel before contact runs at up to ``poke_free_speed`` until the probe is
        :data:`CONTACT_GAP` above what is under it (closest points; the steps it saves
        would only read zero force), then at ``poke_speed`` as the hardware presses.

        Simulation stand-in: the object under the probe (ray test) is held in place by a
        temporary fixed constraint during the press, as the table would hold a real
        object; otherwise PyBullet's soft object-table contact and the rocking of the
        random meshes dominate the press depth. The pin's own small give is subtracted
        from the depth. The press runs with ``poke_solver_iterations`` (the default 50
        iterations do not converge for stiff contacts and under-read their force)."""
        w, cfg = self.world, self.world.config
        p = w.p
        x, y, tip0 = top
        z_bottom = bottom[2]
        probe = pin = None
        held: list = []
        bodies: dict[int, float] = {}
        try:
            hit = p.rayTest((x, y, tip0 + 0.05), (x, y, -0.01))[0][0]
            pinned = w.info_of_body(hit)
            if pinned is not None:
                pin = w.pin(hit)
                z_pinned = p.getBasePositionAndOrientation(hit)[0][2]
            if cfg.rigid_objects and cfg.poke_hold_others:  # out of the press's solver
                held = [w.pin(o.body) for o in w.objects() if o.body != hit]
            probe = w.attach_probe()
            p.setPhysicsEngineParameter(numSolverIterations=cfg.poke_solver_iterations)
            w.hold_arm()
            w.drive_fingers(0.0)
            w.step(4)
            tip_start = w.probe_tip(probe)[2]
            z_top_cmd = tip0
            z_cmd = z_top_cmd
            depths, forces = guard.depths, guard.forces
            max_steps = int((cfg.poke_max_depth + 0.014) / cfg.poke_speed / cfg.time_step)
            dz_max = cfg.poke_speed * cfg.time_step
            dz_free = cfg.poke_free_speed * cfg.time_step
            dz = dz_max
            touched = False
            for i in range(max_steps * 4):
                if i % 16 == 0:
                    self.check_stop(should_stop)
                touched = touched or (len(forces) > 0 and forces[-1] > guard.contact)
                if not touched:  # free travel: fast until CONTACT_GAP from the surface
                    gap = w.probe_gap(probe, hit) - CONTACT_GAP
                    ahead = w.probe_tip(probe)[2] - z_cmd  # the command leads the tip
                    dz = float(np.clip(gap - ahead, dz_max, dz_free))
                elif len(forces) >= 2 and depths[-1] > depths[-2]:
                    rate = (forces[-1] - forces[-2]) / (depths[-1] - depths[-2])
                    dz = (float(np.clip(guard.limit / 60 / rate, dz_max / 8, dz_max))
                          if rate > 0 else dz_max)
                else:
                    dz = dz_max
                z_cmd -= dz
                s = min(1.0, (z_top_cmd - z_cmd) / (z_top_cmd - z_bottom))
                w.track([q_top + (q_bottom - q_top) * s])
                f = 0.0
                for c in p.getContactPoints(bodyA=probe):
                    f = max(f, c[9])
                    bodies[c[2]] = bodies.get(c[2], 0.0) + c[9]
                d = tip_start - w.probe_tip(probe)[2]
                if pinned is not None:  # the pin gives a little: count only the press into it
                    d -= z_pinned - p.getBasePositionAndOrientation(hit)[0][2]
                if guard(float(d), float(f)) or s >= 1.0:
                    break
            # back off a little under physics before the probe is removed
            w.track(w.joint_path(w.arm_q(), q_top, speed_scale=0.5))
        finally:
            if probe is not None:
                w.detach_probe(probe)
                p.setPhysicsEngineParameter(numSolverIterations=cfg.solver_iterations)
            if pin is not None:
                w.unpin(pin)
            for h in held:
                w.unpin(h)
        body = max(bodies, key=bodies.get) if bodies else None
        info = w.info_of_body(body) if body is not None else None
        if info is not None:
            return Touch(info.object_id, info.stiffness, dict(
                stiffness=info.stiffness, damping=info.damping, mass=info.mass))
        return Touch(truth={"touched_table": 1.0} if body is not None else {})

    @contextlib.contextmanager
    def hold_others(self, object_id):
        """With ``hold_during_views``, the other objects are static (World.pin) inside
        the context: objects resting on the table cost the solver most of a step. Those
        within :data:`HOLD_CLEARANCE` of the held object or touching the arm stay free
        (a held object snagged on a static one would be pulled from the fingers)."""
        w = self.world
        pins = []
        if w.config.hold_during_views:
            held = w.object(object_id).body
            for o in w.objects():
                if o.object_id == object_id or w.p.getClosestPoints(
                        held, o.body, HOLD_CLEARANCE) or w.arm_contacts(o.body):
                    continue
                pins.append(w.pin(o.body))
        try:
            yield
        finally:
            for pin in pins:
                w.unpin(pin)

    def dwell(self, seconds):
        self.world.step(int(round(seconds / self.world.config.time_step)))

    def settle(self):
        self.world.settle()

    def finish(self, should_stop, closed=False):
        """Arm home (kinematic), gripper open or shut; 1.0 if physics blew up and the
        scene was reset. Objects that left the table or drifted out of reach stay until
        the next :meth:`prepare` (or the arm node's upkeep after the result): a push's
        outcome is measured after this."""
        w = self.world
        w.go_home(0.0 if closed else w.config.arm.finger_open)
        return float(sum(w.maintain(upkeep=False).values()))
