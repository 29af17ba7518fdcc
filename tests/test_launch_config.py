"""The collect graph and the installed executables agree: every executable the graph
starts is installed (its parameters: tests/test_node_config.py). (The
launch files themselves: tests/test_launch_files.py.)"""

from __future__ import annotations

import importlib
import pathlib

import pytest

from curious_robot.graph import ROBOT_NODES, collect_graph
from tests.helpers.setup_nodes import node_targets

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[1]


def node_module(executable: str) -> str:
    return node_targets(ROOT)[executable].split(":")[0]


def test_every_executable_of_the_graph_is_a_console_script():
    installed = node_targets(ROOT)
    for spec in collect_graph(robots=2, seed=1, store="/tmp/x.db"):
        assert spec.executable in installed, spec.executable
        module, func = installed[spec.executable].split(":")
        assert callable(getattr(importlib.import_module(module), func))


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
