"""Curiosity for push (curious_robot.tasks.push, learning.policy): the push head's forward
model learns the displacement of synthetic pushes better than the training median, the
push geometry in image coordinates matches the scene images, the curious selection takes
the random push with the largest MC-dropout spread (reproducibly for a seed) and the model
selection the largest predicted displacement, and a checkpoint from before the forward
model loads with an untrained forward part and explores pushes at random."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from curious_robot import tasks as registry
from curious_robot.learning import data
from curious_robot.learning.checkpoint import PUSH_FORWARD, load_checkpoint, save_checkpoint
from curious_robot.learning.networks import CuriousNet, ModelConfig
from curious_robot.learning.policy import Policy, load_policy
from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.train import TrainConfig, Trainer
from curious_robot.selection import Target, Workspace
from curious_robot.store import ReplayStore
from curious_robot.tasks.push import FORWARD_KEY

pytestmark = pytest.mark.unit

torch.set_num_threads(1)
SIZE = 64
TINY = dict(input_size=SIZE, width=0.125, fc6_dim=512, fc7_dim=256, head_dim=256)
PUSH = registry.get("push")
PATCH_SIZE = 0.16
WS = Workspace(-0.2, 0.2, -0.2, 0.2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny network trained on synthetic pushes only: (checkpoint path, metrics before
    and after training)."""
    folder = tmp_path_factory.mktemp("push")
    records = synthetic_interactions(40, np.random.default_rng(0), size=SIZE, tasks=("push",))
    with ReplayStore(folder / "replay.db") as store:
        for rec in records:
            store.add(rec)
        trainer = Trainer(store, ModelConfig(**TINY),
                          TrainConfig(batch_size=16, lr=1e-3, min_records=4, seed=0,
                                      tasks=("push",)), "cpu")
        torch.manual_seed(0)  # dropout draws from the global generator
        trainer.train_steps(1)
        first = trainer.evaluate()
        trainer.train_steps(149)
        last = trainer.evaluate()
        trainer.save(folder / "checkpoint.pt")
    return folder / "checkpoint.pt", first, last


def scene_patch(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((128, 128, 3), 40, np.uint8)
    img[44:84, 50:78] = rng.integers(60, 255, size=3)
    return img


def test_the_forward_model_learns_the_displacement_better_than_the_median(trained):
    _, first, last = trained
    for m in (first, last):
        assert set(PUSH.metric_keys) <= set(m)
        assert all(m[k] is not None and math.isfinite(m[k]) for k in PUSH.metric_keys)
    base = last["push_forward_mean_baseline_error"]
    assert last["push_forward_error"] < 0.6 * base, last
    assert last["push_forward_error"] < first["push_forward_error"]
    assert last["push_error"] < last["push_mean_baseline_error"]  # the inverse still learns


def test_the_loss_is_inverse_plus_weighted_forward(trained):
    path, _, _ = trained
    state = load_checkpoint(path)
    model = CuriousNet(ModelConfig.from_dict(state["config"]["model"]))
    model.load_state_dict(state["model"])
    model.eval()
    stats = {k: data.NormStats.from_dict(v) for k, v in state["stats"].items()}
    recs = synthetic_interactions(6, np.random.default_rng(5), size=SIZE, tasks=("push",))
    b = PUSH.batch(recs, SIZE, None, stats["push"], None)
    b.update(data.extra_targets(PUSH, recs, stats))
    assert b[FORWARD_KEY].shape == (6, 2) and b["points"].shape == (6, 3, 2)
    t = data.to_tensors(b, "cpu")
    with torch.no_grad():
        inverse = torch.nn.functional.mse_loss(model.push(t["before"], t["after"]), t["target"])
        forward = torch.nn.functional.mse_loss(model.push_outcome(t["before"], t["points"]),
                                               t[FORWARD_KEY])
        total = PUSH.loss(model, t, None)
        only_inverse = PUSH.loss(model, {k: v for k, v in t.items() if k != FORWARD_KEY}, None)
    assert float(total) == pytest.approx(float(inverse + PUSH.forward_weight * forward),
                                         rel=1e-5)
    assert float(only_inverse) == pytest.approx(float(inverse), rel=1e-5)


def test_push_points_and_the_stand_in_scene_match_the_scene_images():
    """A synthetic scene's disc lies where :meth:`Push.points` puts the push's midpoint,
    and the patch pasted by :meth:`Push.scene_from_patch` lies where the target is."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        rec = PUSH.synthetic((255, 255, 255), rng, 128)
        start, mid, end = PUSH.points([rec["action"]])[0]
        rows, cols = np.nonzero(rec["before"][:, :, 0] > 128)  # the disc before the push
        x, y = mid  # the synthetic push's midpoint is the disc's centre before it moves
        assert cols.mean() == pytest.approx((x + 1) / 2 * 127, abs=1.5)
        assert rows.mean() == pytest.approx((y + 1) / 2 * 127, abs=1.5)
    t = Target(0.1, -0.05)
    scene = PUSH.scene_from_patch(scene_patch(), PATCH_SIZE, t, SIZE)
    assert scene.shape == (SIZE, SIZE, 3) and scene.dtype == np.uint8
    rows, cols = np.nonzero(np.any(scene != 40, axis=2))
    (px, py), = PUSH.points([[t.x, t.y, t.x, t.y]])[0][:1]
    assert cols.mean() == pytest.approx((px + 1) / 2 * (SIZE - 1), abs=1.0)
    assert rows.mean() == pytest.approx((py + 1) / 2 * (SIZE - 1), abs=1.0)
    # an object at the scene's edge is cut, not wrapped; off the scene: the bare table
    edge = PUSH.scene_from_patch(scene_patch(), PATCH_SIZE, Target(0.23, 0.0), SIZE)
    assert np.any(edge[:, -1] != 40) and not np.any(edge[:, :SIZE // 2] != 40)
    off = PUSH.scene_from_patch(scene_patch(), PATCH_SIZE, Target(1.0, 1.0), SIZE)
    assert not np.any(off != 40)


def test_curious_push_takes_the_largest_spread_reproducibly(trained):
    path, _, _ = trained
    pol = load_policy("push", path, "curious", push_candidates=10)
    t = Target(0.05, -0.02, 0.3, 0.08, 0.04)
    sel = pol.select(t, scene_patch(), PATCH_SIZE, np.random.default_rng(7), WS)
    assert sel.policy == "curious" and len(sel.action) == 4
    sx, sy, ex, ey = sel.action
    for x, y in ((sx, sy), (ex, ey)):
        assert WS.xmin <= x <= WS.xmax and WS.ymin <= y <= WS.ymax
    assert math.hypot(ex - sx, ey - sy) > 0.05
    # the same candidates and dropout masks, scored here: the choice is the argmax spread
    rng = np.random.default_rng(7)
    cands = [PUSH.random_action(t, rng, WS).action for _ in range(10)]
    scene = PUSH.scene_from_patch(scene_patch(), PATCH_SIZE, t, pol.predictor.input_size)
    z = pol.predictor.push_outcome_samples(scene, PUSH.points(cands), pol.mc_samples,
                                           seed=int(rng.integers(2**62)))
    assert z.shape == (pol.mc_samples, 10, 2)
    spread = z.std(axis=0).sum(axis=1)
    assert len(set(np.round(spread, 6))) > 1  # the candidates differ
    i = int(np.argmax(spread))
    assert sel.action == pytest.approx(cands[i])
    assert sel.score == pytest.approx(float(spread[i]), rel=1e-5)
    assert sel.score == pytest.approx(float(spread.max()), rel=1e-5)
    # reproducible for a seed, another seed draws other pushes
    again = pol.select(t, scene_patch(), PATCH_SIZE, np.random.default_rng(7), WS)
    assert again.action == sel.action and again.score == sel.score
    other = pol.select(t, scene_patch(), PATCH_SIZE, np.random.default_rng(8), WS)
    assert other.action != sel.action


def test_model_push_takes_the_largest_predicted_displacement(trained):
    path, _, _ = trained
    pol = load_policy("push", path, "model", push_candidates=6)
    t = Target(-0.03, 0.04)
    sel = pol.select(t, scene_patch(1), PATCH_SIZE, np.random.default_rng(2), WS)
    rng = np.random.default_rng(2)
    cands = [PUSH.random_action(t, rng, WS).action for _ in range(6)]
    d = pol.predictor.push_outcome(
        PUSH.scene_from_patch(scene_patch(1), PATCH_SIZE, t, SIZE), PUSH.points(cands))
    moved = np.hypot(d[:, 0], d[:, 1])
    assert sel.policy == "model" and sel.action == pytest.approx(cands[int(np.argmax(moved))])
    assert sel.score == pytest.approx(float(moved.max()), rel=1e-5) and sel.score > 0.0
    with pytest.raises(ValueError, match="push_candidates"):
        Policy("push", pol.predictor, "curious", push_candidates=0)


def test_a_checkpoint_from_before_the_forward_model_loads_and_pushes_at_random(trained,
                                                                               tmp_path):
    path, _, _ = trained
    state = load_checkpoint(path)
    old = copy.deepcopy(state)
    old["model"] = {k: v for k, v in old["model"].items() if not k.startswith(PUSH_FORWARD)}
    old["stats"].pop(FORWARD_KEY)
    old_path = tmp_path / "old" / "checkpoint.pt"
    save_checkpoint(old_path, {k: v for k, v in old.items() if k not in ("format", "version")})
    loaded = load_checkpoint(old_path)
    assert "forward model" in loaded["upgraded"] and FORWARD_KEY not in loaded["stats"]
    model = CuriousNet(ModelConfig.from_dict(loaded["config"]["model"]))
    model.load_state_dict(loaded["model"])  # strict: every weight of today's network
    for key in ("heads.push.net.0.weight", "root.stages.conv3.1.0.weight"):
        assert torch.equal(model.state_dict()[key], state["model"][key])  # kept
    assert float(model.state_dict()[PUSH_FORWARD + "out.weight"].abs().sum()) == 0.0
    # both policies explore at random and say so
    for policy in ("curious", "model"):
        sel = load_policy("push", old_path, policy).select(
            Target(0.0, 0.0), scene_patch(), PATCH_SIZE, np.random.default_rng(0), WS)
        assert sel.policy == "random" and len(sel.action) == 4 and sel.score == 0.0
    # resuming training fits the forward statistics and the selection becomes curious
    with ReplayStore(path.parent / "replay.db", readonly=True) as store:
        trainer = Trainer.from_checkpoint(old_path, store, "cpu")
        assert FORWARD_KEY not in trainer.stats
        assert trainer.train_steps(2)
        assert FORWARD_KEY in trainer.stats
        trainer.save(tmp_path / "resumed.pt")
    sel = load_policy("push", tmp_path / "resumed.pt", "curious").select(
        Target(0.0, 0.0), scene_patch(), PATCH_SIZE, np.random.default_rng(0), WS)
    assert sel.policy == "curious"
