"""Configuration of a real (or fake) arm: topics, joint names, gripper, calibration, safety
limits and motion parameters, from one YAML file (``config/hardware/*.yaml``).

Every section is a dataclass with checks in ``__post_init__``; unknown keys are errors, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curious_robot.motion.config import ArmConfig, PrimitiveDefaults
from curious_robot.motion.config import from_dict as _from_dict
from curious_robot.motion.config import load_yaml as _load_yaml


def _section(cls, data, where: str):
    if isinstance(data, cls):
        return data
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    return _from_dict(cls, data, where)


@dataclass
class Topics:
    """ros2_control and driver topics (relative names resolve in the arm's namespace)."""

    joint_trajectory: str = "arm_controller/joint_trajectory"  # trajectory_msgs/JointTrajectory
    joint_states: str = "/joint_states"  # sensor_msgs/JointState (joint_state_broadcaster)
    gripper_command: str = "gripper_controller/commands"  # std_msgs/Float64MultiArray
    gripper_state: str = "/joint_states"  # sensor_msgs/JointState holding the finger joints
    wrench: str = "force_torque_sensor/wrench"  # geometry_msgs/WrenchStamped
    color: str = "driver/color/image_raw"  # sensor_msgs/Image rgb8 / bgr8
    depth: str = "driver/depth/image_raw"  # sensor_msgs/Image 32FC1 (m) or 16UC1 (mm)
    camera_info: str = "driver/color/camera_info"  # intrinsics of the (aligned) depth
    scene_reset: str = ""  # optional std_srvs/Trigger that resets the scene (fake hardware)
    #: optional control_msgs/FollowJointTrajectory action of the controller (e.g.
    #: "arm_controller/follow_joint_trajectory"): when set, trajectories go through it and
    #: a rejected or aborted goal stops the motion with the controller's reason; empty: the
    #: topic above, where a rejection is silent and the follow check finds it
    follow_joint_trajectory: str = ""

    OPTIONAL = ("scene_reset", "follow_joint_trajectory")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, str) or (not v and f.name not in self.OPTIONAL):
                raise ValueError(f"topics.{f.name} must be a non-empty topic name, got {v!r}")


@dataclass
class GripperConfig:
    """A parallel gripper on a position command; width (m) maps linearly to the command and
    from the reported joint positions, which covers mimic-joint grippers (Panda: width =
    sum of the finger positions) and knuckle-angle grippers (Robotiq: see the template)."""

    #: finger joints as the robot reports them in its joint states
    joints: tuple[str, ...] = ("panda_finger_joint1", "panda_finger_joint2")
    #: "per_joint": one value per joint, width / number of joints each (Panda);
    #: "single": one value, command_scale * width + command_offset
    command: str = "per_joint"
    command_scale: float = 1.0
    command_offset: float = 0.0
    #: width = state_scale * (sum of the reported joint positions) + state_offset
    state_scale: float = 1.0
    state_offset: float = 0.0
    open_width: float = 0.07  # m
    closed_width: float = 0.004  # m, at or below: nothing in the hand
    timeout: float = 2.0  # s to reach a commanded width (or stall on an object)

    def __post_init__(self):
        self.joints = tuple(self.joints)
        if not self.joints:
            raise ValueError("gripper.joints must name at least one joint")
        if self.command not in ("per_joint", "single"):
            raise ValueError(f"gripper.command must be per_joint or single, got "
                             f"{self.command!r}")
        if not 0 < self.closed_width < self.open_width:
            raise ValueError("gripper: need 0 < closed_width < open_width")
        if not self.timeout > 0 or self.state_scale == 0:
            raise ValueError("gripper: timeout must be positive, state_scale non-zero")

    def width_of(self, positions) -> float:
        """Opening (m) from the finger joint positions."""
        return float(self.state_scale * sum(positions) + self.state_offset)

    def command_for(self, width: float) -> list[float]:
        if self.command == "per_joint":
            return [float(width) / len(self.joints)] * len(self.joints)
        return [float(self.command_scale * width + self.command_offset)]


@dataclass
class CameraCalibration:
    """Where the camera is and what it should report (checked at start)."""

    #: camera optical frame (x right, y down, z forward) in the robot base frame
    translation: tuple[float, float, float] = (0.5, 0.0, 0.75)
    rotation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # quaternion x y z w
    #: intrinsics measured at calibration: width, height, fx, fy, cx, cy (checked against
    #: camera_info at start)
    width: int = 128
    height: int = 128
    fx: float = 0.0
    fy: float = 0.0
    cx: float = 0.0
    cy: float = 0.0
    tolerance: float = 0.02  # relative tolerance of the intrinsics check
    depth_scale: float = 0.001  # m per unit of a 16UC1 depth image

    def __post_init__(self):
        self.translation = tuple(float(v) for v in self.translation)
        self.rotation = tuple(float(v) for v in self.rotation)
        if len(self.translation) != 3 or len(self.rotation) != 4:
            raise ValueError("calibration: translation needs 3 values, rotation 4 (x y z w)")
        n = math.sqrt(sum(v * v for v in self.rotation))
        if abs(n - 1.0) > 1e-3:
            raise ValueError(f"calibration.rotation must be a unit quaternion (norm {n:.4f})")
        if self.width < 1 or self.height < 1:
            raise ValueError("calibration: width and height must be >= 1")
        if min(self.fx, self.fy) <= 0:
            raise ValueError("calibration: fx and fy must be positive (measure them)")

    def camera_to_base(self) -> np.ndarray:
        x, y, z, w = self.rotation
        r = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        t = np.eye(4)
        t[:3, :3], t[:3, 3] = r, self.translation
        return t

    def mismatch(self, width: int, height: int, k) -> str:
        """Why a camera_info (width, height, K row-major 9) does not match; '' if it does."""
        if (int(width), int(height)) != (self.width, self.height):
            return (f"camera reports {width}x{height}, calibration is for "
                    f"{self.width}x{self.height}")
        for name, want, got in (("fx", self.fx, k[0]), ("fy", self.fy, k[4]),
                                ("cx", self.cx, k[2]), ("cy", self.cy, k[5])):
            if abs(got - want) > self.tolerance * max(abs(want), 1.0):
                return f"camera {name} = {got:.2f}, calibration says {want:.2f}"
        return ""


@dataclass
class SafetyConfig:
    """Limits checked before and during every motion (see docs/deploy.md)."""

    #: box the tool point (fingertips / probe tip) must stay in, table frame, m
    workspace: tuple[tuple[float, float], ...] = ((-0.3, 0.3), (-0.3, 0.3), (-0.005, 0.45))
    #: box the primitives' targets (grasp / poke point, push ends) must be in, m
    target_workspace: tuple[tuple[float, float], ...] = ((-0.2, 0.2), (-0.2, 0.2))
    #: fraction of the URDF velocity limits a plan may use and the measured speed may reach
    joint_speed_scale: float = 0.5
    measured_speed_margin: float = 1.5  # x the planned limit before a stop
    max_force: float = 40.0  # N, contact force that stops any motion
    max_poke_force: float = 20.0  # N, the hardest a poke may press
    contact_force: float = 3.0  # N, a guarded descent stops here
    max_tracking_error: float = 0.15  # rad, commanded vs. measured
    command_lag: float = 0.15  # s the arm may lag its command (transport, controller)
    state_timeout: float = 0.5  # s without joint states during a motion: stop
    #: follow check: ``command_lag`` + this many s into a motion, an arm that has covered
    #: less than a quarter of the commanded joint motion is not following (a trajectory the
    #: controller rejected on its topic, which says nothing): stop, report the rejection
    follow_timeout: float = 0.3
    control_rate: float = 60.0  # Hz, the checks' rate (one per joint_states message)
    dry_run: bool = False  # publish plans and markers, never move

    def __post_init__(self):
        self.workspace = tuple(tuple(float(v) for v in b) for b in self.workspace)
        self.target_workspace = tuple(tuple(float(v) for v in b) for b in self.target_workspace)
        if len(self.workspace) != 3 or any(len(b) != 2 or b[0] >= b[1] for b in self.workspace):
            raise ValueError(f"safety.workspace must be 3 (min, max) pairs: {self.workspace}")
        if len(self.target_workspace) != 2 or any(len(b) != 2 or b[0] >= b[1]
                                                  for b in self.target_workspace):
            raise ValueError("safety.target_workspace must be 2 (min, max) pairs (x, y)")
        for (a0, a1), (b0, b1) in zip(self.target_workspace, self.workspace):
            if a0 < b0 or a1 > b1:
                raise ValueError("safety.target_workspace must lie inside safety.workspace")
        if not 0 < self.joint_speed_scale <= 1:
            raise ValueError("safety.joint_speed_scale must be in (0, 1]")
        for name in ("measured_speed_margin", "max_force", "max_poke_force", "contact_force",
                     "max_tracking_error", "state_timeout", "control_rate", "command_lag",
                     "follow_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"safety.{name} must be positive")
        if self.contact_force >= self.max_force:
            raise ValueError("safety.contact_force must be below safety.max_force")


@dataclass
class MotionConfig:
    """Parameters of the primitives; the defaults are the simulation's
    (:class:`~curious_robot.motion.config.PrimitiveDefaults`)."""

    approach_height: float = PrimitiveDefaults.approach_height
    lift_height: float = PrimitiveDefaults.lift_height
    grasp_depth: float = PrimitiveDefaults.grasp_depth
    min_grasp_height: float = PrimitiveDefaults.min_grasp_height
    push_height: float = PrimitiveDefaults.push_height
    push_speed: float = PrimitiveDefaults.push_speed
    poke_force_limit: float = PrimitiveDefaults.poke_force_limit
    poke_max_depth: float = PrimitiveDefaults.poke_max_depth
    poke_speed: float = 0.004  # m/s
    #: distance along the approach axis from the ee point to the poking point (the closed
    #: fingertips or the skin sensor); < 0: the fingertips, measured from the URDF
    poke_tool_offset: float = -1.0
    inspect_views: int = PrimitiveDefaults.inspect_views
    inspect_speed_scale: float = PrimitiveDefaults.inspect_speed_scale
    patch_size: int = PrimitiveDefaults.patch_size
    patch_extent: float = PrimitiveDefaults.patch_extent
    view_extent: float = 0.18  # m across an inspect view
    lift_speed: float = PrimitiveDefaults.lift_speed  # m/s
    #: m/s, guarded descents (contact stops them)
    descend_speed: float = PrimitiveDefaults.descend_speed
    table_height_threshold: float = 0.006  # m above the table: an object (push outcome)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if f.name == "poke_tool_offset":
                continue
            if not getattr(self, f.name) > 0:
                raise ValueError(f"motion.{f.name} must be positive")
        if self.inspect_speed_scale > 1:
            raise ValueError("motion.inspect_speed_scale must be at most 1 (a share of the "
                             f"joints' speed limits), got {self.inspect_speed_scale}")


@dataclass
class HardwareConfig:
    """One arm deployment: see ``config/hardware/panda_sim.yaml`` for a commented example."""

    arm: ArmConfig = field(default_factory=ArmConfig)
    topics: Topics = field(default_factory=Topics)
    gripper: GripperConfig = field(default_factory=GripperConfig)
    calibration: CameraCalibration = field(default_factory=lambda: CameraCalibration(
        fx=1.0, fy=1.0))
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    base_frame: str = "table"
    #: s to wait for the first joint states and camera_info at start
    startup_timeout: float = 10.0

    def __post_init__(self):
        if isinstance(self.arm, (str, Path)):
            self.arm = ArmConfig.from_yaml(self.arm)
        else:
            self.arm = _section(ArmConfig, self.arm, "arm")
        self.topics = _section(Topics, self.topics, "topics")
        self.gripper = _section(GripperConfig, self.gripper, "gripper")
        self.calibration = _section(CameraCalibration, self.calibration, "calibration")
        self.safety = _section(SafetyConfig, self.safety, "safety")
        self.motion = _section(MotionConfig, self.motion, "motion")
        if not self.startup_timeout > 0:
            raise ValueError("startup_timeout must be positive")
        overlap = set(self.gripper.joints) & set(self.arm.arm_joints)
        if overlap:
            raise ValueError(f"gripper.joints and arm.arm_joints share {sorted(overlap)}")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.arm.arm_joints)

    def base_in_table(self) -> np.ndarray:
        a = self.arm
        c, s = math.cos(a.base_yaw), math.sin(a.base_yaw)
        t = np.eye(4)
        t[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        t[:3, 3] = a.base_position
        return t

    def camera_in_table(self) -> np.ndarray:
        return self.base_in_table() @ self.calibration.camera_to_base()

    @classmethod
    def from_yaml(cls, path: str | Path) -> HardwareConfig:
        data = _load_yaml(path)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(names)}")
        try:
            return cls(**data)
        except (TypeError, ValueError, FileNotFoundError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
