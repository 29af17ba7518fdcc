"""Shared plumbing of the nodes: the main() wrapper and validated parameters."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import (ExternalShutdownException, MultiThreadedExecutor,
                             SingleThreadedExecutor)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

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


class ParameterError(ValueError):
    """A node parameter is invalid; the message names it."""


def param(node: Node, name: str, default, check: Callable | None = None, why: str = ""):
    """Declare a parameter, read it, and validate it with ``check``."""
    value = node.declare_parameter(name, default).value
    if check is not None and not check(value):
        raise ParameterError(f"parameter '{name}' = {value!r} is invalid: {why}")
    return value


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
