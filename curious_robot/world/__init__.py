"""The simulated world (PyBullet): table, arm, overhead RGB-D camera, objects, primitives.

Pure Python, no ROS: a node owns a :class:`World` and calls its primitives (the motion
scripts of :mod:`curious_robot.motion`, run on :class:`~.sim_robot.SimRobot`).
PyBullet is imported when a world is built, not when this package is imported.
"""

from .camera import Camera
from .config import ArmConfig, WorldConfig
from .objects import ObjectInfo
from curious_robot.motion.results import (Aborted, GraspResult, InspectResult, PokeResult,
                                          PushResult)

from .world import World

__all__ = ["Aborted", "ArmConfig", "Camera", "GraspResult", "InspectResult", "ObjectInfo",
           "PokeResult", "PushResult", "World", "WorldConfig"]
