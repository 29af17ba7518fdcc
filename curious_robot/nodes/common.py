"""Shared plumbing of the nodes: the main() wrapper and validated parameters."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
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
            self._log.warning(f"no ack for seq {s}; resending")
            self._publish(m)


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


def run(node_factory: Callable[[], Node], threads: int = 4) -> NoReturn:
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
    ends the process :data:`HARD_DEADLINE` s after the first signal if cleanup hangs."""
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
    node = None
    executor = None
    code = 0
    try:
        node = node_factory()
        name = node.get_name()
        executor = (MultiThreadedExecutor(num_threads=threads) if threads > 1
                    else SingleThreadedExecutor())
        executor.add_node(node)
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.25)
    except ParameterError as exc:
        print(f"[{getattr(node, 'get_name', lambda: name)()}] {exc}", file=sys.stderr)
        code = 2
    except ExternalShutdownException:
        pass
    if not cleanup_started.is_set():
        cleanup_started.set()
        _watchdog(name, HARD_DEADLINE)
    if node is not None and code == 0:
        code = _stop_node(node, executor)
    elif node is not None:
        node.destroy_node()
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


def _stop_node(node: Node, executor) -> int:
    """Shut ``node`` down in order (see :func:`run`); returns the exit code."""
    log = node.get_logger()
    problems: list[str] = []

    def hook(name: str) -> None:
        fn = getattr(node, name, None)
        if fn is None:
            return
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - reported in the goodbye line
            problems.append(f"{name}: {exc!r}")

    stopping = threading.Thread(target=hook, args=("stopping",), name="stopping",
                                daemon=True)
    stopping.start()
    deadline = time.monotonic() + STOPPING_BUDGET
    while stopping.is_alive() and time.monotonic() < deadline and executor is not None:
        try:
            executor.spin_once(timeout_sec=0.05)
        except ExternalShutdownException:
            break
        except Exception as exc:  # noqa: BLE001 - a callback failed while stopping
            problems.append(f"callback: {exc!r}")
    stopping.join(max(0.0, deadline - time.monotonic()))
    if stopping.is_alive():
        problems.append(f"stopping() did not finish in {STOPPING_BUDGET:.0f} s")
    if executor is not None:
        executor.shutdown(timeout_sec=1.0, **({"wait_for_threads": False}
                                              if isinstance(executor, MultiThreadedExecutor)
                                              else {}))
    hook("close")
    summary = ""
    try:
        summary = str(node.summary()) if hasattr(node, "summary") else ""
    except Exception as exc:  # noqa: BLE001
        problems.append(f"summary: {exc!r}")
    if problems:
        log.error(f"{node.get_name()}: stopped with problems ({'; '.join(problems)})"
                  + (f"; {summary}" if summary else ""))
    else:
        log.info(f"{node.get_name()}: stopped cleanly" + (f" ({summary})" if summary else ""))
    node.destroy_node()
    return 1 if problems else 0
