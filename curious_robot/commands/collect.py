"""``curious-robot collect``: run the collect-mode node graph without ``ros2 launch``.

The same graph (curious_robot.graph) and the same config/collect.yaml as
``launch/collect.launch.py``; one process per node, as ``ros2 launch`` would start them,
because the arm's physics and rendering, the sensing node's open3d work and the learner
each want a core of their own and a process per node keeps one crash from taking down
the rest. Shows progress read from the replay store itself, and ends cleanly: at the end
of ``--duration`` or on Ctrl-C (SIGINT or SIGTERM; a repeated one is ignored) every node
gets one SIGINT and stops in order (curious_robot.nodes.common.run: robots finish or drop
their interaction in progress, the learner stores and acknowledges what reached it), within
:data:`STOP_TIMEOUT` s; a node still running then is killed and reported.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from curious_robot import tasks as registry

#: s the nodes get to stop after their SIGINT (each one ends itself after 8 s at most)
STOP_TIMEOUT = 9.0


def register(sub) -> None:
    p = sub.add_parser("collect", help="run the collect-mode node graph (simulated robots "
                       "-> learner -> replay store) and show progress")
    p.add_argument("--duration", type=float, default=300.0,
                   help="seconds to collect (default %(default)s)")
    p.add_argument("--until", type=int, default=0, metavar="N",
                   help="stop early once the store holds N interactions (0: run the whole "
                        "--duration)")
    p.add_argument("--robots", type=int, default=1, help="number of simulated robots")
    p.add_argument("--store", default="data/replay.db",
                   help="replay store file; its folder must exist (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="base random seed")
    p.add_argument("--tasks", default=",".join(registry.names("arm")),
                   help="comma-separated tasks (default: every arm task: %(default)s)")
    p.add_argument("--config", default=None,
                   help="parameter file (default: the package's config/collect.yaml)")
    p.add_argument("--mode", choices=["arm", "drone"], default="arm",
                   help="robot kind: arms (tasks grasp..inspect) or drones (task crash; "
                        "default config config/drone.yaml)")
    p.add_argument("--no-learner", action="store_true",
                   help="start robots only (a learner runs elsewhere on the same domain)")
    p.add_argument("--first-robot", type=int, default=0,
                   help="index of the first robot (to add robots to a running graph)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override a parameter, e.g. learner.train=true or "
                        "arm.n_objects=10 (YAML value; repeatable)")
    from curious_robot.graph import PROCESS_MODES

    p.add_argument("--processes", choices=PROCESS_MODES, default=PROCESS_MODES[0],
                   help="one process per robot, its nodes composed on one executor "
                        "(default), or one per node (for debugging: a crash or a profile "
                        "names one node)")
    p.add_argument("--log-dir", default=None,
                   help="folder for the nodes' logs (default: a new temporary folder)")
    p.add_argument("--fleet-key", default=None, metavar="FILE",
                   help="fleet key file the nodes sign and check with (default: "
                        "<store folder>/fleet.key, created on first use; '' runs "
                        "unauthenticated)")
    p.add_argument("--network", choices=["localhost", "subnet"], default=None,
                   help="ROS discovery range (default: ROS_AUTOMATIC_DISCOVERY_RANGE if "
                        "set, else localhost; subnet: robots or a learner on other "
                        "machines, which need the same fleet key)")
    p.add_argument("--domain-id", type=int, default=None, metavar="N",
                   help="ROS_DOMAIN_ID (default: the environment's, else one derived from "
                        "the fleet id, 1..101)")
    p.set_defaults(func=run)


def ros_environment(env: dict, network: str | None, domain_id: int | None,
                    key) -> list[str]:
    """Set ROS_AUTOMATIC_DISCOVERY_RANGE and ROS_DOMAIN_ID in ``env`` for a collect run;
    returns what was chosen and why, for the user. Flags win, then the environment, then
    the defaults: localhost discovery and a domain derived from the fleet id (``key``),
    so two fleets on one network never share a graph by accident."""
    said = []
    if network is not None:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = network.upper()
        said.append(f"discovery {network.upper()} (--network)")
    elif env.get("ROS_AUTOMATIC_DISCOVERY_RANGE"):
        said.append(f"discovery {env['ROS_AUTOMATIC_DISCOVERY_RANGE']} (from the "
                    "environment)")
    else:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        said.append("discovery LOCALHOST (default; --network subnet to reach other "
                    "machines)")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
        said.append(f"ROS_DOMAIN_ID {domain_id} (--domain-id)")
    elif env.get("ROS_DOMAIN_ID"):
        said.append(f"ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']} (from the environment)")
    elif key is not None:
        env["ROS_DOMAIN_ID"] = str(key.domain_id())
        said.append(f"ROS_DOMAIN_ID {key.domain_id()} (from fleet id {key.fleet_id})")
    else:
        said.append("ROS_DOMAIN_ID 0 (default; no fleet key to derive one from)")
    return said


def _overrides(specs, sets: list[str]) -> dict:
    import yaml

    extra: dict[str, dict] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        node, dot, name = key.partition(".")
        if not sep or not dot or not node or not name:
            raise ValueError(f"--set {item!r}: expected NODE.PARAM=VALUE")
        if node not in {s.name for s in specs}:
            raise ValueError(f"--set {item!r}: no node named {node!r} in the graph")
        extra.setdefault(node, {})[name] = yaml.safe_load(value)
    from curious_robot.commands.params import node_table
    from curious_robot.graph import parameter_sections
    from curious_robot.node_config import check_overrides, params_of, settings

    table = node_table()
    problems = []
    for node, values in extra.items():
        if node not in table:
            continue
        cls = params_of(table[node])
        floats = {n for n, default, _rule in settings(cls) if isinstance(default, float)}
        for name, value in values.items():  # "duty=1" on a command line means 1.0
            if name in floats and type(value) is int:
                values[name] = float(value)
        problems += check_overrides(cls, values, f"--set {node}")
    if problems:  # refused here, not by a node that fails to start minutes later
        raise ValueError("; ".join(problems))

    return parameter_sections(specs, extra)


def _entry_point(executable: str) -> tuple[str, str]:
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts", name=executable):
        module, _, func = ep.value.partition(":")
        return module, func
    raise RuntimeError(f"executable {executable!r} is not installed (pip install -e . or "
                       "colcon build)")


_LIBC = None


def _die_with_parent() -> None:
    """Child side of fork: get SIGKILL when this runner dies, even by kill -9, so no node
    outlives the graph it belongs to. (libc is loaded before the fork, by the first
    call's parent, so the child of a process with threads, such as chaos's with its
    rogue node, only calls prctl.)"""
    PR_SET_PDEATHSIG = 1
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _load_libc() -> None:
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


#: a manager's goodbye line: "N interactions sent, ... no record: 3 timed out, 1 aborted"
_SENT = re.compile(r"(\d+) interactions sent, .*?no record: ([^;)\n]*)")
#: a manager's goodbye line: where its robot's time went, mean ms per interaction
_SPENT = re.compile(r"(\d+) interactions sent, [^\n]*?mean ms per interaction: ([^;)\n]*)")
#: the learner's goodbye line
_DUPS = re.compile(r"learner: stopped cleanly \(stored \d+ this run, (\d+) duplicates")


class Graph:
    """The processes of one collect run: with ``mode`` ``robot`` (the default) one per
    robot (its nodes composed in a ``robot_container``) and one for the learner, with
    ``node`` one per node (curious_robot.graph.processes). Processes are named by
    :attr:`curious_robot.graph.ProcessSpec.key`: a robot's namespace (``/robot0``) or a
    lone node's fqn (``/learner``)."""

    def __init__(self, specs, config: str, overrides: str, log_dir: Path,
                 mode: str = "robot"):
        from curious_robot.graph import processes

        self.specs = specs
        self.units = {u.key: u for u in processes(specs, mode)}
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.config, self.overrides, self.log_dir = config, overrides, log_dir

    def start(self, only=None) -> None:
        """Start every process (``only``: those whose key is in it)."""
        for key in self.units:
            if only is None or key in only:
                self.spawn(key)

    def spawn(self, key: str, note: str = "") -> None:
        """Start process ``key`` with its command line; its log is started afresh, or with
        a ``note`` (a restart) continued after that line. Call from a thread that lives as
        long as the process should: the child is killed when the thread that started it
        ends (``PR_SET_PDEATHSIG``)."""
        _load_libc()
        u = self.units[key]
        module, func = _entry_point(u.executable)
        cmd = [sys.executable, "-c",
               f"import sys; from {module} import {func} as m; sys.exit(m())",
               *u.arguments, "--ros-args"]
        if u.name:
            cmd += ["-r", f"__node:={u.name}"]
        if u.namespace:
            cmd += ["-r", f"__ns:={u.namespace}"]
        cmd += ["--params-file", self.config, "--params-file", self.overrides]
        log = self.log_dir / (key.strip("/").replace("/", ".") + ".log")
        self.logs[key] = log
        with open(log, "a" if note else "w") as out:
            if note:
                out.write(f"\n=== {note} ===\n")
                out.flush()
            self.procs[key] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=_die_with_parent)

    def kill(self, key: str) -> int:
        """``kill -9`` process ``key`` and reap it; returns its exit code."""
        p = self.procs[key]
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        return p.wait()

    def dead(self) -> list[tuple[str, int]]:
        return [(n, p.returncode) for n, p in self.procs.items() if p.poll() is not None]

    def tail(self, key: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.logs[key].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _log_texts(self):
        """The text of every node's log that can be read."""
        for path in self.logs.values():
            try:
                yield Path(path).read_text(errors="replace")
            except OSError:
                continue

    def goodbyes(self) -> tuple[dict[str, int], int | None]:
        """What the nodes' goodbye lines say, read from the logs after :meth:`stop`: the
        interactions that ended without a record, by reason, summed over the managers
        (``not accepted`` and ``aborted``: actions the arm refused), and the learner's
        duplicate count (``None``: no learner line)."""
        reasons: dict[str, int] = {}
        dups = None
        for text in self._log_texts():
            for m in _SENT.finditer(text):
                if m.group(2).strip() != "none":
                    for part in m.group(2).split(","):
                        n, _, why = part.strip().partition(" ")
                        if n.isdigit():
                            reasons[why] = reasons.get(why, 0) + int(n)
            m = _DUPS.search(text)
            if m:
                dups = int(m.group(1))
        return reasons, dups

    def time_spent(self) -> dict[str, float]:
        """Where the robots' time went, from the managers' goodbye lines: mean ms per
        interaction choosing the object, choosing the action and acting, over the robots
        (each weighted by the interactions it sent); empty without such lines."""
        totals: dict[str, float] = {}
        weights: dict[str, int] = {}
        for text in self._log_texts():
            for m in _SPENT.finditer(text):
                sent = int(m.group(1))
                for part in m.group(2).split(","):
                    what, _, ms = part.strip().rpartition(" ")
                    try:
                        value = float(ms)
                    except ValueError:
                        continue
                    key = what.replace(" ", "_")
                    totals[key] = totals.get(key, 0.0) + sent * value
                    weights[key] = weights.get(key, 0) + sent
        return {k: round(totals[k] / weights[k], 1) for k in totals if weights[k]}

    def stop(self, timeout: float = STOP_TIMEOUT, only=None) -> dict[str, int | None]:
        """One SIGINT to every running process (``only``: to those whose key is in it),
        then wait for them (``timeout`` s in all); a process still running after that is
        killed. Returns each one's exit code (``None``: killed)."""
        procs = {n: p for n, p in self.procs.items() if only is None or n in only}
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for n, p in procs.items():
            try:
                codes[n] = p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                codes[n] = None
        return codes


def _progress_line(stats: dict, elapsed: float, duration: float, start_count: int) -> str:
    tasks = stats.get("tasks", {})
    rates = stats.get("success_rate", {})
    total = sum(tasks.values())
    parts = []
    for t in registry.names():
        if tasks.get(t):
            rate = rates.get(t)
            parts.append(f"{t} {tasks[t]}" + (f" ({100 * rate:.0f}% ok)" if rate is not None
                                              else ""))
    per_s = (total - start_count) / elapsed if elapsed > 0 else 0.0
    return (f"[{elapsed:5.0f}/{duration:.0f} s] {total} interactions (+{total - start_count}, "
            f"{per_s:.2f}/s)  " + "  ".join(parts))


def _sent(spools: list[Path]) -> tuple[int, int]:
    """(interactions the robots recorded, of them still waiting for an ack) from their
    outbox spools: what a robots-only run can report, its learner's store being
    elsewhere."""
    from curious_robot.spool import SpoolError, snapshot

    sensed = pending = 0
    for path in spools:
        try:
            snap = snapshot(path)
        except SpoolError:
            continue
        sensed, pending = sensed + len(snap.sensed), pending + len(snap.pending)
    return sensed, pending


def _robots_line(spools: list[Path], elapsed: float, duration: float, start: int) -> str:
    sensed, pending = _sent(spools)
    per_s = (sensed - start) / elapsed if elapsed > 0 else 0.0
    return (f"[{elapsed:5.0f}/{duration:.0f} s] robots only: {sensed - start} interactions "
            f"recorded ({per_s:.2f}/s), {pending} waiting for the learner's ack")


def _checkpoint_dir(config: str, overrides: dict, store: str) -> str:
    """Where the learner's online trainer writes: its effective checkpoint_dir parameter
    (default, then the parameter file, then this run's overrides)."""
    from curious_robot.node_config import effective, yaml_section

    params = effective("learner_node", yaml_section(config, "learner"),
                       overrides.get("/learner", {}).get("ros__parameters", {}))
    from curious_robot.paths import beside_store

    return params["checkpoint_dir"] or str(beside_store(store, "checkpoints"))


def _model_line(folder: str) -> str:
    from curious_robot.learning.status import read_status

    st = read_status(folder)
    if not st:
        return ""
    losses = " ".join(f"{k} {v:.3f}" for k, v in st.get("losses", {}).items())
    return f"  | model step {st['step']} ({losses})"


def _read_stats(store_path: str) -> dict | None:
    if not os.path.exists(store_path):
        return None
    from curious_robot.store import ReplayStore, StoreError

    try:
        with ReplayStore(store_path, readonly=True) as store:
            return store.stats()
    except StoreError:
        return None


def _count(store_path: str) -> int:
    """Interactions in the store (0 while it does not exist or cannot be read yet)."""
    if not os.path.exists(store_path):
        return 0
    from curious_robot.store import ReplayStore, StoreError

    try:
        with ReplayStore(store_path, readonly=True) as store:
            return store.count()
    except StoreError:
        return 0


def run(args: argparse.Namespace) -> int:
    import yaml

    from curious_robot.graph import (collect_graph, default_config, default_drone_config,
                                     drone_graph)

    store = os.path.abspath(os.path.expanduser(args.store))
    if not os.path.isdir(os.path.dirname(store)):
        print(f"error: --store {args.store}: folder {os.path.dirname(store)} does not exist",
              file=sys.stderr)
        return 2
    if args.duration <= 0 or args.robots < 0 or args.seed < 0 or args.until < 0:
        print("error: --duration must be > 0, --robots, --seed and --until >= 0",
              file=sys.stderr)
        return 2
    domain_id = args.domain_id
    if domain_id is not None and not 0 <= domain_id <= 232:
        print(f"error: --domain-id {domain_id}: must be 0..232 (1..101 is safe on Linux)",
              file=sys.stderr)
        return 2
    from curious_robot.fleet import FleetKeyError, load_key
    from curious_robot.graph import fleet_key_path

    key_path = fleet_key_path(store, args.fleet_key)
    key = None
    if key_path:
        try:
            key = load_key(key_path)
        except FleetKeyError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    said = ros_environment(os.environ, args.network, domain_id, key)
    print("collect: " + (f"fleet {key.fleet_id} (key {key.path})" if key is not None else
                         "no fleet key: the nodes run unauthenticated")
          + "; " + ", ".join(said), file=sys.stderr)
    drone = getattr(args, "mode", "arm") == "drone"
    config = os.path.abspath(args.config or (default_drone_config() if drone
                                             else default_config()))
    if not os.path.isfile(config):
        print(f"error: --config {config}: no such file", file=sys.stderr)
        return 2
    try:
        if drone:
            specs = drone_graph(robots=args.robots, seed=args.seed, store=store,
                                first_robot=args.first_robot, learner=not args.no_learner,
                                fleet_key=key_path)
        else:
            specs = collect_graph(robots=args.robots, seed=args.seed, store=store,
                                  tasks=args.tasks, first_robot=args.first_robot,
                                  learner=not args.no_learner, fleet_key=key_path)
        overrides = _overrides(specs, args.set)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="curious-robot-collect-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_LOG_DIR", str(log_dir / "ros"))
    override_file = log_dir / "overrides.yaml"
    override_file.write_text(yaml.safe_dump(overrides, sort_keys=False))

    stop = threading.Event()

    def on_signal(_signum, _frame) -> None:
        stop.set()  # the first one ends the run; repeated ones change nothing

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    before = _read_stats(store) or {}
    start_count = sum(before.get("tasks", {}).values())
    from curious_robot.graph import drone_name, outbox_dir, robot_name

    robots_only = args.no_learner
    name = drone_name if drone else robot_name
    spools = [Path(outbox_dir(store)) / f"{name(i)}.outbox.db"
              for i in range(args.first_robot, args.first_robot + args.robots)]
    sent_before = _sent(spools)[0] if robots_only else 0
    ckpt_dir = _checkpoint_dir(config, overrides, store)
    graph = Graph(specs, config, str(override_file), log_dir, mode=args.processes)
    tasks = ",".join(registry.names("drone")) if drone else args.tasks
    print(f"collect: {args.robots} {'drone' if drone else 'robot'}(s), "
          f"tasks {tasks}, {len(specs)} nodes in {len(graph.units)} processes, "
          f"store {store} ({start_count} interactions already), logs in {log_dir}",
          file=sys.stderr)
    graph.start()
    tty = sys.stderr.isatty()
    t0 = time.monotonic()
    last_print = 0.0
    code = 0
    while (elapsed := time.monotonic() - t0) < args.duration and not stop.wait(1.0):
        dead = graph.dead()
        if dead:
            for name, rc in dead:
                print(f"\nprocess {name} exited with code {rc}; its log ends:\n"
                      f"{graph.tail(name)}", file=sys.stderr)
            code = 1
            break
        if args.until and _count(store) >= args.until:
            break
        if tty or elapsed - last_print >= 10.0:
            stats = None if robots_only else _read_stats(store)
            if robots_only:
                line = _robots_line(spools, elapsed, args.duration, sent_before)
                print(("\r" + line + "\033[K") if tty else line, end="" if tty else "\n",
                      file=sys.stderr, flush=True)
            elif stats is not None:
                line = _progress_line(stats, elapsed, args.duration, start_count)
                line += _model_line(ckpt_dir)
                print(("\r" + line + "\033[K") if tty else line, end="" if tty else "\n",
                      file=sys.stderr, flush=True)
            last_print = elapsed
    if stop.is_set():
        print("\ninterrupted: stopping the graph", file=sys.stderr)
    t_stop = time.monotonic()
    codes = graph.stop()
    # from here on the runner only reports and ends; a late Ctrl-C must not cut that short
    # (nor kill the interpreter's finalization, which restores the default handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    failed = {n: rc for n, rc in codes.items() if rc != 0}
    for name, rc in failed.items():
        why = f"killed after {STOP_TIMEOUT:.0f} s" if rc is None else f"exit code {rc}"
        print(f"process {name} did not stop cleanly ({why}); its log ends:\n"
              f"{graph.tail(name)}", file=sys.stderr)
    print(f"collect: {len(codes) - len(failed)} of {len(codes)} processes stopped cleanly in "
          f"{time.monotonic() - t_stop:.1f} s", file=sys.stderr)
    if failed:
        code = 1
    stats = _read_stats(store) or {}
    elapsed = time.monotonic() - t0
    reasons, dups = graph.goodbyes()
    # actions the arm refused (outside its limits) are the ones that must not happen
    record = {"refused": reasons.get("not accepted", 0) + reasons.get("aborted", 0),
              "no_record": dict(sorted(reasons.items()))}
    if robots_only:
        sensed, pending = _sent(spools)
        print("\n" + _robots_line(spools, elapsed, args.duration, sent_before),
              file=sys.stderr)
        print(yaml.safe_dump({"robots_only": True, "recorded": sensed - sent_before,
                              "not_acknowledged": pending, **record,
                              "outboxes": str(Path(outbox_dir(store))),
                              "seconds": round(elapsed, 1), "logs": str(log_dir)},
                             sort_keys=False), end="")
        return code
    print("\n" + _progress_line(stats, elapsed, args.duration, start_count)
          + _model_line(ckpt_dir), file=sys.stderr)
    print(yaml.safe_dump({"store": store, "tasks": stats.get("tasks", {}),
                          "success_rate": stats.get("success_rate", {}),
                          "new_interactions": sum(stats.get("tasks", {}).values()) - start_count,
                          **record, "duplicates": dups,
                          "ms_per_interaction": graph.time_spent(),
                          "seconds": round(elapsed, 1), "logs": str(log_dir)},
                         sort_keys=False), end="")
    return code
