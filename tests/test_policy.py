"""Model-guided selection (curious_robot.learning.policy): valid actions for every task and
policy, the argmax / most-uncertain bin on checkpoints whose grasp head is biased by hand,
the patch translation convention, reload of a newer checkpoint, and the time per select."""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import torch

from curious_robot import tasks as registry
from curious_robot.learning import data
from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.checkpoint import load_checkpoint, save_checkpoint
from curious_robot.learning.networks import N_ANGLE_BINS, CuriousNet, ModelConfig
from curious_robot.learning.policy import Policy, load_policy, shifted_patches
from curious_robot.learning.predict import Predictor
from curious_robot.learning.train import TrainConfig, Trainer
from curious_robot.selection import Target, Workspace
from curious_robot.store import ReplayStore

pytestmark = pytest.mark.unit

torch.set_num_threads(1)
SIZE = 64
PATCH_SIZE = 0.16  # m across the patch, as the simulated world's
WS = Workspace()
GRASP_OUT = "heads.grasp.net.7"  # the grasp head's last Linear (18 logits)


@pytest.fixture(scope="module")
def base_state(tmp_path_factory):
    """A tiny checkpoint state trained one step on a synthetic store (has poke stats)."""
    folder = tmp_path_factory.mktemp("policy")
    records = synthetic_interactions(8, np.random.default_rng(0), size=SIZE)
    with ReplayStore(folder / "replay.db") as store:
        for rec in records:
            store.add(rec)
        trainer = Trainer(store, ModelConfig(input_size=SIZE, width=0.25),
                          TrainConfig(batch_size=4, min_records=4, seed=0), "cpu")
        assert trainer.train_steps(1)
        trainer.save(folder / "base.pt")
    return load_checkpoint(folder / "base.pt")


def biased(base_state, path, logits, step: int = 1):
    """Write a checkpoint whose grasp head outputs ``logits`` whatever the image."""
    state = copy.deepcopy(base_state)
    state["model"][f"{GRASP_OUT}.weight"].zero_()
    state["model"][f"{GRASP_OUT}.bias"].copy_(torch.tensor(logits, dtype=torch.float32))
    state["step"] = step
    save_checkpoint(path, {k: v for k, v in state.items() if k not in ("format", "version")})
    return path


def patch(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((128, 128, 3), 90, np.uint8)
    img[40:88, 56:72] = rng.integers(0, 255, size=3)
    return img


def one_hot(b: int, hi: float = 3.0, lo: float = -3.0) -> list[float]:
    return [hi if i == b else lo for i in range(N_ANGLE_BINS)]


def test_model_picks_the_argmax_bin(base_state, tmp_path):
    path = biased(base_state, tmp_path / "ckpt.pt", one_hot(7))
    pol = load_policy("grasp", path, "model")
    t = Target(0.05, -0.03, 0.3, 0.08, 0.03)
    sel = pol.select(t, patch(), PATCH_SIZE, np.random.default_rng(0), WS)
    assert data.angle_to_bin(sel.action[2]) == 7
    assert sel.action[2] == pytest.approx(math.radians(70))
    assert sel.action[:2] == [t.x, t.y]  # all candidates tie: the centroid wins
    assert sel.score == pytest.approx(1 / (1 + math.exp(-3)), abs=1e-5)
    assert sel.policy == "model"
    # another bin, to be sure the choice follows the head
    path2 = biased(base_state, tmp_path / "ckpt2.pt", one_hot(15))
    sel2 = load_policy("grasp", path2, "model").select(t, patch(), PATCH_SIZE,
                                                       np.random.default_rng(0), WS)
    assert data.angle_to_bin(sel2.action[2]) == 15


def test_curious_picks_the_most_uncertain_bin(base_state, tmp_path):
    logits = [4.0] * N_ANGLE_BINS
    logits[4], logits[12], logits[16] = -0.5, 0.1, -4.0  # p = 0.38, 0.52, 0.02
    path = biased(base_state, tmp_path / "ckpt.pt", logits)
    t = Target(0.0, 0.0)
    rng = np.random.default_rng(0)
    sel = load_policy("grasp", path, "curious").select(t, patch(), PATCH_SIZE, rng, WS)
    assert data.angle_to_bin(sel.action[2]) == 12
    assert sel.policy == "curious" and sel.score == pytest.approx(1.0, abs=0.01)  # ~1 bit
    greedy = load_policy("grasp", path, "model").select(t, patch(), PATCH_SIZE, rng, WS)
    assert data.angle_to_bin(greedy.action[2]) not in (4, 12, 16)
    # inspect needs the object in hand: the curious policy is greedy there
    path7 = biased(base_state, tmp_path / "ckpt7.pt", one_hot(7, lo=0.0))
    pol = load_policy("grasp", path7, "curious")
    assert data.angle_to_bin(pol.select(t, patch(), PATCH_SIZE, rng, WS).action[2]) != 7
    insp = pol.select(t, patch(), PATCH_SIZE, rng, WS, task="inspect")
    assert data.angle_to_bin(insp.action[2]) == 7
    assert data.angle_to_bin(load_policy("inspect", path7, "curious").select(
        t, patch(), PATCH_SIZE, rng, WS).action[2]) == 7


def test_shifted_patch_recentres_the_grasp_point():
    """Columns +x, rows -y: a mark at table offset (dx, dy) lands in the centre."""
    img = np.zeros((128, 128, 3), np.uint8)
    dx, dy = 0.02, 0.01
    ppm = 128 / PATCH_SIZE
    col, row = 63.5 + dx * ppm, 63.5 - dy * ppm
    img[int(round(row)) - 2:int(round(row)) + 2, int(round(col)) - 2:int(round(col)) + 2] = 255
    for size in (128, 64):
        out = shifted_patches(img, PATCH_SIZE, [(0.0, 0.0), (dx, dy)], size)
        r, c = np.argwhere(out[1][:, :, 0] > 100).mean(axis=0)
        centre = (size - 1) / 2
        assert abs(r - centre) < 1.5 and abs(c - centre) < 1.5, (size, r, c)
        r0, c0 = np.argwhere(out[0][:, :, 0] > 100).mean(axis=0)
        assert c0 > centre + 5 and r0 < centre - 2  # unshifted: right of and above centre


def test_shifted_patch_for_a_cropping_model_keeps_the_cameras_resolution():
    """With view "crop" (or "contrast") the patch is shifted at its own 128 px (the
    predictor crops the centre afterwards): the mark at (dx, dy) lands in the centre at
    full resolution."""
    img = np.zeros((128, 128, 3), np.uint8)
    dx, dy = -0.015, 0.02
    ppm = 128 / PATCH_SIZE
    col, row = 63.5 + dx * ppm, 63.5 - dy * ppm
    img[int(round(row)) - 1:int(round(row)) + 1, int(round(col)) - 1:int(round(col)) + 1] = 255
    out = shifted_patches(img, PATCH_SIZE, [(dx, dy)], 64, "crop")[0]
    assert np.array_equal(out, shifted_patches(img, PATCH_SIZE, [(dx, dy)], 64, "contrast")[0])
    assert out.shape == (128, 128, 3)
    r, c = np.argwhere(out[:, :, 0] > 100).mean(axis=0)
    assert abs(r - 63.5) < 1.0 and abs(c - 63.5) < 1.0
    assert (out[:, :, 0] > 100).sum() == 4  # a 2 x 2 mark, not scaled
    centre = data.center_crop(out, 64)
    assert (centre[:, :, 0] > 100).sum() == 4


@pytest.mark.parametrize("policy", ["model", "curious"])
def test_every_task_gives_valid_in_workspace_actions(base_state, tmp_path, policy):
    path = tmp_path / "base.pt"
    save_checkpoint(path, {k: v for k, v in base_state.items()
                           if k not in ("format", "version")})
    ws = Workspace(-0.2, 0.2, -0.2, 0.2)
    rng = np.random.default_rng(1)
    for task in ("grasp", "inspect", "poke", "push"):
        pol = load_policy(task, path, policy)
        for t in (Target(0.0, 0.01, 0.4, 0.08, 0.04), Target(0.199, -0.2, 2.0, 0.1, 0.05),
                  Target(0.25, 0.3)):  # the last one outside: clipped
            sel = pol.select(t, patch(), PATCH_SIZE, rng, ws)
            assert len(sel.action) == len(registry.get(task).action_fields), (task, sel.action)
            assert all(math.isfinite(v) for v in sel.action)
            a = sel.action
            points = [a[0:2], a[2:4]] if task == "push" else [a[0:2]]
            for x, y in points:
                assert ws.xmin <= x <= ws.xmax and ws.ymin <= y <= ws.ymax, (task, a)
            if task in ("grasp", "inspect"):
                assert 0.0 <= sel.action[2] < math.pi
                assert math.hypot(sel.action[0] - min(t.x, 0.2),
                                  sel.action[1] - max(min(t.y, 0.2), -0.2)) <= 0.0081
            assert sel.policy == policy and math.isfinite(sel.score)


def test_curious_poke_takes_the_largest_spread(base_state, tmp_path):
    path = tmp_path / "base.pt"
    save_checkpoint(path, {k: v for k, v in base_state.items()
                           if k not in ("format", "version")})
    pol = load_policy("poke", path, "curious")
    t = Target(0.02, 0.03, yaw=0.0, length=0.08, width=0.04)
    offsets = pol.poke_candidates(t, WS)
    assert offsets[0] == (0.0, 0.0) and len(offsets) == 5
    assert max(abs(dx) for dx, _ in offsets) == pytest.approx(0.015)  # capped
    # real MC dropout: shape, reproducible with a seed
    imgs = shifted_patches(patch(), PATCH_SIZE, offsets, SIZE)
    sd = pol.predictor.poke_uncertainty_batch(imgs, 8, seed=3)
    assert sd.shape == (5, 1) and (sd >= 0).all() and sd.sum() > 0
    assert np.array_equal(sd, pol.predictor.poke_uncertainty_batch(imgs, 8, seed=3))
    # the choice follows the spread
    fake = np.zeros((5, 1))
    fake[3] = [0.5]
    pol.predictor.poke_uncertainty_batch = lambda *a, **k: fake
    sel = pol.select(t, patch(), PATCH_SIZE, np.random.default_rng(0), WS)
    assert sel.action == pytest.approx([t.x + offsets[3][0], t.y + offsets[3][1]])
    assert sel.score == pytest.approx(0.5)
    # model: the centroid
    sel = load_policy("poke", path, "model").select(t, patch(), PATCH_SIZE,
                                                    np.random.default_rng(0), WS)
    assert sel.action == [t.x, t.y]


def test_poke_without_poke_data_falls_back_to_random(base_state, tmp_path):
    state = copy.deepcopy(base_state)
    state["stats"].pop("poke")
    path = tmp_path / "nopoke.pt"
    save_checkpoint(path, {k: v for k, v in state.items() if k not in ("format", "version")})
    sel = load_policy("poke", path, "curious").select(Target(0.0, 0.0), patch(), PATCH_SIZE,
                                                      np.random.default_rng(0), WS)
    assert sel.policy == "random" and len(sel.action) == 2


def test_reload_on_a_newer_checkpoint(base_state, tmp_path):
    path = biased(base_state, tmp_path / "checkpoint.pt", one_hot(7), step=1)
    pol = load_policy("grasp", tmp_path, "model")  # a training folder works too
    rng = np.random.default_rng(0)
    t = Target(0.0, 0.0)
    assert data.angle_to_bin(pol.select(t, patch(), PATCH_SIZE, rng, WS).action[2]) == 7
    biased(base_state, path, one_hot(12), step=2)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a coarse clock
    assert data.angle_to_bin(pol.select(t, patch(), PATCH_SIZE, rng, WS).action[2]) == 12
    assert pol.step == 2


def test_bad_arguments(base_state, tmp_path):
    path = biased(base_state, tmp_path / "c.pt", one_hot(1))
    with pytest.raises(ValueError, match="policy"):
        load_policy("grasp", path, "random")
    with pytest.raises(ValueError, match="task"):
        load_policy("crash", path, "model")
    pol = load_policy("grasp", path, "model")
    with pytest.raises(ValueError, match="uint8"):
        pol.select(Target(0, 0), patch().astype(np.float32), PATCH_SIZE,
                   np.random.default_rng(0), WS)


def test_select_serves_every_arm_task_at_96_px():
    """Every arm task of the registry gets an action in its own layout from both model
    policies (select speed is a benchmark: ``curious-robot bench learner``, select ms)."""
    model = CuriousNet(ModelConfig(input_size=96, width=0.5))
    stats = {"poke": data.NormStats([5000.0, -20.0], [4000.0, 30.0], 10)}
    rng = np.random.default_rng(0)
    t = Target(0.0, 0.0, 0.2, 0.08, 0.04)
    for task in registry.names("arm"):
        for policy in ("model", "curious"):
            sel = Policy(task, Predictor(model, stats), policy, reload=False).select(
                t, patch(), PATCH_SIZE, rng, WS)
            assert len(sel.action) == len(registry.get(task).action_fields), (task, policy)
            assert all(math.isfinite(v) for v in sel.action)


def test_the_predictor_runs_channels_last_and_predicts_what_the_plain_model_does():
    """The selectors' model runs with channels-last convolutions (faster on a CPU); its
    grasp scores and features are the plain model's up to float rounding."""
    from curious_robot import paths

    state = load_checkpoint(paths.shipped_model("arm"))
    plain = CuriousNet(ModelConfig.from_dict(state["config"]["model"]))
    plain.load_state_dict(state["model"])
    plain.eval()
    pr = Predictor.from_checkpoint(paths.shipped_model("arm"))
    conv1 = pr.model.root.stages["conv1"][0].weight
    assert conv1.is_contiguous(memory_format=torch.channels_last)
    patches = [patch(seed) for seed in range(3)]
    x = data.to_tensors({"x": data.stack(patches, pr.input_size, "resize")}, "cpu")["x"]
    x = x.contiguous()  # the plain layout throughout
    with torch.no_grad():
        grasp = torch.sigmoid(plain.grasp(x)).numpy()
        conv5 = plain.root(x, upto="conv5").numpy()
    np.testing.assert_allclose(pr.grasp_scores_batch(patches), grasp, rtol=0, atol=1e-5)
    features = pr.features(patches, "conv5")
    assert features.flags.c_contiguous  # numpy's own layout, whatever torch's was
    np.testing.assert_allclose(features, conv5, rtol=1e-4, atol=1e-4)
