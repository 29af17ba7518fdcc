"""The other self-supervised signals (issue 9): pretext targets on tiny hand-made inputs,
the exactness of the input folding / half assembly, and the checkpoint path to eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from curious_robot.evaluation.features import extract, load_root, to_input
from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.networks import LAYERS, ModelConfig, RootNet
from curious_robot.pretext import colorization as col
from curious_robot.pretext import context as ctx
from curious_robot.pretext import splitbrain as sb

pytestmark = pytest.mark.unit
SIZE = 64


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _randomise_bn(root: RootNet, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics and affine parameters (as after training)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in root.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    root.eval()


# -- context prediction -----------------------------------------------------------------


def _grid_image() -> np.ndarray:
    """A canvas whose 3 x 3 grid cells hold the values 10 * (index + 1), gaps 0."""
    img = np.zeros((ctx.CANVAS, ctx.CANVAS, 3), np.uint8)
    for r in (-1, 0, 1):
        for c in (-1, 0, 1):
            y, x = ctx.cell_origin(r, c)
            img[y:y + ctx.PATCH, x:x + ctx.PATCH] = 10 * ((r + 1) * 3 + (c + 1) + 1)
    return img


def test_context_patch_pair_label_is_the_neighbour_position():
    img = _grid_image()
    cell_value = {(r, c): 10 * ((r + 1) * 3 + (c + 1) + 1) for r in (-1, 0, 1)
                  for c in (-1, 0, 1)}
    assert ctx.OFFSETS[0] == (-1, -1) and ctx.OFFSETS[4] == (0, 1)
    for label, offset in enumerate(ctx.OFFSETS):
        a, b = ctx.patch_pair(img, label)  # no jitter
        assert a.shape == b.shape == (ctx.PATCH, ctx.PATCH, 3)
        assert (a == cell_value[(0, 0)]).all()  # the centre, whole, no gap pixels
        assert (b == cell_value[offset]).all()  # the label's neighbour
    # the gap separates neighbours: between cells there are GAP px of 0
    y, x = ctx.cell_origin(0, 0)
    assert (img[y, x - ctx.GAP:x] == 0).all()
    # jitter moves a patch by at most JITTER px, so it stays mostly inside its cell
    rng = np.random.default_rng(0)
    for _ in range(20):
        label = int(rng.integers(8))
        _, b = ctx.patch_pair(img, label, rng)
        share = (b[..., 0] == cell_value[ctx.OFFSETS[label]]).mean()
        assert share >= ((ctx.PATCH - ctx.JITTER) / ctx.PATCH) ** 2 - 1e-9


def test_context_batch_drops_colour_per_patch():
    rng = np.random.default_rng(1)
    img = np.zeros((128, 128, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 30
    b = ctx.context_batch([img] * 6, SIZE, rng)
    assert b["a"].shape == (6, SIZE, SIZE, 3) and b["label"].shape == (6,)
    assert set(b["label"].tolist()) <= set(range(8))
    for patch in np.concatenate([b["a"], b["b"]]):
        assert (patch[..., 0] == patch[..., 1]).all() and (patch[..., 1] == patch[..., 2]).all()
        assert patch[0, 0, 0] in (200, 100, 30)  # one of the channels, replicated


# -- colorization targets -----------------------------------------------------------------


def test_ab_bins_are_the_in_gamut_grid_cells():
    bins = col.ab_bins()
    assert len(bins) == col.n_ab_bins() == 257  # documented in colorization.py
    assert (bins % col.GRID == 0).all()
    assert any((bins == [0, 0]).all(1))  # grey
    # sRGB red (a 80, b 67) is in gamut; a = -110, b = 110 (no such colour) is not
    assert any((bins == [80, 70]).all(1))
    assert not any((bins == [-110, 110]).all(1))


def test_soft_encoding_and_annealed_mean_decoding():
    bins = col.ab_bins()
    i = int(np.nonzero((bins == [20, -30]).all(1))[0][0])
    z = col.soft_encode(np.array([[20.0, -30.0]]))[0]
    assert z.shape == (len(bins),) and abs(z.sum() - 1) < 1e-6
    assert np.count_nonzero(z) == 5 and z.argmax() == i
    # the centre itself (distance 0) and its 4 grid neighbours (distance 10), sigma 5:
    w_near = np.exp(-100 / (2 * 25.0))
    assert np.isclose(z[i], 1 / (1 + 4 * w_near), atol=1e-5)
    assert np.allclose(np.sort(z[z > 0])[:4], w_near / (1 + 4 * w_near), atol=1e-5)
    # a point between two bins: the two nearest share the most mass equally
    z2 = col.soft_encode(np.array([[25.0, -30.0]]))[0]
    top = np.sort(z2)[-2:]
    assert np.isclose(top[0], top[1])
    # decoding: T -> 1 is the mean of the distribution (the point for a symmetric target),
    # T = 0.38 sharpens toward the mode
    logits = torch.from_numpy(np.log(z + 1e-12)).view(1, -1, 1, 1)
    b_t = torch.from_numpy(bins)
    mean = col.annealed_mean(logits, b_t, temperature=1.0)[0, :, 0, 0].numpy()
    assert np.allclose(mean, [20, -30], atol=1e-3)
    logits2 = torch.from_numpy(np.log(z2 + 1e-12)).view(1, -1, 1, 1)
    dec = col.annealed_mean(logits2, b_t)[0, :, 0, 0].numpy()
    # (the 5th nearest is one of 4 tied cells, so the target is only nearly symmetric)
    assert np.allclose(dec, [25, -30], atol=0.1)
    one_hot = torch.full((1, len(bins), 1, 1), -30.0)
    one_hot[0, i] = 30.0
    assert np.allclose(col.annealed_mean(one_hot, b_t)[0, :, 0, 0].numpy(), [20, -30])


def test_rebalancing_weights_by_hand():
    far = np.array([[0.0, 0.0], [100.0, 0.0]], np.float32)  # no smoothing across 100 units
    w = col.rebalance_weights(np.array([3.0, 1.0]), far)
    # p = (.75, .25); mixed with uniform: (.625, .375); 1 / that = (1.6, 2.667);
    # expected weight (.75 * 1.6 + .25 * 2.667 = 1.8667) scaled to 1:
    assert np.allclose(w, [1.6 / 1.86667, 2.66667 / 1.86667], atol=1e-4)
    assert np.isclose((np.array([0.75, 0.25]) * w).sum(), 1.0)
    # the real bins: rare colours weigh more, and the expected weight is 1
    counts = np.zeros(col.n_ab_bins())
    grey = int(np.nonzero((col.ab_bins() == [0, 0]).all(1))[0][0])
    counts[grey] = 1000.0
    counts[0] = 1.0
    w = col.rebalance_weights(counts)
    assert w[grey] < 1.0 < w[0] and w.argmin() == grey
    d2 = ((col.ab_bins()[:, None] - col.ab_bins()[None]) ** 2).sum(-1)
    p = np.exp(-d2 / 50.0) @ (counts / counts.sum())
    assert np.isclose((p / p.sum() * w).sum(), 1.0, atol=1e-5)
    # uniform data (no smoothing) gives weight 1 everywhere
    assert np.allclose(col.rebalance_weights(np.ones(len(far)), far), 1.0)


def test_rebalanced_cross_entropy_weights_pixels():
    logits = torch.zeros(1, 3, 1, 2)
    target = torch.zeros(1, 3, 1, 2)
    target[0, 0, 0, 0] = 1.0
    target[0, 1, 0, 1] = 1.0
    ce = col.rebalanced_ce(logits, target, torch.tensor([[[1.0, 3.0]]]))
    assert torch.isclose(ce, torch.tensor(np.log(3.0) * (1 + 3) / 2, dtype=torch.float32))


# -- folding and assembly ------------------------------------------------------------------


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_folded_root_on_rgb_equals_trained_root_on_grey(norm):
    torch.manual_seed(0)
    cfg = ModelConfig(input_size=SIZE, width=0.125, norm=norm)
    root = RootNet(cfg)
    _randomise_bn(root)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    A, b = col.gray_affine()
    u = col.affine_input(images, A, b)
    grey = np.repeat((images.astype(np.float64) @ col.LUMA)[..., None], 3, -1)
    assert torch.allclose(u, to_input(grey.astype(np.float32).round().astype(np.uint8)
                                      .astype(np.uint8), SIZE), atol=0.03)
    with torch.no_grad():
        want = root.features(u)
        col.fold_affine_input(root, A, b)
        got = root.features(to_input(images, SIZE))
    for name in LAYERS:
        assert torch.allclose(got[name], want[name], atol=1e-4, rtol=1e-4), name


def test_split_brain_assembly_concatenates_the_halves():
    torch.manual_seed(0)
    cfg = ModelConfig(input_size=SIZE, width=0.25)
    net = sb.SplitBrainNet(cfg)
    _randomise_bn(net.grey, 1)
    _randomise_bn(net.chroma, 2)
    images = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    with torch.no_grad():
        fg = net.grey.features(col.affine_input(images, *col.gray_affine()))
        fc = net.chroma.features(col.affine_input(images, *sb.chroma_affine()))
        col.fold_affine_input(net.grey, *col.gray_affine())
        col.fold_affine_input(net.chroma, *sb.chroma_affine())
        full = sb.assemble(net.grey, net.chroma, cfg).eval()
        got = full.features(to_input(images, SIZE))
    for name in LAYERS:
        assert torch.allclose(got[name], torch.cat([fg[name], fc[name]], 1), atol=1e-4,
                              rtol=1e-4), name
    with pytest.raises(ValueError, match="norm"):
        sb.SplitBrainNet(ModelConfig(input_size=SIZE, width=0.25, norm="lrn"))


def test_table_lookup_targets_match_the_exact_ones():
    rng = np.random.default_rng(0)
    ab = rng.uniform(-100, 100, (4, 6, 6, 2)).astype(np.float32)
    fast, exact = col.soft_encode_fast(ab), col.soft_encode(ab)
    assert fast.shape == exact.shape
    np.testing.assert_allclose(fast.sum(-1), 1.0, atol=1e-5)
    assert np.abs(fast - exact).max() < 0.1
    assert (col.nearest_bin_fast(ab) == col.nearest_bin(ab)).mean() > 0.9
    on_grid = np.array([[[0.0, 0.0], [20.5, -37.0], [-128.0, 127.5]]], np.float32)
    np.testing.assert_allclose(col.soft_encode_fast(on_grid), col.soft_encode(on_grid),
                               atol=1e-5)
    np.testing.assert_array_equal(col.nearest_bin_fast(on_grid), col.nearest_bin(on_grid))


def test_l_bins():
    assert sb.l_bins(np.array([0.0, 1.99, 2.0, 99.9, 100.0])).tolist() == [0, 0, 1, 49, 49]


# -- end to end: store -> pretext checkpoint -> eval root / colorize ------------------------


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    from curious_robot.store import ReplayStore

    path = tmp_path_factory.mktemp("pretext") / "s.db"
    with ReplayStore(path) as store:
        for rec in synthetic_interactions(3, np.random.default_rng(0), size=SIZE):
            store.add(rec)
    return path


@pytest.mark.parametrize("kind", ["color", "context", "splitbrain"])
def test_pretext_checkpoint_loads_as_a_root_and_resumes(tmp_path, store_path, kind):
    from curious_robot.pretext.train import PretextConfig, train_pretext

    cfg = PretextConfig(kind=kind, batch_size=4, rebalance_images=8)
    s = train_pretext(store_path, tmp_path / kind, kind, 2, SIZE, 0.25, cfg)
    assert s["step"] == 2 and s["losses"] and all(np.isfinite(list(s["losses"].values())))
    root = load_root(tmp_path / kind / "checkpoint.pt")
    assert root.cfg.input_size == SIZE and root.cfg.width == 0.25
    feats = extract(root, np.zeros((2, SIZE, SIZE, 3), np.uint8), ("conv3", "fc6"))
    assert feats["fc6"].shape == (2, root.fc6_dim)
    s = train_pretext(store_path, tmp_path / kind, kind, 3, SIZE, 0.25, cfg)
    assert s["step"] == 3
    if kind != "context":  # colour panels in TensorBoard, at the end of each run
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(tmp_path / kind / "tb"), size_guidance={"images": 0})
        acc.Reload()
        panels = acc.Images("panels/colorization")
        assert [e.step for e in panels] == [2, 3] and panels[0].height == 2 * 128


@pytest.mark.parametrize("command", [["pretext", "--kind", "context"], ["autoencoder"]])
def test_image_training_commands_print_json_resume_and_refuse_a_missing_store(
        tmp_path, store_path, command, capsys):
    from curious_robot.cli import main

    out = tmp_path / "run"
    args = command + ["--store", str(store_path), "--out", str(out), "--input-size", str(SIZE),
                      "--width", "0.25", "--batch-size", "4", "--json"]
    assert main(args + ["--steps", "2"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["step"] == 2 and (out / "checkpoint.pt").is_file()
    assert main(args + ["--steps", "3"]) == 0  # resumes
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["step"] == 3
    # the shared loop's TensorBoard files: each step's loss once, panels where there are
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tb"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    loss = "loss/autoencoder" if command == ["autoencoder"] else "loss/context"
    assert [e.step for e in acc.Scalars(loss)] == [1, 2, 3]
    images = acc.Tags()["images"]
    assert images == (["panels/reconstruction"] if command == ["autoencoder"] else [])
    missing = [a if a != str(store_path) else str(tmp_path / "none.db") for a in args]
    assert main(missing + ["--steps", "1"]) == 2
    assert "none.db: no such file" in capsys.readouterr().err


def test_colorize_command_writes_input_grey_colour(tmp_path, store_path):
    import cv2

    from curious_robot.cli import main
    from curious_robot.pretext.train import PretextConfig, train_pretext

    cfg = PretextConfig(kind="color", batch_size=4, rebalance_images=8)
    train_pretext(store_path, tmp_path / "c", "color", 1, SIZE, 0.25, cfg)
    img = np.zeros((40, 50, 3), np.uint8)
    img[:, :25] = (200, 30, 30)
    img[:, 25:] = (30, 30, 200)
    cv2.imwrite(str(tmp_path / "in.png"), img)
    out = tmp_path / "out.png"
    assert main(["colorize", str(tmp_path / "in.png"), "--checkpoint",
                 str(tmp_path / "c" / "checkpoint.pt"), "--out", str(out)]) == 0
    panel = cv2.imread(str(out))
    assert panel.shape == (40, 3 * 50 + 8, 3)
    assert (panel[:, :50] == img).all()
    grey = panel[:, 54:104].astype(int)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 2  # grey: no colour
    assert main(["colorize", str(tmp_path / "in.png"), "--checkpoint",
                 str(tmp_path / "nope.pt")]) == 1
    # split-brain's brightness half is a colour model too; context has none
    for kind, code in (("splitbrain", 0), ("context", 1)):
        cfg = PretextConfig(kind=kind, batch_size=4, rebalance_images=8)
        train_pretext(store_path, tmp_path / kind, kind, 1, SIZE, 0.25, cfg)
        assert main(["colorize", str(tmp_path / "in.png"), "--checkpoint",
                     str(tmp_path / kind / "checkpoint.pt"), "--out", str(out)]) == code


def test_reproduce_has_a_row_and_a_train_command_per_signal(tmp_path, monkeypatch):
    import subprocess

    from curious_robot.evaluation import reproduce

    assert {"context", "colorization", "splitbrain"} <= set(reproduce.VARIANTS)
    seen = []

    def fake_run(cmd, what):
        seen.append(cmd[3:])
        return subprocess.CompletedProcess(cmd, 0, stdout='{"step": 20}\n')

    monkeypatch.setattr(reproduce, "_run", fake_run)
    for name, kind in (("context", "context"), ("colorization", "color"),
                       ("splitbrain", "splitbrain")):
        tasks = reproduce.VARIANTS[name][1]
        info = reproduce.stage_train(name, tasks, tmp_path / "s.db", tmp_path / name, 20, 1)
        assert info["steps"] == 20
        assert seen[-1][:3] == ["pretext", "--kind", kind] and "--steps" in seen[-1]
    lab = {L: {"nn_accuracy": 0.4, "linear_accuracy": 0.5} for L in LAYERS}
    ret = {L: {"recall_at_1": 0.2, "recall_at_5": 0.6} for L in LAYERS}
    results = {n: {"classification": lab, "retrieval": ret} for n in reproduce.VARIANTS}
    tasks = {t: {"train": 1, "held_out": 0} for t in ("grasp", "push", "poke", "inspect")}
    summary = {"scale": 0.05, "steps": 20, "finished": 0.0, "minutes": 1.0,
               "store": {"tasks": tasks},
               "evalset": {"n_objects": 5, "views": 3, "classes": ["a", "b", "c"]}}
    text = reproduce.render_table(summary, results, "conv3")
    assert "Table 3" in text
    for name in ("context", "colorization", "splitbrain"):
        # no all-objects NN in these fake results: "-", then split NN, linear, R@1, R@5
        assert (f"| {reproduce.VARIANTS[name][0]} | - | - | - | - | 0.400 | 0.500 | 0.200 | "
                "0.600 |") in text
