"""Action selection for each task, without ROS: random exploration now, model-guided
policies plug in through :class:`Policy` subclasses.

Every selector returns action parameters in the task's layout
(:data:`curious_robot.record.ACTION_FIELDS`), in the table frame, clipped to the workspace.
"""

from __future__ import annotations

import math
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


def random_grasp(t: Target, rng: np.random.Generator, ws: Workspace,
                 jitter: float = 0.01) -> Selection:
    """The paper's exploration: a random angle at (about) the object's centre."""
    x, y = ws.clip(t.x + rng.uniform(-jitter, jitter), t.y + rng.uniform(-jitter, jitter))
    return Selection([x, y, float(rng.uniform(0.0, math.pi))])


def random_push(t: Target, rng: np.random.Generator, ws: Workspace,
                length: tuple[float, float] = (0.08, 0.14)) -> Selection:
    """Start beside the object from a random direction and push through its centre."""
    direction = rng.uniform(0.0, 2.0 * math.pi)
    ux, uy = math.cos(direction), math.sin(direction)
    back = 0.5 * max(t.length, t.width) + 0.035
    stroke = rng.uniform(*length)
    sx, sy = ws.clip(t.x - ux * back, t.y - uy * back)
    ex, ey = ws.clip(sx + ux * (back + stroke), sy + uy * (back + stroke))
    return Selection([sx, sy, ex, ey])


def random_poke(t: Target, rng: np.random.Generator, ws: Workspace,
                jitter: float = 0.004) -> Selection:
    x, y = ws.clip(t.x + rng.uniform(-jitter, jitter), t.y + rng.uniform(-jitter, jitter))
    return Selection([x, y])


def inspect_grasp(t: Target, rng: np.random.Generator, ws: Workspace) -> Selection:
    """Inspect needs the object in hand: close across the narrow side of the footprint."""
    x, y = ws.clip(t.x, t.y)
    return Selection([x, y, (t.yaw + math.pi / 2.0) % math.pi])


RANDOM = {"grasp": random_grasp, "push": random_push, "poke": random_poke,
          "inspect": inspect_grasp}


def select_random(task: str, target: Target, rng: np.random.Generator,
                  ws: Workspace | None = None) -> Selection:
    if task not in RANDOM:
        raise ValueError(f"no selector for task {task!r}; known: {', '.join(RANDOM)}")
    return RANDOM[task](target, rng, ws or Workspace())
