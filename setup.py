"""ament_python package: nodes, simulation, learning and the command line of Curious Robot."""

from glob import glob
import os

from setuptools import find_packages, setup

PACKAGE = "curious_robot"

# Node executables: `ros2 run curious_robot <name>` (installed in lib/curious_robot).
NODES = {
    "arm_node": "curious_robot.nodes.arm:main",
    "sensing_node": "curious_robot.nodes.sensing:main",
    "tactile_node": "curious_robot.nodes.tactile:main",
    "grasp_selector": "curious_robot.nodes.selector:grasp_main",
    "push_selector": "curious_robot.nodes.selector:push_main",
    "poke_selector": "curious_robot.nodes.selector:poke_main",
    "interaction_manager": "curious_robot.nodes.manager:main",
    "learner_node": "curious_robot.nodes.learner:main",
    "fake_hardware": "curious_robot.nodes.fake_hardware:main",
    "drone_node": "curious_robot.nodes.drone:main",
    "pilot_node": "curious_robot.nodes.pilot:main",
    "robot_container": "curious_robot.nodes.container:main",
}


def data_tree(folder: str) -> list[tuple[str, list[str]]]:
    """(install folder, files) pairs that install ``folder`` under share/curious_robot."""
    out = []
    for root, _dirs, files in os.walk(folder):
        files = [os.path.join(root, f) for f in files if not f.endswith(".pyc")]
        if files:
            out.append((os.path.join("share", PACKAGE, root), files))
    return out


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml")),
        ("share/" + PACKAGE + "/config/hardware", glob("config/hardware/*.yaml")),
        ("share/" + PACKAGE + "/config/foxglove", glob("config/foxglove/*.json")),
        *data_tree("sim"),
        *data_tree("models"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="Curious Robot developers",
    maintainer_email="dev@curious-robot.local",
    description="Robots that teach themselves to see by touching the world, on ROS 2.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "curious-robot = curious_robot.cli:main",
            *(f"{name} = {target}" for name, target in NODES.items()),
        ],
    },
)
