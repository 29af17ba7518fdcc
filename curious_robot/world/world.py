"""The simulated world: a table, an arm with a parallel gripper, an overhead RGB-D camera and
objects dropped at random, in one private PyBullet client.

Time is simulation steps (:attr:`World.step_count`); free-space motions are kinematic (joint
interpolation within the speed limits, collision-checked) and advance the step counter by
their duration without stepping physics; contact phases are simulated.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from curious_robot.motion.arm_model import ArmModel
from curious_robot.motion.results import Aborted, Progress, ShouldStop

from . import looks
from .camera import Camera
from .config import WorldConfig, resolve_path
from .objects import (MATERIALS, ObjectInfo, footprint_widths, load_manifest, mesh_vertices,
                      select_models)
from .session import BulletSession

log = logging.getLogger(__name__)

class PhysicsBlowUp(RuntimeError):
    """Raised inside a primitive when the simulation produced NaN or absurd velocities."""


class World(BulletSession):
    """One simulated table-top world; see the module docstring.

    ``World(config, seed)`` builds the scene and drops ``config.num_objects`` objects; the
    primitives (:meth:`grasp`, :meth:`push`, :meth:`poke`, :meth:`inspect`) are the motion
    scripts of :mod:`curious_robot.motion` run on :attr:`robot` (a
    :class:`~curious_robot.world.sim_robot.SimRobot`). Use :meth:`close` (or
    ``with World() as w:``).
    """

    def __init__(self, config: WorldConfig | None = None, seed: int = 0):
        self.config = cfg = config if config is not None else WorldConfig()
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.step_count = 0
        self.recoveries = 0
        self._connect(cfg.time_step, cfg.solver_iterations)
        pb = self._pb
        self._renderer = (pb.ER_TINY_RENDERER if cfg.renderer == "tiny"
                          else pb.ER_BULLET_HARDWARE_OPENGL)
        manifest = load_manifest(cfg.objects_manifest)
        splits = ("train", "held_out") if cfg.object_split == "scenes" else (cfg.object_split,)
        self._split_models = {name: select_models(manifest, name) for name in splits}
        for name, models in self._split_models.items():
            if not models:
                raise ValueError(f"object split {name!r} of {cfg.objects_manifest} is empty"
                                 + (" (object_split 'scenes' needs both)" if len(splits) > 1
                                    else ""))
        #: the split the objects of the current scene come from ("train" / "held_out";
        #: for object_split "all" and the fixed splits, that split)
        self.scene_split = splits[0]
        self._shapes: dict[int, tuple[int, int]] = {}
        self._objects: dict[str, ObjectInfo] = {}
        self._spawned = 0
        (wx0, wx1), (wy0, wy1), (wz0, wz1) = cfg.workspace
        self.workspace = cfg.workspace
        self.camera = Camera.top_down(0.5 * (wx0 + wx1), 0.5 * (wy0 + wy1), cfg.camera_height,
                                      cfg.scene_extent, cfg.image_size)
        self._build_table()
        self._build_arm()
        self.reset()

    @property
    def _models(self):
        """The object models the current scene draws from."""
        return self._split_models[self.scene_split]

    # ------------------------------------------------------------------ building
    def _build_table(self) -> None:
        p, (sx, sy) = self.p, self.config.table_size
        half = [sx / 2, sy / 2, 0.025]
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=[0.78, 0.72, 0.62, 1])
        self.table = p.createMultiBody(0, col, vis, basePosition=[0, 0, -0.025])
        p.changeDynamics(self.table, -1, lateralFriction=0.6)

    def _build_arm(self) -> None:
        #: the shared arm model (URDF, limits, IK, fingertip reach, wrist angle)
        self.model = m = ArmModel(self.p, self.config.arm, on_load=self._setup_arm)
        self._home = m.home
        #: how far the fingertips reach beyond the ee point along the approach axis
        self.tip_below_ee = m.tip_below_ee
        self._probe_path = str(resolve_path(self.config.probe_urdf))
        self._robot = None

    @property
    def robot(self):
        """This world as the motion scripts' robot (:class:`~.sim_robot.SimRobot`)."""
        if self._robot is None:
            from .sim_robot import SimRobot

            self._robot = SimRobot(self)
        return self._robot

    def _setup_arm(self, m: ArmModel) -> None:
        """The world's view of the freshly loaded arm, its frictions and collision filters."""
        p, a = self.p, self.config.arm
        self.arm = m.body
        self._limits = m.limits
        self._joint_names = m.urdf_joints
        self._arm_j, self._finger_j, self._ee = m.arm_joints, m.finger_joints, m.ee
        if m.hand is None:
            raise ValueError(f"arm {a.name}: no joint or link named {a.hand_link!r} in "
                             f"{a.urdf}")
        self._hand = m.hand
        self._lo, self._hi = m.lower, m.upper
        self._vmax = m.velocity_limits * a.joint_speed_scale
        self.finger_links = list(self._finger_j)
        self._arm_links = set(range(-1, p.getNumJoints(self.arm)))
        for j in self._finger_j:
            p.changeDynamics(self.arm, j, lateralFriction=1.2)
        if self.config.hide_arm:
            for link in self._arm_links:
                p.changeVisualShape(self.arm, link, rgbaColor=[0, 0, 0, 0])
        for link in (-1, 0):  # the base stands at the table's edge
            p.setCollisionFilterPair(self.arm, self.table, link, -1, 0)

    # ------------------------------------------------------------------ objects
    def _shape(self, model) -> tuple[int, int]:
        if model.id not in self._shapes:
            p, path = self.p, str(resolve_path(model.mesh))
            col = p.createCollisionShape(p.GEOM_MESH, fileName=path, meshScale=model.scale)
            if self.config.materials:  # a texture-mapped copy: the material shows
                vis = p.createVisualShape(p.GEOM_MESH, meshScale=model.scale,
                                          fileName=str(looks.mapped_mesh(path, model.scale)))
            else:
                vis = p.createVisualShape(p.GEOM_MESH, fileName=path, meshScale=model.scale,
                                          rgbaColor=model.rgba)
            self._shapes[model.id] = (col, vis)
        return self._shapes[model.id]

    @property
    def textures(self) -> looks.Textures:
        """The material textures of this world's client (loaded on first use)."""
        if getattr(self, "_textures", None) is None:
            self._textures = looks.Textures(self.p)
        return self._textures

    def _free_spot(self, radius: float, exclude: str = "") -> tuple[float, float]:
        (x0, x1), (y0, y1), _ = self.workspace
        m = self.config.spawn_margin
        others = [(self.p.getBasePositionAndOrientation(o.body)[0], max(o.size[:2]) / 2)
                  for o in self._objects.values() if o.object_id != exclude]
        for _ in range(50):
            x, y = self.rng.uniform(x0 + m, x1 - m), self.rng.uniform(y0 + m, y1 - m)
            if all(math.hypot(x - q[0], y - q[1]) > radius + r + 0.01 for q, r in others):
                return float(x), float(y)
        return float(x), float(y)

    def spawn_object(self, model_id: int | None = None) -> ObjectInfo:
        """Drop one object (a random model of the split unless ``model_id``) at a free spot."""
        cfg, rng, p = self.config, self.rng, self.p
        if model_id is None:
            model = self._models[int(rng.integers(len(self._models)))]
        else:
            by_id = {m.id: m for m in load_manifest(cfg.objects_manifest)}
            if model_id not in by_id:
                raise ValueError(f"unknown object model id {model_id}")
            model = by_id[model_id]
        mass = float(rng.uniform(*cfg.mass_range))
        friction = float(rng.uniform(*cfg.friction_range))
        material = MATERIALS[int(rng.integers(len(MATERIALS)))] if cfg.materials else None
        lo, hi = np.log(material.stiffness if material else cfg.stiffness_range)
        stiffness = float(np.exp(rng.uniform(lo, hi)))
        look = looks.draw_look(rng, material.name) if material else None
        damping = float(stiffness * rng.uniform(*cfg.damping_ratio_range))
        yaw = float(rng.uniform(-math.pi, math.pi))
        x, y = self._free_spot(0.5 * max(model.size[:2]))
        z = 0.5 * model.size[2] + 0.01
        col, vis = self._shape(model)
        orn = p.getQuaternionFromEuler([0, 0, yaw])
        # the mesh origin is not its centre: the inertial frame (the pose PyBullet reports)
        # is put at the centre of the mesh's bounding box, and that is dropped at (x, y, z)
        v = mesh_vertices(model.mesh) * np.asarray(model.scale)
        centre = 0.5 * (v.max(0) + v.min(0))
        off = np.asarray(p.getMatrixFromQuaternion(orn)).reshape(3, 3) @ centre
        body = p.createMultiBody(mass, col, vis, basePosition=[x - off[0], y - off[1], z - off[2]],
                                 baseOrientation=orn, baseInertialFramePosition=centre.tolist(),
                                 useMaximalCoordinates=cfg.rigid_objects)
        if look is not None:  # a random colour; the material shows in the texture
            self.textures.apply(body, look)
        p.changeDynamics(body, -1, lateralFriction=friction,
                         spinningFriction=cfg.spinning_friction,
                         rollingFriction=cfg.rolling_friction, contactStiffness=stiffness,
                         contactDamping=damping)
        oid = f"obj{self._spawned:04d}"
        self._spawned += 1
        info = ObjectInfo(object_id=oid, model=model.name, model_id=model.id,
                          held_out=model.held_out, position=(x, y, z), yaw=yaw,
                          stiffness=stiffness, damping=damping, mass=mass, friction=friction,
                          size=model.size, orientation=tuple(orn),
                          material=material.name if material else "", body=body)
        self._objects[oid] = info
        return info

    def remove_object(self, object_id: str) -> None:
        info = self._object(object_id)
        self.p.removeBody(info.body)
        del self._objects[object_id]

    def _object(self, object_id: str) -> ObjectInfo:
        if object_id not in self._objects:
            known = ", ".join(sorted(self._objects)) or "none"
            raise ValueError(f"unknown object id {object_id!r}; objects on the table: {known}")
        return self._objects[object_id]

    def _refresh(self, info: ObjectInfo) -> ObjectInfo:
        pos, orn = self.p.getBasePositionAndOrientation(info.body)
        info.position = tuple(pos)
        info.orientation = tuple(orn)
        r = np.asarray(self.p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        info.yaw = math.atan2(r[1, 0], r[0, 0])
        return info

    def objects(self) -> list[ObjectInfo]:
        """The objects now in the world, with current poses (copies are not made)."""
        return [self._refresh(o) for o in self._objects.values()]

    def object(self, object_id: str) -> ObjectInfo:
        return self._refresh(self._object(object_id))

    def object_vertices(self, object_id: str) -> np.ndarray:
        """Table-frame vertices (N, 3) of an object's mesh at its current pose."""
        info = self._object(object_id)
        model = next(m for m in load_manifest(self.config.objects_manifest)
                     if m.id == info.model_id)
        pos, orn = self.p.getBasePositionAndOrientation(info.body)
        r = np.asarray(self.p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        v = mesh_vertices(model.mesh) * np.asarray(model.scale)
        v = v - 0.5 * (v.max(0) + v.min(0))  # the reported pose is the bounding-box centre's
        return v @ r.T + np.asarray(pos)

    def footprint(self, object_id: str) -> np.ndarray:
        """Footprint width (m) of an object along 180 directions in [0, pi) (ground truth)."""
        return footprint_widths(self.object_vertices(object_id)[:, :2])

    def best_grasp_angle(self, object_id: str) -> float:
        """Ground-truth grasp angle across the object's narrow side, in [0, pi)."""
        w = self.footprint(object_id)
        return float(np.argmin(w)) * math.pi / len(w)

    def object_at(self, x: float, y: float) -> ObjectInfo | None:
        """The object whose centre is nearest to (x, y) (None on an empty table)."""
        objs = self.objects()
        if not objs:
            return None
        return min(objs, key=lambda o: math.hypot(o.position[0] - x, o.position[1] - y))

    def info_of_body(self, body: int) -> ObjectInfo | None:
        for o in self._objects.values():
            if o.body == body:
                return o
        return None

    # ------------------------------------------------------------------ scene management
    def reset(self) -> None:
        """Remove all objects, put the arm home and drop ``num_objects`` new ones (with
        object_split "scenes", all of one split, drawn for this scene)."""
        for oid in list(self._objects):
            self.remove_object(oid)
        if self.config.object_split == "scenes":
            held = self.rng.random() < self.config.held_out_scenes
            self.scene_split = "held_out" if held else "train"
        self._set_arm(self._home if hasattr(self, "_home") else
                      np.array(self.config.arm.home), self.config.arm.finger_open)
        for _ in range(self.config.num_objects):
            self.spawn_object()
        self.settle(max_steps=240)
        self.maintain()

    def settle(self, max_steps: int = 120, check_every: int = 8) -> int:
        """Step until every object is at rest (or ``max_steps``); returns the steps taken."""
        self.hold_arm()
        n = 0
        while n < max_steps:
            self.step(check_every)
            n += check_every
            if self._at_rest():
                break
        return n

    def _at_rest(self, lin: float = 0.01, ang: float = 0.2) -> bool:
        for o in self._objects.values():
            v, w = self.p.getBaseVelocity(o.body)
            if math.hypot(*v) > lin or math.hypot(*w) > ang:
                return False
        return True

    def blown_up(self) -> bool:
        """True when any object's pose or velocity is NaN or absurd."""
        for o in self._objects.values():
            pos, _ = self.p.getBasePositionAndOrientation(o.body)
            v, w = self.p.getBaseVelocity(o.body)
            vals = (*pos, *v, *w)
            if not all(math.isfinite(a) for a in vals):
                return True
            if math.hypot(*v) > self.config.max_speed or math.hypot(*w) > 50.0:
                return True
        q = [s[0] for s in self.p.getJointStates(self.arm, self._arm_j)]
        return not all(math.isfinite(a) for a in q)

    def out_of_workspace(self) -> list[str]:
        """Ids of objects that left the workspace box (with a 3 cm margin) or the table."""
        (x0, x1), (y0, y1), (z0, z1) = self.workspace
        m, out = 0.03, []
        for oid, o in self._objects.items():
            x, y, z = self.p.getBasePositionAndOrientation(o.body)[0]
            if not (x0 - m < x < x1 + m and y0 - m < y < y1 + m and z0 - 0.05 < z < z1 + 0.2):
                out.append(oid)
        return out

    def out_of_reach(self) -> list[str]:
        """Ids of objects on the table (not :meth:`out_of_workspace`) whose centre lies
        less than ``config.reach_margin`` inside the workspace's x / y edges, or beyond
        them: the arm could only act beside them."""
        (x0, x1), (y0, y1), _ = self.workspace
        m, gone = self.config.reach_margin, set(self.out_of_workspace())
        out = []
        for oid, o in self._objects.items():
            x, y, _z = self.p.getBasePositionAndOrientation(o.body)[0]
            if oid not in gone and not (x0 + m <= x <= x1 - m and y0 + m <= y <= y1 - m):
                out.append(oid)
        return out

    def put_back(self, object_id: str) -> None:
        """Pick an object up and drop it at a free spot inside the workspace, upright at
        its present yaw, as :meth:`spawn_object` drops a new one (same object, same
        properties)."""
        info = self.object(object_id)
        x, y = self._free_spot(0.5 * max(info.size[:2]), exclude=object_id)
        orn = self.p.getQuaternionFromEuler([0.0, 0.0, info.yaw])
        self.p.resetBasePositionAndOrientation(info.body, [x, y, 0.5 * info.size[2] + 0.01],
                                               orn)
        self.p.resetBaseVelocity(info.body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def maintain(self, upkeep: bool = True) -> dict[str, int]:
        """Recover from blow-ups (full reset), respawn objects that left the workspace and
        put back those that drifted out of the arm's reach (:meth:`out_of_reach`), so
        every object left on the table is one the arm can act on. ``upkeep`` False only
        recovers from a blow-up and leaves every object where it is: a primitive's own
        finish, whose outcome (a push's displacement) is measured after it. (A respawn
        there made push outcomes garbage: PyBullet reuses a removed body's id, so the
        new object's position was compared with the old one's; 31 of 132 pushes of a
        10-minute store had no object model and moved against the push.)"""
        if self.blown_up():
            log.warning("physics blow-up detected at step %d: resetting the scene",
                        self.step_count)
            self.recoveries += 1
            self.reset()
            return {"reset": 1, "respawned": 0, "put_back": 0}
        if not upkeep:
            return {"reset": 0, "respawned": 0, "put_back": 0}
        respawned = moved = 0
        for _ in range(3):  # a dropped object may nudge another out: look again
            gone = self.out_of_workspace()
            for oid in gone:
                log.info("object %s left the workspace: respawning", oid)
                self.remove_object(oid)
                self.spawn_object()
            drifted = self.out_of_reach()
            for oid in drifted:
                log.info("object %s drifted out of the arm's reach: putting it back", oid)
                self.put_back(oid)
            if not (gone or drifted):
                break
            respawned, moved = respawned + len(gone), moved + len(drifted)
            self.settle()
        return {"reset": 0, "respawned": respawned, "put_back": moved}

    def step(self, n: int = 1) -> None:
        """Advance the physics ``n`` steps."""
        for _ in range(n):
            self.p.stepSimulation()
        self.step_count += n

    # ------------------------------------------------------------------ sensing
    def render(self, cam: Camera, depth: bool = True):
        """RGB (and metric depth unless ``depth`` is False) of camera ``cam``."""
        p = self.p
        flags = self._pb.ER_NO_SEGMENTATION_MASK
        _, _, rgba, zbuf, _ = p.getCameraImage(cam.width, cam.height, cam.view_matrix(p),
                                               cam.projection_matrix(p), shadow=0,
                                               renderer=self._renderer, flags=flags)
        rgb = np.ascontiguousarray(np.asarray(rgba, dtype=np.uint8).reshape(
            cam.height, cam.width, 4)[:, :, :3])
        if not depth:
            return rgb, None
        return rgb, cam.metric_depth(np.asarray(zbuf, dtype=np.float64).reshape(
            cam.height, cam.width))

    def capture(self) -> tuple[np.ndarray, np.ndarray]:
        """RGB (H, W, 3) uint8 and depth (H, W) float32 metres from the overhead camera."""
        return self.render(self.camera)

    def patch_camera(self, x: float, y: float) -> Camera:
        cfg = self.config
        return Camera.top_down(x, y, cfg.camera_height, cfg.patch_extent, cfg.patch_size)

    def patch(self, x: float, y: float, depth: bool = True):
        """RGB-D patch centred on table point (x, y), axis-aligned (one render); depth None
        when ``depth`` is False (what a caller that reads only the colours asks for)."""
        return self.render(self.patch_camera(x, y), depth=depth)

    def joint_state(self) -> tuple[list[str], list[float], list[float], list[float]]:
        """Names, positions, velocities and efforts of the arm and finger joints."""
        js = self._arm_j + self._finger_j
        states = self.p.getJointStates(self.arm, js)
        names = [self._joint_names[j] for j in js]
        return (names, [s[0] for s in states], [s[1] for s in states],
                [s[3] for s in states])

    def gripper_width(self) -> float:
        q = [s[0] for s in self.p.getJointStates(self.arm, self._finger_j)]
        return float(sum(q)) if len(q) == 2 else 2.0 * float(q[0])

    # ------------------------------------------------------------------ kinematics
    def check_in_workspace(self, x: float, y: float, z: float | None = None,
                           what: str = "target") -> None:
        """Raise ValueError naming the problem if (x, y[, z]) is outside the workspace."""
        (x0, x1), (y0, y1), (z0, z1) = self.workspace
        vals = (x, y) if z is None else (x, y, z)
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{what} {vals} is not finite")
        if not (x0 <= x <= x1 and y0 <= y <= y1) or (z is not None and not z0 <= z <= z1):
            raise ValueError(
                f"{what} ({', '.join(f'{v:.3f}' for v in vals)}) is outside the workspace "
                f"x [{x0}, {x1}], y [{y0}, {y1}], z [{z0}, {z1}]")

    def arm_q(self) -> np.ndarray:
        return np.array([s[0] for s in self.p.getJointStates(self.arm, self._arm_j)])

    def _set_arm(self, q, finger: float | None = None) -> None:
        """Teleport the arm (zero velocity); kinematic, no physics step."""
        p = self.p
        for j, v in zip(self._arm_j, q):
            p.resetJointState(self.arm, j, float(v))
        if finger is not None:
            for j in self._finger_j:
                p.resetJointState(self.arm, j, float(finger))

    def hold_arm(self, finger: float | None = None) -> None:
        """Motors hold the present arm pose (and move the fingers to ``finger`` if given)."""
        p, a = self.p, self.config.arm
        q = self.arm_q()
        p.setJointMotorControlArray(self.arm, self._arm_j, p.POSITION_CONTROL,
                                    targetPositions=q.tolist(),
                                    forces=[a.arm_force] * len(q))
        if finger is None:
            finger = self.gripper_width() / len(self._finger_j)
        self.drive_fingers(finger)

    def drive_fingers(self, target: float) -> None:
        a = self.config.arm
        for j in self._finger_j:
            self.p.setJointMotorControl2(self.arm, j, self.p.POSITION_CONTROL,
                                         targetPosition=target, force=a.finger_force,
                                         maxVelocity=a.finger_speed)

    def ee_position(self) -> np.ndarray:
        return self.model.ee_position()

    def grasp_orientation(self, angle: float, tilt: tuple[float, float] = (0.0, 0.0)):
        """Quaternion of the ee frame pointing down with fingers closing along ``angle``."""
        return self.model.grasp_orientation(angle, tilt)

    def wrist_angle(self, angle: float) -> float:
        """The grasp angle equivalent to ``angle`` (mod pi) that turns the wrist least."""
        return self.model.wrist_angle(angle)

    def ik(self, pos, orn, q_seed=None, tol: float = 5e-4, rounds: int = 3) -> np.ndarray:
        """Joint positions placing the ee at ``pos`` / ``orn`` (:meth:`ArmModel.ik`: within
        the joint limits, seeded by ``q_seed`` or the arm's joints, the arm left where it
        was). Raises ValueError if the pose is unreachable (error above 5 mm)."""
        return self.model.ik(pos, orn, q_seed, tol, rounds)

    def _steps_for(self, q0, q1) -> int:
        dt = self.config.time_step
        return max(1, int(math.ceil(float(np.max(np.abs(q1 - q0) / self._vmax)) / dt)))

    def _collides(self, max_dist: float = 0.0, ignore: tuple[int, ...] = ()) -> list[int]:
        """Bodies the arm touches now (penetration deeper than -max_dist)."""
        p = self.p
        p.performCollisionDetection()
        hits = set()
        for c in p.getContactPoints(bodyA=self.arm):
            if c[8] < -max_dist and c[2] not in ignore and c[2] != self.arm:
                hits.add(c[2])
        return sorted(hits)

    def move_kinematic(self, q_goal, check: bool = True, check_step: float = 0.04,
                       ignore: tuple[int, ...] = ()) -> bool:
        """Teleport the arm along a joint-space line, collision-checked every ``check_step``
        rad; stops at the last free pose and returns False on a collision. Advances
        :attr:`step_count` by the motion's duration at the joint speed limits."""
        q0 = self.arm_q()
        q_goal = np.clip(np.asarray(q_goal, float), self._lo, self._hi)
        n = max(1, int(math.ceil(float(np.max(np.abs(q_goal - q0))) / check_step)))
        ok, last = True, q0
        for i in range(1, n + 1):
            q = q0 + (q_goal - q0) * (i / n)
            self._set_arm(q)
            if check and self._collides(ignore=ignore):
                self._set_arm(last)
                ok = False
                break
            last = q
        self.step_count += self._steps_for(q0, last)
        self.hold_arm()
        return ok

    def descend(self, q_top, q_bottom, step_m: float, length: float,
                ignore: tuple[int, ...] = ()) -> float:
        """Kinematic straight-ish descent from ``q_top`` to ``q_bottom`` checked every
        ``step_m``; stops before the first collision. Returns the fraction achieved."""
        n = max(1, int(math.ceil(length / step_m)))
        self._set_arm(q_top)
        last = 0.0
        for i in range(1, n + 1):
            self._set_arm(q_top + (q_bottom - q_top) * (i / n))
            if self._collides(max_dist=0.0005, ignore=ignore):
                break
            last = i / n
        q = q_top + (q_bottom - q_top) * last
        self._set_arm(q)
        self.step_count += self._steps_for(q_top, q)
        self.hold_arm()
        return last

    def track(self, path, steps_per_point: int = 1, should_stop: ShouldStop | None = None,
              each_step: Callable[[], bool] | None = None) -> bool:
        """Dynamic motion: the arm motors follow ``path`` (joint positions), one point per
        ``steps_per_point`` steps. ``each_step`` may return True to stop early."""
        p, a = self.p, self.config.arm
        forces = [a.arm_force] * len(self._arm_j)
        for q in path:
            if should_stop is not None and should_stop():
                raise Aborted()
            p.setJointMotorControlArray(self.arm, self._arm_j, p.POSITION_CONTROL,
                                        targetPositions=list(q), forces=forces)
            for _ in range(steps_per_point):
                self.step()
                if each_step is not None and each_step():
                    return True
        return False

    def joint_path(self, q0, q1, speed_scale: float = 1.0) -> list[np.ndarray]:
        n = max(1, int(math.ceil(self._steps_for(q0, q1) / speed_scale)))
        return [q0 + (q1 - q0) * (i / n) for i in range(1, n + 1)]

    def cartesian_path(self, p0, p1, orn, speed: float, q_seed=None,
                       waypoint_m: float = 0.02) -> list[np.ndarray]:
        """Joint positions, one per physics step, moving the ee along a line at ``speed``."""
        p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
        length = float(np.linalg.norm(p1 - p0))
        k = max(1, int(math.ceil(length / waypoint_m)))
        qs = [self.ik(p0, orn, q_seed=q_seed)]
        for i in range(1, k + 1):
            qs.append(self.ik(p0 + (p1 - p0) * (i / k), orn, q_seed=qs[-1]))
        n_steps = max(1, int(math.ceil(length / speed / self.config.time_step)))
        out = []
        for s in range(1, n_steps + 1):
            u = s / n_steps * k
            i = min(int(u), k - 1)
            out.append(qs[i] + (qs[i + 1] - qs[i]) * (u - i))
        return out

    def go_home(self, finger: float | None = None) -> bool:
        ok = self.move_kinematic(self._home, check=False)
        if finger is not None:
            for j in self._finger_j:
                self.p.resetJointState(self.arm, j, finger)
            self.hold_arm(finger)
        return ok

    def set_fingers(self, finger: float) -> None:
        """Teleport both fingers to ``finger`` (per-finger joint position) and hold there."""
        for j in self._finger_j:
            self.p.resetJointState(self.arm, j, float(finger))
        self.drive_fingers(float(finger))

    def is_held(self, info: ObjectInfo) -> bool:
        """The object touches a finger and hangs clear of the table."""
        if not self.arm_contacts(info.body, self.finger_links):
            return False
        aabb = self.p.getAABB(info.body)
        return aabb[0][2] > 0.01

    # ------------------------------------------------------------------ probe
    def attach_probe(self) -> int:
        """Mount the tactile probe on the ee (pointing along the approach axis)."""
        p = self.p
        pos, orn = p.getLinkState(self.arm, self._ee, computeForwardKinematics=1)[4:6]
        flip = p.getQuaternionFromEuler([math.pi, 0, 0])
        _, porn = p.multiplyTransforms(pos, orn, [0, 0, 0], flip)
        probe = p.loadURDF(self._probe_path, pos, porn)
        for link in self._arm_links:
            p.setCollisionFilterPair(self.arm, probe, link, -1, 0)
        if self.config.hide_arm:
            p.changeVisualShape(probe, -1, rgbaColor=[0, 0, 0, 0])
        self._probe_cid = p.createConstraint(self.arm, self._ee, probe, -1, p.JOINT_FIXED,
                                             [0, 0, 0], [0, 0, 0], [0, 0, 0],
                                             parentFrameOrientation=flip)
        p.changeConstraint(self._probe_cid, maxForce=2000)
        return probe

    def pin(self, body: int) -> tuple[int, int, float]:
        """Hold a body at its present pose until :meth:`unpin`: a fixed constraint to the
        world; a rigid object (``rigid_objects``), which PyBullet cannot constrain to the
        world, is made static (mass 0) instead. Returns what :meth:`unpin` takes."""
        p = self.p
        if self.config.rigid_objects:
            mass = p.getDynamicsInfo(body, -1)[0]
            p.resetBaseVelocity(body, [0, 0, 0], [0, 0, 0])
            p.changeDynamics(body, -1, mass=0.0)
            return (body, -1, mass)
        pos, orn = p.getBasePositionAndOrientation(body)
        cid = p.createConstraint(body, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0],
                                 [0, 0, 0], pos, childFrameOrientation=orn)
        p.changeConstraint(cid, maxForce=1000)
        return (body, cid, 0.0)

    def unpin(self, pin: tuple[int, int, float]) -> None:
        """Let a body held by :meth:`pin` go."""
        body, cid, mass = pin
        if cid >= 0:
            self.p.removeConstraint(cid)
        else:
            self.p.changeDynamics(body, -1, mass=mass,
                                  activationState=self.p.ACTIVATION_STATE_WAKE_UP)

    def detach_probe(self, probe: int) -> None:
        self.p.removeConstraint(self._probe_cid)
        self.p.removeBody(probe)

    def probe_tip(self, probe: int) -> np.ndarray:
        """Table-frame position of the lowest point of the probe's ball."""
        pos, orn = self.p.getBasePositionAndOrientation(probe)
        r = np.asarray(self.p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        return np.asarray(pos) + r @ np.array([0.0, 0.0, -0.075])

    def probe_gap(self, probe: int, body: int, within: float = 0.05) -> float:
        """Distance (m) from the probe to ``body`` (``within`` when farther or no body)."""
        if body < 0:
            return within
        pts = self.p.getClosestPoints(probe, body, within)
        return min((c[8] for c in pts), default=within)

    def arm_contacts(self, body: int, links=None) -> list[tuple]:
        cps = self.p.getContactPoints(bodyA=self.arm, bodyB=body)
        return [c for c in cps if links is None or c[3] in links]

    # ------------------------------------------------------------------ primitives
    def grasp(self, x: float, y: float, angle: float, progress: Progress | None = None,
              should_stop: ShouldStop | None = None):
        """Top-down grasp at table point (x, y) with the fingers closing along ``angle``
        (:mod:`curious_robot.motion.grasp`)."""
        from curious_robot.motion.grasp import GRASP

        return GRASP.run(self.robot, x, y, angle, progress, should_stop)

    def push(self, start_xy, end_xy, progress: Progress | None = None,
             should_stop: ShouldStop | None = None):
        """Push with the closed gripper along the line ``start_xy`` -> ``end_xy``
        (:mod:`curious_robot.motion.push`)."""
        from curious_robot.motion.push import PUSH

        return PUSH.run(self.robot, start_xy, end_xy, progress, should_stop)

    def poke(self, x: float, y: float, progress: Progress | None = None,
             should_stop: ShouldStop | None = None):
        """Press the tactile probe down at (x, y) until the force limit
        (:mod:`curious_robot.motion.poke`)."""
        from curious_robot.motion.poke import POKE

        return POKE.run(self.robot, x, y, 0.0, progress, should_stop)

    def inspect(self, object_id: str, progress: Progress | None = None,
                should_stop: ShouldStop | None = None):
        """Grasp an object and image it held in several wrist poses
        (:mod:`curious_robot.motion.inspect`)."""
        from curious_robot.motion.inspect import INSPECT

        return INSPECT.run(self.robot, object_id, 0.0, 0.0, 0.0, progress, should_stop)
