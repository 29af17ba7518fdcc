"""The collect graph, config/collect.yaml and the nodes agree: every executable the graph
starts is installed, every parameter it or the YAML sets is declared by that node. (The
launch files themselves: tests/test_launch_files.py.)"""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest
import yaml

from curious_robot import tasks as registry
from curious_robot.graph import ROBOT_NODES, collect_graph
from tests.helpers.setup_nodes import node_targets

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[1]


def declared_parameters(module_name: str) -> set[str]:
    """Names passed to param(self, NAME, ...) / declare_parameter(NAME, ...) in a module."""
    module = importlib.util.find_spec(module_name)
    tree = ast.parse(pathlib.Path(module.origin).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func.id if isinstance(node.func, ast.Name) else getattr(
                node.func, "attr", "")
            args = node.args
            if fn == "param" and len(args) >= 2 and isinstance(args[1], ast.Constant):
                names.add(args[1].value)
            if fn == "declare_parameter" and args and isinstance(args[0], ast.Constant):
                names.add(args[0].value)
    return names


def node_module(executable: str) -> str:
    return node_targets(ROOT)[executable].split(":")[0]


def test_every_executable_of_the_graph_is_a_console_script():
    installed = node_targets(ROOT)
    for spec in collect_graph(robots=2, seed=1, store="/tmp/x.db"):
        assert spec.executable in installed, spec.executable
        module, func = installed[spec.executable].split(":")
        assert callable(getattr(importlib.import_module(module), func))


def test_yaml_parameters_are_declared_by_their_nodes():
    config = yaml.safe_load((ROOT / "config" / "collect.yaml").read_text())
    exe_of = {name: exe for exe, name in ROBOT_NODES.items()} | {"learner": "learner_node"}
    assert {key.split("/")[-1] for key in config} == set(exe_of)
    for key, body in config.items():
        name = key.split("/")[-1]
        params = set(body["ros__parameters"])
        declared = declared_parameters(node_module(exe_of[name]))
        if name == "learner":  # the online trainer declares its own on the learner node
            declared |= declared_parameters("curious_robot.learning.online")
        if name == "interaction_manager":  # one share parameter per arm task
            declared |= {f"weight_{t}" for t in registry.names("arm")}
        assert params <= declared, f"{key}: not declared: {params - declared}"


def test_graph_overrides_are_declared_by_their_nodes():
    for spec in collect_graph(robots=2, seed=3, store="/tmp/x.db", tasks="grasp,poke"):
        declared = declared_parameters(node_module(spec.executable))
        assert set(spec.parameters) <= declared, (spec.fqn, set(spec.parameters) - declared)


def test_graph_shape_and_seeds():
    specs = collect_graph(robots=2, seed=3, store="rel/replay.db", tasks="grasp,poke")
    assert len(specs) == 2 * len(ROBOT_NODES) + 1
    assert {s.namespace for s in specs} == {"/robot0", "/robot1", ""}
    arms = [s for s in specs if s.name == "arm"]
    assert [a.parameters["seed"] for a in arms] == [3000, 3001]
    learner = [s for s in specs if s.name == "learner"][0]
    assert pathlib.Path(learner.parameters["store"]).is_absolute()
    with pytest.raises(ValueError, match="unknown task"):
        collect_graph(tasks="grasp,fly")


def test_setup_installs_launch_config_sim_and_models():
    text = (ROOT / "setup.py").read_text()
    for folder in ("launch", "config", "sim", "models"):
        assert folder in text
    assert (ROOT / "resource" / "curious_robot").is_file()
