"""Shared plumbing of the nodes: the main() wrapper and validated parameters."""

from __future__ import annotations

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
    Thread-safe."""

    def __init__(self, robot: str, publish: Callable[[object], None], logger,
                 resend_after: float):
        self.robot, self._publish, self._log = robot, publish, logger
        self.resend_after = resend_after
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[float, object]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def send(self, seq: int, msg) -> None:
        with self._lock:
            self._pending[int(seq)] = (time.monotonic(), msg)
        self._publish(msg)

    def on_ack(self, ack) -> None:
        if ack.robot != self.robot:
            return
        with self._lock:
            self._pending.pop(int(ack.seq), None)
            for s, (_t, m) in list(self._pending.items()):
                if s < ack.seq:
                    self._pending[s] = (float("-inf"), m)
        if ack.status == "rejected":
            self._log.error(f"learner rejected seq {ack.seq}: {ack.reason}")

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
