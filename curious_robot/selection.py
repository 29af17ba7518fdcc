"""Action selection for each task, without ROS: random exploration now, model-guided
policies plug in through :class:`Policy` subclasses.

Every selector returns action parameters in the task's layout (``action_fields`` of the
task in :mod:`curious_robot.tasks`), in the table frame, clipped to the workspace.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

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


def centroid_xy(obj) -> tuple[float, float]:
    """Table-frame (x, y) of a detection's centroid: a ``DetectedObject`` message
    (``centroid.x``, ``.y``) or a :class:`curious_robot.perception.Detection` (array)."""
    c = obj.centroid
    if hasattr(c, "x"):
        return float(c.x), float(c.y)
    return float(c[0]), float(c[1])


def reachable(objects: Iterable[Any], area: Workspace | None, margin: float = 0.0,
              position: Callable[[Any], tuple[float, float]] = centroid_xy) -> list:
    """The objects the arm can act on: those whose ``position`` (default: the detection's
    centroid) lies inside ``area`` (the arm's target area), ``margin`` m in from its
    edges; all of them when ``area`` is None (not known yet). A selector keeps its action
    inside the area; an object outside it would get an action clipped to the edge beside
    it, or one the arm refuses."""
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"reach margin must be >= 0, got {margin}")
    objects = list(objects)
    if area is None:
        return objects
    out = []
    for o in objects:
        x, y = position(o)
        if (area.xmin + margin <= x <= area.xmax - margin
                and area.ymin + margin <= y <= area.ymax - margin):
            out.append(o)
    return out
