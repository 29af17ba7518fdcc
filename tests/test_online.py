"""Online training beside ingestion (curious_robot.learning.online) with a real rclpy node,
a real SQLite replay store written by another thread, and real torch training: waits on
too little data, steps advance, checkpoints are written and announced, a stop saves, a
restart resumes the step count, and a damaged checkpoint is moved aside."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
import torch
from rclpy.node import Node
from rclpy.parameter import Parameter

from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.checkpoint import load_checkpoint
from curious_robot.learning.online import OnlineTrainer
from curious_robot.nodes.common import ParameterError
from curious_robot.store import ReplayStore

pytestmark = pytest.mark.unit

torch.set_num_threads(1)
TINY = {"input_size": 64, "width": 0.25, "batch_size": 4, "min_records": 4,
        "steps_per_round": 2, "save_every": 3, "duty": 0.5, "threads": 1}


class FakeLearner(Node):
    """The two things OnlineTrainer needs of the learner node: store_path and announce."""

    def __init__(self, store_path, context, **overrides):
        params = [Parameter(k, value=v) for k, v in {**TINY, **overrides}.items()]
        super().__init__("learner_test", context=context, parameter_overrides=params)
        self.store_path = str(store_path)
        self.announced: list[tuple] = []

    def announce(self, path, step, position, losses):
        self.announced.append((path, step, position, dict(losses)))


@pytest.fixture
def context():
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


def wait_until(cond, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_online_training_beside_ingestion_and_resume(tmp_path, context):
    store_path = tmp_path / "replay.db"
    records = synthetic_interactions(10, np.random.default_rng(0), size=64)
    writer = ReplayStore(store_path)  # the node's ingestion connection
    node = FakeLearner(store_path, context)
    trainer = OnlineTrainer.from_node_parameters(node)
    # next to the store, named after it
    assert trainer.checkpoint_dir == tmp_path / "replay.checkpoints"
    trainer.start()
    try:
        # an empty store: the trainer waits and says so
        assert wait_until(lambda: trainer.state == "waiting for data", 60)  # loaded CI
        time.sleep(0.3)
        assert trainer.step == 0 and not node.announced
        assert "waiting" in trainer.status()

        def ingest():
            for rec in records:
                writer.add(rec)
                time.sleep(0.005)

        thread = threading.Thread(target=ingest)
        thread.start()
        assert wait_until(lambda: trainer.step >= 7 and len(node.announced) >= 2)
        thread.join()
        assert trainer.error is None
        assert "training step" in trainer.status() and "samples/s" in trainer.status()
    finally:
        trainer.stop()
    path, step, position, losses = node.announced[0]
    assert path == str(tmp_path / "replay.checkpoints" / "checkpoint.pt")
    assert step == 3 and 0 < position <= len(records) and losses
    assert set(losses) <= {"grasp", "push", "poke", "inspect"}
    final = trainer.step
    assert node.announced[-1][1] == final  # stop saved and announced the last step
    state = load_checkpoint(path)
    assert state["step"] == final and state["config"]["model"]["input_size"] == 64
    assert trainer.status().startswith("training stopped")

    # a new node process (same parameters) resumes and keeps counting
    node2 = FakeLearner(store_path, context)
    node2.announced.clear()
    resumed = OnlineTrainer.from_node_parameters(node2)
    resumed.start()
    try:
        assert wait_until(lambda: resumed.step >= final + 3 and node2.announced)
    finally:
        resumed.stop()
    assert resumed.error is None
    assert node2.announced[0][1] > final
    assert load_checkpoint(path)["step"] == resumed.step > final
    node.destroy_node()
    node2.destroy_node()
    writer.close()


def test_damaged_checkpoint_is_moved_aside(tmp_path):
    store_path = tmp_path / "replay.db"
    with ReplayStore(store_path) as store:
        for rec in synthetic_interactions(5, np.random.default_rng(1), size=64,
                                               tasks=("grasp",)):
            store.add(rec)
    ckpt_dir = tmp_path / "ck"
    ckpt_dir.mkdir()
    (ckpt_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    announced = []
    trainer = OnlineTrainer(store_path, ckpt_dir, announce=lambda *a: announced.append(a),
                            input_size=64, width=0.25, batch_size=4, min_records=2,
                            tasks="grasp", steps_per_round=1, save_every=2, duty=1.0)
    trainer.start()
    try:
        assert wait_until(lambda: len(announced) >= 1, 30)
    finally:
        trainer.stop()
    assert (ckpt_dir / "checkpoint.pt.damaged").read_bytes() == b"not a checkpoint"
    assert load_checkpoint(ckpt_dir / "checkpoint.pt")["step"] == trainer.step >= 2
    assert announced[0][1] == 2


def test_paced_training_stops_at_its_steps_per_interaction_and_follows_the_store(tmp_path):
    """``steps_per_interaction`` k: training reaches k steps per stored interaction, waits
    there (state "paced", logged) and goes on as interactions arrive."""
    store_path = tmp_path / "replay.db"
    recs = synthetic_interactions(16, np.random.default_rng(3), size=64, tasks=("grasp",))
    writer = ReplayStore(store_path)
    for rec in recs[:8]:
        writer.add(rec)
    logged = []

    class Log:
        def info(self, text):
            logged.append(text)
        warning = error = info

    trainer = OnlineTrainer(store_path, tmp_path / "ck", logger=Log(), input_size=64,
                            width=0.25, batch_size=4, min_records=2, tasks="grasp",
                            steps_per_round=2, save_every=100, duty=1.0,
                            steps_per_interaction=0.5)
    trainer.start()
    try:
        assert wait_until(lambda: trainer.state == "paced", 60)
        time.sleep(1.0)  # it stays there
        assert trainer.step == 4 and trainer.state == "paced"
        for rec in recs[8:]:
            writer.add(rec)
        assert wait_until(lambda: trainer.step == 8 and trainer.state == "paced", 60)
        time.sleep(1.0)
        assert trainer.step == 8
    finally:
        trainer.stop()
        writer.close()
    assert trainer.error is None
    # said once (the second stop, seconds later, is not repeated), never "runs from" again
    paced = [line for line in logged if "waits for interactions" in line]
    assert paced == ["online training waits for interactions at step 4 (0.5 steps per "
                     "interaction; said at most once a minute)"], logged
    assert sum("runs from step" in line for line in logged) == 1, logged


@pytest.mark.parametrize("name,value", [("duty", 0.0), ("duty", 1.5), ("save_every", 0),
                                        ("steps_per_interaction", -1.0),
                                        ("tasks", "grasp,fly"), ("device", "tpu")])
def test_bad_parameters_fail_the_node(tmp_path, context, name, value):
    node = FakeLearner(tmp_path / "replay.db", context, **{name: value})
    try:
        with pytest.raises(ParameterError, match=name if name != "tasks" else "tasks"):
            OnlineTrainer.from_node_parameters(node)
    finally:
        node.destroy_node()


def test_online_training_writes_tensorboard_scalars_and_images(tmp_path):
    """The online trainer on a small real store writes event files beside its checkpoint:
    per-task losses, samples/s, store position, held-out metrics, the ingest rate the node
    hands over, and image panels (grasp patches with predicted success probabilities)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store_path = tmp_path / "replay.db"
    with ReplayStore(store_path) as store:
        for rec in synthetic_interactions(6, np.random.default_rng(2), size=64):
            store.add(rec)
        n_grasp = min(8, store.count("grasp", held_out=True))  # the panel's patches
    assert n_grasp >= 1
    ckpt_dir = tmp_path / "checkpoints"
    trainer = OnlineTrainer(store_path, ckpt_dir, input_size=64, width=0.25, batch_size=4,
                            min_records=2, steps_per_round=2, save_every=2, eval_every=2,
                            duty=1.0, threads=1)
    assert trainer.tb_dir == ckpt_dir / "tb"
    trainer.log_scalar("ingest/interactions_per_s", 1.0)  # not running yet: ignored
    trainer.start()
    try:
        assert wait_until(lambda: trainer.saved_step >= 4, 60)
        trainer.log_scalar("ingest/interactions_per_s", 3.5)  # as the learner node does
    finally:
        trainer.stop()
    assert trainer.error is None
    acc = EventAccumulator(str(ckpt_dir / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("loss/grasp", "loss/push", "loss/poke", "loss/inspect", "train/samples_per_s",
                "store/position", "heldout/grasp_bin_accuracy",
                "heldout/grasp_majority_accuracy", "ingest/interactions_per_s"):
        assert tag in tags["scalars"], (tag, tags["scalars"])
    losses = acc.Scalars("loss/grasp")
    assert [e.step for e in losses] == list(range(1, trainer.step + 1))
    assert all(np.isfinite(e.value) for e in losses)
    assert [e.value for e in acc.Scalars("ingest/interactions_per_s")] == [3.5]
    assert all(e.step % 2 == 0 for e in acc.Scalars("heldout/grasp_bin_accuracy"))
    assert {"panels/grasp", "panels/poke"} <= set(tags["images"])
    grasp = acc.Images("panels/grasp")
    assert grasp and grasp[0].step == 2
    assert grasp[0].width == n_grasp * 130 - 2 and grasp[0].height == 128  # 128 px tiles
    png = grasp[-1].encoded_image_string
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
