"""Synthetic interactions with learnable structure, for tests and benchmarks: each task's
``synthetic`` hook (:mod:`curious_robot.tasks`) draws one record's fields."""

from __future__ import annotations

import numpy as np

from curious_robot import tasks as registry
from curious_robot.record import Interaction


def synthetic_interactions(n_per_task: int, rng: np.random.Generator, size: int = 64,
                           n_objects: int = 6, held_out_share: float = 0.25,
                           tasks: tuple[str, ...] | None = None,
                           robot: str = "synthetic") -> list[Interaction]:
    """Valid records with learnable structure (each task's ``synthetic`` hook: grasps
    succeed when closing across a bar, pushes move a blob, poke slope grows with
    brightness, objects differ in colour); ``tasks`` defaults to the trained tasks."""
    objects = [(f"obj{i}", rng.integers(40, 255, size=3).tolist(), i % 4 == 3)
               for i in range(n_objects)]
    out: list[Interaction] = []
    for name in tasks or registry.trained_by_default():
        spec = registry.get(name)
        for _ in range(n_per_task):
            oid, color, held = objects[int(rng.integers(n_objects))]
            fields = spec.synthetic(tuple(int(c) for c in color), rng, size)
            if fields is None:
                raise ValueError(f"no synthetic data for task {name!r}")
            out.append(Interaction(task=name, robot=robot, seq=len(out), object_id=oid,
                                   object_model=oid, held_out=held if held_out_share > 0
                                   else False, **fields))
    return out
