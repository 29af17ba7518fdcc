"""Evaluation (issue 6): feature extraction shapes, the image-folder split, the metrics on
tiny folders with known answers, corrupt and empty inputs, the eval command line and the
auto-encoder baseline's checkpoint."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest
import torch

from curious_robot.evaluation import evaluate, folders, metrics
from curious_robot.evaluation.features import extract, feature_dims, load_root, random_root
from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.networks import LAYERS, ModelConfig
from curious_robot.learning.train import TrainConfig, Trainer
from curious_robot.store import ReplayStore

pytestmark = pytest.mark.unit

torch.set_num_threads(1)
SIZE = 64
TINY = dict(input_size=SIZE, width=0.125, fc6_dim=512, fc7_dim=256, head_dim=256)
COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


def _write(path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _colour_image(colour, rng, size=40) -> np.ndarray:
    img = np.full((size, size, 3), colour, np.int16) + rng.integers(-20, 21, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def colour_folder(tmp_path):
    """Three classes of noisy solid colours, 6 images each (PNG and JPEG mixed)."""
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        for i in range(6):
            _write(tmp_path / "f" / name / f"{i}.{'png' if i % 2 else 'jpg'}",
                   _colour_image(colour, rng))
    return tmp_path / "f"


# -- features -----------------------------------------------------------------------------


def test_extract_shapes_every_layer():
    root = random_root(SIZE, 0.125)
    images = np.random.default_rng(0).integers(0, 256, (5, 50, 70, 3), dtype=np.uint8)
    feats = extract(root, images, LAYERS, batch_size=2)
    dims = feature_dims(root)
    assert set(feats) == set(LAYERS)
    for layer in LAYERS:
        assert feats[layer].shape == (5, dims[layer])
        assert feats[layer].dtype == np.float32
    c = root.cfg.channels
    assert dims["conv1"] == c[0] * 6 * 6  # 14 x 14 pooled to the 6 x 6 grid
    assert dims["conv5"] == c[4] * 3 * 3  # 3 x 3 kept
    assert dims["fc6"] == root.fc6_dim
    # eval mode: the same image gives the same features alone or in a batch
    alone = extract(root, images[:1], ("fc6",))["fc6"]
    np.testing.assert_allclose(alone, feats["fc6"][:1], rtol=1e-4, atol=1e-5)
    assert extract(root, images[:0], ("pool5",))["pool5"].shape == (0, dims["pool5"])
    with pytest.raises(ValueError, match="unknown layer"):
        extract(root, images, ("fc7",))


def test_random_root_is_train_step_zero_and_checkpoint_root_loads(tmp_path):
    records = synthetic_interactions(6, np.random.default_rng(0), size=SIZE)
    with ReplayStore(tmp_path / "s.db") as store:
        for rec in records:
            store.add(rec)
        trainer = Trainer(store, ModelConfig(input_size=SIZE, width=0.125),
                          TrainConfig(seed=3, min_records=2, batch_size=4))
        start = {k: v.clone() for k, v in trainer.model.root.state_dict().items()}
        trainer.train_steps(1)
        trainer.save(tmp_path / "ck.pt")
    rand = random_root(SIZE, 0.125, seed=3)
    for k, v in rand.state_dict().items():
        torch.testing.assert_close(v, start[k])
    loaded = load_root(tmp_path / "ck.pt")
    assert not loaded.training
    for k, v in trainer.model.root.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    assert all(not p.requires_grad for p in loaded.parameters())


# -- folders and split --------------------------------------------------------------------


def test_stratified_split_is_fixed_and_per_class():
    labels = [0] * 10 + [1] * 4 + [2]
    tr, te = folders.stratified_split(labels, 0.3, seed=0)
    tr2, te2 = folders.stratified_split(labels, 0.3, seed=0)
    np.testing.assert_array_equal(te, te2)
    np.testing.assert_array_equal(tr, tr2)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(15))
    lab = np.array(labels)
    assert (lab[te] == 0).sum() == 3 and (lab[te] == 1).sum() == 1
    assert 14 in tr  # a single item stays in training
    _, te3 = folders.stratified_split(labels, 0.3, seed=1)
    assert set(te3) != set(te)


def test_load_split_flat_and_presplit(colour_folder, tmp_path):
    s = folders.load_split(colour_folder)
    assert s.classes == ["blue", "green", "red"] and not s.presplit
    assert (s.n_train, s.n_test) == (12, 6)
    assert sorted(s.test_labels) == [0, 0, 1, 1, 2, 2]
    assert not set(s.train_paths) & set(s.test_paths)
    rng = np.random.default_rng(1)
    for part, n in (("train", 3), ("test", 1)):
        for name in ("a", "b"):
            for i in range(n):
                _write(tmp_path / "p" / part / name / f"{i}.png", _colour_image((9, 9, 9), rng))
    (tmp_path / "p" / "train" / "a" / "notes.txt").write_text("not an image")
    s = folders.load_split(tmp_path / "p")
    assert s.presplit and (s.n_train, s.n_test) == (6, 2) and s.classes == ["a", "b"]


def test_read_image_grey_alpha_and_16_bit(tmp_path):
    grey = np.arange(100, dtype=np.uint8).reshape(10, 10)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    cv2.imwrite(str(tmp_path / "a.png"), np.full((10, 10, 4), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "d.png"), np.full((10, 10), 65535, np.uint16))
    assert folders.read_image(tmp_path / "g.png").shape == (10, 10, 3)
    assert folders.read_image(tmp_path / "a.png", 16).shape == (16, 16, 3)
    assert folders.read_image(tmp_path / "d.png").max() == 255


def test_corrupt_image_names_the_file(colour_folder):
    bad = colour_folder / "red" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(folders.ImageFolderError, match="broken.png"):
        evaluate.classification(random_root(SIZE, 0.125), colour_folder, ("pool5",))
    (colour_folder / "red" / "empty.jpg").write_bytes(b"")
    with pytest.raises(folders.ImageFolderError, match="empty.jpg"):
        folders.read_image(colour_folder / "red" / "empty.jpg")


def test_empty_class_folder_is_skipped_with_a_warning(colour_folder, caplog):
    (colour_folder / "void").mkdir()
    (colour_folder / "void" / "readme.txt").write_text("no images here")
    with caplog.at_level(logging.WARNING):
        s = folders.load_split(colour_folder)
    assert "void" not in s.classes and len(s.classes) == 3
    assert any("void" in r.getMessage() and "skipped" in r.getMessage()
               for r in caplog.records)


def test_fewer_than_two_classes_is_an_error(tmp_path):
    _write(tmp_path / "only" / "one" / "0.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "only" / "empty").mkdir()
    with pytest.raises(folders.ImageFolderError, match="two class"):
        folders.load_split(tmp_path / "only")
    with pytest.raises(folders.ImageFolderError, match="no such folder"):
        folders.load_split(tmp_path / "missing")


# -- metrics ------------------------------------------------------------------------------


def test_nn_accuracy_and_recall_known_answers():
    train = np.array([[1, 0], [0, 1]], np.float32)
    test = np.array([[5, 1], [1, 4], [2, 2.1], [3, 0.1]], np.float32)  # cosine, not L2
    assert metrics.nn_accuracy(train, [0, 1], test, [0, 1, 0, 0]) == 0.75
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1]], np.float32)
    r = metrics.recall_at_k(x, [0, 0, 1, 1, 2], (1, 2))
    assert r == {1: 1.0, 2: 1.0}  # item 4 is alone: not a query
    r = metrics.recall_at_k(x, [0, 1, 0, 1, 2], (1, 3, 4))  # each query's match is far
    assert r == {1: 0.0, 3: 0.5, 4: 1.0}
    nb = metrics.cosine_neighbours(x, x, 2, exclude_self=True)
    assert nb[0].tolist() == [1, 4]


def test_nn_across_objects_and_standard_errors_known_answers():
    x = np.array([[1, 0], [1, 0], [1, 0.1], [0, 1]], np.float32)
    hits = metrics.nn_hits_across_groups(x, ["a", "a", "a", "b"], [0, 0, 1, 1])
    # item 1's twin (its own object) does not count; item 3 only finds object 0's "a"
    assert hits.tolist() == [True, True, True, False]
    assert metrics.group_standard_error([1, 1, 0, 0], [0, 0, 1, 1]) == pytest.approx(0.5)
    assert metrics.group_standard_error([1, 0, 1, 0], [0, 0, 1, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="two groups"):
        metrics.nn_hits_across_groups(x, [0, 0, 1, 1], [5, 5, 5, 5])
    y = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 1]], np.float32)
    queries, hits = metrics.recall_hits(y, [0, 1, 0, 1, 2], (1, 3))
    assert queries.tolist() == [0, 1, 2, 3]  # item 4's label has no other item
    assert hits[3].mean() == metrics.recall_at_k(y, [0, 1, 0, 1, 2], (3,))[3]
    assert (hits[1] <= hits[3]).all()


def test_paired_differences_known_answers():
    ids, means = metrics.group_means([1, 0, 1, 1, 0, 0], [7, 7, 3, 3, 9, 9])
    assert ids.tolist() == [3, 7, 9] and means.tolist() == [1.0, 0.5, 0.0]
    # a constant difference has no spread, however far apart the objects are
    assert metrics.paired_difference([0.9, 0.2, 0.5], [0.8, 0.1, 0.4]) == \
        pytest.approx((0.1, 0.0))
    d, se = metrics.paired_difference([1, 0, 1, 0], [0, 0, 0, 0])
    assert d == 0.5 and se == pytest.approx(np.std([1, 0, 1, 0], ddof=1) / 2)
    with pytest.raises(ValueError, match="equal-length"):
        metrics.paired_difference([1, 0], [1, 0, 1])


def test_linear_probe_separable_and_deterministic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    acc, wd = metrics.linear_probe(x[:40], y[:40], x[40:], y[40:])
    assert acc >= 0.9 and wd in metrics.PROBE_WEIGHT_DECAYS
    assert metrics.linear_probe(x[:40], y[:40], x[40:], y[40:]) == (acc, wd)


def test_classification_on_a_tiny_folder(colour_folder):
    root = random_root(SIZE, 0.125)
    rows = evaluate.classification(root, colour_folder, ("conv1", "pool5"))
    for layer in ("conv1", "pool5"):
        r = rows[layer]
        assert (r["n_train"], r["n_test"], r["layer"]) == (12, 6, layer)
        assert r["nn_accuracy"] == 1.0 and r["linear_accuracy"] == 1.0


def test_retrieval_and_neighbour_picture(colour_folder, tmp_path):
    root = random_root(SIZE, 0.125)
    r = evaluate.retrieval(root, colour_folder, ("conv1",))["conv1"]
    assert r["recall_at_1"] == 1.0 and r["recall_at_5"] == 1.0
    assert (r["n_images"], r["n_instances"]) == (18, 3)
    assert "per_instance" not in r
    classes = {n: n for n in ("blue", "green", "red")}
    both = evaluate.retrieval(root, colour_folder, ("conv1", "pool5"), classes=classes,
                              per_instance=("pool5",))
    assert "per_instance" not in both["conv1"]
    per = both["pool5"]["per_instance"]
    assert sorted(per["recall_at_1"]) == sorted(per["nn_accuracy_all"]) == sorted(classes)
    assert np.mean(list(per["recall_at_1"].values())) == \
        pytest.approx(both["pool5"]["recall_at_1"])  # every object has 6 views
    # each colour is its own class here: no *other* object shares it
    assert both["pool5"]["nn_accuracy_all"] == 0.0 and set(per["nn_accuracy_all"].values()) \
        == {0.0}
    png = evaluate.neighbour_figure(root, colour_folder, tmp_path / "nn.png", "conv1",
                                    n_queries=3)
    assert cv2.imread(str(png)) is not None


# -- command line -------------------------------------------------------------------------


def _cli(capsys, *args) -> tuple[int, str, str]:
    from curious_robot.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_cli_json_and_errors(colour_folder, capsys):
    code, out, err = _cli(capsys, "eval", "--checkpoint", "random", "--image-folder",
                          str(colour_folder), "--input-size", "64", "--width", "0.125",
                          "--layer", "pool5", "--json")
    assert code == 0, err
    out = json.loads(out)
    assert {"nn_accuracy", "linear_accuracy", "n_train", "n_test", "layer"} <= set(out)
    assert out["layer"] == "pool5" and out["nn_accuracy"] == 1.0
    (colour_folder / "blue" / "bad.jpg").write_bytes(b"garbage")
    code, _, err = _cli(capsys, "eval", "--checkpoint", "random", "--image-folder",
                        str(colour_folder), "--input-size", "64", "--width", "0.125")
    assert code == 1 and "bad.jpg" in err
    code, _, err = _cli(capsys, "eval", "--checkpoint", str(colour_folder / "none.pt"),
                        "--image-folder", str(colour_folder))
    assert code == 1 and "does not exist" in err


# -- auto-encoder baseline ----------------------------------------------------------------


def test_autoencoder_checkpoint_loads_as_a_root_and_resumes(tmp_path):
    from curious_robot.evaluation.baselines import AutoencoderConfig, train_autoencoder

    records = synthetic_interactions(4, np.random.default_rng(0), size=SIZE)
    with ReplayStore(tmp_path / "s.db") as store:
        for rec in records:
            store.add(rec)
    cfg = AutoencoderConfig(batch_size=4)
    s = train_autoencoder(tmp_path / "s.db", tmp_path / "ae", 2, SIZE, 0.125, cfg)
    assert s["step"] == 2 and np.isfinite(s["loss"])
    root = load_root(tmp_path / "ae" / "checkpoint.pt")
    assert root.cfg.input_size == SIZE and root.cfg.width == 0.125
    s = train_autoencoder(tmp_path / "s.db", tmp_path / "ae", 3, SIZE, 0.125, cfg)
    assert s["step"] == 3
    feats = extract(root, np.zeros((2, SIZE, SIZE, 3), np.uint8), ("fc6",))["fc6"]
    assert feats.shape == (2, root.fc6_dim)


def test_bench_eval_times_a_generated_folder(tmp_path, capfd):
    from curious_robot.cli import main
    from curious_robot.evaluation import bench

    folder = bench.write_folder(tmp_path / "images", 61, 3)
    counts = sorted(len(list(d.glob("*.jpg"))) for d in folder.iterdir())
    assert counts == [20, 20, 21]
    assert cv2.imread(str(next(folder.glob("*/0000.jpg")))).shape == (240, 320, 3)
    assert main(["bench", "eval", "--image-folder", str(folder), "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    assert result["n_train"] + result["n_test"] == 61 and result["n_classes"] == 3
    assert result["budget_s"] == bench.BUDGET_S
    for name in ("default_layer", "all_layers"):
        assert result[name]["seconds"] > 0
        assert result[name]["nn_accuracy"] > 0.6  # hue and shape per class; chance 1/3
    assert result["all_layers"]["layers"] == len(LAYERS)
    assert main(["bench", "eval", "--images", "10", "--classes", "6"]) == 2
    assert "at least two images" in capfd.readouterr().err
    assert main(["bench", "eval", "--image-folder", str(tmp_path / "none")]) == 1
    assert "no such folder" in capfd.readouterr().err
