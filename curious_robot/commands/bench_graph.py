"""``curious-robot bench graph``: interactions per second through the whole ROS graph
(arm, sensing, tactile, selectors, manager, learner and the store, as separate processes
over DDS) against the same primitives called in-process, measured in the same run."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measuring time of each side (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)


def _node_config(executable: str, node: str) -> dict:
    """A node's parameters as collect runs it: its defaults under config/collect.yaml."""
    from curious_robot.graph import default_config
    from curious_robot.node_config import effective, yaml_section

    return effective(executable, yaml_section(default_config(), node))


def inprocess_rate(seconds: float, seed: int) -> tuple[float, int]:
    """The manager's loop without ROS, with the same config (objects, task weights, resets):
    capture -> detect -> patch -> select -> act."""
    import numpy as np

    from curious_robot import tasks as registry
    from curious_robot.arm.sim import SimBackend
    from curious_robot.perception import detect_objects
    from curious_robot.selection import Target, select_random
    from curious_robot.tactile import fit_tactile
    from curious_robot.world import World, WorldConfig

    manager = _node_config("interaction_manager", "interaction_manager")
    arm = _node_config("arm_node", "arm")
    tasks = registry.all_tasks("arm")
    names = [t.name for t in tasks]
    weights = np.array([manager[f"weight_{t.name}"] for t in tasks], float)
    weights /= weights.sum()
    world_cfg = WorldConfig(num_objects=arm["n_objects"] or WorldConfig().num_objects,
                            object_split=arm["object_split"])
    reset_every = manager["reset_every"] or 10**9
    rng = np.random.default_rng([seed, 7919])
    n = 0
    with World(world_cfg, seed=seed) as world:
        backend = SimBackend(world)
        t0 = time.perf_counter()
        since_reset = 0
        while time.perf_counter() - t0 < seconds:
            _rgb, depth = world.capture()
            cam = world.camera
            dets, _plane = detect_objects(depth, cam.fx, cam.fy, cam.cx, cam.cy, cam.pose)
            if not dets or since_reset >= reset_every:
                world.reset()
                since_reset = 0
                continue
            d = dets[int(rng.integers(len(dets)))]
            task = registry.get(str(rng.choice(names, p=weights)))
            world.patch(float(d.centroid[0]), float(d.centroid[1]))
            a = select_random(task.name, Target(float(d.centroid[0]), float(d.centroid[1]), d.yaw,
                                           float(d.size[0]), float(d.size[1])), rng).action
            try:
                r = task.execute(backend, a)
                if task.tactile:
                    fit_tactile(r.depth, r.force)
            except ValueError:
                continue
            finally:
                world.maintain()
                since_reset += 1
            n += 1
        return n / (time.perf_counter() - t0), n


def graph_rate(seconds: float, seed: int) -> tuple[float, int]:
    """Start the collect graph, wait for the first stored interaction (start-up excluded),
    then count what reaches the store in ``seconds``."""
    import yaml

    from curious_robot.commands.collect import Graph, _overrides
    from curious_robot.graph import collect_graph, default_config
    from curious_robot.store import ReplayStore

    with tempfile.TemporaryDirectory(prefix="bench-graph-") as tmp:
        store = os.path.join(tmp, "replay.db")
        specs = collect_graph(robots=1, seed=seed, store=store)
        overrides = os.path.join(tmp, "overrides.yaml")
        with open(overrides, "w") as f:
            # the collection pipeline alone: online training is load the learner may add
            yaml.safe_dump(_overrides(specs, ["learner.train=false"]), f)
        graph = Graph(specs, default_config(), overrides, Path(tmp))
        graph.start()

        def count() -> int:
            if not os.path.exists(store):
                return 0
            with ReplayStore(store, readonly=True) as s:
                return s.count()
        try:
            deadline = time.monotonic() + 120
            while count() == 0:
                if time.monotonic() > deadline or graph.dead():
                    raise RuntimeError("the graph stored nothing; logs: " + tmp)
                time.sleep(0.2)
            c0, t0 = count(), time.perf_counter()
            time.sleep(seconds)
            c1, t1 = count(), time.perf_counter()
        finally:
            graph.stop()
        return (c1 - c0) / (t1 - t0), c1 - c0


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        print("error: --seconds must be > 0", file=sys.stderr)
        return 2
    print(f"in-process: {args.seconds:.0f} s ...", file=sys.stderr)
    inproc, n_in = inprocess_rate(args.seconds, args.seed)
    print(f"graph: {args.seconds:.0f} s after start-up ...", file=sys.stderr)
    graph, n_graph = graph_rate(args.seconds, args.seed)
    out = {"graph_per_s": round(graph, 3), "inprocess_per_s": round(inproc, 3),
           "ratio": round(graph / inproc, 3) if inproc else None,
           "graph_interactions": n_graph, "inprocess_interactions": n_in,
           "seconds": args.seconds}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{'':24}{'interactions/s':>16}{'count':>8}")
        print(f"{'in-process primitives':24}{inproc:16.2f}{n_in:8d}")
        print(f"{'ROS graph (DDS, store)':24}{graph:16.2f}{n_graph:8d}")
        print(f"ratio graph / in-process: {out['ratio']}")
    return 0
