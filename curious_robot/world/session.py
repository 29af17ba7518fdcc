"""One private PyBullet physics client, as the arm's world and the drone's simulation use
it: headless (DIRECT), deterministic contact ordering, pybullet_data on the search path,
and a close that runs once (explicitly, by ``with``, or when the object is collected)."""

from __future__ import annotations


class BulletSession:
    """Base of a simulation that owns one PyBullet client, ``self.p``."""

    def _connect(self, time_step: float, solver_iterations: int, gravity: float = 9.81):
        """Open the client; returns it (also ``self.p``; the pybullet module: ``self._pb``).
        Runs with the same seed are bit-identical: nothing here reads the clock."""
        import pybullet as pb
        import pybullet_data
        from pybullet_utils import bullet_client

        self._pb = pb
        self.p = bullet_client.BulletClient(connection_mode=pb.DIRECT)
        self._closed = False
        self.p.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.p.setGravity(0, 0, -gravity)
        self.p.setPhysicsEngineParameter(fixedTimeStep=time_step,
                                         numSolverIterations=solver_iterations,
                                         deterministicOverlappingPairs=1)
        return self.p

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self.p.disconnect()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
