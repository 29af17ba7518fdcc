"""Validated node parameters, without rclpy: :func:`param` only calls the node's
``declare_parameter``, so pure modules (online training) can declare their parameters on a
node they are handed. :mod:`curious_robot.nodes.common` re-exports both names."""

from __future__ import annotations

from collections.abc import Callable


class ParameterError(ValueError):
    """A node parameter is invalid; the message names it."""


def param(node, name: str, default, check: Callable | None = None, why: str = ""):
    """Declare a parameter on ``node`` (an rclpy Node), read it, and validate it with
    ``check``."""
    value = node.declare_parameter(name, default).value
    if check is not None and not check(value):
        raise ParameterError(f"parameter '{name}' = {value!r} is invalid: {why}")
    return value
