"""The learning library: network shapes, losses, the angle-bin augmentation, checkpoints,
resume, metrics, the Predictor and a tiny end-to-end ``train`` run on a real replay store."""

from __future__ import annotations

import json
import math
import threading
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from curious_robot import tasks as registry
from curious_robot.record import Interaction
from curious_robot.learning import data, metrics
from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.checkpoint import (CheckpointError, load_checkpoint,
                                               save_checkpoint)
from curious_robot.learning.networks import (LAYERS, N_ANGLE_BINS, CuriousNet, ModelConfig,
                                             grasp_loss, spatial_sizes)
from curious_robot.learning.predict import Predictor, binary_entropy
from curious_robot.learning.train import TrainConfig, Trainer
from curious_robot.store import ReplayStore

pytestmark = pytest.mark.unit

torch.set_num_threads(1)
SIZE = 64
TINY = dict(input_size=SIZE, width=0.125, fc6_dim=512, fc7_dim=256, head_dim=256)


def tiny_trainer(store, **train) -> Trainer:
    cfg = dict(batch_size=8, lr=1e-3, min_records=4, seed=0)
    cfg.update(train)
    return Trainer(store, ModelConfig(**TINY), TrainConfig(**cfg), "cpu")


@pytest.fixture(scope="module")
def records():
    return synthetic_interactions(15, np.random.default_rng(0), size=SIZE)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, records):
    path = tmp_path_factory.mktemp("store") / "replay.db"
    with ReplayStore(path) as store:
        for rec in records:
            assert store.add(rec).stored
    return path


@pytest.fixture
def store(store_path):
    with ReplayStore(store_path, readonly=True) as s:
        yield s


# -- networks -----------------------------------------------------------------------------


def test_spatial_sizes_match_alexnet_at_227():
    s = spatial_sizes(227)
    assert [s[f"conv{i}"] for i in range(1, 6)] + [s["pool5"]] == [55, 27, 13, 13, 13, 6]
    assert spatial_sizes(64)["pool5"] >= 1
    with pytest.raises(ValueError, match="input_size"):
        ModelConfig(input_size=32)


@pytest.mark.parametrize("bad, match", [
    ({"identity_loss": "triplet"}, "identity_loss"),
    ({"identity_temperature": 0.0}, "identity_temperature"),
    ({"color_scramble": 1.5}, "color_scramble"),
    ({"color_jitter": -0.1}, "color_jitter"),
    ({"tasks": "grasp,fly"}, "tasks"),
    ({"root_grads": {"poke": 1.5}}, "root_grads"),
    ({"root_grads": {"fly": 0.5}}, "root_grads"),
])
def test_train_config_names_the_bad_value(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**bad)


def test_a_config_saved_before_a_field_existed_keeps_its_recipe():
    saved = TrainConfig().to_dict()
    assert TrainConfig.from_dict(saved) == TrainConfig()
    for key in ("color_scramble", "identity_loss", "loss_weights", "root_grads"):
        saved.pop(key)
    old = TrainConfig.from_dict(saved)
    assert (old.color_scramble, old.identity_loss, old.loss_weights, old.root_grads) == \
        (0.0, "cosine", {}, {})


def test_a_root_grad_share_scales_only_what_that_task_gives_the_root(records):
    """One step on a poke and a grasp batch: with poke's share s, the root's gradient is
    grasp's plus s times poke's (each measured alone), and the poke head's is whole."""
    by_task = {t: [r for r in records if r.task == t][:8] for t in ("grasp", "poke")}
    stats = data.NormStats.fit(registry.get("poke").targets(by_task["poke"]))
    batches = {"grasp": data.grasp_batch(by_task["grasp"], SIZE, rotate=False),
               "poke": registry.get("poke").batch(by_task["poke"], SIZE, None, stats, None)}
    tensors = {t: data.to_tensors(b, "cpu") for t, b in batches.items()}

    def grads(tasks, shares):
        torch.manual_seed(0)
        trainer = Trainer(None, ModelConfig(**TINY, dropout=0.0), TrainConfig(
            lr=1e-3, tasks=("grasp", "poke"), root_grads=shares, loss_weights={}), "cpu")
        trainer.model.eval()  # BatchNorm in eval: a batch's gradient independent of others
        trainer.model.train = lambda mode=True: trainer.model  # cycle() must not undo it
        trainer.optimizer.step = lambda: None  # keep the weights: compare gradients
        trainer.cycle({t: tensors[t] for t in tasks})
        root = [torch.zeros_like(p) if p.grad is None else p.grad.clone()
                for p in trainer.model.root.parameters()]  # grasp never reaches fc6
        head = [p.grad.clone() for p in trainer.model.heads["poke"].parameters()
                if p.grad is not None]
        return root, head

    grasp_root, _ = grads(("grasp",), {})
    poke_root, poke_head = grads(("poke",), {})
    both_root, both_head = grads(("grasp", "poke"), {"poke": 0.25})
    for g, p, b in zip(grasp_root, poke_root, both_root):
        assert torch.allclose(b, g + 0.25 * p, atol=1e-6)
    assert any(p.abs().sum() > 0 for p in poke_root)
    for a, b in zip(poke_head, both_head):
        assert torch.equal(a, b)


def test_head_shapes_and_root_features():
    model = CuriousNet(ModelConfig(**TINY)).eval()
    x = torch.randn(3, 3, SIZE, SIZE)
    with torch.no_grad():
        assert model.grasp(x).shape == (3, N_ANGLE_BINS)
        assert model.push(x, x.flip(0)).shape == (3, 4)
        assert model.poke(x).shape == (3, 1)  # log felt stiffness
        assert model.embed(x).shape == (3, model.cfg.scaled(256))
        assert model.crash(x).shape == (3,)
        feats = model.root.features(x)
        assert list(feats) == list(LAYERS)
        assert feats["conv1"].shape[1] == model.cfg.channels[0]
        assert torch.equal(model.root(x, upto="conv4"), feats["conv4"])
    assert set(model.heads) == {"grasp", "push", "poke", "identity", "crash"}
    with pytest.raises(ValueError, match="unknown root layer"):
        model.root(x, upto="fc9")


def test_grasp_loss_only_on_tried_bin():
    logits = torch.zeros(2, N_ANGLE_BINS, requires_grad=True)
    grasp_loss(logits, torch.tensor([3, 11]), torch.tensor([1.0, 0.0])).backward()
    nonzero = logits.grad.nonzero().tolist()
    assert nonzero == [[0, 3], [1, 11]]


def test_every_head_overfits_a_tiny_batch(records):
    by_task = {t: [r for r in records if r.task == t][:8] for t in
               ("grasp", "push", "poke", "inspect")}
    stats = {k: data.NormStats.fit(registry.get(k).targets(by_task[k])) for k in ("push", "poke")}
    rng = np.random.default_rng(1)
    crops = data.stack([r.before for r in by_task["poke"]], SIZE)
    bright = crops.mean(axis=(1, 2, 3))
    batches = {"grasp": data.grasp_batch(by_task["grasp"], SIZE, rotate=False),
               "push": registry.get("push").batch(by_task["push"], SIZE, None, stats["push"],
                                                  None),
               "poke": registry.get("poke").batch(by_task["poke"], SIZE, None, stats["poke"],
                                                  None),
               "inspect": data.identity_batch(by_task["inspect"], SIZE, rng),
               "crash": {"crop": crops,
                         "safe": (bright > np.median(bright)).astype(np.float32)}}
    trainer = Trainer(None, ModelConfig(**TINY, dropout=0.0),
                      TrainConfig(lr=1e-3, tasks=tuple(batches)), "cpu")
    tensors = {t: data.to_tensors(b, "cpu") for t, b in batches.items()}
    first = trainer.cycle(tensors)
    for _ in range(40):
        last = trainer.cycle(tensors)
    assert trainer.step == 41
    assert set(first) == set(batches)
    for task in batches:
        assert math.isfinite(first[task]) and math.isfinite(last[task])
        assert last[task] < 0.6 * first[task], (task, first[task], last[task])


# -- data ---------------------------------------------------------------------------------


def _draw_bar(size: int, angle: float) -> np.ndarray:
    """Drawn here, independently of the library: column = +x, row = -y."""
    img = np.zeros((size, size, 3), np.uint8)
    c, half = (size - 1) / 2.0, 0.35 * size
    end = (c + half * math.cos(angle), c - half * math.sin(angle))  # (col, row)
    start = (2 * c - end[0], 2 * c - end[1])
    cv2.line(img, tuple(round(v) for v in start), tuple(round(v) for v in end),
             (255, 255, 255), 5)
    return img


def _orientation(img: np.ndarray) -> float:
    """Table-frame angle (rad, [0, pi)) of a bright bar from second moments."""
    rows, cols = np.nonzero(img[..., 0] > 128)
    x = cols - cols.mean()
    y = -(rows - rows.mean())
    theta = 0.5 * math.atan2(2 * np.mean(x * y), np.mean(x * x) - np.mean(y * y))
    return theta % math.pi


def test_bar_convention_and_rotation_shifts_bin_the_right_way():
    # a horizontal bar rotated by +30 degrees (counter-clockwise as displayed) points up-right,
    # i.e. toward table +x +y: its table angle is +30 degrees, bin 3 (not bin 15)
    rotated, b = data.rotate_grasp(_draw_bar(96, 0.0), 0, 3)
    assert b == 3
    assert data.angle_to_bin(_orientation(rotated)) == 3
    for start in (0, 2, 7, 12, 17):
        bar = _draw_bar(96, data.bin_to_angle(start))
        assert data.angle_to_bin(_orientation(bar)) == start
        for k in (1, 4, 9, 13):
            rotated, b = data.rotate_grasp(bar, start, k)
            assert b == (start + k) % N_ANGLE_BINS
            assert data.angle_to_bin(_orientation(rotated)) == b, (start, k)


def test_angle_bins():
    assert data.angle_to_bin(0.0) == 0
    assert data.angle_to_bin(math.radians(14.9)) == 1
    assert data.angle_to_bin(math.radians(176)) == 0  # 176 deg ~ -4 deg for a parallel gripper
    assert data.angle_to_bin(math.pi / 2) == 9
    assert data.bin_to_angle(9) == pytest.approx(math.pi / 2)


def test_identity_pairs(records):
    recs = [r for r in records if r.task == "inspect"]
    batch = data.identity_batch(recs, SIZE, np.random.default_rng(0))
    assert batch["a"].shape == batch["b"].shape == (len(batch["same"]), SIZE, SIZE, 3)
    assert batch["same"].sum() == len(recs)  # one positive per record
    assert 0 < (batch["same"] == 0).sum() <= len(recs)
    one_object = [r for r in recs if r.object_id == recs[0].object_id]
    only_pos = data.identity_batch(one_object, SIZE, np.random.default_rng(0))
    assert only_pos["same"].all()


def test_identity_groups_label_every_pairing(records):
    recs = [r for r in records if r.task == "inspect"]
    batch = data.identity_batch(recs, SIZE, np.random.default_rng(0), turn=True)
    ga, gb = batch["group_a"], batch["group_b"]
    assert ga.shape == gb.shape == batch["same"].shape
    np.testing.assert_array_equal(ga == gb, batch["same"] == 1)  # drawn pairs agree
    assert batch["a"].shape == (len(ga), SIZE, SIZE, 3)
    # two robots' "obj0003" are different objects when their models differ
    a, b = recs[0], recs[1]
    twin = [Interaction(**{**a.__dict__, "object_id": "obj9", "object_model": "m/1"}),
            Interaction(**{**b.__dict__, "object_id": "obj9", "object_model": "m/2"})]
    pairs = data.identity_batch(twin, SIZE, np.random.default_rng(0))
    assert (pairs["same"] == 0).sum() == 2


def test_identity_loss_over_the_batch():
    from curious_robot.learning.networks import identity_loss

    e = torch.eye(4)  # four objects, orthogonal embeddings
    groups = torch.arange(4)
    same = torch.ones(4)
    assert float(identity_loss(e, e, same, 0.5, groups, groups)) == pytest.approx(0.0)
    # everything on one direction: positives fine, each of the 12 negatives costs 1 - 0.5
    flat = torch.ones(4, 3)
    assert float(identity_loss(flat, flat, same, 0.5, groups, groups)) == pytest.approx(0.5)
    # without groups only the drawn pairs count (the paper's cosine embedding loss)
    assert float(identity_loss(flat, flat, same, 0.5)) == pytest.approx(0.0)


def test_identity_hard_and_nce_losses_known_answers():
    import math

    from curious_robot.learning.networks import identity_loss, identity_nce_loss

    groups = torch.arange(4)
    same = torch.ones(4)
    # one negative pair inside the margin (cos 0.8), eleven far outside (cos 0)
    a = torch.eye(4)
    b = torch.eye(4)
    a[1] = torch.tensor([0.8, 0.6, 0.0, 0.0])
    b[1] = a[1]
    plain = float(identity_loss(a, b, same, 0.5, groups, groups))
    hard = float(identity_loss(a, b, same, 0.5, groups, groups, hard=True))
    assert plain == pytest.approx(2 * 0.3 / 12)  # (0,1) and (1,0) at cos 0.8, averaged
    assert hard == pytest.approx(0.3)  # averaged over the two that cost anything
    # InfoNCE: orthogonal objects, temperature t: -log(e^(1/t) / (e^(1/t) + 3))
    t = 0.5
    want = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 3))
    e = torch.eye(4)
    assert float(identity_nce_loss(e, e, groups, groups, t)) == pytest.approx(want, rel=1e-5)
    # all on one direction: each row's softmax is uniform over 4, one of them right
    flat = torch.ones(4, 3)
    assert float(identity_nce_loss(flat, flat, groups, groups, t)) == pytest.approx(
        math.log(4), rel=1e-5)
    # two images of one object on each side count as two positives
    g2 = torch.tensor([0, 0, 1, 1])
    two = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    assert float(identity_nce_loss(two, two, g2, g2, 0.1)) == pytest.approx(0.0, abs=1e-3)
    # a row whose object is missing from the other tower is skipped, not NaN
    lone = identity_nce_loss(e, e, groups, torch.tensor([0, 1, 2, 2]), t)
    assert torch.isfinite(lone)


def test_color_jitter():
    rng = np.random.default_rng(0)
    img = rng.integers(20, 200, (3, 16, 16, 3)).astype(np.uint8)
    same = data.jitter_colors(img, np.ones((3, 5)))
    assert np.abs(same.astype(int) - img).max() <= 1
    brighter = data.jitter_colors(img, np.array([[1.3, 1, 1, 1, 1]] * 3))
    assert brighter.mean() > img.mean() + 10
    p = data.jitter_params(1000, rng, 0.3)
    assert p.shape == (1000, 5) and 0.7 <= p[:, :2].min() and p[:, :2].max() <= 1.3
    assert 0.925 <= p[:, 2:].min() and p[:, 2:].max() <= 1.075
    # a push's before / after share one light; other images get one each
    push = registry.get("push").augment({"before": img, "after": img.copy(),
                                       "target": np.zeros((3, 4))}, rng, 0.3)
    np.testing.assert_array_equal(push["before"], push["after"])
    grasp = registry.get("grasp").augment({"patch": np.repeat(img[:1], 3, 0)}, rng, 0.3)
    assert not np.array_equal(grasp["patch"][0], grasp["patch"][1])
    assert registry.get("grasp").augment({"patch": img}, rng, 0.0)["patch"] is img


def test_color_scramble():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (400, 4, 4, 3)).astype(np.uint8)
    p = data.scramble_params(len(img), rng, 0.8)
    out = data.scramble_colors(img, p)
    grey = p[:, 1].astype(bool)
    kept = (p[:, 0] == 0) & ~grey
    assert 0.72 <= 1 - kept.mean() <= 0.88 and 0.3 <= grey.mean() <= 0.5
    np.testing.assert_array_equal(out[kept], img[kept])
    assert (out[grey][..., 0] == out[grey][..., 2]).all()  # grey: all channels equal
    for i in np.flatnonzero(~kept & ~grey)[:20]:  # reordered: the same values, moved
        order = data.CHANNEL_ORDERS[p[i, 0]]
        np.testing.assert_array_equal(out[i], img[i][..., order])
        assert tuple(order) != (0, 1, 2)
    # a push's pair shares one scramble; poke (colour shows stiffness) is never scrambled
    push = registry.get("push").augment({"before": img[:50], "after": img[:50].copy()}, rng,
                              0.0, 1.0)
    np.testing.assert_array_equal(push["before"], push["after"])
    assert not np.array_equal(push["before"], img[:50])
    assert registry.get("poke").augment({"patch": img}, rng, 0.0, 1.0)["patch"] is img
    grasp = registry.get("grasp").augment({"patch": img}, rng, 0.0, 1.0)["patch"]
    assert (grasp != img).any(axis=(1, 2, 3)).mean() > 0.9


def test_norm_stats_round_trip():
    values = np.array([[100.0, 1.0], [300.0, 1.0], [500.0, 1.0]])
    s = data.NormStats.fit(values)
    z = s.normalize(values)
    assert np.allclose(z[:, 0], [-1 / 1.4826, 0, 1 / 1.4826], atol=1e-4)  # median, MAD
    assert np.allclose(z[:, 1], 0)  # constant column: scale taken as 1
    assert np.allclose(s.denormalize(z), values)
    assert data.NormStats.from_dict(s.to_dict()) == s


def test_norm_stats_ignore_wild_values():
    rng = np.random.default_rng(0)
    values = rng.normal(2000.0, 300.0, size=(400, 1))
    values[:2] = 1e11  # two failed tactile fits
    s = data.NormStats.fit(values)
    assert abs(s.mean[0] - 2000.0) < 60 and abs(s.std[0] - 300.0) < 40
    z = s.normalize(values)
    assert z.max() == data.NormStats.CLIP and np.abs(z[2:]).max() < 5


# -- metrics ------------------------------------------------------------------------------


def test_metrics_known_answers():
    assert metrics.binary_accuracy([0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1]) == 0.5
    assert metrics.majority_accuracy([1, 0, 0, 0]) == 0.75
    assert metrics.majority_accuracy([1, 0, 0, 0], train_positive_rate=0.8) == 0.25
    assert metrics.mean_l2_error([[0, 0], [1, 1]], [[3, 4], [1, 1]]) == 2.5
    t = metrics.best_threshold([0.9, 0.8, 0.1, 0.3], [1, 1, 0, 0])
    assert 0.3 < t < 0.8
    assert metrics.pair_accuracy([0.9, 0.8, 0.1, 0.5], [1, 1, 0, 0], t) == 1.0
    assert metrics.best_threshold([], []) == 0.0
    with pytest.raises(ValueError):
        metrics.mean_l2_error([[0, 0]], [[0, 0, 0]])


def test_binary_entropy():
    assert binary_entropy([0.5])[0] == pytest.approx(1.0)
    assert binary_entropy([0.0, 1.0]).max() < 1e-6


# -- training on a real store, checkpoints, resume ----------------------------------------


def test_train_steps_on_store_and_evaluate(store):
    trainer = tiny_trainer(store)
    losses = trainer.train_steps(2)
    assert set(losses) == {"grasp", "push", "poke", "inspect"}
    assert trainer.step == 2 and trainer.position == store.position()
    assert set(trainer.stats) == {"push", "push_forward", "poke"}
    m = trainer.evaluate()
    assert set(m) >= set(metrics.METRIC_KEYS)
    for key in metrics.METRIC_KEYS:
        assert m[key] is not None and math.isfinite(m[key]), key
    assert 0.0 <= m["grasp_bin_accuracy"] <= 1.0
    assert trainer.model.training  # evaluate() restores the mode


def test_too_little_data_is_skipped(store, caplog):
    trainer = tiny_trainer(store, min_records=10_000)
    with caplog.at_level("INFO"):
        assert trainer.train_steps(1) == {}
    assert trainer.step == 0
    assert "skipping task grasp" in caplog.text


def test_checkpoint_round_trip_weights_only(store, tmp_path):
    trainer = tiny_trainer(store)
    trainer.train_steps(2)
    path = tmp_path / "ck" / "checkpoint.pt"
    trainer.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp files
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 2 and raw["store_position"] == store.position()
    assert raw["config"]["model"]["input_size"] == SIZE
    assert set(raw["stats"]) == {"push", "push_forward", "poke"}

    again = Trainer.from_checkpoint(path, store, "cpu")
    assert again.step == 2 and again.model_cfg == trainer.model_cfg
    for (n, a), (_, b) in zip(trainer.model.state_dict().items(),
                              again.model.state_dict().items()):
        assert torch.equal(a, b), n
    s0, s1 = trainer.optimizer.state_dict(), again.optimizer.state_dict()
    k = next(iter(s0["state"]))
    assert torch.equal(s0["state"][k]["exp_avg"], s1["state"][k]["exp_avg"])
    assert again.stats == trainer.stats
    assert again.rng.bit_generator.state == trainer.rng.bit_generator.state


def test_resume_continues_step_and_optimizer(store, tmp_path):
    path = tmp_path / "checkpoint.pt"
    trainer = tiny_trainer(store)
    trainer.train_steps(2)
    trainer.save(path)
    resumed = Trainer.from_checkpoint(path, store, "cpu", lr=5e-4)
    resumed.train_steps(1)
    assert resumed.step == 3
    state = resumed.optimizer.state_dict()["state"]
    assert float(next(iter(state.values()))["step"]) == 3.0  # Adam's own count continued
    assert resumed.optimizer.param_groups[0]["lr"] == 5e-4


def test_bad_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a curious_robot checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    save_checkpoint(tmp_path / "ok.pt", {"step": 1})
    assert load_checkpoint(tmp_path / "ok.pt")["step"] == 1


def _loop_job(trainer):
    from curious_robot.learning.loop import Job

    return Job(trainer, lambda: trainer.train_steps(1), trainer.save)


def test_train_loop_budget_resume_stop_ctrl_c_and_no_data(store, tmp_path):
    """The shared outer loop (learning/loop.py) with a real trainer and store: checkpoints
    at multiples of save_every and at the end, resume, a stop event, Ctrl-C saves before it
    propagates, and a store without enough data ends the loop without a checkpoint."""
    from curious_robot.learning.loop import DONE, NO_DATA, STOPPED, TrainLoop, resume_or_start

    path = tmp_path / "run" / "checkpoint.pt"
    saved = []
    trainer = tiny_trainer(store)
    loop = TrainLoop(_loop_job(trainer), path, save_every=2, until=5, on_save=saved.append)
    assert loop.run() == DONE and trainer.step == 5 and saved == [2, 4, 5]
    assert load_checkpoint(path)["step"] == 5
    assert sorted(p.name for p in path.parent.iterdir()) == ["checkpoint.pt"]  # atomic

    trainer, resumed = resume_or_start(path, lambda p: Trainer.from_checkpoint(p, store),
                                       lambda: pytest.fail("should resume"))
    assert resumed and trainer.step == 5
    stop = threading.Event()
    loop = TrainLoop(_loop_job(trainer), path, save_every=100, stop=stop, resumed=True,
                     progress=lambda step, losses: stop.set() if step == 7 else None)
    assert loop.run() == STOPPED and trainer.step == 7 and load_checkpoint(path)["step"] == 7

    def ctrl_c(step, losses):
        if step == 9:
            raise KeyboardInterrupt
    loop = TrainLoop(_loop_job(trainer), path, save_every=100, until=20, resumed=True,
                     progress=ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        loop.run()
    assert load_checkpoint(path)["step"] == 9 and loop.state == "stopped"

    empty = tmp_path / "empty"
    loop = TrainLoop(_loop_job(tiny_trainer(store, min_records=10_000)), empty / "ck.pt",
                     save_every=1, until=3)
    assert loop.run() == NO_DATA and not empty.exists()
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        resume_or_start(tmp_path / "bad.pt", lambda p: Trainer.from_checkpoint(p, store),
                        lambda: None, errors=(CheckpointError,))
    fresh, resumed = resume_or_start(tmp_path / "bad.pt",
                                     lambda p: Trainer.from_checkpoint(p, store),
                                     lambda: "new", damaged="move", errors=(CheckpointError,))
    assert (fresh, resumed) == ("new", False)
    assert (tmp_path / "bad.pt.damaged").read_bytes() == b"junk"


def test_training_beside_ingestion(store_path, records, tmp_path):
    """The node's pattern: one thread adds through its own store, another trains."""
    path = tmp_path / "live.db"
    first = [r for r in records if r.task in ("grasp", "poke")]
    with ReplayStore(path) as writer_store:
        for rec in first:
            writer_store.add(rec)
        reader = ReplayStore(path, readonly=True)
        trainer = tiny_trainer(reader, batch_size=4)
        rest = [r for r in records if r.task not in ("grasp", "poke")]
        errors = []

        def ingest():
            try:
                with ReplayStore(path) as own:
                    for rec in rest:
                        own.add(rec)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=ingest)
        thread.start()
        while thread.is_alive():
            trainer.train_steps(1)
        thread.join()
        assert not errors
        losses = trainer.train_steps(1)
        assert set(losses) == {"grasp", "push", "poke", "inspect"}  # new tasks picked up
        assert trainer.position == len(records)
        reader.close()


# -- predictor ----------------------------------------------------------------------------


def test_predictor_and_reload(store, records, tmp_path):
    path = tmp_path / "checkpoint.pt"
    trainer = tiny_trainer(store)
    trainer.train_steps(1)
    trainer.save(path)
    pred = Predictor.from_checkpoint(tmp_path, device="cpu")
    assert pred.step == 1 and not pred.maybe_reload()
    grasp = next(r for r in records if r.task == "grasp").before
    scores = pred.grasp_scores(grasp)
    assert scores.shape == (N_ANGLE_BINS,) and ((scores >= 0) & (scores <= 1)).all()
    assert pred.grasp_scores_batch(np.stack([grasp, grasp])).shape == (2, N_ANGLE_BINS)
    assert pred.grasp_uncertainty(grasp).shape == (N_ANGLE_BINS,)
    angle, p = pred.best_grasp(grasp)
    assert 0 <= angle < math.pi and 0 <= p <= 1
    poke = next(r for r in records if r.task == "poke")
    slope = pred.poke_predict(poke.before)
    assert math.isfinite(slope) and slope > 0  # a stiffness, N/m
    assert pred.poke_uncertainty(poke.before, samples=8) >= 0
    push = next(r for r in records if r.task == "push")
    assert pred.push_predict(push.before, push.after).shape == (4,)
    assert pred.push_score(push.before, push.after, push.action) <= 0
    emb = pred.embed([grasp, grasp])
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert pred.features(grasp, "conv3").ndim == 4
    with pytest.raises(ValueError, match="uint8"):
        pred.grasp_scores(grasp.astype(np.float32))

    trainer.train_steps(1)
    trainer.save(path)
    import os
    st = os.stat(path)  # make sure the change is visible even on a coarse clock
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert pred.maybe_reload() and pred.step == 2
    assert not pred.maybe_reload()


def test_a_shared_predictor_reads_each_checkpoint_once_per_process(store, tmp_path,
                                                                   monkeypatch):
    import gc
    import os
    import threading

    path = tmp_path / "checkpoint.pt"
    trainer = tiny_trainer(store)
    trainer.train_steps(1)
    trainer.save(path)
    loads = []
    real = Predictor._load

    def counting(p, device):
        loads.append(str(p))
        return real(p, device)

    monkeypatch.setattr(Predictor, "_load", staticmethod(counting))
    a = Predictor.shared(path)
    assert Predictor.shared(tmp_path) is a and len(loads) == 1  # the folder names the file
    assert Predictor.from_checkpoint(path) is not a and len(loads) == 2  # its own copy
    trainer.train_steps(1)
    trainer.save(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    # four nodes of a process ask at once: one of them reads the new file
    got, barrier = [], threading.Barrier(4)

    def ask():
        barrier.wait()
        got.append(Predictor.shared(path))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(g is a for g in got) and a.step == 2 and len(loads) == 3
    got.clear()
    del a
    gc.collect()
    assert Predictor.shared(path).step == 2 and len(loads) == 4  # nobody held it: read again


# -- command line and bench ---------------------------------------------------------------


def test_train_cli_end_to_end_and_resume(store_path, tmp_path, capsys):
    from curious_robot.cli import main

    out = tmp_path / "run"
    argv = ["train", "--store", str(store_path), "--out", str(out), "--input-size", str(SIZE),
            "--width", "0.125", "--batch-size", "8", "--min-records", "4", "--json"]
    assert main(argv + ["--steps", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == set(metrics.METRIC_KEYS)
    assert all(result[k] is not None for k in metrics.METRIC_KEYS)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
    assert main(argv + ["--steps", "5"]) == 0
    capsys.readouterr()
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 5
    # TensorBoard (the shared loop): every step's loss once across the resume, held-out
    # metrics at the end of each run, grasp panels
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/grasp")] == [1, 2, 3, 4, 5]
    assert [e.step for e in acc.Scalars("heldout/grasp_bin_accuracy")] == [3, 5]
    assert "train/samples_per_s" in acc.Tags()["scalars"]
    assert [e.step for e in acc.Images("panels/grasp")] == [3, 5]
    assert main(["train", "--store", str(tmp_path / "missing.db"), "--out", str(out),
                 "--steps", "1"]) == 2


def test_bench_learner_runs(capsys):
    from curious_robot.learning import bench

    args = SimpleNamespace(device="cpu", width=0.125, batch_size=4, cycles=1, json=True)
    assert bench.run(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples_per_s_96"] > 0 and result["samples_per_s_128"] > 0
    assert result["grasp_forward_ms_96"] > 0


def test_crash_metrics_beside_the_arm_metrics(tmp_path, records):
    rng = np.random.default_rng(3)
    path = tmp_path / "joint.db"
    with ReplayStore(path) as s:
        for rec in records:
            assert s.add(rec).stored
        for i in range(24):  # crash frames: bright = safe (2 s to go), dark = 0.3 s to go
            safe = i % 3 != 0
            img = np.full((SIZE, SIZE, 3), 200 if safe else 40, np.uint8)
            img += rng.integers(0, 20, img.shape, dtype=np.uint8)
            s.add(Interaction(task="crash", robot="drone0", seq=i, object_id=f"room{i % 4}",
                              held_out=i % 4 == 0, action=[0.0, 1.0], success=safe,
                              outcome=[2.0 if safe else 0.3], before=img))
    with ReplayStore(path, readonly=True) as s:
        trainer = tiny_trainer(s, tasks=("grasp", "crash"))
        torch.manual_seed(0)  # dropout draws from torch's global generator: fix it here, so
        # the result does not depend on which tests ran before in this process
        trainer.train_steps(80)  # 30 left it at the majority now and then
        m = trainer.evaluate()
    assert set(metrics.metric_keys(["crash"])) <= set(m) and m["grasp_bin_accuracy"] is not None
    assert m["crash_majority_accuracy"] == pytest.approx(4 / 6)  # held-out: 4 safe of 6
    assert m["crash_accuracy"] > m["crash_majority_accuracy"]


def test_a_checkpoint_of_the_earlier_poke_target_loads_without_its_poke_head(tmp_path):
    """Checkpoints whose poke head predicted (slope, intercept) load: that head is
    replaced by an untrained one and its statistics dropped, so readers treat the file as
    one without poke data; every other weight is kept."""
    model = CuriousNet(ModelConfig(**TINY))
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    hidden = weights["heads.poke.out.weight"].shape[1]
    weights["heads.poke.out.weight"] = torch.randn(2, hidden)
    weights["heads.poke.out.bias"] = torch.randn(2)
    stats = {"poke": {"mean": [5000.0, -20.0], "std": [3000.0, 10.0]},
             "push": {"mean": [0.0] * 4, "std": [1.0] * 4}}
    save_checkpoint(tmp_path / "old.pt", {"step": 7, "model": weights, "stats": stats,
                                          "config": {"model": ModelConfig(**TINY).to_dict()}})
    state = load_checkpoint(tmp_path / "old.pt")
    assert "poke" not in state["stats"] and "push" in state["stats"]
    assert "earlier target" in state["upgraded"]
    again = CuriousNet(ModelConfig(**TINY))
    again.load_state_dict(state["model"])  # strict: the shapes are today's
    key = "root.stages.conv1.0.weight"
    assert torch.equal(again.state_dict()[key], weights[key])
    assert float(again.state_dict()["heads.poke.out.weight"].abs().sum()) == 0.0
    fresh = tmp_path / "new.pt"
    save_checkpoint(fresh, {"step": 1, "model": model.state_dict(), "stats": {}})
    assert "upgraded" not in load_checkpoint(fresh)


def test_poke_patches_enter_as_a_centre_crop_turned_at_random_in_training():
    """A new model takes a poke patch's centre at the camera's resolution (the texture
    that shows the material; ``contrast``: as grey local contrast); other tasks' patches,
    and the poke patches of a checkpoint written before ``patch_view`` existed, are
    resized whole.
    Training batches are turned and mirrored (TrainConfig.poke_turn); evaluation batches
    never are."""
    from curious_robot.learning.checkpoint import _upgrade

    assert ModelConfig().view("poke") == "contrast"
    assert ModelConfig(patch_view="crop").view("poke") == "crop"
    assert ModelConfig().view("grasp") == "resize"
    assert ModelConfig(patch_view="contrast").view("poke") == "contrast"
    assert ModelConfig(patch_view="resize").view("poke") == "resize"
    with pytest.raises(ValueError, match="patch_view"):
        ModelConfig(patch_view="zoom")
    old = {"config": {"model": {"input_size": 96, "width": 0.5}}, "model": {}}
    assert ModelConfig.from_dict(_upgrade(old, "x.pt")["config"]["model"]).view("poke") \
        == "resize"

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)
    assert np.array_equal(data.view(img, 64, "crop"), img[32:96, 32:96])
    assert np.array_equal(data.view(img, 64, "contrast"), data.local_contrast(img[32:96, 32:96]))
    assert np.array_equal(data.view(img, 64), data.resize(img, 64))
    with pytest.raises(ValueError, match="view"):
        data.view(img, 64, "zoom")
    records = synthetic_interactions(40, np.random.default_rng(1), size=128,
                                     held_out_share=0)
    pokes = [r for r in records if r.task == "poke"][:6]
    poke = registry.get("poke")
    stats = data.NormStats.fit(poke.targets(pokes))
    evaluation = poke.make_batch(pokes, 64, None, stats, None, "crop")
    assert np.array_equal(evaluation["patch"],
                          np.stack([r.before[32:96, 32:96] for r in pokes]))
    cfg = TrainConfig(color_jitter=0.0)
    assert cfg.poke_turn
    turned = poke.make_batch(pokes, 64, np.random.default_rng(2), stats, cfg, "crop")
    assert not np.array_equal(turned["patch"], evaluation["patch"])
    for got, want in zip(turned["patch"], evaluation["patch"]):  # one of the 8 symmetries
        assert any(np.array_equal(got, np.rot90(m, k)) for m in (want, want[:, ::-1])
                   for k in range(4))
    assert np.array_equal(turned["target"], evaluation["target"])


def test_poke_patches_are_jittered_as_the_camera_saw_them_before_the_contrast_view():
    """In training the photometric jitter (``color_jitter``) is applied by the poke batch
    itself, after the turn, to the cropped patch; a "contrast" view is taken after it, so
    its images stay grey and centred on 128 whatever the jitter drew, and the trainer's
    augmentation adds nothing on top. The "crop" view gets exactly the jitter that
    ``augment_batch`` gave it before (the same draws in the same order)."""
    records = synthetic_interactions(40, np.random.default_rng(1), size=128,
                                     held_out_share=0)
    pokes = [r for r in records if r.task == "poke"][:8]
    poke = registry.get("poke")
    stats = data.NormStats.fit(poke.targets(pokes))
    cfg = TrainConfig(color_jitter=0.3)
    crop = poke.make_batch(pokes, 64, np.random.default_rng(5), stats, cfg, "crop")
    rng = np.random.default_rng(5)
    plain = poke.make_batch(pokes, 64, rng, stats, TrainConfig(color_jitter=0.0), "crop")
    want = data.augment_batch(plain, rng, 0.3)
    assert np.array_equal(crop["patch"], want["patch"])
    assert poke.augment(crop, np.random.default_rng(6), 0.3) is crop  # nothing twice

    light = poke.make_batch(pokes, 64, np.random.default_rng(5), stats, cfg, "contrast")
    dark = poke.make_batch(pokes, 64, np.random.default_rng(7), stats, cfg, "contrast")
    clean = poke.make_batch(pokes, 64, None, stats, None, "contrast")
    for b in (light, dark, clean):
        p = b["patch"].astype(int)
        assert np.array_equal(p[..., 0], p[..., 1]) and np.array_equal(p[..., 0], p[..., 2])
        assert abs(np.median(p) - 128) <= 3  # jitter would move a contrast image by ~40
    # the jittered contrast patches are the jittered crops' contrast
    assert np.array_equal(light["patch"], data.contrast_all(crop["patch"]))


def test_poke_inputs_keep_batchnorm_statistics_of_their_own():
    """With ``crop_stats``, poke forwards in training update the root's
    second BatchNorm statistics and leave the shared ones alone, the other tasks' the
    reverse; in eval mode the poke head reads features normalised by the poke statistics.
    A checkpoint written before the field keeps one shared set (no second buffers)."""
    from curious_robot.learning.checkpoint import _upgrade
    from curious_robot.learning.networks import SplitStatsBatchNorm2d

    torch.manual_seed(0)
    assert ModelConfig().crop_stats
    model = CuriousNet(ModelConfig(input_size=64, width=0.25, crop_stats=True))
    bns = [m for m in model.root.modules() if isinstance(m, SplitStatsBatchNorm2d)]
    assert len(bns) == 5
    bn = bns[0]
    shared, alt = bn.running_mean.clone(), bn.alt_running_mean.clone()
    model.train()
    model.poke(torch.rand(4, 3, 64, 64) * 0.1 + 2.0)  # far from the colour images
    assert torch.equal(bn.running_mean, shared) and not torch.equal(bn.alt_running_mean, alt)
    alt = bn.alt_running_mean.clone()
    model.grasp(torch.rand(4, 3, 64, 64))
    assert not torch.equal(bn.running_mean, shared) and torch.equal(bn.alt_running_mean, alt)
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        split = model.poke_features(x)
        for m in bns:  # what the poke head would read with the shared statistics
            m.alt_running_mean.copy_(m.running_mean)
            m.alt_running_var.copy_(m.running_var)
        assert not torch.allclose(split, model.poke_features(x))
        assert torch.allclose(model.poke_features(x), model.root(x, upto="fc6"))
    old = {"config": {"model": {"input_size": 64, "width": 0.25, "patch_view": "crop"}},
           "model": {}}
    cfg = ModelConfig.from_dict(_upgrade(old, "x.pt")["config"]["model"])
    assert not cfg.crop_stats
    assert not any(isinstance(m, SplitStatsBatchNorm2d) for m in CuriousNet(cfg).modules())


def test_calibrate_averages_the_poke_statistics_over_clean_training_patches(store):
    """``Trainer.calibrate`` (called by ``save`` and ``evaluate``) sets the second
    BatchNorm statistics of a ``crop_stats`` model to the plain average, over the clean
    training pokes, of each batch's statistics under the current weights: the first layer's
    running mean is then the mean of conv1's output over those patches. Nothing else
    changes (weights, shared statistics, optimizer, sampling state), it gives the same
    result twice, and a model without second statistics is left alone."""
    from curious_robot.learning.networks import SplitStatsBatchNorm2d

    trainer = Trainer(store, ModelConfig(**TINY, crop_stats=True),
                      TrainConfig(batch_size=8, lr=1e-3, min_records=4, seed=0), "cpu")
    trainer.train_steps(3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    rng_state = trainer.rng.bit_generator.state
    n = trainer.calibrate()
    poke = registry.get("poke")
    ids = store.ids("poke", held_out=False, success=registry.success_filter("poke"))
    assert n == len(ids) > 8  # several batches
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("alt_running" in k for k in changed)
    assert trainer.rng.bit_generator.state == rng_state and trainer.model.training

    records = store.get_many([int(i) for i in ids])
    conv1 = trainer.model.root.stages["conv1"]
    bn = next(m for m in conv1.modules() if isinstance(m, SplitStatsBatchNorm2d))
    means = []
    with torch.no_grad():
        for i in range(0, len(records), 8):
            b = poke.make_batch(records[i:i + 8], SIZE, None, trainer.stats["poke"], None,
                                trainer.model_cfg.view("poke"))
            means.append(conv1[0](data.to_tensors(b, "cpu")["patch"]).mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.alt_running_mean, torch.stack(means).mean(0))
    first = {k: v.clone() for k, v in after.items()}
    assert trainer.calibrate() == n
    for k, v in trainer.model.state_dict().items():
        torch.testing.assert_close(v, first[k], rtol=1e-6, atol=1e-7)
    plain = Trainer(store, ModelConfig(**TINY, crop_stats=False),
                    TrainConfig(batch_size=8, lr=1e-3, min_records=4, seed=0), "cpu")
    plain.train_steps(1)
    assert plain.calibrate() == 0


def test_local_contrast_keeps_the_texture_and_drops_the_colour_and_the_light():
    """The contrast view of a textured surface is the same whatever its colour or
    brightness (PyBullet multiplies a texture by the body's colour), a flat surface is
    uniform 128, and a darker pit reads below 128 with the same depth on a dark and a light
    object."""
    rng = np.random.default_rng(3)
    texture = np.clip(200 + 20 * rng.standard_normal((96, 96)), 0, 255)
    texture[40:44, 40:44] = 120  # a pit
    views = []
    for rgb in ((0.9, 0.2, 0.1), (0.2, 0.5, 0.9), (0.35, 0.35, 0.3)):
        img = np.clip(texture[:, :, None] * np.asarray(rgb), 0, 255).astype(np.uint8)
        out = data.local_contrast(img)
        assert out.shape == (96, 96, 3) and out.dtype == np.uint8
        assert np.array_equal(out[:, :, 0], out[:, :, 2])  # grey
        views.append(out[:, :, 0].astype(int))
    for other in views[1:]:
        assert np.abs(other - views[0]).mean() < 1.5
    assert views[0][41, 41] < 60  # the pit: 40 % darker than around it, gain 3
    flat = np.full((96, 96, 3), (30, 160, 90), np.uint8)
    assert np.abs(data.local_contrast(flat).astype(int) - 128).max() <= 1
