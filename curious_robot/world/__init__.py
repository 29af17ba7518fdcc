"""The simulated world (PyBullet): table, arm, overhead RGB-D camera, objects, primitives.

Pure Python, no ROS: a node owns a :class:`World` and calls its primitives.
PyBullet is imported when a world is built, not when this package is imported.
"""

from .camera import Camera
from .config import ArmConfig, WorldConfig
from .objects import ObjectInfo
from .primitives import GraspResult, InspectResult, PokeResult, PushResult
from .world import Aborted, World

__all__ = ["Aborted", "ArmConfig", "Camera", "GraspResult", "InspectResult", "ObjectInfo",
           "PokeResult", "PushResult", "World", "WorldConfig"]
