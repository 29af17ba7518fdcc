"""Deploy mode: the collect graph on a real arm (or the fake one) through the arm node's
hardware backend. See docs/deploy.md.

    ros2 launch curious_robot deploy.launch.py use_fake_hardware:=true
    ros2 launch curious_robot deploy.launch.py hardware_config:=/etc/curious/ur5e.yaml \
        dry_run:=true

With a real arm, its ros2_control stack and camera driver run beside this launch (their
own launch files), publishing the topics the hardware YAML names.
"""

from launch import LaunchDescription
from launch.actions import OpaqueFunction

from curious_robot import launching
from curious_robot.arm.deploy import deploy_graph


def _nodes(context):
    arg = launching.reader(context)
    launching.require_files(arg, "config", "hardware_config")
    specs = deploy_graph(arg("hardware_config"),
                         fake_hardware=launching.flag(arg("use_fake_hardware")),
                         dry_run=launching.flag(arg("dry_run")),
                         robots=launching.integer(arg, "robots"),
                         seed=launching.integer(arg, "seed"), store=arg("store"),
                         tasks=arg("tasks"), learner=launching.flag(arg("learner")),
                         fleet_key=launching.fleet_key(arg))
    return launching.nodes(specs, arg("config"), arg("processes"))


def generate_launch_description():
    launching.quiet_ctrl_c()  # a Ctrl-C must never make launch lose a node's exit
    before = [
        ("hardware_config", launching.share_file("config", "hardware", "panda_sim.yaml"),
         "hardware YAML: topics, joints, calibration, limits"),
        ("use_fake_hardware", "false", "start the simulated ros2_control arm too"),
        ("dry_run", "false", "publish planned trajectories, never move"),
    ]
    after = [("learner", "true", "start the learner (false: one runs elsewhere)")]
    return LaunchDescription([
        *launching.arguments("collect.yaml", "number of arms", before=before, after=after),
        OpaqueFunction(function=_nodes),
    ])
