"""Action selection for each task, without ROS: random exploration now, model-guided
policies plug in through :class:`Policy` subclasses.

Every selector returns action parameters in the task's layout (``action_fields`` of the
task in :mod:`curious_robot.tasks`), in the table frame, clipped to the workspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLICIES = ("random", "model", "curious")


@dataclass
class Target:
    """What a selector knows of the object to act on (from the sensing node)."""

    x: float
    y: float
    yaw: float = 0.0  # long side, rad
    length: float = 0.05  # m, long side
    width: float = 0.05  # m, short side


@dataclass(frozen=True)
class Workspace:
    xmin: float = -0.30
    xmax: float = 0.30
    ymin: float = -0.30
    ymax: float = 0.30

    def clip(self, x: float, y: float) -> tuple[float, float]:
        return (min(max(x, self.xmin), self.xmax), min(max(y, self.ymin), self.ymax))


@dataclass
class Selection:
    action: list[float]
    score: float = 0.0
    policy: str = "random"


def select_random(task: str, target: Target, rng: np.random.Generator,
                  ws: Workspace | None = None) -> Selection:
    """Random exploration: the task's ``random_action`` hook (:mod:`curious_robot.tasks`)."""
    from curious_robot import tasks as registry

    names = [t.name for t in registry.all_tasks("arm")]
    if task not in names:
        raise ValueError(f"no selector for task {task!r}; known: {', '.join(names)}")
    return registry.get(task).random_action(target, rng, ws or Workspace())
