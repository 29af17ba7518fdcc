"""``curious-robot bench graph``: interactions per second through the whole ROS graph
(simulated robots, the learner and the store, as ``collect`` runs them) for one or more
robot counts, against the same primitives called in-process on one core, measured in the
same run.

    curious-robot bench graph --robots 1,2,4,8 --seconds 60 --out results/scale

Per robot count it starts a fresh graph on a fresh store (online training off: the
collection pipeline alone), waits until every robot has stored an interaction (that wait
is ``startup_s``), counts what reaches the store in ``--seconds``, stops the graph with one
SIGINT, and reads the store and the nodes' goodbye lines. Keys of each result:

  robots, processes, seconds, interactions, per_s, per_core_per_s (per_s / the cores this
  process may use), in_process_per_core_per_s (one robot's loop without ROS, one core),
  gaps (seqs missing inside a robot's stored range), duplicates (deliveries the learner
  had already stored: resends whose first ack was late), refused (actions the arm did
  not accept or aborted), no_record (interactions that ended without a record, by why),
  startup_s, rss_mb_per_robot (resident memory of the robot processes / robots, at the
  end of the window), store_check ('ok' or the first problem), stopped_cleanly,
  ms_per_interaction (where the robots' time went, from the managers' goodbye lines:
  choosing the object, choosing the action, acting).

``--out DIR`` also writes ``DIR/scale.json``, ``DIR/table.md`` and ``DIR/scale.png`` (per-core
rate and start-up time against the robot count).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robots", default="1",
                        help="robot count, or a comma-separated sweep such as 1,2,4,8 "
                             "(default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measuring window per robot count, after start-up "
                             "(default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    from curious_robot.graph import PROCESS_MODES

    parser.add_argument("--processes", choices=PROCESS_MODES, default=PROCESS_MODES[0],
                        help="process layout, as collect's --processes (default %(default)s)")
    parser.add_argument("--startup-timeout", type=float, default=180.0,
                        help="seconds every robot gets to store its first interaction "
                             "(default %(default)s)")
    parser.add_argument("--no-inprocess", action="store_true",
                        help="skip the in-process reference measurement")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a parameter as collect's --set does (repeatable), "
                             "e.g. grasp_selector.policy=curious")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="also write scale.json, table.md and scale.png here")


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
    from curious_robot.selection import Target, Workspace, reachable, select_random
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
        # choose as the manager does: objects inside the arm's area, actions kept in it
        (x0, x1), (y0, y1) = backend.robot.target_area()
        area = Workspace(x0, x1, y0, y1)
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
            dets = reachable(dets, area, manager["reach_margin"])
            if not dets:
                world.reset()
                since_reset = 0
                continue
            d = dets[int(rng.integers(len(dets)))]
            task = registry.get(str(rng.choice(names, p=weights)))
            world.patch(float(d.centroid[0]), float(d.centroid[1]))
            a = select_random(task.name, Target(float(d.centroid[0]), float(d.centroid[1]), d.yaw,
                                           float(d.size[0]), float(d.size[1])), rng,
                              area).action
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


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and its descendants, MiB (0 if gone)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024.0
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo.extend(int(c) for c in children)
        except (OSError, ValueError):
            continue
    return total


def graph_run(robots: int, seconds: float, seed: int, processes: str = "robot",
              startup_timeout: float = 180.0, log=print, sets: tuple = ()) -> dict:
    """One measurement (see the module's docstring); raises RuntimeError with the log
    folder when the graph stores nothing or a process dies."""
    import yaml

    from curious_robot.commands.collect import Graph, _overrides
    from curious_robot.graph import collect_graph, default_config, robot_name
    from curious_robot.store import ReplayStore, StoreError

    tmp = tempfile.mkdtemp(prefix=f"bench-graph-{robots}-")
    store = os.path.join(tmp, "replay.db")
    specs = collect_graph(robots=robots, seed=seed, store=store)
    overrides = os.path.join(tmp, "overrides.yaml")
    with open(overrides, "w") as f:
        # the collection pipeline alone: online training is load the learner may add
        yaml.safe_dump(_overrides(specs, ["learner.train=false", *sets]), f)
    os.environ.setdefault("ROS_LOG_DIR", os.path.join(tmp, "ros"))
    graph = Graph(specs, default_config(), overrides, Path(tmp), mode=processes)
    names = [robot_name(i) for i in range(robots)]

    def per_robot() -> dict[str, int]:
        if not os.path.exists(store):
            return {}
        try:
            with ReplayStore(store, readonly=True) as s:
                return {r: v["count"] for r, v in s.robots().items()}
        except StoreError:
            return {}

    def check_alive() -> None:
        dead = graph.dead()
        if dead:
            raise RuntimeError(f"process {dead[0][0]} exited with code {dead[0][1]}; "
                               f"its log ends:\n{graph.tail(dead[0][0])}\nlogs: {tmp}")

    t_start = time.monotonic()
    graph.start()
    codes = {}
    try:
        startup = None
        while startup is None:
            check_alive()
            counts = per_robot()
            if all(counts.get(n, 0) > 0 for n in names):
                startup = time.monotonic() - t_start
            elif time.monotonic() - t_start > startup_timeout:
                started = sum(counts.get(n, 0) > 0 for n in names)
                raise RuntimeError(f"{started} of {robots} robots stored an interaction "
                                   f"within {startup_timeout:.0f} s; logs: {tmp}")
            else:
                time.sleep(0.25)
        log(f"  {robots} robot(s): all storing after {startup:.1f} s; measuring "
            f"{seconds:.0f} s ...")
        c0, t0 = sum(per_robot().values()), time.perf_counter()
        end = t0 + seconds
        while time.perf_counter() < end:
            check_alive()
            time.sleep(min(1.0, max(0.0, end - time.perf_counter())))
        c1, t1 = sum(per_robot().values()), time.perf_counter()
        rss = sum(_rss_mb(p.pid) for key, p in graph.procs.items() if key != "/learner")
    finally:
        codes = graph.stop()
    with ReplayStore(store, readonly=True) as s:
        report = s.robots()
        problems = s.check()
    reasons, dups = graph.goodbyes()
    per_s = (c1 - c0) / (t1 - t0)
    return {"robots": robots, "processes": processes, "seconds": round(t1 - t0, 1),
            "interactions": c1 - c0, "per_s": round(per_s, 3),
            "per_core_per_s": round(per_s / cores(), 3),
            "gaps": sum(r["n_missing"] for r in report.values()),
            "duplicates": dups, "refused": reasons.get("not accepted", 0)
            + reasons.get("aborted", 0), "no_record": reasons,
            "startup_s": round(startup, 1), "rss_mb_per_robot": round(rss / robots, 1),
            "store_check": "ok" if not problems else problems[0],
            "stopped_cleanly": all(c == 0 for c in codes.values()), "set": list(sets),
            "ms_per_interaction": graph.time_spent(), "logs": tmp}


def _write(out: Path, results: list[dict], inproc: float | None, args) -> None:
    from curious_robot.fileio import write_atomic, write_json

    out.mkdir(parents=True, exist_ok=True)
    command = (f"curious-robot bench graph --robots {args.robots} --seconds "
               f"{args.seconds:g} --seed {args.seed} --processes {args.processes}"
               + "".join(f" --set {s}" for s in args.set) + f" --out {args.out}")
    write_json(out / "scale.json", {"command": command, "cores": cores(),
                                    "in_process_per_core_per_s": inproc,
                                    "results": results})
    rows = ["| robots | interactions/s | per core | start-up s | gaps | duplicates | "
            "refused | RSS MiB / robot | store check | clean stop |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        rows.append(f"| {r['robots']} | {r['per_s']:.2f} | {r['per_core_per_s']:.2f} | "
                    f"{r['startup_s']:.0f} | {r['gaps']} | {r['duplicates']} | "
                    f"{r['refused']} | {r['rss_mb_per_robot']:.0f} | {r['store_check']} | "
                    f"{'yes' if r['stopped_cleanly'] else 'NO'} |")
    ref = (f"One robot's loop in-process (no ROS, one core): {inproc:.2f} interactions/s.\n"
           if inproc else "")
    write_atomic(out / "table.md", (
        f"# Collection rate against robot count\n\n`{command}` on {cores()} cores, "
        f"{args.seconds:g} s per robot count after start-up, online training off.\n\n"
        + "\n".join(rows) + "\n\n" + ref).encode())
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["robots"] for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    a.plot(n, [r["per_core_per_s"] for r in results], "o-", label="ROS graph")
    if inproc:
        a.axhline(inproc, color="grey", ls="--", label="in-process, 1 robot")
    a.set_xlabel("robots")
    a.set_ylabel("interactions / s / core")
    a.set_xscale("log", base=2)
    a.set_ylim(bottom=0)
    a.legend()
    b.plot(n, [r["startup_s"] for r in results], "o-")
    b.set_xlabel("robots")
    b.set_ylabel("start-up (s)")
    b.set_xscale("log", base=2)
    b.set_ylim(bottom=0)
    fig.suptitle(f"collect on {cores()} cores ({args.processes} layout)")
    fig.tight_layout()
    tmp = out / ".scale.png.tmp"
    fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "scale.png")


def run(args: argparse.Namespace) -> int:
    try:
        counts = [int(x) for x in str(args.robots).split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        print(f"error: --robots {args.robots!r}: give robot counts >= 1, e.g. 1,2,4,8",
              file=sys.stderr)
        return 2
    if args.seconds <= 0:
        print("error: --seconds must be > 0", file=sys.stderr)
        return 2
    try:
        from curious_robot.commands.collect import _overrides
        from curious_robot.graph import collect_graph

        _overrides(collect_graph(robots=1), args.set)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    inproc = None
    if not args.no_inprocess:
        say(f"in-process: {args.seconds:.0f} s ...")
        inproc = round(inprocess_rate(args.seconds, args.seed)[0], 3)
    results = []
    for n in counts:
        say(f"graph with {n} robot(s) ({args.processes} layout) ...")
        try:
            r = graph_run(n, args.seconds, args.seed, args.processes,
                          args.startup_timeout, log=say, sets=tuple(args.set))
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        r["in_process_per_core_per_s"] = inproc
        results.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            say(f"  {n} robot(s): {r['per_s']:.2f}/s ({r['per_core_per_s']:.2f} per core), "
                f"start-up {r['startup_s']:.0f} s, gaps {r['gaps']}, duplicates "
                f"{r['duplicates']}, refused {r['refused']}, {r['rss_mb_per_robot']:.0f} "
                f"MiB/robot, store check {r['store_check']}")
    if not args.json:
        print(f"{'robots':>6}{'per_s':>9}{'per_core':>10}{'startup_s':>11}{'gaps':>6}"
              f"{'refused':>9}")
        for r in results:
            print(f"{r['robots']:6d}{r['per_s']:9.2f}{r['per_core_per_s']:10.2f}"
                  f"{r['startup_s']:11.1f}{r['gaps']:6d}{r['refused']:9d}")
        if inproc:
            print(f"in-process, one robot, one core: {inproc:.2f}/s")
    if args.out:
        _write(Path(args.out), results, inproc, args)
        say(f"wrote {args.out}/scale.json, table.md, scale.png")
    return 0
