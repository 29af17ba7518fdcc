"""``robot_container``: several of the project's nodes composed in one process, on one
executor (the ROS 2 composition idea, in Python). Each stays a separate ROS node with its
own name, parameters, topics and services; the process's namespace (``-r __ns:=/robot0``,
or launch_ros's ``namespace=``) applies to all of them.

    robot_container [--nodes arm_node,sensing_node,...] --ros-args -r __ns:=/robot0 \\
        --params-file config/collect.yaml --params-file overrides.yaml

``--nodes``: executables (as ``ros2 run`` names them) to compose; the default is one arm
robot's nodes (:data:`curious_robot.graph.ROBOT_NODES`). Nodes in one process share one
DDS participant and Fast DDS's intra-process delivery, so a robot's images cross no
socket; its physics, perception and selectors share one interpreter, which costs nothing
because a robot's steps run one after another anyway. ``curious-robot collect`` and the
launch files start one container per robot by default (``--processes node`` /
``processes:=node``: one process per node, for debugging).

Shutdown is :func:`curious_robot.nodes.common.run`'s, for all the nodes together: one
SIGINT, every node's ``stopping()`` side by side, then ``close()`` and a goodbye line each.
A bad parameter of any node exits 2 naming the node; nothing else starts.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from curious_robot.nodes.common import ParameterError, run

#: executable -> (module, node class, constructor keywords): what a container can hold
COMPOSABLE: dict[str, tuple[str, str, dict]] = {
    "arm_node": ("curious_robot.nodes.arm", "ArmNode", {}),
    "sensing_node": ("curious_robot.nodes.sensing", "SensingNode", {}),
    "tactile_node": ("curious_robot.nodes.tactile", "TactileNode", {}),
    "grasp_selector": ("curious_robot.nodes.selector", "SelectorNode", {"task": "grasp"}),
    "push_selector": ("curious_robot.nodes.selector", "SelectorNode", {"task": "push"}),
    "poke_selector": ("curious_robot.nodes.selector", "SelectorNode", {"task": "poke"}),
    "interaction_manager": ("curious_robot.nodes.manager", "ManagerNode", {}),
    "fake_hardware": ("curious_robot.nodes.fake_hardware", "FakeHardwareNode", {}),
    "drone_node": ("curious_robot.nodes.drone", "DroneNode", {}),
    "pilot_node": ("curious_robot.nodes.pilot", "PilotNode", {}),
}


def parse_nodes(text: str) -> list[str]:
    """'arm_node,sensing_node' -> the list; raises ValueError naming what is unknown."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in COMPOSABLE]
    if bad or not items:
        raise ValueError(f"--nodes: unknown or empty {bad or text!r}; composable: "
                         + ", ".join(COMPOSABLE))
    if len(set(items)) != len(items):
        raise ValueError(f"--nodes {text!r}: an executable is named twice")
    return items


def threads_for(executables: list[str]) -> int:
    """Executor threads of a container: the sum of what each node wants alone."""
    return sum(importlib.import_module(COMPOSABLE[e][0]).THREADS for e in executables)


def make_nodes(executables: list[str]) -> list:
    """Build the nodes in order (the arm first: the others wait for its topics anyway).
    A bad parameter raises :class:`ParameterError` naming the executable; the nodes built
    before it are destroyed."""
    nodes = []
    try:
        for exe in executables:
            module, cls, kwargs = COMPOSABLE[exe]
            factory = getattr(importlib.import_module(module), cls)
            try:
                nodes.append(factory(**kwargs))
            except ParameterError as exc:
                raise ParameterError(f"{exe}: {exc}") from exc
    except BaseException:
        for n in nodes:
            n.destroy_node()
        raise
    return nodes


def main(argv: list[str] | None = None) -> int:
    from rclpy.utilities import remove_ros_args

    from curious_robot.graph import ROBOT_NODES

    args = remove_ros_args(args=list(sys.argv if argv is None else argv))[1:]
    parser = argparse.ArgumentParser(prog="robot_container", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default=",".join(ROBOT_NODES),
                        help="comma-separated executables to compose (default: one arm "
                             "robot's: %(default)s)")
    opts = parser.parse_args(args)
    try:
        executables = parse_nodes(opts.nodes)
    except ValueError as exc:
        parser.error(str(exc))
    return run(lambda: make_nodes(executables), threads=threads_for(executables))
