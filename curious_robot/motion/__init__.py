"""The robot's motions, written once: the robot protocol (:mod:`.robot`), the shared arm
model (:mod:`.arm_model`), geometry, guards, result types, and one script per primitive
(:mod:`.grasp`, :mod:`.push`, :mod:`.poke`, :mod:`.inspect`). The simulated world and the
hardware backend both implement the protocol and run these same script objects.

Pure: no rclpy, nothing of :mod:`curious_robot.world` or :mod:`curious_robot.arm`.
"""

from .grasp import GRASP
from .inspect import INSPECT
from .poke import POKE
from .push import PUSH

#: primitive name -> its script (one instance each, shared by every robot)
SCRIPTS = {s.name: s for s in (GRASP, PUSH, POKE, INSPECT)}

__all__ = ["GRASP", "INSPECT", "POKE", "PUSH", "SCRIPTS"]
