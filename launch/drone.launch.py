"""Collect mode with drones: N simulated drones (drone + pilot in one namespace each)
feeding the learner, which stores their labelled frames as ``crash`` interactions.

    ros2 launch curious_robot drone.launch.py robots:=2 store:=/data/replay.db seed:=3

The node graph comes from curious_robot.graph.drone_graph, shared with
`curious-robot collect --mode drone`. A real drone driver with the same topics
(camera/image_raw, imu, pose, cmd_vel) replaces the drone node.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from curious_robot.graph import drone_graph


def _nodes(context):
    config = LaunchConfiguration("config").perform(context)
    if not os.path.isfile(config):
        raise RuntimeError(f"launch argument config: no such file {config}")
    specs = drone_graph(
        robots=int(LaunchConfiguration("robots").perform(context)),
        seed=int(LaunchConfiguration("seed").perform(context)),
        store=LaunchConfiguration("store").perform(context))
    return [
        Node(package="curious_robot", executable=spec.executable, name=spec.name,
             namespace=spec.namespace or None, parameters=[config, spec.parameters],
             output="screen", emulate_tty=True)
        for spec in specs
    ]


def generate_launch_description():
    share = get_package_share_directory("curious_robot")
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config",
                                                                   "drone.yaml"),
                              description="parameter file of every node"),
        DeclareLaunchArgument("robots", default_value="1",
                              description="number of simulated drones"),
        DeclareLaunchArgument("store", default_value=os.path.join(os.getcwd(), "data",
                                                                  "replay.db"),
                              description="replay store file (its folder must exist)"),
        DeclareLaunchArgument("seed", default_value="0", description="base random seed"),
        OpaqueFunction(function=_nodes),
    ])
