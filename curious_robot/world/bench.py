"""``curious-robot bench sim``: rates and outcome quality of the simulated primitives.

Grasps at object centres (random angle vs. the angle across the narrow side), pokes at
the top of each object (Spearman rank correlation of the fitted slope with the set
stiffness), pushes through object centres (displacement along vs. across the push) and
inspections (does the object stay held through all views). Rates are attempts per
second of wall-clock time on one process, each attempt with its one RGB-D capture.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

import numpy as np


def add_arguments(parser) -> None:
    parser.add_argument("--attempts", type=int, default=200,
                        help="grasp attempts (half random-angle, half best-angle)")
    parser.add_argument("--objects", type=int, default=10, help="objects on the table")
    parser.add_argument("--pokes", type=int, default=20, help="pokes (one per object)")
    parser.add_argument("--pushes", type=int, default=30, help="pushes")
    parser.add_argument("--inspects", type=int, default=20, help="inspect attempts")
    parser.add_argument("--seed", type=int, default=0, help="world seed")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        dest="world_set",
                        help="a world configuration field (curious_robot/world/config.py), "
                        "e.g. solver_iterations=25 or rigid_objects=true (YAML value; "
                        "repeatable)")


def world_config(args):
    """The benchmarked WorldConfig: the defaults, ``--objects`` and every ``--set``;
    ValueError names a bad one."""
    import yaml

    from curious_robot.motion.config import from_dict

    from . import WorldConfig

    fields = {"num_objects": args.objects}
    for item in args.world_set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE")
        fields[key.strip()] = yaml.safe_load(value)
    return from_dict(WorldConfig, fields, "--set")


def spearman(a, b) -> float:
    """Spearman rank correlation (no ties handling beyond argsort order)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 2:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def _centre(world, oid) -> tuple[float, float]:
    v = world.object_vertices(oid)
    c = 0.5 * (v[:, :2].max(0) + v[:, :2].min(0))
    (x0, x1), (y0, y1), _ = world.workspace
    return float(np.clip(c[0], x0, x1)), float(np.clip(c[1], y0, y1))


class _Timers:
    """Wraps a world's heavy methods to attribute wall time (bench-only profiling)."""

    def __init__(self, world):
        self.total = defaultdict(float)
        for name, label in (("render", "render"), ("step", "physics_step"), ("ik", "ik"),
                            ("_collides", "collision_check"), ("settle", "settle")):
            self._wrap(world, name, label)

    def _wrap(self, world, name, label):
        fn = getattr(world, name)

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total[label] += time.perf_counter() - t
        setattr(world, name, timed)


def run(args) -> int:
    import sys

    from . import World

    try:
        config = world_config(args)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seed = args.seed
    out: dict[str, float] = {}
    rng = np.random.default_rng(seed + 1)

    # ---------------------------------------------------------------- grasps
    world = World(config, seed=seed)
    timers = _Timers(world)
    results = {"random": [], "best": []}
    t0, steps0 = time.perf_counter(), world.step_count
    for i in range(args.attempts):
        objs = world.objects()
        o = objs[int(rng.integers(len(objs)))]
        x, y = _centre(world, o.object_id)
        kind = "random" if i % 2 == 0 else "best"
        angle = rng.uniform(0, math.pi) if kind == "random" else \
            world.best_grasp_angle(o.object_id)
        results[kind].append(world.grasp(x, y, angle).success)
    dt = time.perf_counter() - t0
    n = max(1, args.attempts)
    out["grasp_attempts_per_s"] = args.attempts / dt
    out["grasp_ms"] = 1000 * dt / n
    out["grasp_sim_steps"] = (world.step_count - steps0) / n
    out["grasp_success_random"] = float(np.mean(results["random"])) if results["random"] else 0
    out["grasp_success_best_angle"] = float(np.mean(results["best"])) if results["best"] else 0
    breakdown = {k: 1000 * v / n for k, v in timers.total.items()}
    breakdown["other"] = out["grasp_ms"] - sum(v for k, v in breakdown.items()
                                               if k not in ("settle",))
    out["grasp_time_ms"] = breakdown
    world.close()

    # ---------------------------------------------------------------- pokes
    world = World(config, seed=seed + 100)
    stiff, slopes, limit = [], [], 0
    t0 = time.perf_counter()
    done = 0
    while done < args.pokes:
        for oid in [o.object_id for o in world.objects()]:
            if done >= args.pokes:
                break
            if oid not in {o.object_id for o in world.objects()}:
                continue  # respawned by the previous poke's scene maintenance
            v = world.object_vertices(oid)
            top = v[np.argmax(v[:, 2])]
            r = world.poke(float(np.clip(top[0], -0.2, 0.2)), float(np.clip(top[1], -0.2, 0.2)))
            done += 1
            if r.fit is not None and r.stiffness > 0:
                stiff.append(r.stiffness)
                slopes.append(r.fit.slope)
                limit += r.reached_force_limit
        world.reset()
    dt = time.perf_counter() - t0
    out["poke_per_s"] = done / dt
    out["poke_stiffness_spearman"] = spearman(slopes, stiff)
    out["poke_on_object"] = len(stiff)
    out["poke_reached_force_limit"] = limit
    world.close()

    # ---------------------------------------------------------------- pushes
    world = World(config, seed=seed + 200)
    along, side = [], []
    t0 = time.perf_counter()
    for _ in range(args.pushes):
        objs = world.objects()
        o = objs[int(rng.integers(len(objs)))]
        cx, cy = _centre(world, o.object_id)
        a = rng.uniform(-math.pi, math.pi)
        u = np.array([math.cos(a), math.sin(a)])
        lim = 0.19
        s = np.clip(np.array([cx, cy]) - 0.08 * u, -lim, lim)
        e = np.clip(np.array([cx, cy]) + 0.08 * u, -lim, lim)
        if np.linalg.norm(e - s) < 0.02:
            continue
        r = world.push(s, e)
        u = (e - s) / np.linalg.norm(e - s)
        d = np.array([r.dx, r.dy])
        along.append(float(d @ u))
        side.append(abs(float(d @ np.array([-u[1], u[0]]))))
    dt = time.perf_counter() - t0
    out["push_per_s"] = len(along) / dt
    out["push_median_along_m"] = float(np.median(along)) if along else 0.0
    out["push_median_side_m"] = float(np.median(side)) if side else 0.0
    out["push_moved_fraction"] = float(np.mean(np.abs(along) > 0.01)) if along else 0.0
    world.close()

    # ---------------------------------------------------------------- inspects
    world = World(config, seed=seed + 300)
    grasped, held = 0, 0
    t0 = time.perf_counter()
    for _ in range(args.inspects):
        objs = world.objects()
        o = objs[int(rng.integers(len(objs)))]
        r = world.inspect(o.object_id)
        grasped += r.success
        held += r.success and r.held_through_all
    dt = time.perf_counter() - t0
    out["inspect_per_s"] = args.inspects / dt if args.inspects else 0.0
    out["inspect_grasp_rate"] = grasped / max(1, args.inspects)
    out["inspect_hold_rate"] = held / max(1, grasped)
    world.close()

    if getattr(args, "json", False):
        print(json.dumps(out, sort_keys=True))
    else:
        _print_table(out)
    return 0


def _print_table(out: dict) -> None:
    rows = [(k, v) for k, v in out.items() if not isinstance(v, dict)]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    for k, v in rows:
        print(f"{k:<{width}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    for k, v in out.items():
        if isinstance(v, dict):
            print(f"{k} (per attempt):")
            for name, ms in sorted(v.items(), key=lambda kv: -kv[1]):
                print(f"  {name:<{width - 2}}  {ms:.1f}")
