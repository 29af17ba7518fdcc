"""Configuration of the simulated world: dataclasses with checks, loadable from YAML.

The arm is data (``sim/arms/<name>.yaml``), the object set is data
(``sim/objects/objects.yaml``); this module only reads and validates them.
Paths that are relative resolve against the ``sim/`` folder (``$CURIOUS_ROBOT_SIM_DIR``
or the repository's ``sim/``) and then against ``pybullet_data``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SPLITS = ("train", "held_out", "all")


def sim_dir() -> Path:
    """The folder holding arm configs, the object manifest and tool URDFs."""
    env = os.environ.get("CURIOUS_ROBOT_SIM_DIR")
    if env:
        return Path(env)
    from curious_robot.paths import share_path

    return share_path("sim")


def resolve_path(path: str | Path) -> Path:
    """An absolute path, or one relative to ``sim/`` or ``pybullet_data`` (first that exists)."""
    p = Path(path)
    if p.is_absolute():
        return p
    for root in (sim_dir(), _pybullet_data()):
        if (root / p).exists():
            return root / p
    raise FileNotFoundError(f"{path}: not found under {sim_dir()} nor pybullet_data")


def _pybullet_data() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath())


def _load_yaml(path: str | Path) -> dict:
    with open(path) as f:
        data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def _from_dict(cls, data: dict, where: str):
    """``cls(**data)``, refusing keys ``cls`` has no field for (they name ``where``)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(names)}")
    return cls(**data)


@dataclass
class ArmConfig:
    """A 7-DoF arm with a parallel gripper, described by its URDF and joint names."""

    name: str = "panda"
    urdf: str = "franka_panda/panda.urdf"
    base_position: tuple[float, float, float] = (-0.5, 0.0, 0.0)
    base_yaw: float = 0.0
    arm_joints: tuple[str, ...] = tuple(f"panda_joint{i}" for i in range(1, 8))
    finger_joints: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
    ee_link: str = "panda_grasptarget"
    hand_link: str = "panda_hand"
    finger_axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    approach_axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    home: tuple[float, ...] = (0.0, -0.35, 0.0, -2.2, 0.0, 1.85, 0.785)
    finger_open: float = 0.029
    finger_force: float = 12.0
    finger_speed: float = 0.2
    arm_force: float = 87.0
    joint_speed_scale: float = 0.8

    def __post_init__(self):
        self.base_position = tuple(float(v) for v in self.base_position)
        self.arm_joints = tuple(self.arm_joints)
        self.finger_joints = tuple(self.finger_joints)
        self.home = tuple(float(v) for v in self.home)
        self.finger_axis = tuple(float(v) for v in self.finger_axis)
        self.approach_axis = tuple(float(v) for v in self.approach_axis)
        if len(self.base_position) != 3:
            raise ValueError(f"arm {self.name}: base_position needs 3 values")
        if len(self.home) != len(self.arm_joints):
            raise ValueError(f"arm {self.name}: home has {len(self.home)} values for "
                             f"{len(self.arm_joints)} arm joints")
        if len(self.finger_joints) not in (1, 2):
            raise ValueError(f"arm {self.name}: finger_joints needs 1 or 2 joints")
        for name in ("finger_axis", "approach_axis"):
            v = getattr(self, name)
            if len(v) != 3 or abs(math.hypot(*v) - 1.0) > 1e-6:
                raise ValueError(f"arm {self.name}: {name} must be a unit 3-vector, got {v}")
        for name in ("finger_open", "finger_force", "finger_speed", "arm_force",
                     "joint_speed_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"arm {self.name}: {name} must be positive")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ArmConfig:
        return _from_dict(cls, _load_yaml(resolve_path(path)), str(path))


@dataclass
class WorldConfig:
    """Everything that defines a world; the defaults are the benchmarked setup."""

    #: the arm is configuration: by default sim/arms/panda.yaml
    arm: ArmConfig = field(default_factory=lambda: ArmConfig.from_yaml("arms/panda.yaml"))
    objects_manifest: str = "objects/objects.yaml"
    object_split: str = "train"
    num_objects: int = 10
    time_step: float = 1.0 / 240.0
    solver_iterations: int = 50
    #: Box the gripper may reach and objects must stay in: x, y, z (min, max), table frame.
    workspace: tuple[tuple[float, float], ...] = ((-0.2, 0.2), (-0.2, 0.2), (0.0, 0.4))
    #: Objects are dropped this far inside the workspace's x / y edges.
    spawn_margin: float = 0.04
    table_size: tuple[float, float] = (0.9, 0.8)
    # cameras
    image_size: int = 128
    camera_height: float = 0.75
    scene_extent: float = 0.46  # m of table seen across the overhead image
    patch_size: int = 128
    patch_extent: float = 0.16  # m of table across a patch
    hide_arm: bool = True
    renderer: str = "tiny"  # "tiny" (ER_TINY_RENDERER) or "opengl" (needs a GL context)
    # per-object physical properties, drawn at each spawn
    mass_range: tuple[float, float] = (0.05, 0.3)
    friction_range: tuple[float, float] = (0.6, 1.0)
    stiffness_range: tuple[float, float] = (3000.0, 40000.0)  # N/m, log-uniform
    #: draw a material per object (objects.MATERIALS): its stiffness range and colour;
    #: False: stiffness from stiffness_range and the model's own colour
    materials: bool = True
    damping_ratio_range: tuple[float, float] = (0.001, 0.005)  # damping = ratio * stiffness
    # primitives
    approach_height: float = 0.12  # m above the table for free-space moves
    lift_height: float = 0.1
    grasp_depth: float = 0.025  # m below the surface seen at the grasp point
    min_grasp_height: float = 0.008  # m, lowest fingertip height above the table
    closed_width: float = 0.004  # m, gripper width at or below which it counts as closed
    push_height: float = 0.012
    push_speed: float = 0.25  # m/s
    poke_force_limit: float = 5.0  # N
    poke_max_depth: float = 0.02  # m beyond the first contact
    poke_speed: float = 0.003  # m/s, largest press speed
    poke_solver_iterations: int = 200  # during the press: stiff contacts need them
    inspect_views: int = 4
    probe_urdf: str = "tools/probe.urdf"
    max_speed: float = 5.0  # m/s: any object faster than this is a physics blow-up

    def __post_init__(self):
        if isinstance(self.arm, dict):
            self.arm = _from_dict(ArmConfig, self.arm, "arm")
        elif isinstance(self.arm, (str, Path)):
            self.arm = ArmConfig.from_yaml(self.arm)
        self.workspace = tuple(tuple(float(v) for v in b) for b in self.workspace)
        if self.object_split not in SPLITS:
            raise ValueError(f"object_split must be one of {SPLITS}, got {self.object_split!r}")
        if self.num_objects < 0:
            raise ValueError(f"num_objects must be >= 0, got {self.num_objects}")
        if len(self.workspace) != 3 or any(len(b) != 2 or b[0] >= b[1] for b in self.workspace):
            raise ValueError(f"workspace must be three (min, max) pairs, got {self.workspace}")
        for name in ("time_step", "camera_height", "scene_extent", "patch_extent",
                     "poke_force_limit", "poke_max_depth", "poke_speed", "push_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("image_size", "patch_size", "inspect_views", "solver_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("mass_range", "friction_range", "stiffness_range", "damping_ratio_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be 0 < min <= max, got {(lo, hi)}")
        if self.renderer not in ("tiny", "opengl"):
            raise ValueError(f"renderer must be 'tiny' or 'opengl', got {self.renderer!r}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> WorldConfig:
        """Read a world config; ``arm`` may be a mapping or the path of an arm YAML."""
        data = _load_yaml(path)
        return _from_dict(cls, data, str(path))
