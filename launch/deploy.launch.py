"""Deploy mode: the collect graph on a real arm (or the fake one) through the arm node's
hardware backend. See docs/deploy.md.

    ros2 launch curious_robot deploy.launch.py use_fake_hardware:=true
    ros2 launch curious_robot deploy.launch.py hardware_config:=/etc/curious/ur5e.yaml \
        dry_run:=true

With a real arm, its ros2_control stack and camera driver run beside this launch (their
own launch files), publishing the topics the hardware YAML names.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from curious_robot.arm.deploy import deploy_graph


def _true(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _nodes(context):
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    config, hardware = arg("config"), arg("hardware_config")
    for name, path in (("config", config), ("hardware_config", hardware)):
        if not os.path.isfile(path):
            raise RuntimeError(f"launch argument {name}: no such file {path}")
    specs = deploy_graph(hardware, fake_hardware=_true(arg("use_fake_hardware")),
                         dry_run=_true(arg("dry_run")), robots=int(arg("robots")),
                         seed=int(arg("seed")), store=arg("store"), tasks=arg("tasks"),
                         learner=_true(arg("learner")))
    return [
        Node(package="curious_robot", executable=spec.executable, name=spec.name,
             namespace=spec.namespace or None, parameters=[config, spec.parameters],
             output="screen", emulate_tty=True)
        for spec in specs
    ]


def generate_launch_description():
    share = get_package_share_directory("curious_robot")
    return LaunchDescription([
        DeclareLaunchArgument("hardware_config",
                              default_value=os.path.join(share, "config", "hardware",
                                                         "panda_sim.yaml"),
                              description="hardware YAML: topics, joints, calibration, limits"),
        DeclareLaunchArgument("use_fake_hardware", default_value="false",
                              description="start the simulated ros2_control arm too"),
        DeclareLaunchArgument("dry_run", default_value="false",
                              description="publish planned trajectories, never move"),
        DeclareLaunchArgument("config", default_value=os.path.join(share, "config",
                                                                   "collect.yaml"),
                              description="parameter file of every node"),
        DeclareLaunchArgument("robots", default_value="1", description="number of arms"),
        DeclareLaunchArgument("tasks", default_value="grasp,push,poke,inspect",
                              description="comma-separated tasks the robots perform"),
        DeclareLaunchArgument("store", default_value=os.path.join(os.getcwd(), "data",
                                                                  "replay.db"),
                              description="replay store file (its folder must exist)"),
        DeclareLaunchArgument("seed", default_value="0", description="base random seed"),
        DeclareLaunchArgument("learner", default_value="true",
                              description="start the learner (false: one runs elsewhere)"),
        OpaqueFunction(function=_nodes),
    ])
