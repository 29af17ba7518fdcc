"""Action selection for each task, without ROS: random exploration now, model-guided
policies plug in through :class:`Policy` subclasses.

Every selector returns action parameters in the task's layout (``action_fields`` of the
task in :mod:`curious_robot.tasks`), in the table frame, clipped to the workspace.
"""

from __future__ import annotations

import numpy as np

from curious_robot import tasks as registry
from curious_robot.tasks.base import Selection, Target, Workspace  # noqa: F401 (public)

POLICIES = ("random", "model", "curious")


def select_random(task: str, target: Target, rng: np.random.Generator,
                  ws: Workspace | None = None) -> Selection:
    """Random exploration: the task's ``random_action`` hook (:mod:`curious_robot.tasks`)."""
    names = [t.name for t in registry.all_tasks("arm")]
    if task not in names:
        raise ValueError(f"no selector for task {task!r}; known: {', '.join(names)}")
    return registry.get(task).random_action(target, rng, ws or Workspace())
