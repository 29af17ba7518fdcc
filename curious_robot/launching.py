"""What the launch files (``launch/*.launch.py``) share: their common arguments, the
check of file arguments and the Node actions of a node graph.

``launch``, ``launch_ros`` and ``ament_index_python`` come with a ROS 2 distribution, not
with the PyPI wheels; they are imported when a launch file calls in here, never when
this module is imported."""

from __future__ import annotations

import os

from curious_robot import tasks as registry

TASKS_DEFAULT = ",".join(registry.names("arm"))


def quiet_ctrl_c() -> None:
    """Call first in ``generate_launch_description``: in the ``ros2 launch`` process, a
    SIGINT reaches launch only through launch's own signal manager, never as a
    ``KeyboardInterrupt``.

    Why: Python's default SIGINT handler raises ``KeyboardInterrupt`` wherever the main
    thread happens to be. In launch's asyncio loop that can be inside a callback (a
    process's exit, its last output lines), and asyncio drops that callback: launch misses
    a node's exit (and escalates to SIGTERM / SIGKILL against a process already gone) or
    stops waking up after the last one. Seen in CI: after ``timeout``'s Ctrl-C, which
    reaches launch twice (as its child and through the process group), both nodes stopped
    cleanly and ``ros2 launch`` was still running 30 s later; a burst of SIGINTs makes it
    hang or lose a node most times. launch acts on SIGINT through
    ``signal.set_wakeup_fd`` and ignores ``KeyboardInterrupt`` anyway; a Python handler
    that does nothing keeps that wakeup fd written. Only the default handler, and only in
    the main thread, is replaced."""
    import signal
    import threading

    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGINT, _sigint_reaches_launch_through_its_wakeup_fd)


def _sigint_reaches_launch_through_its_wakeup_fd(_signum, _frame) -> None:
    """SIGINT handler of the ``ros2 launch`` process (see :func:`quiet_ctrl_c`)."""


def share_file(*parts: str) -> str:
    """A file installed in this package's share folder (config/..., sim/...)."""
    from ament_index_python.packages import get_package_share_directory

    return os.path.join(get_package_share_directory("curious_robot"), *parts)


def flag(text: str) -> bool:
    """A boolean launch argument: true / false, 1 / 0, yes / no, on / off."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise RuntimeError(f"launch argument: {text!r} is not true or false")


def arguments(config: str, robots: str, *, tasks: bool = True, before=(), after=()):
    """DeclareLaunchArgument actions: ``before``, then config (default: the share
    folder's ``config/<config>``), robots, tasks (if ``tasks``), store, seed, fleet_key,
    then ``after``. ``before`` / ``after``: (name, default, description) triples."""
    from launch.actions import DeclareLaunchArgument

    rows = [*before,
            ("config", share_file("config", config), "parameter file of every node"),
            ("robots", "1", robots)]
    if tasks:
        rows.append(("tasks", TASKS_DEFAULT, "comma-separated tasks the robots perform"))
    rows += [("store", os.path.join(os.getcwd(), "data", "replay.db"),
              "replay store file (its folder must exist)"),
             ("seed", "0", "base random seed"),
             ("processes", "robot", "robot: one process per robot, its nodes composed on "
              "one executor; node: one process per node (debugging)"),
             ("fleet_key", "auto", "fleet key file every node signs and checks with "
              "(auto: <store folder>/fleet.key, created on first use; empty: "
              "unauthenticated)"), *after]
    return [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, default, text in rows]


def reader(context):
    """``arg(name)``: a launch argument's value in ``context``."""
    from launch.substitutions import LaunchConfiguration

    return lambda name: LaunchConfiguration(name).perform(context)


def require_files(arg, *names: str) -> None:
    """Each named argument must be an existing file (a clear error before any node)."""
    for name in names:
        path = arg(name)
        if not os.path.isfile(path):
            raise RuntimeError(f"launch argument {name}: no such file {path}")


def fleet_key(arg) -> str | None:
    """The fleet_key argument for the graph functions (``None``: beside the store)."""
    value = arg("fleet_key").strip()
    return None if value == "auto" else value


def integer(arg, name: str) -> int:
    try:
        return int(arg(name))
    except ValueError:
        raise RuntimeError(f"launch argument {name}: {arg(name)!r} is not an integer") \
            from None


def nodes(specs, config: str, processes: str = "robot") -> list:
    """launch_ros Node actions for a list of :class:`curious_robot.graph.NodeSpec`, laid
    out as :func:`curious_robot.graph.processes` says (``processes``: ``robot``, each
    robot's nodes composed in one ``robot_container``; ``node``, one process each).
    Every process gets the parameter file first, then one file of the graph's own
    per-node values (seeds, store path), keyed by each node's full name."""
    import tempfile

    import yaml
    from launch_ros.actions import Node

    from curious_robot.graph import parameter_sections
    from curious_robot.graph import processes as layout

    try:
        units = layout(specs, processes)
    except ValueError as exc:
        raise RuntimeError(f"launch argument processes: {exc}") from None
    with tempfile.NamedTemporaryFile("w", prefix="curious_robot_graph_", suffix=".yaml",
                                     delete=False) as f:
        yaml.safe_dump(parameter_sections(specs), f, sort_keys=False)
    return [Node(package="curious_robot", executable=u.executable, name=u.name or None,
                 namespace=u.namespace or None, arguments=u.arguments,
                 parameters=[config, f.name], output="screen", emulate_tty=True)
            for u in units]
