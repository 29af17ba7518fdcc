"""``curious-robot chaos``: collect while nodes die and a rogue node lies, then check that
nothing sensed was lost and nothing forged was believed (issue 18).

The graph is collect's (curious_robot.graph, started by collect's :class:`Graph`, one
process per node). While it runs:

- at random times (``--seed``; intervals uniform in 0.5..1.5 x ``--kill-every``) one node
  process gets ``kill -9``: a role (learner, interaction manager, arm, sensing, or one of
  the others: tactile, selectors; each once per round of five, in a random order), then
  a robot at random; 0.5-2 s later it is started
  again with the same command line, as a supervisor would. A node that exits by itself
  is reported as a crash and restarted too.
- a rogue node in this process (curious_robot.nodes.rogue) injects malformed and
  oversized Interactions and forges records, acks, /robot_status answers and stop releases.

Then the attacks stop, the sensing nodes are stopped (SIGINT) so the robots sense
nothing new, the robots' outboxes are given time to be delivered (drain), and the whole
graph gets its SIGINT as in collect. If a spool still holds records after that, the
learner, the arms and the managers (no sensing) run once more until they are delivered
(a second drain, reported). Finally it compares what every manager recorded as sensed
(the ledger in its outbox spool, curious_robot/spool.py) with what the store holds.

Measured, not assumed: ``forged_accepted`` counts stored records no fleet robot sensed
(a believed forged or replayed Interaction), records that left a robot's spool without
being stored after the rogue acked them (a believed forged ack), manager runs that
numbered their records after a forged status answer, and stop releases an arm answered
``success`` to. ``--unauthenticated`` runs the nodes without a fleet key, to see these
counts rise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

#: parameters chaos sets on top of config/collect.yaml (shown in the output): no online
#: training (a core of the two is worth more to recovery than to the model), a health
#: report every 2 s (counted per learner run), and an arm that dies in a motion costs its
#: manager 20 s, not 60
CHAOS_SETS = ("learner.train=false", "learner.report_every=2.0",
              "interaction_manager.action_timeout=20.0")
#: kill roles, drawn in shuffled rounds; "other" is a robot's tactile node or a selector
ROLES = ("learner", "interaction_manager", "arm", "sensing", "other")
#: s the drain waits for the robots' outboxes (each phase)
DRAIN_TIMEOUT = 120.0
#: s the ledgers must stay unchanged (and the spools empty) for the drain to end
SETTLED = 12.0
#: s after a forged ack before chaos looks whether it was believed
ACK_CHECK_AFTER = 3.0


def register(sub) -> None:
    p = sub.add_parser("chaos", help="collect while node processes are killed and a rogue "
                       "node injects bad and forged messages; then compare what the "
                       "robots sensed with what the store holds")
    p.add_argument("--minutes", type=float, default=10.0,
                   help="minutes of chaos before the drain (default %(default)s)")
    p.add_argument("--robots", type=int, default=2, help="simulated robots (default "
                   "%(default)s)")
    p.add_argument("--store", default=None,
                   help="replay store file to create (default: replay.db in a new "
                        "temporary folder); refused if it exists")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the kills and the rogue (and the robots' worlds)")
    p.add_argument("--kill-every", type=float, default=30.0, metavar="SECONDS",
                   help="mean seconds between kills (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override a node parameter as in collect (repeatable); chaos "
                        "sets " + ", ".join(CHAOS_SETS))
    p.add_argument("--log-dir", default=None,
                   help="folder for the nodes' logs (default: a new temporary folder)")
    p.add_argument("--unauthenticated", action="store_true",
                   help="run the nodes without a fleet key (the rogue's forgeries then "
                        "succeed: forged_accepted shows it)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _check_args(args) -> str | None:
    """Why the arguments are refused (``None``: fine). Touches nothing."""
    if not (math.isfinite(args.minutes) and args.minutes > 0):
        return f"--minutes {args.minutes}: must be a number > 0"
    if args.robots < 1:
        return f"--robots {args.robots}: must be >= 1"
    if args.seed < 0:
        return f"--seed {args.seed}: must be >= 0"
    if not (math.isfinite(args.kill_every) and args.kill_every > 0):
        return f"--kill-every {args.kill_every}: must be a number of seconds > 0"
    if args.store is not None:
        from curious_robot.graph import outbox_dir

        store = os.path.abspath(os.path.expanduser(args.store))
        if not os.path.isdir(os.path.dirname(store)):
            return f"--store {args.store}: folder {os.path.dirname(store)} does not exist"
        if os.path.lexists(store):
            return (f"--store {args.store}: already exists; chaos compares a fresh store "
                    "with the robots' ledgers (give a new path)")
        if os.path.isdir(outbox_dir(store)) and any(Path(outbox_dir(store)).iterdir()):
            return (f"--store {args.store}: {outbox_dir(store)} holds outboxes of an "
                    "earlier run (give a new path)")
    return None


class Observer:
    """What chaos, as the fleet's operator, sees of the learner: its health
    (``/diagnostics``) summed over its runs (a run's counts are banked when chaos kills
    it; what it counted in its last ``report_every`` s is not seen: lower bounds), and
    the records of fleet robots it rejected, from its acks (checked with the fleet key;
    without one, a ``rejected`` ack counts: the rogue forges only ``stored``)."""

    KEYS = ("stored", "duplicates", "rejected", "refused", "failures")

    def __init__(self, key, robots: list[str]):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray

        from curious_robot.nodes.common import RELIABLE
        from curious_robot_interfaces.msg import IngestAck, Interaction

        self.key, self.robots = key, set(robots)
        self.lock = threading.Lock()
        self.banked: Counter[str] = Counter()
        self.current: dict[str, int] = {}
        self.auths: dict[tuple[str, int], set[bytes]] = {}
        self.rejected: dict[tuple[str, int], str] = {}  # (robot, seq) -> the reason
        self.node = rclpy.create_node("chaos_observer")
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_health, 50)
        self.node.create_subscription(Interaction, "/interactions", self._on_interaction,
                                      RELIABLE)
        self.node.create_subscription(IngestAck, "/interaction_acks", self._on_ack, RELIABLE)

    def _on_interaction(self, msg) -> None:
        if msg.robot in self.robots and self.key is not None:
            with self.lock:
                self.auths.setdefault((msg.robot, int(msg.seq)), set()).add(bytes(msg.auth))

    def _on_ack(self, ack) -> None:
        if ack.status != "rejected" or ack.robot not in self.robots:
            return
        k = (ack.robot, int(ack.seq))
        if self.key is None:
            genuine = not len(ack.auth)
        else:
            from curious_robot.fleet import ack_bytes

            with self.lock:
                auths = list(self.auths.get(k, ()))
            genuine = ack.fleet == self.key.fleet_id and any(
                self.key.verify(ack_bytes(ack, a), ack.auth) for a in auths)
        if genuine:
            with self.lock:
                self.rejected[k] = ack.reason

    def _on_health(self, msg) -> None:
        for status in msg.status:
            if not status.name.endswith(": ingestion"):
                continue
            values = {kv.key: kv.value for kv in status.values}
            with self.lock:
                for k in self.KEYS:
                    try:
                        self.current[k] = int(values.get(k, 0))
                    except ValueError:
                        pass

    def bank(self) -> None:
        """The learner was killed: keep what its run reported."""
        with self.lock:
            self.banked.update(self.current)
            self.current = {}

    def totals(self) -> dict[str, int]:
        with self.lock:
            return {k: self.banked[k] + self.current.get(k, 0) for k in self.KEYS}


class Chaos:
    """One chaos run: the graph, the kills and restarts, the rogue, the bookkeeping."""

    def __init__(self, graph, specs, robots: list[str], store: str, spools: dict[str, Path],
                 seed: int, kill_every: float, say):
        import numpy as np

        self.graph, self.specs, self.robots, self.store = graph, specs, robots, store
        self.spools = spools
        self.rng = np.random.default_rng([seed, 1618])
        self.kill_every, self.say = kill_every, say
        self.kills: list[dict] = []
        self.restarts = 0
        self.crashes: list[dict] = []
        self.down: dict[str, float] = {}  # fqn -> when to start it again
        self.retired: set[str] = set()  # stopped on purpose (drain): not crashes
        self._bag: list[str] = []  # the kill roles left in this round
        self.acks_believed: list[tuple[str, int]] = []
        self.t0 = time.monotonic()
        self.next_kill = self.t0 + self._interval()
        self.rogue = None
        self.observer = None

    def _interval(self) -> float:
        return float(self.rng.uniform(0.5, 1.5)) * self.kill_every

    def _role_nodes(self, role: str) -> list[str]:
        robot = self.robots[int(self.rng.integers(len(self.robots)))]
        if role == "learner":
            return [s.fqn for s in self.specs if s.name == "learner"]
        inside = [s for s in self.specs if s.namespace == "/" + robot]
        if role == "other":
            return [s.fqn for s in inside
                    if s.name not in ("interaction_manager", "arm", "sensing")]
        return [s.fqn for s in inside if s.name == role]

    def _next_role(self) -> str:
        """Roles come in shuffled rounds: every role once per len(ROLES) kills, in a
        random order (independent draws left the learner unkilled in 19 kills once)."""
        if not self._bag:
            self._bag = [ROLES[i] for i in self.rng.permutation(len(ROLES))]
        return self._bag.pop()

    def kill_one(self) -> None:
        role = self._next_role()
        choices = [n for n in self._role_nodes(role) if n not in self.down]
        if not choices:
            return
        fqn = choices[int(self.rng.integers(len(choices)))]
        pid = self.graph.procs[fqn].pid
        code = self.graph.kill(fqn)
        if role == "learner" and self.observer is not None:
            self.observer.bank()
        after = float(self.rng.uniform(0.5, 2.0))
        self.down[fqn] = time.monotonic() + after
        self.kills.append({"t": round(time.monotonic() - self.t0, 1), "node": fqn,
                           "pid": pid, "exit": code, "restart_after": round(after, 2)})
        self.say(f"kill -9 {fqn} (pid {pid}); restarting in {after:.1f} s")

    def restart_due(self, now: float | None = None, all_: bool = False) -> None:
        now = time.monotonic() if now is None else now
        for fqn, when in list(self.down.items()):
            if all_ or now >= when:
                del self.down[fqn]
                self.graph.spawn(fqn, note=f"restarted by chaos at "
                                 f"{time.monotonic() - self.t0:.1f} s after kill -9")
                self.restarts += 1

    def watch_crashes(self) -> None:
        """A node that ended without being killed: report it and start it again."""
        for fqn, code in self.graph.dead():
            if fqn in self.down or fqn in self.retired:
                continue
            self.crashes.append({"t": round(time.monotonic() - self.t0, 1), "node": fqn,
                                 "exit": code, "log_tail": self.graph.tail(fqn, 8)})
            self.say(f"node {fqn} exited by itself (code {code}); restarting it")
            if self.observer is not None and fqn == "/learner":
                self.observer.bank()
            self.graph.spawn(fqn, note=f"restarted by chaos after exit code {code}")
            self.restarts += 1

    def check_forged_acks(self, older_than: float = ACK_CHECK_AFTER) -> None:
        """Records the rogue acked: one that left its robot's spool and is not in the
        store was dropped on a forged ack (spools are read before the store: a genuine
        ack removes a record only after the store committed it)."""
        if self.rogue is None:
            return
        targets = self.rogue.ack_targets(older_than)
        if not targets:
            return
        from curious_robot.spool import SpoolError, snapshot

        try:
            pending = {r: snapshot(p).pending for r, p in self.spools.items()}
        except SpoolError:
            return
        stored = set(_store_keys(self.store))
        for robot, seq in targets:
            if seq not in pending.get(robot, ()) and (robot, seq) not in stored:
                self.acks_believed.append((robot, seq))

    def believed_acks(self) -> list[tuple[str, int]]:
        """Records dropped unstored after a forged ack, less those the learner itself
        rejected (its genuine ``rejected`` ack also ends a record's wait)."""
        rejected = self.observer.rejected if self.observer is not None else {}
        return [k for k in self.acks_believed if k not in rejected]


def _store_keys(store: str) -> list[tuple[str, int]]:
    from curious_robot.store import ReplayStore, StoreError

    if not os.path.exists(store):
        return []
    try:
        with ReplayStore(store, readonly=True) as s:
            return s.keys()
    except StoreError:
        return []


def _ledgers(spools: dict[str, Path]):
    from curious_robot.spool import snapshot

    return {r: snapshot(p) for r, p in spools.items()}


def _wait_delivered(chaos: Chaos, timeout: float, settled: float) -> tuple[bool, float]:
    """Until every spool is empty and no ledger has grown for ``settled`` s (or
    ``timeout``); restarts crashed nodes meanwhile. Returns (delivered, seconds)."""
    t = time.monotonic()
    last, since = None, time.monotonic()
    while time.monotonic() - t < timeout:
        chaos.watch_crashes()
        snaps = _ledgers(chaos.spools)
        sensed = {r: len(s.sensed) for r, s in snaps.items()}
        if sensed != last:
            last, since = sensed, time.monotonic()
        if not any(s.pending for s in snaps.values()) and time.monotonic() - since >= settled:
            return True, time.monotonic() - t
        time.sleep(1.0)
    return False, time.monotonic() - t


def run(args: argparse.Namespace) -> int:
    why = _check_args(args)
    if why:
        return _fail(why)
    import yaml

    from curious_robot.commands.collect import Graph, _overrides, ros_environment
    from curious_robot.fleet import FleetKeyError, load_key
    from curious_robot.graph import (collect_graph, default_config, fleet_key_path,
                                     outbox_dir, robot_name)

    try:  # the node overrides are checked before anything is created
        sets = [*CHAOS_SETS, *args.set]
        _overrides(collect_graph(robots=args.robots, seed=args.seed), sets)
    except ValueError as exc:
        return _fail(str(exc))
    if args.store is None:
        store = os.path.join(tempfile.mkdtemp(prefix="curious-robot-chaos-"), "replay.db")
    else:
        store = os.path.abspath(os.path.expanduser(args.store))
    key_path = "" if args.unauthenticated else fleet_key_path(store, None)
    key = None
    if key_path:
        try:
            key = load_key(key_path)
        except FleetKeyError as exc:
            return _fail(str(exc))
    said = ros_environment(os.environ, None, None, key)
    specs = collect_graph(robots=args.robots, seed=args.seed, store=store,
                          fleet_key=key_path)
    overrides = _overrides(specs, sets)
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="curious-robot-chaos-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROS_LOG_DIR", str(log_dir / "ros"))
    override_file = log_dir / "overrides.yaml"
    override_file.write_text(yaml.safe_dump(overrides, sort_keys=False))
    config = os.path.abspath(default_config())
    robots = [robot_name(i) for i in range(args.robots)]
    spools = {r: Path(outbox_dir(store)) / f"{r}.outbox.db" for r in robots}

    def say(text: str) -> None:
        print(f"chaos: {text}", file=sys.stderr, flush=True)

    say(f"store {store}; logs in {log_dir}; "
        + (f"fleet {key.fleet_id}" if key else "UNAUTHENTICATED (no fleet key)")
        + "; " + ", ".join(said))
    say(f"{args.robots} robot(s), {len(specs)} nodes, {args.minutes:g} min, a kill every "
        f"~{args.kill_every:g} s, seed {args.seed}; parameters set: {', '.join(sets)}")

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from curious_robot.nodes.rogue import FORGED_SEQ, Rogue

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    graph = Graph(specs, config, str(override_file), log_dir, mode="node")  # kills nodes
    chaos = Chaos(graph, specs, robots, store, spools, args.seed, args.kill_every, say)
    executor = MultiThreadedExecutor(num_threads=6)
    try:
        chaos.observer = Observer(key, robots)
        chaos.rogue = Rogue(key.fleet_id if key else "", robots, spools, args.seed)
        executor.add_node(chaos.observer.node)
        executor.add_node(chaos.rogue.node)
        spinner = threading.Thread(target=executor.spin, name="chaos-spin", daemon=True)
        spinner.start()
        graph.start()
        chaos.t0 = time.monotonic()
        chaos.next_kill = chaos.t0 + chaos._interval()
        end = chaos.t0 + args.minutes * 60.0
        last_line = last_check = 0.0
        while not stop.wait(0.5) and (now := time.monotonic()) < end:
            chaos.restart_due(now)
            chaos.watch_crashes()
            if now >= chaos.next_kill:
                chaos.kill_one()
                chaos.next_kill = now + chaos._interval()
            if now - last_check >= 2.0:
                last_check = now
                chaos.check_forged_acks()
            if now - last_line >= 10.0:
                last_line = now
                r = chaos.rogue.totals()
                say(f"[{now - chaos.t0:5.0f}/{args.minutes * 60:.0f} s] "
                    f"{len(_store_keys(store))} stored, {len(chaos.kills)} kills, "
                    f"{chaos.restarts} restarts, {sum(r['injected'].values())} injected, "
                    f"{sum(r['forged'].values())} forged")
        interrupted = stop.is_set()
        chaos_seconds = time.monotonic() - chaos.t0
        # ---- drain: no more attacks or kills; the robots stop sensing, deliver the rest
        chaos.rogue.halt()
        chaos.restart_due(all_=True)
        time.sleep(ACK_CHECK_AFTER)
        chaos.check_forged_acks(older_than=0.0)
        sensing = [s.fqn for s in specs if s.name == "sensing"]
        say("chaos over" + (" (interrupted)" if interrupted else "")
            + f": {len(chaos.kills)} kills; stopping the sensing nodes so nothing new is "
            "sensed, then waiting for the robots' outboxes to be delivered")
        codes = graph.stop(only=sensing)
        chaos.retired |= set(sensing)
        delivered, drain_s = (False, 0.0) if interrupted else _wait_delivered(
            chaos, DRAIN_TIMEOUT, SETTLED)
        say(f"drain {'done' if delivered else 'ended'} after {drain_s:.0f} s; stopping "
            "the graph")
        codes.update(graph.stop(only=[s.fqn for s in specs if s.fqn not in sensing]))
        chaos.retired |= {s.fqn for s in specs}
        second_drain = None
        left = {r: sorted(s.pending) for r, s in _ledgers(spools).items() if s.pending}
        if left and not interrupted:  # what the stop left in the spools: one more run
            say(f"spools still hold {left}; running learner, arms and managers (no "
                "sensing) once more to deliver them")
            again = [s.fqn for s in specs if s.name != "sensing"]
            chaos.observer.bank()  # a new learner run counts from 0
            chaos.retired -= set(again)
            graph.start(only=again)
            ok, secs = _wait_delivered(chaos, DRAIN_TIMEOUT, 0.0)
            second_codes = graph.stop(only=again)
            second_drain = {"left_before": {r: len(v) for r, v in left.items()},
                            "delivered": ok, "seconds": round(secs, 1),
                            "nodes_not_clean": {n: c for n, c in second_codes.items()
                                                if c != 0}}
        health = chaos.observer.totals()
        rogue = chaos.rogue.totals()
        with chaos.observer.lock:
            rejected = dict(chaos.observer.rejected)
    finally:
        for p in graph.procs.values():  # whatever happened above, no node outlives us
            if p.poll() is None:
                p.kill()
                p.wait()
        executor.shutdown(timeout_sec=2.0)
        rclpy.try_shutdown()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report = _report(store, spools, robots, chaos, rogue, health, rejected, FORGED_SEQ)
    report.update({
        "minutes": args.minutes, "robots": args.robots, "seed": args.seed,
        "kill_every": args.kill_every, "authenticated": key is not None,
        "interrupted": interrupted, "chaos_seconds": round(chaos_seconds, 1),
        "drain": {"sensing_stopped_then_waited_s": round(drain_s, 1),
                  "delivered": delivered, "second_run": second_drain},
        "nodes_not_stopped_cleanly": {n: c for n, c in codes.items() if c != 0},
        "parameters_set": sets, "store": store, "logs": str(log_dir),
        "seconds": round(time.monotonic() - chaos.t0, 1)})
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(_summary(report))
    bad = (report["forged_accepted"] or report["lost"] or report["gaps"]
           or report["duplicates"] or report["store_check"] != "ok" or report["crashes"])
    return 1 if bad else 0


def _report(store: str, spools, robots, chaos: Chaos, rogue: dict, health: dict,
            rejected: dict, forged_seq: int) -> dict:
    from curious_robot.store import ReplayStore, StoreError

    snaps = _ledgers(spools)
    sensed = {(r, q) for r, s in snaps.items() for q in s.sensed}
    try:
        with ReplayStore(store, readonly=True) as s:
            keys = s.keys()
            per_robot = s.robots()
            problems = s.check()
    except StoreError as exc:
        keys, per_robot, problems = [], {}, [str(exc)]
    stored = set(keys)
    lost = sorted(sensed - stored)
    unsensed = sorted(stored - sensed)  # in the store, sensed by no fleet robot
    forged_runs = sum(1 for r, q in sensed if q >= forged_seq and (r, q - 1) not in sensed)
    accepted = {"interactions stored that no robot sensed": len(unsensed),
                "acks (record dropped unstored)": len(chaos.believed_acks()),
                "status answers (records numbered from a forged seq)": forged_runs,
                "releases answered success": rogue["accepted"].get("releases", 0)}
    return {
        "kills": len(chaos.kills), "restarts": chaos.restarts,
        "injected": sum(rogue["injected"].values()),
        "forged": sum(rogue["forged"].values()),
        "forged_accepted": sum(accepted.values()),
        "sensed": len(sensed), "stored": len(keys), "lost": len(lost),
        "gaps": sum(info["n_missing"] for info in per_robot.values()),
        "duplicates": len(keys) - len(stored),
        "store_check": "ok" if not problems else problems,
        "crashes": chaos.crashes,
        "injected_by_kind": rogue["injected"], "forged_by_kind": rogue["forged"],
        "forged_accepted_by_kind": accepted,
        "learner_counted": {**health, "note": "summed over the learner's runs from "
                            "/diagnostics; a killed run's last 2 s are not seen"},
        "duplicate_acks": health["duplicates"],
        "per_robot": {r: {"sensed": len(snaps[r].sensed),
                          "stored": per_robot.get(r, {}).get("count", 0),
                          "max_seq": per_robot.get(r, {}).get("max_seq"),
                          "pending_in_spool": len(snaps[r].pending)} for r in robots},
        "refusals_in_goodbye_lines": _goodbye_refusals(chaos.graph),
        "lost_examples": [list(k) for k in lost[:10]],
        "lost_rejected_by_learner": [{"robot": r, "seq": q, "reason": rejected[(r, q)]}
                                     for r, q in lost if (r, q) in rejected],
        "unsensed_examples": [list(k) for k in unsensed[:10]],
        "kill_log": chaos.kills,
    }


def _goodbye_refusals(graph) -> dict[str, list[str]]:
    """Per node, the refusal counts of its runs that ended with a goodbye line (a run
    ended by kill -9 has none)."""
    import re

    out = {}
    for fqn, log in graph.logs.items():
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        found = [m.group(1) for m in re.finditer(r"stopped cleanly \(.*?(\d+ refused \([^)]*\))",
                                                  text)]
        if found:
            out[fqn] = found
    return out


def _summary(r: dict) -> str:
    lines = [f"chaos: {r['chaos_seconds']:.0f} s of chaos, {r['robots']} robot(s), "
             f"store {r['store']}",
             f"  kills {r['kills']}, restarts {r['restarts']}, crashes {len(r['crashes'])}",
             f"  injected {r['injected']} malformed, forged {r['forged']} "
             f"({', '.join(f'{v} {k}' for k, v in r['forged_by_kind'].items())})",
             f"  forged_accepted {r['forged_accepted']} "
             f"({', '.join(f'{k}: {v}' for k, v in r['forged_accepted_by_kind'].items())})",
             f"  sensed {r['sensed']}, stored {r['stored']}, lost {r['lost']}, "
             f"gaps {r['gaps']}, duplicates {r['duplicates']}, store_check "
             f"{r['store_check'] if r['store_check'] == 'ok' else 'FAILED'}",
             f"  learner counted {r['learner_counted']['refused']} refused, "
             f"{r['learner_counted']['rejected']} rejected, "
             f"{r['learner_counted']['duplicates']} duplicates",
             f"  drain: {r['drain']}",
             f"  logs {r['logs']}"]
    for x in r["lost_rejected_by_learner"]:
        lines.append(f"  lost: the learner rejected {x['robot']}/{x['seq']}: {x['reason']}")
    if r["store_check"] != "ok":
        lines += ["  store problems:"] + [f"    {p}" for p in r["store_check"][:20]]
    if r["nodes_not_stopped_cleanly"]:
        lines.append(f"  not stopped cleanly: {r['nodes_not_stopped_cleanly']}")
    return "\n".join(lines)
