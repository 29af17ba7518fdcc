"""The robot protocol: what a motion script (:mod:`curious_robot.motion.grasp`, ``push``,
``poke``, ``inspect``) may ask of a robot. Two implementations run the same scripts:
the simulated world (:class:`curious_robot.world.sim_robot.SimRobot`) and the hardware
backend (:class:`curious_robot.arm.hardware.HardwareBackend`).

The protocol speaks in the scripts' terms (table frame, metres, radians; joint positions
as arrays of the arm joints). Where a robot has nothing to do for a step (the real scene
needs no upkeep, the simulation no dry run) its method does nothing; where it cannot know
something (ground truth, object ids on hardware) it returns the empty answer the method
names. Conventions of the errors: ``ValueError`` refuses a request before anything moved,
:class:`~curious_robot.motion.results.Aborted` is a cancel or emergency stop,
:class:`~curious_robot.motion.results.SafetyStop` a guard that halted the arm.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .arm_model import ArmModel
from .config import MotionParams
from .guard import PressGuard
from .results import Aborted, Progress, ShouldStop

Span = tuple[float, float]


@dataclass(frozen=True)
class Pose:
    """An ee pose to be solved by inverse kinematics (a waypoint of a plan check)."""

    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    tol: float = 5e-4


@dataclass
class Touch:
    """What a press touched: the object (``""`` unknown), its stiffness (N/m, 0 unknown)
    and the ground truth of it the robot knows (simulation)."""

    object_id: str = ""
    stiffness: float = 0.0
    truth: dict[str, float] | None = None


class View(Protocol):
    """A top-down patch centred on a table point."""

    rgb: np.ndarray  # (size, size, 3) uint8
    depth: np.ndarray | None  # the depth patch kept with the result (None: not kept)

    def surface(self, radius_m: float) -> float:
        """Table-frame height (m) of the highest point seen within ``radius_m`` of the
        patch's centre."""

    def heights(self) -> tuple[np.ndarray, float]:
        """The table-frame height (m) seen at each pixel (columns +x, rows -y, centred on
        the patch's table point) and the size of a pixel on the table (m)."""


class Scene(Protocol):
    """An overhead RGB-D image of the table."""

    rgb: np.ndarray
    depth: np.ndarray


@runtime_checkable
class Robot(Protocol):
    """See the module docstring."""

    #: the shared arm model (tip reach, grasp orientations, wrist angle)
    arm: ArmModel
    #: the primitives' parameters
    params: MotionParams
    #: distance from the ee point to the poking point along the approach axis, m
    poke_offset: float
    #: lowest tool height a press may command, m (-inf: no such limit)
    floor: float

    # ------------------------------------------------------------ checks and bookkeeping
    def target_area(self) -> tuple[Span, Span]:
        """The (x, y) spans, table frame, inside which :meth:`check_target` accepts a
        primitive's target (published by the arm node so managers and selectors choose
        only what the arm will do)."""

    def check_target(self, x: float, y: float, what: str) -> None:
        """ValueError if a primitive's (x, y) target is not allowed."""

    def check_plan(self, waypoints: list, from_home: bool = False,
                   then_home: bool = True) -> None:
        """ValueError if the motion through ``waypoints`` (joint arrays or :class:`Pose`)
        cannot be run: checked before anything moves (hardware: joint limits, speeds,
        the safety box; simulation: nothing, its motions are collision-checked as they go)."""

    def check_stop(self, should_stop: ShouldStop | None) -> None:
        """Raise :class:`Aborted` when the primitive must stop (cancel, e-stop)."""

    def prepare(self) -> dict[str, float]:
        """Scene upkeep before a primitive; returns the truth dict the primitive fills."""

    def steps(self) -> int:
        """Simulation steps so far (0 on hardware)."""

    def begin(self, should_stop: ShouldStop | None) -> None:
        """The motion starts (hardware: leave a low pose straight up; dry run)."""

    def end(self, what: str) -> None:
        """The motion of ``what`` is over (hardware dry run: DryRunDone)."""

    def after_abort(self, exc: Aborted) -> None:
        """An Aborted reached the script: return to let the script put the arm home and
        report ``aborted``, or raise to hand the stop to the caller."""

    def report(self, result):
        """The result as the robot reports it (hardware: no ground truth)."""

    # ------------------------------------------------------------ sensing
    def look(self, x: float, y: float) -> View:
        """Top-down RGB-D patch centred on (x, y)."""

    def scene(self, fresh: bool = False) -> Scene:
        """Overhead RGB-D image (``fresh``: taken after the last motion); ValueError if
        none comes."""

    def object_near(self, x: float, y: float) -> str:
        """Id of the object nearest to (x, y) ('' unknown)."""

    def grasp_truth(self, object_id: str, angle: float, x: float, y: float
                    ) -> dict[str, float]:
        """Ground truth of grasping ``object_id`` along ``angle`` at (x, y) ({} unknown)."""

    def mark_objects(self):
        """Remember where the objects are (a token for :meth:`lifted`, :meth:`object_motion`)."""

    def lifted(self, mark) -> tuple[str, float] | None:
        """(object touching the fingers that rose most since ``mark``, its rise in m), or
        None when the robot cannot tell (then the gripper width decides)."""

    def object_motion(self, mark, before: Scene, after: Scene, start, end,
                      object_id: str) -> tuple[str, float, float, float]:
        """(object id, dx, dy, dyaw) of the object a push moved; ``object_id`` is the guess
        kept when nothing moved."""

    def holding(self, object_id: str) -> bool:
        """The gripper still holds the object."""

    def view_held(self, object_id: str) -> np.ndarray | None:
        """An image of the held object at the inspect point (None: none came)."""

    def inspect_target(self, object_id: str, x: float, y: float,
                       angle: float) -> tuple[str, float, float, float]:
        """(object id, x, y, angle) of the grasp that picks up an object to inspect."""

    def gripper_width(self) -> float:
        """Measured opening, m."""

    def joints(self) -> np.ndarray:
        """Present arm joint positions."""

    def ee_position(self) -> np.ndarray:
        """Present table-frame position of the ee point."""

    def ik(self, pos, orn, q_seed=None, tol: float = 5e-4) -> np.ndarray:
        """Joints placing the ee at ``pos`` / ``orn``; ValueError if out of reach."""

    def poke_force_limit(self, requested: float) -> float:
        """The force (N) a poke presses to, given the caller's ``requested`` (0: default)."""

    # ------------------------------------------------------------ motion
    def preset_gripper(self, closed: bool, should_stop: ShouldStop | None) -> None:
        """Open or close the gripper in free space, before an approach."""

    def close_gripper(self, should_stop: ShouldStop | None) -> None:
        """Close on whatever is between the fingers (until they stall)."""

    def open_gripper(self, should_stop: ShouldStop | None) -> None:
        """Open (release)."""

    def approach(self, q, should_stop: ShouldStop | None, progress: Progress | None = None,
                 span: Span = (0.0, 1.0)) -> bool:
        """Free-space move to joints ``q``; False if blocked on the way."""

    def descend(self, q_top, q_bottom, bottom, orn, step_m: float, length: float,
                should_stop: ShouldStop | None, progress: Progress | None = None,
                span: Span = (0.0, 1.0)) -> float:
        """Guarded straight descent from ``q_top`` to ``q_bottom`` (ee at ``bottom``),
        ``length`` m, stopping at the first contact; returns the fraction achieved (1.0:
        reached the bottom without contact)."""

    def move_joints(self, q, should_stop: ShouldStop | None, speed_scale: float = 1.0,
                    duration: float | None = None, progress: Progress | None = None,
                    span: Span = (0.0, 1.0)) -> None:
        """Move to joints ``q`` (interpolated in joint space), at ``speed_scale`` of the
        speed limits or in ``duration`` s."""

    def move_line(self, pos, orn, speed: float, should_stop: ShouldStop | None,
                  progress: Progress | None = None, span: Span = (0.0, 1.0)) -> None:
        """Move the ee in a straight line to ``pos`` at ``speed`` m/s."""

    def press(self, top, bottom, q_top, q_bottom, orn, guard: PressGuard,
              should_stop: ShouldStop | None, progress: Progress | None = None,
              span: Span = (0.0, 1.0)) -> Touch:
        """Press the poking point from tool position ``top`` towards ``bottom`` (ee at
        ``q_top`` / ``q_bottom``), feeding ``guard`` (depth since the press began, normal
        force) until it says stop; then back off. Returns what was touched."""

    def dwell(self, seconds: float) -> None:
        """Let contacts settle for ``seconds`` while holding still."""

    def hold_others(self, object_id: str) -> AbstractContextManager:
        """A context in which every object but ``object_id`` stays where it rests: the
        simulation leaves them out of the physics while the arm works away from them
        (hardware: nothing to do, the world holds them)."""

    def settle(self) -> None:
        """Let the scene come to rest."""

    def finish(self, should_stop: ShouldStop | None, closed: bool = False) -> float:
        """Arm home, gripper open (``closed``: shut); returns 1.0 if the scene had to be
        recovered (simulation), else 0.0."""
