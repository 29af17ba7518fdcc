"""The shipped models (models/, card models/README.md): each file loads with
``torch.load(weights_only=True)``, matches the sha256 its card lists, fits under 25 MB,
builds its network and runs it; ``default`` resolves to them for eval-grasp, eval, the
selectors and eval-drone; bad names get a clear error; setup.py installs them."""

from __future__ import annotations

import ast
import json
import re

import cv2
import numpy as np
import pytest
import torch

from curious_robot import paths
from curious_robot import tasks as registry
from curious_robot.cli import main
from curious_robot.learning.checkpoint import FORMAT, load_checkpoint, sha256
from curious_robot.learning.networks import CuriousNet, ModelConfig

MODELS = paths.share_path("models")
CARD = MODELS / "README.md"
MAX_BYTES = 25 * 1024 * 1024
#: heads each shipped model must carry
HEADS = {"arm": {t.head for t in registry.with_head() if t.name in registry.names("arm")},
         "drone": {"crash"}}


def card_hashes() -> dict[str, str]:
    """``{file name: sha256}`` from the card's files table (rows: | `name` | ... | `hex` |)."""
    rows = re.findall(r"^\| `([\w.-]+\.pt)` \|.*\| `([0-9a-f]{64})` \|\s*$",
                      CARD.read_text(), flags=re.M)
    return dict(rows)


@pytest.mark.unit
def test_the_card_lists_every_shipped_file_and_nothing_else():
    assert CARD.is_file()
    assert set(card_hashes()) == set(paths.SHIPPED_MODELS.values()) == \
        {p.name for p in MODELS.glob("*.pt")}
    text = CARD.read_text()
    for needed in ("Apache-2.0", "curious-robot collect", "curious-robot train",
                   "curious-robot eval-grasp --checkpoint default", "held_out",
                   "reproduce --mode drone", "Intended use", "limits"):
        assert needed in text, needed


@pytest.mark.unit
@pytest.mark.parametrize("kind", sorted(paths.SHIPPED_MODELS))
def test_each_shipped_file_matches_its_card_loads_safely_and_builds_its_network(kind):
    path = paths.shipped_model(kind)
    assert path.is_file() and path.stat().st_size <= MAX_BYTES
    assert sha256(path) == card_hashes()[path.name], f"{path.name} differs from the card"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["format"] == FORMAT and "optimizer" not in state
    loaded = load_checkpoint(path)  # what every reader gets (earlier heads upgraded)
    assert loaded["step"] == state["step"] > 0
    model = CuriousNet(ModelConfig.from_dict(loaded["config"]["model"]))
    model.load_state_dict(loaded["model"])  # strict: every weight there, none extra
    assert HEADS[kind] <= set(model.heads)
    model.eval()
    size = model.cfg.input_size
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        if kind == "arm":
            out = model.grasp(x)
            assert out.shape[0] == 2 and torch.isfinite(out).all()
        else:
            out = model.crash(x)
            assert torch.isfinite(out).all()
            assert 0.0 < float(torch.sigmoid(out).mean()) < 1.0


@pytest.mark.unit
def test_default_resolves_to_the_shipped_files_and_bad_names_say_what_was_looked_for(
        tmp_path):
    assert paths.resolve_checkpoint("default") == MODELS / paths.SHIPPED_MODELS["arm"]
    assert paths.resolve_checkpoint("default", kind="drone") == \
        MODELS / paths.SHIPPED_MODELS["drone"]
    assert paths.resolve_checkpoint(tmp_path) == tmp_path  # a path stays a path
    with pytest.raises(FileNotFoundError, match="'defualt' does not exist.*'default'"):
        paths.resolve_checkpoint("defualt")
    with pytest.raises(FileNotFoundError, match="empty checkpoint"):
        paths.resolve_checkpoint(" ")
    with pytest.raises(ValueError, match="no shipped model for 'boat'"):
        paths.resolve_checkpoint("default", kind="boat")


@pytest.mark.unit
def test_setup_installs_the_model_files():
    """setup.py's data_tree (run on its own: setup() is not called) keeps models/*.pt."""
    source = (paths.share_dir() / "setup.py").read_text()
    fn = next(n for n in ast.parse(source).body
              if isinstance(n, ast.FunctionDef) and n.name == "data_tree")
    scope: dict = {"PACKAGE": "curious_robot"}
    exec(compile("import os\n" + ast.unparse(fn), "setup.py", "exec"), scope)
    import os

    cwd = os.getcwd()
    os.chdir(paths.share_dir())
    try:
        tree = dict(scope["data_tree"]("models"))
    finally:
        os.chdir(cwd)
    installed = {os.path.basename(f) for f in tree["share/curious_robot/models"]}
    assert set(paths.SHIPPED_MODELS.values()) | {"README.md"} <= installed


@pytest.mark.sim
def test_eval_grasp_with_the_default_checkpoint(capsys):
    code = main(["eval-grasp", "--checkpoint", "default", "--policy", "model", "--attempts",
                 "2", "--objects", "3", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    step = load_checkpoint(paths.shipped_model("arm"))["step"]
    assert out["model"]["attempts"] == 2 and out["model"]["checkpoint_step"] == step


@pytest.mark.unit
def test_eval_with_the_default_checkpoint(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for cls, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / cls).mkdir()
        for i in range(4):
            img = np.clip(np.array(colour) + rng.normal(0, 20, (40, 40, 3)), 0, 255)
            cv2.imwrite(str(tmp_path / cls / f"{i}.png"), img.astype(np.uint8)[..., ::-1])
    assert main(["eval", "--checkpoint", "default", "--image-folder", str(tmp_path),
                 "--json", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["checkpoint"] == "default" and 0.0 <= out["nn_accuracy"] <= 1.0


@pytest.mark.unit
@pytest.mark.parametrize("argv", [
    ["eval-grasp", "--checkpoint", "defualt", "--attempts", "1"],
    ["eval-drone", "--checkpoint", "defualt", "--flights", "1"],
])
def test_bad_checkpoint_names_exit_2_with_a_clear_error(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'defualt' does not exist" in err and "'default'" in err


@pytest.mark.sim
def test_eval_drone_default_flies_the_shipped_crash_net(capsys):
    assert main(["eval-drone", "--checkpoint", "default", "--policies", "learned",
                 "--flights", "1", "--max-time", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("policy") and lines[1].split()[:2] == ["learned", "1"]


@pytest.mark.ros
def test_a_selector_with_checkpoint_default_loads_the_shipped_model():
    import rclpy
    from rclpy.parameter import Parameter

    from curious_robot.nodes.common import ParameterError
    from curious_robot.nodes.selector import SelectorNode

    rclpy.init()
    try:
        node = SelectorNode("grasp", parameter_overrides=[
            Parameter("policy", value="model"), Parameter("checkpoint", value="default")])
        assert node.model is not None
        assert node.model.predictor.path == paths.shipped_model("arm")
        patch = np.full((64, 64, 3), 120, np.uint8)
        from curious_robot.selection import Target

        sel = node.model.select(Target(0.0, 0.0, 0.0, 0.05, 0.03), patch, 0.1,
                                np.random.default_rng(0))
        assert sel.policy == "model" and 0.0 <= sel.score <= 1.0
        node.destroy_node()
        _selector_serves_pushes()
        with pytest.raises(ParameterError, match="checkpoint.*'defualt' does not exist"):
            SelectorNode("grasp", parameter_overrides=[
                Parameter("policy", value="model"), Parameter("checkpoint", value="defualt")])
    finally:
        rclpy.try_shutdown()


def _selector_serves_pushes() -> None:
    """The push selector's ``select`` callback with a real request: the shipped model
    (written before the push forward model) explores pushes at random; a checkpoint
    trained with the forward model gives curious pushes."""
    import tempfile
    from pathlib import Path

    from curious_robot_interfaces.msg import DetectedObject
    from curious_robot_interfaces.srv import SelectAction
    from rclpy.parameter import Parameter

    from curious_robot.convert import image_to_msg
    from curious_robot.learning.synthetic import synthetic_interactions
    from curious_robot.learning.train import TrainConfig, Trainer
    from curious_robot.nodes.selector import SelectorNode
    from curious_robot.store import ReplayStore

    patch = np.full((64, 64, 3), 60, np.uint8)
    patch[20:44, 26:38] = (200, 80, 40)
    req = SelectAction.Request(task="push", patch=image_to_msg(patch, "rgb8"), patch_size=0.16,
                               workspace=[-0.2, 0.2, -0.2, 0.2])
    req.object = DetectedObject(id="obj0", yaw=0.3)
    req.object.centroid.x, req.object.centroid.y = 0.05, -0.04
    req.object.size.x, req.object.size.y = 0.08, 0.04
    with tempfile.TemporaryDirectory() as tmp:
        with ReplayStore(Path(tmp) / "replay.db") as store:
            for rec in synthetic_interactions(8, np.random.default_rng(0), size=64,
                                              tasks=("push",)):
                store.add(rec)
            trainer = Trainer(store, ModelConfig(input_size=64, width=0.125, fc6_dim=512,
                                                 fc7_dim=256, head_dim=256),
                              TrainConfig(batch_size=4, min_records=4, tasks=("push",)))
            assert trainer.train_steps(2)
            trainer.save(Path(tmp) / "checkpoint.pt")
        for checkpoint, policy in (("default", "random"),
                                   (str(Path(tmp) / "checkpoint.pt"), "curious")):
            node = SelectorNode("push", parameter_overrides=[
                Parameter("policy", value="curious"), Parameter("checkpoint", value=checkpoint)])
            try:
                res = node._on_select(req, SelectAction.Response())
            finally:
                node.destroy_node()
            assert res.success and res.policy == policy, (checkpoint, res.message)
            assert len(res.action) == 4 and all(-0.2 <= v <= 0.2 for v in res.action)
            assert (res.score > 0.0) == (policy == "curious")


@pytest.mark.unit
def test_export_model_drops_the_optimizer_and_half_keeps_the_predictions(tmp_path, capsys):
    from curious_robot.learning.predict import Predictor
    from curious_robot.learning.synthetic import synthetic_interactions
    from curious_robot.learning.train import TrainConfig, Trainer
    from curious_robot.store import ReplayStore

    torch.manual_seed(0)
    with ReplayStore(tmp_path / "replay.db") as store:
        for rec in synthetic_interactions(6, np.random.default_rng(0), size=64):
            store.add(rec)
        trainer = Trainer(store, ModelConfig(input_size=64, width=0.25),
                          TrainConfig(batch_size=4, min_records=4), "cpu")
        trainer.train_steps(2)
        trainer.save(tmp_path / "run" / "checkpoint.pt")
    for flags, name in (([], "full.pt"), (["--half"], "half.pt")):
        assert main(["export-model", str(tmp_path / "run"), "--out", str(tmp_path / name),
                     *flags]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["sha256"] == sha256(tmp_path / name)
    full, half = (load_checkpoint(tmp_path / n) for n in ("full.pt", "half.pt"))
    assert "optimizer" not in full and "rng" not in full and full["step"] == 2
    assert half["model"]["root.stages.conv1.0.weight"].dtype == torch.float16
    assert half["exported"]["dtype"] == "float16"
    assert (tmp_path / "half.pt").stat().st_size < 0.7 * (tmp_path / "full.pt").stat().st_size
    patch = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    p_full = Predictor.from_checkpoint(tmp_path / "full.pt").grasp_scores(patch)
    p_half = Predictor.from_checkpoint(tmp_path / "half.pt").grasp_scores(patch)
    assert np.allclose(p_full, p_half, atol=2e-3)
    assert main(["export-model", str(tmp_path / "none"), "--out", str(tmp_path / "x.pt")]) == 2
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["export-model", str(tmp_path / "junk.pt"), "--out", str(tmp_path / "x.pt")]) == 1
    assert not (tmp_path / "x.pt").exists()
