"""Collect mode with drones: N simulated drones (drone + pilot in one namespace each)
feeding the learner, which stores their labelled frames as ``crash`` interactions.

    ros2 launch curious_robot drone.launch.py robots:=2 store:=/data/replay.db seed:=3

The node graph comes from curious_robot.graph.drone_graph, shared with
`curious-robot collect --mode drone`. A real drone driver with the same topics
(camera/image_raw, imu, pose, cmd_vel) replaces the drone node.
"""

from launch import LaunchDescription
from launch.actions import OpaqueFunction

from curious_robot import launching
from curious_robot.graph import drone_graph


def _nodes(context):
    arg = launching.reader(context)
    launching.require_files(arg, "config")
    specs = drone_graph(robots=launching.integer(arg, "robots"),
                        seed=launching.integer(arg, "seed"), store=arg("store"),
                        fleet_key=launching.fleet_key(arg))
    return launching.nodes(specs, arg("config"), arg("processes"))


def generate_launch_description():
    launching.quiet_ctrl_c()  # a Ctrl-C must never make launch lose a node's exit
    return LaunchDescription([
        *launching.arguments("drone.yaml", "number of simulated drones", tasks=False),
        OpaqueFunction(function=_nodes),
    ])
