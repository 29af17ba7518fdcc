"""Configuration shared by the simulated and the real arm: the arm description
(:class:`ArmConfig`, data in ``sim/arms/<name>.yaml``), the primitives' default
parameters (:class:`PrimitiveDefaults`) and the YAML / path helpers both read them with.

Paths that are relative resolve against the ``sim/`` folder (``$CURIOUS_ROBOT_SIM_DIR``
or the repository's ``sim/``) and then against ``pybullet_data``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml


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


def load_yaml(path: str | Path) -> dict:
    """A YAML file's top-level mapping (ValueError if it is not one)."""
    with open(path) as f:
        data = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def from_dict(cls, data: dict, where: str):
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
    finger_open: float = 0.04
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
        return from_dict(cls, load_yaml(resolve_path(path)), str(path))


class PrimitiveDefaults:
    """Default parameters of the primitives, the same in the simulation
    (``WorldConfig``) and on hardware (``MotionConfig``); each reads its own YAML."""

    approach_height = 0.12  # m above the table for free-space moves
    lift_height = 0.1
    grasp_depth = 0.025  # m below the surface seen at the grasp point
    min_grasp_height = 0.008  # m, lowest fingertip height above the table
    closed_width = 0.004  # m, gripper width at or below which it counts as closed
    push_height = 0.012
    push_speed = 0.25  # m/s
    poke_force_limit = 5.0  # N
    poke_max_depth = 0.02  # m beyond the first contact
    poke_speed = 0.003  # m/s, largest press speed
    inspect_views = 4
    #: the wrist's turns between inspect views, as a share of full joint speed: slow on
    #: a real arm, whose fingers must hold a swinging object
    inspect_speed_scale = 0.4
    lift_speed = 0.4  # m/s
    descend_speed = 0.08  # m/s, guarded descents (the simulation's are kinematic)
    patch_size = 128
    patch_extent = 0.16  # m of table across a patch


@dataclass(frozen=True)
class MotionParams:
    """What the motion scripts read of a robot's configuration (see
    :attr:`curious_robot.motion.robot.Robot.params`)."""

    approach_height: float
    lift_height: float
    grasp_depth: float
    min_grasp_height: float
    closed_width: float
    push_height: float
    push_speed: float
    poke_force_limit: float
    poke_max_depth: float
    poke_speed: float
    inspect_views: int
    lift_speed: float
    descend_speed: float
    inspect_speed_scale: float = PrimitiveDefaults.inspect_speed_scale
    #: m between the fingers when the gripper is open (where they come down in a grasp)
    open_width: float = 0.08
