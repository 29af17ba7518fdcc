"""The launch files run as `ros2 launch` would run them, against a stand-in for the
`launch` / `launch_ros` / `ament_index_python` API (CI has no ROS 2 distribution): the
arguments each declares, the nodes it starts for given arguments, and the errors bad
arguments give. The stand-ins take the real constructors' keyword names, so a call the
real API would refuse fails here too."""

from __future__ import annotations

import importlib.util
import pathlib
import signal
import sys
import types

import pytest
import yaml

from curious_robot.arm.deploy import deploy_graph
from curious_robot.graph import collect_graph, drone_graph, parameter_sections, processes
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
        self.arguments = list(arguments or [])

    def sections(self) -> dict:
        """The graph's per-node parameter file (the second of ``parameters``)."""
        return yaml.safe_load(pathlib.Path(self.parameters[1]).read_text())


class Context:
    def __init__(self, configurations):
        self.launch_configurations = configurations


@pytest.fixture
def ros_launch(monkeypatch, request):
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
    # the launch files quiet Ctrl-C in their process (launching.quiet_ctrl_c); this test
    # process gets its own SIGINT handler back
    own = signal.getsignal(signal.SIGINT)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, own))

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


def _same_graph(nodes, specs, config, mode="robot"):
    """The launch file's Node actions are the graph's processes in layout ``mode``, each
    given the YAML, then one file of the graph's per-node values keyed by full name."""
    installed = node_targets(ROOT)
    units = processes(specs, mode)
    assert [(n.executable, n.name or "", n.namespace or "", n.arguments) for n in nodes] \
        == [(u.executable, u.name, u.namespace, u.arguments) for u in units]
    for n in nodes:
        assert n.package == "curious_robot" and n.executable in installed
        assert n.parameters[0] == config  # the YAML, then the graph's values
        assert n.sections() == parameter_sections(specs)


def test_collect_launch_starts_the_collect_graph_with_the_yaml(ros_launch, tmp_path):
    declared, nodes = ros_launch("collect.launch.py")
    assert list(declared) == ["config", "robots", "tasks", "store", "seed", "processes",
                             "fleet_key"]
    config = str(ROOT / "config" / "collect.yaml")
    assert declared["config"].default_value == config
    _same_graph(nodes, collect_graph(store=declared["store"].default_value), config)
    store = str(tmp_path / "r.db")
    _, nodes = ros_launch("collect.launch.py", robots="2", seed="3", store=store,
                          tasks="grasp,poke")
    specs = collect_graph(robots=2, seed=3, store=store, tasks="grasp,poke")
    _same_graph(nodes, specs, config)
    # one container per robot, composing all of its nodes, and the learner
    assert [(n.executable, n.namespace) for n in nodes] == [
        ("robot_container", "/robot0"), ("robot_container", "/robot1"),
        ("learner_node", None)]
    assert nodes[0].arguments == ["--nodes", ",".join(
        s.executable for s in specs if s.namespace == "/robot0")]
    _, per_node = ros_launch("collect.launch.py", robots="2", seed="3", store=store,
                             tasks="grasp,poke", processes="node")
    _same_graph(per_node, specs, config, mode="node")
    assert len(per_node) == len(specs)
    keys = {fqn: p["ros__parameters"].get("fleet_key")
            for fqn, p in nodes[0].sections().items()}
    assert keys["/learner"] == keys["/robot0/arm"] == keys["/robot1/interaction_manager"] \
        == str(tmp_path / "fleet.key")  # beside the store: one fleet
    _, nodes = ros_launch("collect.launch.py", store=store, fleet_key="")
    assert not any("fleet_key" in p["ros__parameters"]
                   for p in nodes[0].sections().values())  # unauthenticated
    _, nodes = ros_launch("collect.launch.py", store=store, fleet_key="/etc/k.key")
    assert {p["ros__parameters"].get("fleet_key") for p in nodes[0].sections().values()} \
        == {"/etc/k.key", None}  # selectors take no key
    with pytest.raises(RuntimeError, match="processes: unknown process mode 'thread'"):
        ros_launch("collect.launch.py", processes="thread")


def test_drone_launch_starts_the_drone_graph(ros_launch):
    declared, nodes = ros_launch("drone.launch.py", robots="2", seed="1", store="/x/r.db")
    # drones have no tasks
    assert list(declared) == ["config", "robots", "store", "seed", "processes",
                             "fleet_key"]
    _same_graph(nodes, drone_graph(robots=2, seed=1, store="/x/r.db"),
                str(ROOT / "config" / "drone.yaml"))


def test_deploy_launch_with_fake_hardware_and_dry_run(ros_launch):
    declared, nodes = ros_launch("deploy.launch.py", use_fake_hardware="true",
                                 dry_run="True", learner="off", store="/x/r.db")
    assert list(declared) == ["hardware_config", "use_fake_hardware", "dry_run", "config",
                              "robots", "tasks", "store", "seed", "processes", "fleet_key",
                              "learner"]
    hw = str(ROOT / "config" / "hardware" / "panda_sim.yaml")
    assert declared["hardware_config"].default_value == hw
    specs = deploy_graph(hw, fake_hardware=True, dry_run=True, store="/x/r.db",
                         learner=False)
    _same_graph(nodes, specs, str(ROOT / "config" / "collect.yaml"))
    # the fake ros2_control arm keeps a process of its own, as a real driver would
    assert ("fake_hardware", "fake_hardware") in {(n.executable, n.name) for n in nodes}
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


@pytest.mark.parametrize("file", ["collect.launch.py", "deploy.launch.py", "drone.launch.py"])
def test_each_launch_file_keeps_ctrl_c_from_raising_inside_launch(ros_launch, file):
    """In the launch process a SIGINT must reach launch through its signal manager only
    (launching.quiet_ctrl_c; tests/test_shutdown.py runs a real LaunchService through a
    burst of Ctrl-C): after the launch file, Python's default handler, which raises
    KeyboardInterrupt, is gone."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    ros_launch(file)
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler) and handler is not signal.default_int_handler
    handler(signal.SIGINT, None)  # does nothing, raises nothing
