"""What a primitive returns and how it stops, the same on every robot: the result
dataclasses (what the learner needs and, in ``truth``, the simulation's ground truth,
empty on hardware), the hooks' signatures and the exceptions of a motion."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from curious_robot.tactile import TactileFit

#: ``progress(fraction)`` and ``should_stop()``: the optional hooks of a primitive.
Progress = Callable[[float], None]
ShouldStop = Callable[[], bool]


class Aborted(Exception):
    """A primitive was canceled or emergency-stopped (its ``should_stop`` said so)."""


class SafetyStop(RuntimeError):
    """A safety check failed during a motion (a limit, a silent or nonsensical sensor);
    the arm was halted."""


class TrajectoryRejected(SafetyStop):
    """The controller refused a trajectory, gave it up (an aborted goal, its error code in
    the message) or is not following it; the arm was told to stop."""


class DryRunDone(RuntimeError):
    """Dry-run mode: the motion was planned and published, the arm did not move."""


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
