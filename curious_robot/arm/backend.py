"""The interface between the arm node and an arm: what the node needs, nothing more.

A backend owns the arm (simulated or real). The node calls it under one lock. The
primitives are the motion scripts of :mod:`curious_robot.motion`, the same objects on
every backend, run on the backend's :attr:`ArmBackend.robot` (the robot protocol,
:class:`curious_robot.motion.robot.Robot`); a primitive receives ``progress(fraction)``
and ``should_stop()`` hooks and returns the result dataclasses of
:mod:`curious_robot.motion.results` (the same fields on both backends; on hardware
``object_id`` and ``truth`` are empty). Conventions of the errors a primitive may raise,
which the node turns into the action's message:

- ``ValueError``: the request is refused before anything moved ("refused: ...");
- :class:`~curious_robot.motion.results.Aborted`: canceled or emergency stop
  ("aborted: ...");
- :class:`SafetyStop`: the safety layer stopped a motion ("safety stop: ...");
- :class:`DryRunDone`: dry-run mode planned and published the motion but did not move.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from curious_robot.motion import SCRIPTS
from curious_robot.motion.geometry import wrap_angle
from curious_robot.motion.results import DryRunDone, Progress, SafetyStop, ShouldStop
from curious_robot.motion.script import Script

__all__ = ["ArmBackend", "CameraModel", "DryRunDone", "Frame", "ObjectFacts", "Progress",
           "ResetOutcome", "SafetyStop", "ShouldStop", "StartupRefused", "wrap_angle"]


class StartupRefused(RuntimeError):
    """The arm does not match its configuration (joint names, calibration): do not start."""


@dataclass(frozen=True)
class CameraModel:
    """A pinhole camera: intrinsics (OpenCV) and its 4x4 pose in the table frame."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    frame_id: str = "camera"

    @classmethod
    def from_camera(cls, cam) -> CameraModel:
        """From a :class:`curious_robot.world.camera.Camera`."""
        return cls(int(cam.width), int(cam.height), float(cam.fx), float(cam.fy),
                   float(cam.cx), float(cam.cy), np.asarray(cam.pose, float))

    def table_points(self, depth: np.ndarray) -> np.ndarray:
        """(H, W, 3) table-frame points of a metric depth image (NaN where depth <= 0)."""
        v, u = np.mgrid[0:self.height, 0:self.width]
        z = np.where(depth > 0, depth.astype(float), np.nan)
        cam = np.stack([(u - self.cx) * z / self.fx, (v - self.cy) * z / self.fy, z], -1)
        return cam @ self.pose[:3, :3].T + self.pose[:3, 3]

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel (column, row) arrays of table-frame points (..., 3)."""
        inv = np.linalg.inv(self.pose)
        c = pts @ inv[:3, :3].T + inv[:3, 3]
        return self.fx * c[..., 0] / c[..., 2] + self.cx, self.fy * c[..., 1] / c[..., 2] + self.cy


@dataclass
class Frame:
    """One RGB-D frame: rgb (H, W, 3) uint8, depth (H, W) float32 metres."""

    rgb: np.ndarray
    depth: np.ndarray
    stamp: object = None  # the driver's header stamp (hardware), None: stamp it now


@dataclass
class ObjectFacts:
    """What is known of an object beyond its id (simulation only)."""

    model: str = ""
    held_out: bool = False
    truth: dict[str, float] = field(default_factory=dict)


@dataclass
class ResetOutcome:
    success: bool
    message: str
    object_ids: list[str] = field(default_factory=list)


class ArmBackend(ABC):
    """One arm as the arm node sees it; see the module docstring."""

    #: "sim" or "hardware", for logs
    kind: str = ""
    #: side of a patch, m
    patch_extent: float = 0.16

    @abstractmethod
    def camera_model(self) -> CameraModel:
        """Intrinsics and table-frame pose of the scene camera."""

    @abstractmethod
    def frame(self, fresh: bool = False) -> Frame | None:
        """The newest RGB-D frame; with ``fresh``, one taken after the last motion ended
        (None if no such frame came in time)."""

    @abstractmethod
    def joint_state(self) -> tuple[list[str], list[float], list[float], list[float]] | None:
        """Names, positions, velocities, efforts (None if unknown yet)."""

    @abstractmethod
    def patch(self, x: float, y: float) -> np.ndarray:
        """rgb8 top-down patch centred on table point (x, y); ValueError outside the
        workspace or without a camera frame."""

    @abstractmethod
    def reset(self, seed: int | None = None, n_objects: int = 0) -> ResetOutcome:
        """Clear the table / drop new objects where the backend can; arm home."""

    @property
    @abstractmethod
    def robot(self):
        """The arm as the motion scripts see it (:class:`curious_robot.motion.robot.Robot`)."""

    def script(self, name: str) -> Script:
        """The motion script of primitive ``name``: one object, whatever the backend."""
        if name not in SCRIPTS:
            raise ValueError(f"no motion script {name!r}; known: {sorted(SCRIPTS)}")
        return SCRIPTS[name]

    # the primitives: the shared scripts on this backend's robot
    def grasp(self, x: float, y: float, angle: float, progress: Progress | None = None,
              should_stop: ShouldStop | None = None):
        return self.script("grasp").run(self.robot, x, y, angle, progress, should_stop)

    def push(self, start_xy, end_xy, progress: Progress | None = None,
             should_stop: ShouldStop | None = None):
        return self.script("push").run(self.robot, start_xy, end_xy, progress, should_stop)

    def poke(self, x: float, y: float, max_force: float = 0.0,
             progress: Progress | None = None, should_stop: ShouldStop | None = None):
        return self.script("poke").run(self.robot, x, y, max_force, progress, should_stop)

    def inspect(self, object_id: str, x: float, y: float, angle: float,
                progress: Progress | None = None, should_stop: ShouldStop | None = None):
        return self.script("inspect").run(self.robot, object_id, x, y, angle, progress,
                                          should_stop)

    # ------------------------------------------------------------ optional
    def object_facts(self, object_id: str) -> ObjectFacts | None:
        """Model, split and physical truth of an object where known (None on hardware)."""
        return None

    def after_motion(self) -> None:
        """Housekeeping after each primitive (the simulation respawns lost objects)."""
        return None

    @property
    def step_count(self) -> int:
        """Simulation step counter (0 on hardware)."""
        return 0

    def emergency_stop(self) -> None:
        """Halt any motion now (called from the e-stop service, outside the node's lock)."""
        return None

    def release_stop(self) -> None:
        """Allow motions again after an emergency stop."""
        return None

    def close(self) -> None:
        """Release the arm's resources."""
        return None
