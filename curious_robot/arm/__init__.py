"""The arm behind one interface with two implementations.

:class:`~curious_robot.arm.backend.ArmBackend` is what the arm node needs (camera, joint
state, patches, scene reset, the four primitives); :class:`~curious_robot.arm.sim.SimBackend`
runs them on a PyBullet :class:`~curious_robot.world.World`,
:class:`~curious_robot.arm.hardware.HardwareBackend` on an arm driven through ros2_control
topics (joint trajectories, joint states, gripper, force sensor, RGB-D camera), every
motion checked by :class:`~curious_robot.arm.safety.SafetyLayer`.
:class:`~curious_robot.arm.fake.FakeArm` plays such an arm from a PyBullet world, so the
hardware path runs without a robot. Pure Python: no rclpy here except in ``ros_io``.
"""

from .backend import ArmBackend, CameraModel, Frame, ObjectFacts
from .config import HardwareConfig

__all__ = ["ArmBackend", "CameraModel", "Frame", "HardwareConfig", "ObjectFacts"]
