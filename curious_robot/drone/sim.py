"""The simulated drone: a quadrotor built from rigid shapes, flown by rotor forces through
a mixer, in rooms generated from a seed, with a forward camera and an IMU.

One private PyBullet client per :class:`DroneSim`; every call names it. Time is simulation
steps (240 Hz physics and attitude control, 48 Hz velocity control, ~6 Hz camera), never
the wall clock; the same layout, seed and commands give the same flight.

Room layouts (:func:`generate_layout`) are pure functions of a seed: four walls,
furniture-sized boxes, pillars, and loose objects (tall, light boxes and poles standing on
the floor that a collision knocks over). Seeds ``held_out_first .. + held_out_count - 1``
(``sim/drone/drone.yaml``) are held out for evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from curious_robot.drone.control import (GRAVITY, AttitudeController, QuadParams,
                                         VelocityController)
from curious_robot.world.session import BulletSession

# -- configuration ------------------------------------------------------------------------


@dataclass
class FlightConfig:
    time_step: float = 1.0 / 240.0
    control_every: int = 5
    camera_every: int = 8
    altitude: float = 1.0
    camera_width: int = 128
    camera_height: int = 64
    camera_hfov: float = 100.0
    camera_far: float = 12.0
    camera_tilt: float = 15.0  # degrees down: the floor line tells the distance to a wall
    imu_accel_noise: float = 0.05
    imu_gyro_noise: float = 0.005

    def __post_init__(self):
        if self.time_step <= 0 or self.control_every < 1 or self.camera_every < 1:
            raise ValueError("time_step must be > 0, control_every and camera_every >= 1")
        if self.camera_width < self.camera_height:
            raise ValueError("the camera must be at least as wide as high (square crops)")

    @property
    def control_dt(self) -> float:
        return self.time_step * self.control_every

    @property
    def camera_dt(self) -> float:
        return self.control_dt * self.camera_every


@dataclass
class RoomConfig:
    width: tuple[float, float] = (8.0, 14.0)
    depth: tuple[float, float] = (7.0, 12.0)
    wall_height: float = 2.5
    furniture: tuple[int, int] = (3, 8)
    furniture_size: tuple[float, float] = (0.25, 0.8)
    furniture_height: tuple[float, float] = (0.5, 2.2)
    pillars: tuple[int, int] = (0, 2)
    loose: tuple[int, int] = (2, 5)
    clearance: float = 0.7


@dataclass
class LayoutSplit:
    held_out_first: int = 100000
    held_out_count: int = 50

    def is_held_out(self, seed: int) -> bool:
        return self.held_out_first <= seed < self.held_out_first + self.held_out_count

    @property
    def held_out_seeds(self) -> list[int]:
        return list(range(self.held_out_first, self.held_out_first + self.held_out_count))

    def train_seed(self, i: int) -> int:
        """The ``i``-th training layout seed (never a held-out one)."""
        seed = int(i)
        return seed + self.held_out_count if self.is_held_out(seed) else seed


@dataclass
class DroneConfig:
    quadrotor: QuadParams = field(default_factory=QuadParams)
    flight: FlightConfig = field(default_factory=FlightConfig)
    room: RoomConfig = field(default_factory=RoomConfig)
    layouts: LayoutSplit = field(default_factory=LayoutSplit)


def default_config_path() -> Path:
    from curious_robot.paths import share_path

    return share_path("sim", "drone", "drone.yaml")


def load_config(path: str | Path | None = None) -> DroneConfig:
    """Read ``sim/drone/drone.yaml`` (or ``path``); unknown keys are an error."""
    path = Path(path) if path else default_config_path()
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    parts = {"quadrotor": QuadParams, "flight": FlightConfig, "room": RoomConfig,
             "layouts": LayoutSplit}
    unknown = sorted(set(raw) - set(parts))
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {unknown}; known: {sorted(parts)}")
    out = {}
    for key, cls in parts.items():
        values = dict(raw.get(key) or {})
        names = set(cls.__dataclass_fields__)
        bad = sorted(set(values) - names)
        if bad:
            raise ValueError(f"{path}: {key}: unknown key(s) {bad}; known: {sorted(names)}")
        out[key] = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    return DroneConfig(**out)


# -- room layouts -------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One body of a room: a box (``half`` = half extents) or an upright cylinder
    (``half`` = (radius, radius, half height)); ``mass`` 0 means static."""

    kind: str  # wall | furniture | pillar | loose
    shape: str  # box | cylinder
    position: tuple[float, float, float]  # centre
    half: tuple[float, float, float]
    yaw: float = 0.0
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0)
    mass: float = 0.0

    def distance_2d(self, x: float, y: float) -> float:
        """Horizontal distance from (x, y) to the item's footprint (0 inside)."""
        dx, dy = x - self.position[0], y - self.position[1]
        if self.shape == "cylinder":
            return max(0.0, math.hypot(dx, dy) - self.half[0])
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        return math.hypot(max(abs(lx) - self.half[0], 0.0), max(abs(ly) - self.half[1], 0.0))

    def spans(self, z: float, margin: float = 0.0) -> bool:
        return self.position[2] - self.half[2] - margin <= z <= \
            self.position[2] + self.half[2] + margin


@dataclass
class Layout:
    seed: int
    width: float  # x extent of the free floor, m (the room is centred on the origin)
    depth: float  # y extent
    items: list[Item]
    held_out: bool = False

    def clearance(self, x: float, y: float, z: float, margin: float = 0.3) -> float:
        """Horizontal distance from (x, y) to the nearest item that reaches height z."""
        d = [it.distance_2d(x, y) for it in self.items if it.spans(z, margin)]
        return min(d) if d else math.inf

    def start_pose(self, rng: np.random.Generator, altitude: float,
                   clearance: float) -> tuple[float, float, float]:
        """A random (x, y, yaw) at least ``clearance`` from anything at flight height."""
        for _ in range(2000):
            x = rng.uniform(-self.width / 2, self.width / 2)
            y = rng.uniform(-self.depth / 2, self.depth / 2)
            if self.clearance(x, y, altitude) >= clearance:
                return float(x), float(y), float(rng.uniform(-math.pi, math.pi))
        raise RuntimeError(f"layout {self.seed}: no free start pose with clearance "
                           f"{clearance} m")


def _colour(rng: np.random.Generator, lo: float = 0.15, hi: float = 0.9):
    return tuple(float(c) for c in rng.uniform(lo, hi, 3)) + (1.0,)


def generate_layout(seed: int, room: RoomConfig | None = None,
                    split: LayoutSplit | None = None) -> Layout:
    """The room of layout ``seed`` (a pure function of its arguments)."""
    room = room or RoomConfig()
    split = split or LayoutSplit()
    rng = np.random.default_rng([int(seed), 4177])
    w, d = float(rng.uniform(*room.width)), float(rng.uniform(*room.depth))
    h, t = room.wall_height, 0.1
    items: list[Item] = []
    for sx in (-1, 1):
        items.append(Item("wall", "box", (sx * (w / 2 + t), 0.0, h / 2),
                          (t, d / 2 + 2 * t, h / 2), rgba=_colour(rng, 0.3, 0.95)))
    for sy in (-1, 1):
        items.append(Item("wall", "box", (0.0, sy * (d / 2 + t), h / 2),
                          (w / 2 + 2 * t, t, h / 2), rgba=_colour(rng, 0.3, 0.95)))

    def free(x, y, r) -> bool:
        return all(it.distance_2d(x, y) > r + 0.5 for it in items if it.kind != "wall") and \
            abs(x) < w / 2 - r and abs(y) < d / 2 - r

    def place(r) -> tuple[float, float] | None:
        for _ in range(100):
            x, y = rng.uniform(-w / 2, w / 2), rng.uniform(-d / 2, d / 2)
            if free(x, y, r):
                return float(x), float(y)
        return None

    for _ in range(int(rng.integers(room.furniture[0], room.furniture[1] + 1))):
        hx, hy = (float(v) for v in rng.uniform(*room.furniture_size, 2))
        hz = float(rng.uniform(*room.furniture_height)) / 2
        spot = place(math.hypot(hx, hy))
        if spot is not None:
            items.append(Item("furniture", "box", (*spot, hz), (hx, hy, hz),
                              float(rng.uniform(0, math.pi)), _colour(rng)))
    for _ in range(int(rng.integers(room.pillars[0], room.pillars[1] + 1))):
        r = float(rng.uniform(0.12, 0.3))
        spot = place(r)
        if spot is not None:
            items.append(Item("pillar", "cylinder", (*spot, h / 2), (r, r, h / 2),
                              rgba=_colour(rng)))
    for _ in range(int(rng.integers(room.loose[0], room.loose[1] + 1))):
        hz = float(rng.uniform(0.6, 0.85))  # 1.2-1.7 m tall: reaches the flight altitude
        if rng.random() < 0.5:
            r = float(rng.uniform(0.05, 0.1))
            shape, half, mass = "cylinder", (r, r, hz), float(rng.uniform(0.3, 1.0))
        else:
            hx, hy = (float(v) for v in rng.uniform(0.1, 0.2, 2))
            shape, half, mass = "box", (hx, hy, hz), float(rng.uniform(0.4, 1.2))
        spot = place(max(half[:2]))
        if spot is not None:
            items.append(Item("loose", shape, (*spot, hz), half, float(rng.uniform(0, math.pi)),
                              _colour(rng), mass))
    return Layout(int(seed), w, d, items, split.is_held_out(int(seed)))


# -- the simulation -----------------------------------------------------------------------


@dataclass
class ImuSample:
    """One IMU reading: specific force (m/s^2) and angular velocity (rad/s), body axes,
    averaged over one control period (as an IMU's output filter would)."""

    t: float
    linear_acceleration: np.ndarray
    angular_velocity: np.ndarray
    contact: bool  # the drone touched something during the period (simulation only)


def _rotation(q) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


class DroneSim(BulletSession):
    """One room and one quadrotor in a private PyBullet client; see the module docstring.

    ``DroneSim(layout, config, seed)`` (``layout`` a :class:`Layout` or a layout seed),
    then :meth:`reset` at a pose, :meth:`step` with (forward speed, yaw rate) commands
    once per control period, :meth:`image` at the camera rate. :meth:`close` when done.
    """

    def __init__(self, layout: Layout | int, config: DroneConfig | None = None, seed: int = 0):
        self.config = cfg = config or DroneConfig()
        self.layout = layout if isinstance(layout, Layout) else generate_layout(
            int(layout), cfg.room, cfg.layouts)
        self.rng = np.random.default_rng([int(seed), 811])
        self.params = cfg.quadrotor
        self.flight = cfg.flight
        self.attitude = AttitudeController(self.params)
        self.velocity_ctl = VelocityController(self.params)
        self.step_count = 0
        p = self._connect(self.flight.time_step, 30, GRAVITY)
        self.floor = p.loadURDF("plane.urdf")
        self.bodies: dict[int, Item] = {}
        for item in self.layout.items:
            self.bodies[self._add_item(item)] = item
        self.drone = self._build_drone()
        self._prev_velocity = np.zeros(3)
        self._setpoint = (self.params.mass * GRAVITY, (0.0, 0.0, 0.0))
        f = self.flight
        self._fy = 0.5 * f.camera_width / math.tan(math.radians(f.camera_hfov) / 2)
        vfov = 2 * math.degrees(math.atan(0.5 * f.camera_height / self._fy))
        self._projection = p.computeProjectionMatrixFOV(vfov, f.camera_width / f.camera_height,
                                                        0.03, f.camera_far)
        x, y, yaw = self.layout.start_pose(self.rng, f.altitude, cfg.room.clearance)
        self.reset(x, y, yaw)

    # ------------------------------------------------------------------ building
    def _add_item(self, item: Item) -> int:
        p = self.p
        if item.shape == "box":
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=item.half)
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=item.half, rgbaColor=item.rgba)
        else:
            col = p.createCollisionShape(p.GEOM_CYLINDER, radius=item.half[0],
                                         height=2 * item.half[2])
            vis = p.createVisualShape(p.GEOM_CYLINDER, radius=item.half[0],
                                      length=2 * item.half[2], rgbaColor=item.rgba)
        body = p.createMultiBody(item.mass, col, vis, basePosition=item.position,
                                 baseOrientation=p.getQuaternionFromEuler([0, 0, item.yaw]))
        p.changeDynamics(body, -1, lateralFriction=0.6, restitution=0.1)
        return body

    def _build_drone(self) -> int:
        """A body box, four arms and four rotor discs, one rigid body."""
        p, q = self.p, self.params
        r = q.rotors
        shapes = [p.GEOM_BOX] + [p.GEOM_BOX] * 2 + [p.GEOM_CYLINDER] * 4
        arm_half = (q.arm * 1.0, 0.012, 0.008)
        halves = [(0.07, 0.045, 0.025), arm_half, arm_half] + [(0, 0, 0)] * 4
        positions = [(0, 0, 0), (0, 0, 0.01), (0, 0, 0.01)] + \
            [(float(x), float(y), 0.025) for x, y in r]
        yaw45 = p.getQuaternionFromEuler([0, 0, math.pi / 4])
        yaw135 = p.getQuaternionFromEuler([0, 0, -math.pi / 4])
        orns = [(0, 0, 0, 1), yaw45, yaw135] + [(0, 0, 0, 1)] * 4
        radii = [0, 0, 0] + [0.055] * 4
        lengths = [0, 0, 0] + [0.012] * 4
        col = p.createCollisionShapeArray(shapes, halfExtents=halves, radii=radii,
                                          lengths=lengths, collisionFramePositions=positions,
                                          collisionFrameOrientations=orns)
        colours = [(0.1, 0.1, 0.1, 1)] * 3 + [(0.9, 0.2, 0.2, 1)] * 2 + [(0.2, 0.2, 0.9, 1)] * 2
        vis = p.createVisualShapeArray(shapes, halfExtents=halves, radii=radii, lengths=lengths,
                                       rgbaColors=colours, visualFramePositions=positions,
                                       visualFrameOrientations=orns)
        body = p.createMultiBody(q.mass, col, vis, basePosition=[0, 0, self.flight.altitude])
        p.changeDynamics(body, -1, localInertiaDiagonal=list(q.inertia), linearDamping=0.0,
                         angularDamping=0.0, lateralFriction=0.5, restitution=0.2)
        return body

    # ------------------------------------------------------------------ state
    @property
    def time(self) -> float:
        return self.step_count * self.flight.time_step

    def position(self) -> np.ndarray:
        return np.array(self.p.getBasePositionAndOrientation(self.drone)[0])

    def orientation(self) -> tuple[float, float, float, float]:
        return tuple(self.p.getBasePositionAndOrientation(self.drone)[1])

    def rpy(self) -> np.ndarray:
        return np.array(self.p.getEulerFromQuaternion(self.orientation()))

    def velocity(self) -> np.ndarray:
        return np.array(self.p.getBaseVelocity(self.drone)[0])

    def pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of the drone."""
        pos = self.position()
        return float(pos[0]), float(pos[1]), float(self.rpy()[2])

    def upset(self) -> bool:
        """Tilted past 60 degrees or below 0.3 m: not flying any more."""
        roll, pitch, _ = self.rpy()
        return bool(abs(roll) > math.radians(60) or abs(pitch) > math.radians(60)
                    or self.position()[2] < 0.3)

    def loose_positions(self) -> dict[int, np.ndarray]:
        return {b: np.array(self.p.getBasePositionAndOrientation(b)[0])
                for b, it in self.bodies.items() if it.kind == "loose"}

    def clearance(self) -> float:
        x, y, _ = self.pose()
        return self.layout.clearance(x, y, self.flight.altitude)

    # ------------------------------------------------------------------ flying
    def reset(self, x: float, y: float, yaw: float) -> None:
        """Put the drone at (x, y, flight altitude) heading ``yaw``, level and at rest."""
        p = self.p
        p.resetBasePositionAndOrientation(self.drone, [x, y, self.flight.altitude],
                                          p.getQuaternionFromEuler([0, 0, yaw]))
        p.resetBaseVelocity(self.drone, [0, 0, 0], [0, 0, 0])
        self._prev_velocity = np.zeros(3)

    def reset_random(self) -> tuple[float, float, float]:
        pose = self.layout.start_pose(self.rng, self.flight.altitude,
                                      self.config.room.clearance)
        self.reset(*pose)
        return pose

    def step(self, forward: float, yaw_rate: float) -> ImuSample:
        """One control period with the velocity command (forward m/s, yaw rate rad/s)."""
        p, f, q = self.p, self.flight, self.params
        pos, orn = p.getBasePositionAndOrientation(self.drone)
        vel = np.array(p.getBaseVelocity(self.drone)[0])
        yaw = p.getEulerFromQuaternion(orn)[2]
        thrust, sp = self.velocity_ctl.setpoint(forward, yaw_rate, f.altitude, pos, vel, yaw)
        acc_sum, gyro_sum, contact = np.zeros(3), np.zeros(3), False
        rotor_z = np.full(4, 0.025)
        for _ in range(f.control_every):
            pos, orn = p.getBasePositionAndOrientation(self.drone)
            vel_w, ang_w = (np.array(v) for v in p.getBaseVelocity(self.drone))
            rot = _rotation(orn)
            body_rates = rot.T @ ang_w
            thrusts = self.attitude.rotor_thrusts(thrust, sp, p.getEulerFromQuaternion(orn),
                                                  body_rates)
            points = np.column_stack([q.rotors, rotor_z]) @ rot.T + np.asarray(pos)
            for i in range(4):
                p.applyExternalForce(self.drone, -1, (rot[:, 2] * thrusts[i]).tolist(),
                                     points[i].tolist(), p.WORLD_FRAME)
            yaw_torque = float(-(q.spin * q.yaw_moment) @ thrusts)
            p.applyExternalTorque(self.drone, -1, (rot[:, 2] * yaw_torque).tolist(),
                                  p.WORLD_FRAME)
            p.applyExternalForce(self.drone, -1, (-q.drag * vel_w).tolist(), pos, p.WORLD_FRAME)
            p.stepSimulation()
            self.step_count += 1
            new_orn = p.getBasePositionAndOrientation(self.drone)[1]
            new_v, new_w = (np.array(v) for v in p.getBaseVelocity(self.drone))
            rot = _rotation(new_orn)
            accel = (new_v - self._prev_velocity) / f.time_step
            self._prev_velocity = new_v
            acc_sum += rot.T @ (accel + np.array([0.0, 0.0, GRAVITY]))
            gyro_sum += rot.T @ new_w
            if not contact and p.getContactPoints(bodyA=self.drone):
                contact = True
        n = f.control_every
        return ImuSample(
            self.time,
            acc_sum / n + self.rng.normal(0.0, f.imu_accel_noise, 3),
            gyro_sum / n + self.rng.normal(0.0, f.imu_gyro_noise, 3),
            contact)

    # ------------------------------------------------------------------ camera
    def image(self) -> np.ndarray:
        """The forward camera: (H, W, 3) uint8 RGB."""
        p, f = self.p, self.flight
        pos, orn = p.getBasePositionAndOrientation(self.drone)
        rot = _rotation(orn)
        eye = np.asarray(pos) + rot @ np.array([0.17, 0.0, 0.0])
        tilt = math.radians(f.camera_tilt)
        ahead = rot @ np.array([math.cos(tilt), 0.0, -math.sin(tilt)])
        up = rot @ np.array([math.sin(tilt), 0.0, math.cos(tilt)])
        view = p.computeViewMatrix(eye.tolist(), (eye + ahead).tolist(), up.tolist())
        out = p.getCameraImage(f.camera_width, f.camera_height, view, self._projection,
                               renderer=self._pb.ER_TINY_RENDERER,
                               flags=self._pb.ER_NO_SEGMENTATION_MASK)
        rgba = np.asarray(out[2], np.uint8).reshape(f.camera_height, f.camera_width, 4)
        return np.ascontiguousarray(rgba[:, :, :3])
