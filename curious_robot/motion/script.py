"""What the motion scripts share: the progress helper and the base class."""

from __future__ import annotations

from .results import Progress


def report(progress: Progress | None, fraction: float) -> None:
    """Call ``progress`` with ``fraction`` clipped to [0, 1] (if given)."""
    if progress is not None:
        progress(float(min(1.0, max(0.0, fraction))))


class Script:
    """One primitive's motion, written against :class:`~curious_robot.motion.robot.Robot`.
    One instance per primitive (the module's constant); every robot runs that instance."""

    #: the primitive's name (the task that runs it)
    name: str = ""

    def __repr__(self) -> str:
        return f"<motion script {self.name}>"
