"""Everyday object categories (issue 16): the parametric meshes, the instance split, the
renders, the leave-one-instance-out 1-NN metric with known answers and the
``eval-categories`` command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from curious_robot.evaluation import categories as C
from curious_robot.evaluation import metrics
from curious_robot.world import shapes as sh

torch.set_num_threads(1)


def _cli(capsys, *args):
    from curious_robot.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- meshes --------------------------------------------------------------------------------


@pytest.mark.unit
def test_every_category_gives_closed_distinct_meshes_at_the_arms_scale(tmp_path):
    assert len(C.CATEGORIES) >= 10
    for cat in C.CATEGORIES:
        boxes = []
        for k in range(4):
            parts = C.instance_parts(cat, k)
            for v, f in parts:
                assert np.isfinite(v).all() and f.min() >= 0 and f.max() < len(v), cat
                assert sh.is_closed(f), f"{cat} {k}: a part is not closed"
                assert sh.signed_volume(v, f) > 0, f"{cat} {k}: faces wound inward"
            v, f = sh.merge(parts)
            ext = np.ptp(v, axis=0)
            assert abs(v[:, 2].min()) < 1e-9, cat  # rests on the table
            assert 0.015 < ext.max() <= 0.17 and ext.min() > 0.002, (cat, ext)
            boxes.append(ext)
            obj = sh.write_obj(parts, tmp_path / cat / f"{k}.obj")
            from curious_robot.world.objects import mesh_vertices

            np.testing.assert_allclose(mesh_vertices(str(obj)), v, atol=2e-6)
        boxes = np.array(boxes)
        assert np.ptp(boxes, axis=0).max() > 0.005, f"{cat}: instances do not differ"
        np.testing.assert_array_equal(sh.merge(C.instance_parts(cat, 1))[0],
                                      sh.merge(C.instance_parts(cat, 1))[0])
    with pytest.raises(ValueError, match="unknown category"):
        C.instance_parts("teapot", 0)


@pytest.mark.unit
def test_primitives_are_closed_and_refuse_bad_shapes():
    for v, f in (sh.box([1, 2, 3]), sh.torus(2.0, 0.5), sh.pyramid(1.0, 2.0),
                 sh.lathe([(0, 0), (1, 0), (1, 1), (0, 1)], 8),
                 sh.tube([[0, 0, 0], [0, 0, 1], [0, 1, 2]], 0.2)):
        assert sh.is_closed(f) and sh.signed_volume(v, f) > 0
    assert sh.signed_volume(*sh.box([1, 2, 3])) == pytest.approx(6.0)
    assert sh.signed_volume(*sh.lathe([(0, 0), (1, 0), (1, 1), (0, 1)], 256)) == \
        pytest.approx(math.pi, rel=1e-3)
    assert not sh.is_closed(sh.box([1, 1, 1])[1][:-1])  # one face missing
    with pytest.raises(ValueError, match="axis"):
        sh.lathe([(0.1, 0), (1, 0), (0, 1)])
    with pytest.raises(ValueError, match="minor"):
        sh.torus(1.0, 2.0)


# -- instances, looks, split ---------------------------------------------------------------


@pytest.mark.unit
def test_split_is_by_instance_fixed_and_disjoint():
    insts = C.instances(10, seed=0)
    assert len(insts) == 10 * len(C.CATEGORIES)
    for cat in C.CATEGORIES:
        mine = [i for i in insts if i.category == cat]
        val = {i.index for i in mine if i.split == "val"}
        test = {i.index for i in mine if i.split == "test"}
        assert len(val) == 5 and len(test) == 5 and not val & test
        assert val | test == set(range(10))
        assert len({i.rgb for i in mine}) == 10  # every instance its own colour
    assert C.instances(10, seed=0) == insts  # fixed by the seed
    vals = {frozenset(k for k, s in C.split_indices(10, 0.5, 0, c).items() if s == "val")
            for c in C.CATEGORIES}
    assert len(vals) > 1  # each category draws its own split
    assert sum(s == "val" for s in C.split_indices(10, 0.4).values()) == 4
    # colour and texture are drawn apart from the category: both spread over categories
    spread = {}
    for i in insts:
        spread.setdefault(i.texture, set()).add(i.category)
    assert len(spread) == len(C.TEXTURES)
    assert all(len(cats) >= 5 for cats in spread.values()), spread
    with pytest.raises(ValueError, match="instances"):
        C.split_indices(3)


@pytest.mark.unit
def test_texture_shows_both_colours():
    inst = next(i for i in C.instances(10) if i.texture == "checks")
    img = C.texture_image(inst).reshape(-1, 3).astype(float)
    for rgb in (inst.rgb, inst.rgb2):
        near = np.linalg.norm(img - 255 * np.asarray(rgb), axis=1) < 30
        assert near.mean() > 0.2


# -- rendering -----------------------------------------------------------------------------


def _object_share(img: np.ndarray) -> float:
    """Share of pixels far from the image border's median colour (the table)."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(float)
    diff = np.linalg.norm(img.astype(float) - np.median(border, axis=0), axis=2)
    return float((diff > 40).mean())


@pytest.mark.sim
def test_tiny_set_renders_every_instance_into_its_split(tmp_path):
    from curious_robot.evaluation.features import random_root
    from curious_robot.evaluation.folders import read_image

    out = tmp_path / "cats"
    meta = C.generate(out, n=4, views=2, categories=["mug", "box"])
    assert meta["n_images"] == {"val": 8, "test": 8}
    for o in meta["objects"]:
        files = sorted((out / o["split"] / o["category"]).glob(
            f"inst_{o['index']:02d}_view_*.png"))
        assert len(files) == 2
        other = "test" if o["split"] == "val" else "val"
        assert not list((out / other / o["category"]).glob(f"inst_{o['index']:02d}_*"))
        a, b = read_image(files[0]), read_image(files[1])
        assert a.shape == (128, 128, 3) and not np.array_equal(a, b)
        for img in (a, b):
            assert 0.03 < _object_share(img) < 0.9, (o["name"], _object_share(img))
        assert (out / "meshes" / o["category"] / f"inst_{o['index']:02d}.obj").is_file()
    assert json.loads((out / "meta.json").read_text()) == json.loads(json.dumps(meta))
    root = random_root(64, 0.125)
    r = C.evaluate(root, out, "val", ("pool5", "fc6"))
    assert set(r) == {"pool5", "fc6"}
    assert r["pool5"]["n_images"] == 8 and r["pool5"]["n_instances"] == 4
    assert r["pool5"]["n_categories"] == 2 and 0.0 <= r["pool5"]["nn_accuracy"] <= 1.0
    with pytest.raises(ValueError, match="split"):
        C.evaluate(root, out, "train", ("pool5",))


# -- metric --------------------------------------------------------------------------------


def _at(degrees) -> np.ndarray:
    a = np.radians(np.asarray(degrees, float))
    return np.stack([np.cos(a), np.sin(a)], 1)


@pytest.mark.unit
def test_nearest_neighbour_comes_from_another_instance_known_answer():
    # two views per instance; a1, a3 of category A, b1, b2 of B (angles in degrees)
    feats = _at([0, 1, 3, 4, 8, 9, 60, 61])
    cats = ["A", "A", "A", "A", "B", "B", "B", "B"]
    inst = ["a1", "a1", "a3", "a3", "b1", "b1", "b2", "b2"]
    s = C.category_scores(feats, cats, inst)
    # b1's views are nearest to a3 (4 deg) once b1's own other view is excluded: wrong
    assert s["nn_accuracy"] == pytest.approx(0.75)
    assert s["per_instance"] == {"a1": 1.0, "a3": 1.0, "b1": 0.0, "b2": 1.0}
    assert s["per_category"] == {"A": 1.0, "B": 0.5}
    assert s["nn_accuracy_se"] == pytest.approx(0.25)
    assert (s["n_images"], s["n_instances"], s["n_categories"]) == (8, 4, 2)
    # with the same instance allowed, every view finds its twin: 1.0 (what is excluded)
    nearest = metrics.cosine_neighbours(feats, feats, 1, exclude_self=True)[:, 0]
    assert np.mean(np.array(cats)[nearest] == np.array(cats)) == 1.0
    assert s["recall_at_1"] == 1.0


@pytest.mark.unit
def test_probe_folds_keep_instances_whole():
    rng = np.random.default_rng(0)
    cats = np.repeat(["A", "B", "C"], 12)
    inst = np.array([f"{c}{k // 3}" for c in "ABC" for k in range(12)])
    folds = C.instance_folds(cats, inst, 3)
    for name in np.unique(inst):
        assert len(set(folds[inst == name])) == 1
    for f in range(3):
        assert set(cats[folds == f]) == {"A", "B", "C"}
    centres = {"A": [5, 0, 0], "B": [0, 5, 0], "C": [0, 0, 5]}
    feats = np.array([centres[c] for c in cats], float) + rng.normal(0, 0.3, (36, 3))
    assert C.probe_accuracy(feats, cats, inst, 3) == 1.0


# -- command line --------------------------------------------------------------------------


@pytest.mark.unit
def test_cli_bad_input_exits_2_naming_the_problem(tmp_path, capsys):
    base = ("eval-categories", "--checkpoint", "random", "--out", str(tmp_path / "c"))
    code, _, err = _cli(capsys, *base, "--instances", "3")
    assert code == 2 and "--instances" in err
    code, _, err = _cli(capsys, *base, "--views", "1")
    assert code == 2 and "--views" in err
    (tmp_path / "file").write_text("x")
    code, _, err = _cli(capsys, "eval-categories", "--checkpoint", "random", "--out",
                        str(tmp_path / "file"))
    assert code == 2 and "is a file" in err
    code, _, err = _cli(capsys, "eval-categories", "--checkpoint", str(tmp_path / "no.pt"),
                        "--out", str(tmp_path / "c"))
    assert code == 2 and "no.pt" in err and "does not exist" in err
    with pytest.raises(SystemExit) as exc:
        _cli(capsys, *base, "--split", "train")
    assert exc.value.code == 2
    assert not (tmp_path / "c").exists()  # nothing rendered for bad input


@pytest.mark.sim
def test_cli_val_json_and_test_warning(tmp_path, capfd):
    base = ("eval-categories", "--checkpoint", "random", "--out", str(tmp_path / "c"),
            "--instances", "4", "--views", "2", "--input-size", "64", "--width", "0.125")
    code, out, err = _cli(capfd, *base, "--layer", "pool5", "--json")
    assert code == 0, err
    res = json.loads(out)  # one JSON document, though PyBullet printed while rendering
    assert res["split"] == "val" and res["layer"] == "pool5" and "WARNING" not in err
    assert res["n_categories"] == len(C.CATEGORIES) and res["n_instances"] == \
        2 * len(C.CATEGORIES)
    mtime = (tmp_path / "c" / "meta.json").stat().st_mtime_ns
    code, out, err = _cli(capfd, *base, "--split", "test", "--layer", "conv1")
    assert code == 0 and "WARNING" in err and "final stage" in err
    assert "conv1" in out and "test:" in out
    assert (tmp_path / "c" / "meta.json").stat().st_mtime_ns == mtime  # not rendered again
