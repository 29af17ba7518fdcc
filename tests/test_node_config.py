"""One source of configuration: each node's parameters are declared from one dataclass
(curious_robot/node_config.py); config/*.yaml holds only deliberate overrides of them."""

from __future__ import annotations

import pathlib

import pytest

from curious_robot import tasks as registry
from curious_robot.commands.params import check_yaml, node_table
from curious_robot.node_config import (ArmParams, check_overrides, declare, params_of,
                                       settings)
from curious_robot.parameters import ParameterError

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.unit
@pytest.mark.parametrize("name", ["collect.yaml", "drone.yaml"])
def test_shipped_yaml_holds_only_deliberate_overrides(name):
    assert check_yaml(str(ROOT / "config" / name)) == []


@pytest.mark.unit
def test_yaml_check_refuses_unknown_keys_repeats_and_bad_values(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("/**/arm:\n  ros__parameters:\n    n_objects: 8\n    camera_rate: 2.0\n"
                   "    cammera_rate: 3.0\n    object_split: everything\n"
                   "/**/gripper:\n  ros__parameters: {speed: 1.0}\n"
                   "/learner:\n  ros__parameters: {width: 1}\n")
    problems = "\n".join(check_yaml(str(bad)))
    assert "camera_rate = 2.0 repeats the default" in problems
    assert "unknown parameter 'cammera_rate'" in problems
    assert "object_split = 'everything' must be one of train, held_out, all, scenes" in problems
    assert "no node named 'gripper'" in problems
    assert "width = 1 must be a float" in problems  # ROS would refuse an int for a double
    assert "n_objects = " not in problems


@pytest.mark.unit
def test_every_node_of_every_graph_has_its_params():
    from curious_robot.graph import collect_graph, drone_graph

    table = node_table()
    for spec in collect_graph(robots=1) + drone_graph(robots=1):
        cls = params_of(spec.executable)
        assert table[spec.name] == spec.executable
        assert check_overrides(cls, spec.parameters, spec.fqn) == []  # graph overrides too
    manager = {name for name, _, _ in settings(params_of("interaction_manager"))}
    assert {f"weight_{t}" for t in registry.names("arm")} <= manager


@pytest.mark.ros
def test_declare_gives_descriptions_ranges_and_clear_errors():
    import rclpy
    from rclpy.parameter import Parameter

    rclpy.init()
    try:
        node = rclpy.create_node("params_probe", parameter_overrides=[
            Parameter("n_objects", value=5)])
        p = declare(node, ArmParams, robot="robot7")
        assert (p.robot, p.n_objects, p.camera_rate) == ("robot7", 5, 2.0)
        d = node.describe_parameter("n_objects")
        assert "objects dropped" in d.description
        assert d.integer_range[0].from_value == 0
        assert "one of sim, hardware" in node.describe_parameter("backend").additional_constraints
        node.destroy_node()
        bad = rclpy.create_node("params_bad", parameter_overrides=[
            Parameter("object_split", value="everything")])
        with pytest.raises(ParameterError,
                           match="object_split.*one of train, held_out, all, scenes"):
            declare(bad, ArmParams)
        bad.destroy_node()
        below = rclpy.create_node("params_range", parameter_overrides=[
            Parameter("n_objects", value=-1)])
        with pytest.raises(ParameterError, match="n_objects"):
            declare(below, ArmParams)
        below.destroy_node()
    finally:
        rclpy.try_shutdown()


@pytest.mark.unit
def test_online_defaults_are_the_model_and_training_defaults():
    """The learner's online-training defaults are the ones train and the baselines use."""
    from curious_robot.learning.networks import ModelConfig
    from curious_robot.learning.train import TrainConfig
    from curious_robot.node_config import online_params

    d = {name: default for name, default, _ in settings(online_params())}
    m, t = ModelConfig(), TrainConfig()
    assert (d["input_size"], d["width"]) == (m.input_size, m.width) == (96, 0.5)
    assert (d["batch_size"], d["lr"], d["min_records"]) == (t.batch_size, t.lr, t.min_records)
    assert d["tasks"] == ",".join(t.tasks)
