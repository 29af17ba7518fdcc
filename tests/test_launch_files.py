"""The launch files run as `ros2 launch` would run them, against a stand-in for the
`launch` / `launch_ros` / `ament_index_python` API (CI has no ROS 2 distribution): the
arguments each declares, the nodes it starts for given arguments, and the errors bad
arguments give. The stand-ins take the real constructors' keyword names, so a call the
real API would refuse fails here too."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types

import pytest

from curious_robot.arm.deploy import deploy_graph
from curious_robot.graph import collect_graph, drone_graph
from tests.helpers.setup_nodes import node_targets

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[1]


class LaunchDescription:
    def __init__(self, initial_entities=None):
        self.entities = list(initial_entities or [])


class DeclareLaunchArgument:
    def __init__(self, name, *, default_value=None, description=None, choices=None):
        self.name, self.default_value, self.description = name, default_value, description


class OpaqueFunction:
    def __init__(self, *, function, args=None, kwargs=None):
        self.function, self.args, self.kwargs = function, args or [], kwargs or {}


class LaunchConfiguration:
    def __init__(self, variable_name, *, default=None):
        self.variable_name = variable_name

    def perform(self, context):
        return context.launch_configurations[self.variable_name]


class Node:
    def __init__(self, *, executable, package=None, name=None, namespace=None,
                 exec_name=None, parameters=None, remappings=None, ros_arguments=None,
                 arguments=None, output="log", emulate_tty=False, **_):
        self.executable, self.package, self.name = executable, package, name
        self.namespace, self.parameters = namespace, parameters


class Context:
    def __init__(self, configurations):
        self.launch_configurations = configurations


@pytest.fixture
def ros_launch(monkeypatch):
    """Installs the stand-in modules; returns ``launch(file, **arguments)`` -> (declared
    arguments, Node actions), the way `ros2 launch curious_robot FILE k:=v` would."""
    def share(package):
        if package != "curious_robot":
            raise LookupError(package)
        return str(ROOT)  # the share folder holds config/, launch/ ... as the tree does

    modules = {
        "launch": {"LaunchDescription": LaunchDescription},
        "launch.actions": {"DeclareLaunchArgument": DeclareLaunchArgument,
                           "OpaqueFunction": OpaqueFunction},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {}, "launch_ros.actions": {"Node": Node},
        "ament_index_python": {},
        "ament_index_python.packages": {"get_package_share_directory": share},
    }
    for name, attrs in modules.items():
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**attrs))

    def launch(file, **arguments):
        spec = importlib.util.spec_from_file_location(file.replace(".", "_"),
                                                      ROOT / "launch" / file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        entities = module.generate_launch_description().entities
        declared = {e.name: e for e in entities if isinstance(e, DeclareLaunchArgument)}
        unknown = set(arguments) - set(declared)
        assert not unknown, f"not arguments of {file}: {unknown}"
        values = {k: v.default_value for k, v in declared.items()} | arguments
        context = Context(values)
        nodes = []
        for e in entities:
            if isinstance(e, OpaqueFunction):
                nodes += e.function(context, *e.args, **e.kwargs)
        assert all(isinstance(n, Node) for n in nodes)
        return declared, nodes

    return launch


def _same_graph(nodes, specs, config):
    installed = node_targets(ROOT)
    assert [(n.executable, n.name, n.namespace or "") for n in nodes] == \
        [(s.executable, s.name, s.namespace) for s in specs]
    for n, s in zip(nodes, specs):
        assert n.package == "curious_robot" and n.executable in installed
        assert n.parameters == [config, s.parameters]  # the YAML, then the graph's values


def test_collect_launch_starts_the_collect_graph_with_the_yaml(ros_launch, tmp_path):
    declared, nodes = ros_launch("collect.launch.py")
    assert list(declared) == ["config", "robots", "tasks", "store", "seed",
                             "fleet_key"]
    config = str(ROOT / "config" / "collect.yaml")
    assert declared["config"].default_value == config
    _same_graph(nodes, collect_graph(store=declared["store"].default_value), config)
    store = str(tmp_path / "r.db")
    _, nodes = ros_launch("collect.launch.py", robots="2", seed="3", store=store,
                          tasks="grasp,poke")
    _same_graph(nodes, collect_graph(robots=2, seed=3, store=store, tasks="grasp,poke"),
                config)
    assert {n.namespace for n in nodes} == {"/robot0", "/robot1", None}
    keys = {n.name: n.parameters[1].get("fleet_key") for n in nodes}
    assert keys["learner"] == keys["arm"] == keys["interaction_manager"] == \
        str(tmp_path / "fleet.key")  # beside the store: one fleet
    _, nodes = ros_launch("collect.launch.py", store=store, fleet_key="")
    assert not any("fleet_key" in n.parameters[1] for n in nodes)  # unauthenticated
    _, nodes = ros_launch("collect.launch.py", store=store, fleet_key="/etc/k.key")
    assert {n.parameters[1].get("fleet_key") for n in nodes} == {"/etc/k.key", None}


def test_drone_launch_starts_the_drone_graph(ros_launch):
    declared, nodes = ros_launch("drone.launch.py", robots="2", seed="1", store="/x/r.db")
    # drones have no tasks
    assert list(declared) == ["config", "robots", "store", "seed", "fleet_key"]
    _same_graph(nodes, drone_graph(robots=2, seed=1, store="/x/r.db"),
                str(ROOT / "config" / "drone.yaml"))


def test_deploy_launch_with_fake_hardware_and_dry_run(ros_launch):
    declared, nodes = ros_launch("deploy.launch.py", use_fake_hardware="true",
                                 dry_run="True", learner="off", store="/x/r.db")
    assert list(declared) == ["hardware_config", "use_fake_hardware", "dry_run", "config",
                              "robots", "tasks", "store", "seed", "fleet_key", "learner"]
    hw = str(ROOT / "config" / "hardware" / "panda_sim.yaml")
    assert declared["hardware_config"].default_value == hw
    specs = deploy_graph(hw, fake_hardware=True, dry_run=True, store="/x/r.db",
                         learner=False)
    _same_graph(nodes, specs, str(ROOT / "config" / "collect.yaml"))
    assert "fake_hardware" in {n.executable for n in nodes}
    assert "learner_node" not in {n.executable for n in nodes}


@pytest.mark.parametrize("file, arguments, message", [
    ("collect.launch.py", {"config": "/nowhere/c.yaml"}, "config: no such file /nowhere"),
    ("collect.launch.py", {"robots": "two"}, "robots: 'two' is not an integer"),
    ("drone.launch.py", {"seed": "1.5"}, "seed: '1.5' is not an integer"),
    ("deploy.launch.py", {"hardware_config": "/nowhere/ur5e.yaml"},
     "hardware_config: no such file"),
    ("deploy.launch.py", {"dry_run": "maybe"}, "'maybe' is not true or false"),
])
def test_bad_launch_arguments_name_the_problem(ros_launch, file, arguments, message):
    with pytest.raises(RuntimeError, match=message):
        ros_launch(file, **arguments)


def test_collect_graph_refuses_unknown_tasks_through_launch(ros_launch):
    with pytest.raises(ValueError, match="unknown task"):
        ros_launch("collect.launch.py", tasks="grasp,fly")
