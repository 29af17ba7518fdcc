"""Same seed, same world -> same actions and outcomes: a hash of N interactions per task.

Run before and after a refactor of the world, primitives or backends; the hashes must be
equal. Usage: python tools/behaviour_hash.py [--per-task N] [--seed S]
It drives the simulation backend the arm node uses (``SimBackend``) with the random
selectors' actions, task order drawn from a seeded generator, and hashes every action,
outcome, truth value and image of the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np


def _feed(h, value) -> None:
    if isinstance(value, np.ndarray):
        h.update(str(value.shape).encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        for v in value:
            _feed(h, v)
    elif isinstance(value, dict):
        for k in sorted(value):
            h.update(str(k).encode())
            _feed(h, value[k])
    elif isinstance(value, (float, np.floating)):
        h.update(np.float64(value).tobytes())
    else:
        h.update(repr(value).encode())


RESULT_FIELDS = ("success", "gripper_width", "patch", "before", "after", "dx", "dy", "dyaw",
                 "depth", "force", "views", "held_through_all", "object_id", "truth",
                 "reached_force_limit", "aborted", "steps")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-task", type=int, default=75)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from curious_robot.arm.sim import SimBackend
    from curious_robot.selection import Target, Workspace, select_random
    from curious_robot.world import World, WorldConfig

    backend = SimBackend(World(WorldConfig(), seed=args.seed))
    rng = np.random.default_rng([args.seed, 4242])
    ws = Workspace(-0.2, 0.2, -0.2, 0.2)
    tasks = ["grasp", "push", "poke", "inspect"]
    left = {t: args.per_task for t in tasks}
    per_task = {t: hashlib.sha256() for t in tasks}
    total = hashlib.sha256()
    n = {t: 0 for t in tasks}
    t0 = time.perf_counter()
    since_reset = 0
    while any(left.values()):
        objs = backend.world.objects()
        if not objs or since_reset >= 40:
            backend.reset()
            since_reset = 0
            continue
        task = str(rng.choice([t for t in tasks if left[t]]))
        obj = objs[int(rng.integers(len(objs)))]
        pos = obj.position if hasattr(obj, "position") else backend.world.object(
            obj.object_id).position
        target = Target(float(pos[0]), float(pos[1]), float(rng.uniform(0, np.pi)))
        a = select_random(task, target, rng, ws).action
        try:
            if task == "grasp":
                res = backend.grasp(*a)
            elif task == "push":
                res = backend.push(tuple(a[:2]), tuple(a[2:]))
            elif task == "poke":
                res = backend.poke(*a)
            else:
                res = backend.inspect(obj.object_id, *a)
            fields = {f: getattr(res, f) for f in RESULT_FIELDS if hasattr(res, f)}
        except ValueError as exc:
            fields = {"refused": str(exc)}
        backend.after_motion()
        since_reset += 1
        record = {"task": task, "action": a, **fields, "step": backend.step_count}
        _feed(per_task[task], record)
        _feed(total, record)
        left[task] -= 1
        n[task] += 1
    print(json.dumps({"seed": args.seed, "per_task": n,
                      "hashes": {t: h.hexdigest()[:16] for t, h in per_task.items()},
                      "all": total.hexdigest()[:16],
                      "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
