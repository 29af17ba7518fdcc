"""The simulation backend: the motion scripts run on a PyBullet :class:`World` in this
process (through its :class:`~curious_robot.world.sim_robot.SimRobot`)."""

from __future__ import annotations

import numpy as np

from .backend import ArmBackend, CameraModel, Frame, ObjectFacts, ResetOutcome

TRUTH_KEYS = ("stiffness", "damping", "mass", "friction")


class SimBackend(ArmBackend):
    kind = "sim"

    def __init__(self, world):
        self.world = world
        self.patch_extent = float(world.config.patch_extent)

    def camera_model(self) -> CameraModel:
        return CameraModel.from_camera(self.world.camera)

    def frame(self, fresh: bool = False) -> Frame:
        rgb, depth = self.world.capture()
        return Frame(rgb, depth)

    def joint_state(self):
        return self.world.joint_state()

    def patch(self, x: float, y: float) -> np.ndarray:
        return self.world.patch(x, y, depth=False)[0]

    def reset(self, seed: int | None = None, n_objects: int = 0) -> ResetOutcome:
        if seed is not None and seed >= 0 and hasattr(self.world, "reseed"):
            self.world.reseed(int(seed))
        self.world.reset()
        ids = [o.object_id for o in self.world.objects()]
        return ResetOutcome(True, f"{len(ids)} objects on the table", ids)

    @property
    def robot(self):
        return self.world.robot

    def object_facts(self, object_id: str) -> ObjectFacts | None:
        try:
            info = self.world.object(object_id)
        except (KeyError, ValueError):
            return None
        return ObjectFacts(str(info.model), bool(info.held_out),
                           {k: float(getattr(info, k)) for k in TRUTH_KEYS})

    def after_motion(self) -> None:
        self.world.maintain()

    def recover(self) -> None:
        self.world.reset()

    @property
    def step_count(self) -> int:
        return int(self.world.step_count)

    def close(self) -> None:
        self.world.close()
