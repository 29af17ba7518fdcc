"""Collect mode: N simulated robots (arm, sensing, tactile, selectors, manager in one
namespace each) feeding one learner that stores every interaction in the replay store.

    ros2 launch curious_robot collect.launch.py robots:=2 store:=/data/replay.db seed:=3

The node graph comes from curious_robot.graph, shared with `curious-robot collect`.
"""

from launch import LaunchDescription
from launch.actions import OpaqueFunction

from curious_robot import launching
from curious_robot.graph import collect_graph


def _nodes(context):
    arg = launching.reader(context)
    launching.require_files(arg, "config")
    specs = collect_graph(robots=launching.integer(arg, "robots"),
                          seed=launching.integer(arg, "seed"), store=arg("store"),
                          tasks=arg("tasks"), fleet_key=launching.fleet_key(arg))
    return launching.nodes(specs, arg("config"), arg("processes"))


def generate_launch_description():
    launching.quiet_ctrl_c()  # a Ctrl-C must never make launch lose a node's exit
    return LaunchDescription([
        *launching.arguments("collect.yaml", "number of simulated robots"),
        OpaqueFunction(function=_nodes),
    ])
