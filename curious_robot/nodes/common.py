"""Shared plumbing of the nodes: the main() wrapper and validated parameters."""

from __future__ import annotations

import ctypes
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import NoReturn

import rclpy
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

# re-exported: the nodes import them from here
from curious_robot.parameters import ParameterError, param  # noqa: F401

#: Interactions and acknowledgements: nothing may be dropped silently.
RELIABLE = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
#: State that late joiners need (camera pose, latest model).
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     history=HistoryPolicy.KEEP_LAST)
#: Sensor streams: newest wins.
SENSOR = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE,
                    history=HistoryPolicy.KEEP_LAST)


class Outbox:
    """Interactions published to the learner and not yet acknowledged (at-least-once
    delivery; the store's UNIQUE(robot, seq) makes it exactly once).

    :meth:`send` publishes and keeps a message; :meth:`on_ack` (the /interaction_acks
    callback) forgets it; :meth:`resend` publishes again what has waited longer than
    ``resend_after`` seconds. An ack for a later seq means the learner is (back) up, so
    anything older still unacknowledged was lost on the way and is due at once.
    With a ``spool`` (:class:`curious_robot.spool.Spool`) every message is written to
    disk (``encode``: message -> bytes) before it is published and deleted when
    acknowledged; what a killed process left there is loaded (``decode``) and due at once.
    With ``verify`` (ack, the message it acknowledges -> why it is refused, or ``None``)
    an ack must pass it before it counts: a forged one changes nothing.
    Thread-safe."""

    def __init__(self, robot: str, publish: Callable[[object], None], logger,
                 resend_after: float, spool=None, encode=None, decode=None, verify=None):
        self.robot, self._publish, self._log = robot, publish, logger
        self._verify = verify
        self.resend_after = resend_after
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[float, object]] = {}
        self._spool, self._encode = spool, encode
        self.recovered = 0
        if spool is not None:
            for seq, data in spool.items():
                self._pending[seq] = (float("-inf"), decode(data))
            self.recovered = len(self._pending)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    @property
    def max_seq(self) -> int | None:
        """The highest seq waiting for an ack (``None`` when none waits)."""
        with self._lock:
            return max(self._pending, default=None)

    def send(self, seq: int, msg) -> None:
        if self._spool is not None:  # on disk before anyone can see it
            self._spool.put(seq, self._encode(msg))
        with self._lock:
            self._pending[int(seq)] = (time.monotonic(), msg)
        self._publish(msg)

    def on_ack(self, ack) -> None:
        if ack.robot != self.robot:
            return
        if self._verify is not None:
            with self._lock:
                entry = self._pending.get(int(ack.seq))
            if entry is None:
                return  # nothing waits for it (a resend's second ack, or made up)
            if self._verify(ack, entry[1]) is not None:
                return
        with self._lock:  # the spool's delete too: wait_acknowledged sees both done
            known = self._pending.pop(int(ack.seq), None) is not None
            for s, (_t, m) in list(self._pending.items()):
                if s < ack.seq:
                    self._pending[s] = (float("-inf"), m)
            if known and self._spool is not None:
                self._spool.remove(int(ack.seq))
        if ack.status == "rejected":
            self._log.error(f"learner rejected seq {ack.seq}: {ack.reason}")

    def wait_acknowledged(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the learner to acknowledge what is waiting."""
        deadline = time.monotonic() + timeout
        while len(self) and time.monotonic() < deadline:
            time.sleep(0.05)

    def delivery(self) -> str:
        """For a goodbye line: "all acknowledged" or how many are not, and their fate."""
        lost = len(self)
        return f"{lost} not acknowledged ({self.fate})" if lost else "all acknowledged"

    @property
    def fate(self) -> str:
        """What happens to the messages still waiting, in words (for a goodbye line)."""
        if self._spool is not None:
            return f"kept in {self._spool.path}, sent again by the next run"
        return "in memory only: lost; the next run continues after the learner's last seq"

    def close(self) -> None:
        with self._lock:
            if self._spool is not None:
                self._spool.close()

    def resend(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(s, m) for s, (t, m) in self._pending.items()
                    if now - t > self.resend_after]
            for s, m in late:
                self._pending[s] = (now, m)
        for s, m in late:
            self._log.warning(f"no ack for seq {s}; resending")
            self._publish(m)


def make_outbox(node, robot: str, publisher, resend_after: float, outbox_dir: str,
                msg_type, fleet: FleetAuth | None = None) -> Outbox:
    """The node's :class:`Outbox`, spooled to ``<outbox_dir>/<robot>.outbox.db`` (created)
    when ``outbox_dir`` is set; raises :class:`ParameterError` naming the problem. With a
    ``fleet`` that has a key, acks must be signed by it, and what an earlier run spooled
    is signed again (the key may have changed since)."""
    verify = fleet.verify_ack if fleet is not None and fleet.key is not None else None
    if not outbox_dir:
        node.get_logger().warning("parameter 'outbox_dir' is empty: interactions not yet "
                                  "acknowledged live in memory only and are lost if this "
                                  "process is killed")
        return Outbox(robot, publisher.publish, node.get_logger(), resend_after,
                      verify=verify)
    from rclpy.serialization import deserialize_message, serialize_message

    from curious_robot.spool import Spool, SpoolError

    folder = os.path.abspath(os.path.expanduser(outbox_dir))
    try:
        os.makedirs(folder, exist_ok=True)
        spool = Spool(os.path.join(folder, f"{robot}.outbox.db"))
    except (OSError, SpoolError) as exc:
        raise ParameterError(f"parameter 'outbox_dir' = {outbox_dir!r}: {exc}") from exc
    def decode(data: bytes):
        msg = deserialize_message(data, msg_type)
        return fleet.sign_interaction(msg) if fleet is not None else msg

    box = Outbox(robot, publisher.publish, node.get_logger(), resend_after, spool=spool,
                 encode=serialize_message, decode=decode, verify=verify)
    if box.recovered:
        node.get_logger().info(f"outbox {spool.path}: {box.recovered} interaction(s) of an "
                               "earlier run not yet acknowledged; sending them again")
    return box


class FleetAuth:
    """A node's side of the fleet key (:mod:`curious_robot.fleet`): signs what the node
    sends, checks what it receives, and counts and logs (rate-limited) what it refuses.
    Without a key (parameter ``fleet_key`` empty) it signs nothing, accepts everything and
    says so once at start."""

    def __init__(self, node, path: str):
        from curious_robot.fleet import FleetKeyError, load_key

        self._log = node.get_logger()
        self.key = None
        self.refused: Counter[str] = Counter()
        if not path:
            self._log.warning("parameter 'fleet_key' is empty: running unauthenticated; "
                              "anyone on this ROS domain can speak for the fleet "
                              "(docs/deploy.md, 'Fleet key')")
            return
        try:
            self.key = load_key(path)
        except FleetKeyError as exc:
            raise ParameterError(f"parameter 'fleet_key' = {path!r}: {exc}") from exc
        self._log.info(f"fleet {self.key.fleet_id} (key {self.key.path})")

    @property
    def fleet_id(self) -> str:
        return self.key.fleet_id if self.key is not None else ""

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data) if self.key is not None else b""

    def refuse(self, what: str, reason: str) -> str:
        """Count and log (at most every 5 s) a refused message; returns ``reason``."""
        self.refused[what] += 1
        self._log.warning(f"refused {what}: {reason} ({sum(self.refused.values())} "
                          "refused so far)", throttle_duration_sec=5.0)
        return reason

    def summary(self) -> str:
        """For a goodbye line: what was refused ('' when nothing was)."""
        if not self.refused:
            return ""
        return (f"{sum(self.refused.values())} refused ("
                + ", ".join(f"{n} {k}" for k, n in sorted(self.refused.items())) + ")")

    def _check_tag(self, fleet: str, data_fn, auth) -> str | None:
        if not len(auth):
            return "not signed (a sender without the fleet key?)"
        if fleet != self.key.fleet_id:
            return f"from fleet {fleet!r}, not {self.key.fleet_id!r}"
        try:
            data = data_fn()
        except Exception as exc:  # noqa: BLE001 - too malformed to check: refused
            return f"cannot be checked: {exc}"
        if not self.key.verify(data, auth):
            return "signature does not verify with this fleet's key"
        return None

    # -- interactions (robots sign, the learner checks)
    def sign_interaction(self, msg):
        from curious_robot.fleet import interaction_bytes

        msg.fleet = self.fleet_id
        msg.auth = self.sign(interaction_bytes(msg)) if self.key is not None else b""
        return msg

    def check_interaction(self, msg) -> str | None:
        """Why an Interaction is refused (``None``: accepted)."""
        from curious_robot.fleet import interaction_bytes

        if self.key is None:
            return None
        why = self._check_tag(msg.fleet, lambda: interaction_bytes(msg), msg.auth)
        return None if why is None else self.refuse(
            "interactions", f"{msg.robot[:40]}/{msg.seq}: {why}")

    # -- acks (the learner signs, robots check)
    def sign_ack(self, ack, interaction_auth):
        from curious_robot.fleet import ack_bytes

        ack.fleet = self.fleet_id
        ack.auth = self.sign(ack_bytes(ack, interaction_auth)) if self.key is not None \
            else b""
        return ack

    def verify_ack(self, ack, interaction) -> str | None:
        from curious_robot.fleet import ack_bytes

        if self.key is None:
            return None
        why = self._check_tag(ack.fleet, lambda: ack_bytes(ack, interaction.auth), ack.auth)
        return None if why is None else self.refuse(
            "acks", f"ack of {ack.robot}/{ack.seq} ({ack.status[:20]}): {why}")

    # -- status answers (the learner signs, robots check)
    def sign_status(self, request, response):
        from curious_robot.fleet import status_bytes

        response.fleet = self.fleet_id
        response.auth = self.sign(status_bytes(
            self.fleet_id, request.nonce, request.robot, response.last_seq,
            response.count)) if self.key is not None else b""
        return response

    def verify_status(self, request, response) -> str | None:
        from curious_robot.fleet import status_bytes

        if self.key is None:
            return None
        why = self._check_tag(response.fleet, lambda: status_bytes(
            response.fleet, request.nonce, request.robot, response.last_seq,
            response.count), response.auth)
        return None if why is None else self.refuse(
            "status answers", f"/robot_status said last_seq {response.last_seq}: {why}")


def status_request(robot: str):
    """A RobotStatus request with a fresh random nonce."""
    import secrets

    from curious_robot_interfaces.srv import RobotStatus

    return RobotStatus.Request(robot=robot, nonce=secrets.token_bytes(16))


#: Seconds from the first SIGINT / SIGTERM to the end of the process, whatever happens.
#: ``ros2 launch`` sends SIGTERM 5 s after its SIGINT and SIGKILL 5 s after that.
HARD_DEADLINE = 8.0
#: Seconds the executor keeps spinning for a node's ``stopping()`` hook (in-flight work).
STOPPING_BUDGET = 4.0


class Stopping(Exception):
    """Raised inside a node's worker thread when the node is shutting down."""


def _watchdog(name: str, deadline: float) -> None:
    """Daemon thread: end the process ``deadline`` s from now, whatever cleanup is doing."""
    def fire() -> None:
        time.sleep(deadline)
        sys.stderr.write(f"[{name}] did not stop within {deadline:.0f} s; exiting\n")
        sys.stderr.flush()
        os._exit(1)

    threading.Thread(target=fire, name="shutdown-deadline", daemon=True).start()


def run(node_factory: Callable[[], Node | list[Node]], threads: int = 4) -> NoReturn:
    """rclpy.init, build the node, spin a multi-threaded executor until SIGINT / SIGTERM (or
    rclpy shuts down), then shut down in order and end the process with its exit code (0:
    stopped cleanly; 1: cleanup failed; 2: invalid parameters), skipping the interpreter's
    slow finalization.

    Shutdown: the first signal sets a flag that ends the spin loop; the node's optional
    ``stopping()`` hook then runs on a helper thread while the executor still spins (stop
    accepting work, let in-flight work finish or hand it back); the executor stops; the
    node's optional ``close()`` releases what it holds (store, checkpoint, threads, all with
    bounded waits); the node is destroyed and rclpy shut down, after one goodbye line
    (``<node>: stopped cleanly (<summary()>)``). Further signals are ignored; a watchdog
    ends the process :data:`HARD_DEADLINE` s after the first signal if cleanup hangs.

    ``node_factory`` may return several nodes (:mod:`curious_robot.nodes.container`: a
    robot's nodes composed in one process): one executor spins them all, their
    ``stopping()`` hooks run side by side, then each is closed and says goodbye."""
    faulthandler.enable()  # a crash in native code prints every thread's Python stack
    name = "node"
    stop = threading.Event()
    cleanup_started = threading.Event()

    def on_signal(signum, _frame) -> None:
        if stop.is_set():
            return  # a repeated Ctrl-C (or launch's SIGTERM) during cleanup: ignored
        stop.set()
        if not cleanup_started.is_set():
            cleanup_started.set()
            _watchdog(name, HARD_DEADLINE)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    rclpy.init(args=sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    nodes: list[Node] = []
    executor = None
    code = 0
    try:
        made = node_factory()
        nodes = list(made) if isinstance(made, (list, tuple)) else [made]
        name = ",".join(n.get_name() for n in nodes)
        executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                    else SingleThreadedExecutor())
        for n in nodes:
            executor.add_node(n)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.25)
    except ParameterError as exc:
        print(f"[{name}] {exc}", file=sys.stderr)
        code = 2
    except ExternalShutdownException:
        pass
    if not cleanup_started.is_set():
        cleanup_started.set()
        _watchdog(name, HARD_DEADLINE)
    if nodes and code == 0:
        code = _stop_nodes(nodes, executor)
    else:
        for n in nodes:
            n.destroy_node()
    if stop.is_set():  # from here on the process only exits: nothing may interrupt that
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    rclpy.try_shutdown()  # also flushes and closes the ROS log files
    # Everything is closed: end here. The interpreter's finalization would take seconds
    # more with torch loaded (a full GC over every module; 2-4 s on a busy machine, past
    # ros2 launch's 5 s to SIGTERM), and it puts back the default handlers of the signals
    # Python handles, so a late Ctrl-C would kill the process with -2.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)  # rcutils' console lines sit in C stdio buffers
    os._exit(code)


def _stop_nodes(nodes: list[Node], executor) -> int:
    """Shut ``nodes`` down in order (see :func:`run`); returns the exit code."""
    problems: dict[str, list[str]] = {n.get_name(): [] for n in nodes}

    def hook(node: Node, name: str) -> None:
        fn = getattr(node, name, None)
        if fn is None:
            return
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported in the goodbye line
            problems[node.get_name()].append(f"{name}: {exc!r}")

    stopping = [threading.Thread(target=hook, args=(n, "stopping"),
                                 name=f"stopping-{n.get_name()}", daemon=True)
                for n in nodes]
    for t in stopping:
        t.start()
    deadline = time.monotonic() + STOPPING_BUDGET
    while (any(t.is_alive() for t in stopping) and time.monotonic() < deadline
           and executor is not None):
        try:
            executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            break
        except Exception as exc:  # noqa: BLE001 - a callback failed while stopping
            problems[nodes[0].get_name()].append(f"callback: {exc!r}")
    for n, t in zip(nodes, stopping):
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            problems[n.get_name()].append(
                f"stopping() did not finish in {STOPPING_BUDGET:.0f} s")
    if executor is not None:
        executor.shutdown(timeout_sec=1.0, **({"wait_for_threads": False}
                                              if isinstance(executor, MultiThreadedExecutor)
                                              else {}))
    for n in nodes:
        hook(n, "close")
    code = 0
    for n in nodes:
        own = problems[n.get_name()]
        summary = ""
        try:
            summary = str(n.summary()) if hasattr(n, "summary") else ""
        except Exception as exc:  # noqa: BLE001
            own.append(f"summary: {exc!r}")
        log = n.get_logger()
        if own:
            log.error(f"{n.get_name()}: stopped with problems ({'; '.join(own)})"
                      + (f"; {summary}" if summary else ""))
            code = 1
        else:
            log.info(f"{n.get_name()}: stopped cleanly" + (f" ({summary})" if summary else ""))
        n.destroy_node()
    return code
