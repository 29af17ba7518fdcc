"""Shared plumbing of the nodes: the main() wrapper and validated parameters."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

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
    Thread-safe."""

    def __init__(self, robot: str, publish: Callable[[object], None], logger,
                 resend_after: float, spool=None, encode=None, decode=None):
        self.robot, self._publish, self._log = robot, publish, logger
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
        with self._lock:
            known = self._pending.pop(int(ack.seq), None) is not None
            for s, (_t, m) in list(self._pending.items()):
                if s < ack.seq:
                    self._pending[s] = (float("-inf"), m)
        if known and self._spool is not None:
            self._spool.remove(int(ack.seq))
        if ack.status == "rejected":
            self._log.error(f"learner rejected seq {ack.seq}: {ack.reason}")

    def close(self) -> None:
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
            self._log.warn(f"no ack for seq {s}; resending")
            self._publish(m)


def make_outbox(node, robot: str, publisher, resend_after: float, outbox_dir: str,
                msg_type) -> Outbox:
    """The node's :class:`Outbox`, spooled to ``<outbox_dir>/<robot>.outbox.db`` (created)
    when ``outbox_dir`` is set; raises :class:`ParameterError` naming the problem."""
    if not outbox_dir:
        node.get_logger().warn("parameter 'outbox_dir' is empty: interactions not yet "
                               "acknowledged live in memory only and are lost if this "
                               "process is killed")
        return Outbox(robot, publisher.publish, node.get_logger(), resend_after)
    from rclpy.serialization import deserialize_message, serialize_message

    from curious_robot.spool import Spool, SpoolError

    folder = os.path.abspath(os.path.expanduser(outbox_dir))
    try:
        os.makedirs(folder, exist_ok=True)
        spool = Spool(os.path.join(folder, f"{robot}.outbox.db"))
    except (OSError, SpoolError) as exc:
        raise ParameterError(f"parameter 'outbox_dir' = {outbox_dir!r}: {exc}") from exc
    box = Outbox(robot, publisher.publish, node.get_logger(), resend_after, spool=spool,
                 encode=serialize_message, decode=lambda b: deserialize_message(b, msg_type))
    if box.recovered:
        node.get_logger().info(f"outbox {spool.path}: {box.recovered} interaction(s) of an "
                               "earlier run not yet acknowledged; sending them again")
    return box


def run(node_factory: Callable[[], Node], threads: int = 4) -> int:
    """rclpy.init, build the node, spin a multi-threaded executor, shut down cleanly.
    Returns a process exit code (2 for invalid parameters)."""
    rclpy.init(args=sys.argv)
    node = None
    code = 0
    try:
        node = node_factory()
        executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                    else SingleThreadedExecutor())
        executor.add_node(node)
        executor.spin()
    except ParameterError as exc:
        print(f"[{getattr(node, 'get_name', lambda: 'node')()}] {exc}", file=sys.stderr)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.try_shutdown()
    return code
