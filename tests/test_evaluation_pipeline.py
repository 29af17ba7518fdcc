"""Evaluation pipeline pieces: the held-out evaluation set renderer (PyBullet) and the
reproduce report / resume logic (no collection, no training)."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from curious_robot.evaluation import reproduce
from curious_robot.learning.networks import LAYERS


@pytest.mark.sim
def test_evalset_renders_held_out_objects_into_both_layouts(tmp_path):
    from curious_robot.evaluation import evaluate, folders
    from curious_robot.evaluation.evalset import generate
    from curious_robot.evaluation.features import random_root
    from curious_robot.world.config import WorldConfig
    from curious_robot.world.objects import load_manifest

    meta = generate(tmp_path / "es", n_objects=6, views=2, seed=1)
    held = {m.id for m in load_manifest(WorldConfig().objects_manifest) if m.held_out}
    ids = [o["id"] for o in meta["objects"]]
    assert len(ids) == 6 and set(ids) <= held  # held-out split only
    assert meta["classes"] == ["blocky", "mixed", "spindly"]
    assert sorted(meta["class_counts"].values()) == [2, 2, 2]
    assert json.loads((tmp_path / "es" / "meta.json").read_text())["n_images"] == 12
    views = sorted((tmp_path / "es" / "retrieval").glob("obj_*/view_*.png"))
    assert len(views) == 12
    a, b = folders.read_image(views[0]), folders.read_image(views[1])
    assert a.shape == (128, 128, 3) and not np.array_equal(a, b)  # another view
    split = folders.load_split(tmp_path / "es" / "classify")
    assert split.presplit and (split.n_train, split.n_test) == (6, 6)
    train_objs = {p.name[:7] for p in split.train_paths}
    assert not train_objs & {p.name[:7] for p in split.test_paths}  # object-disjoint
    root = random_root(64, 0.125)
    r = evaluate.retrieval(root, tmp_path / "es" / "retrieval", ("pool5",))["pool5"]
    assert r["n_instances"] == 6 and 0.0 <= r["recall_at_1"] <= r["recall_at_5"] <= 1.0
    # an instance keeps its material and colour in every view: only pose and light change
    from curious_robot.evaluation.evalset import instance_look

    for o in meta["objects"]:
        assert o["material"] == instance_look(1, o["id"])[0]
        hues = []
        for k in range(2):
            img = folders.read_image(tmp_path / "es" / "retrieval" / f"obj_{o['id']:03d}"
                                     / f"view_{k:02d}.png")
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL).reshape(-1, 3).astype(float)
            vivid = hsv[hsv[:, 1] >= np.quantile(hsv[:, 1], 0.97)]  # the object, not the table
            hues.append(np.angle(np.exp(2j * np.pi * vivid[:, 0] / 256).mean()))
        assert abs(np.angle(np.exp(1j * (hues[0] - hues[1])))) < 0.4, o
    with pytest.raises(ValueError, match="views"):
        generate(tmp_path / "x", n_objects=3, views=1)


def _fake_result(name: str, v: float) -> dict:
    c = {L: {"nn_accuracy": v, "linear_accuracy": v + 0.01, "n_train": 10, "n_test": 5,
             "layer": L} for L in LAYERS}
    r = {L: {"recall_at_1": v / 2, "recall_at_5": v, "n_images": 15, "n_instances": 5,
             "layer": L, "recall_at_1_se": 0.01, "nn_accuracy_all": v - 0.05,
             "nn_accuracy_all_se": 0.02} for L in LAYERS}
    return {"name": name, "classification": c, "retrieval": r}


def _with_objects(result: dict, layer: str, r1: list[float], nn: list[float]) -> dict:
    names = [f"obj_{i:03d}" for i in range(len(r1))]
    result["retrieval"][layer]["per_instance"] = {"recall_at_1": dict(zip(names, r1)),
                                                  "nn_accuracy_all": dict(zip(names, nn))}
    return result


@pytest.mark.unit
def test_report_has_both_tables_and_interactions(tmp_path):
    results = {n: _fake_result(n, 0.3 + 0.01 * i) for i, n in enumerate(reproduce.VARIANTS)}
    tasks = {t: {"train": 10 * (i + 1), "held_out": 0}
             for i, t in enumerate(("grasp", "push", "poke", "inspect", "crash"))}
    summary = {"scale": 0.05, "steps": 20, "finished": 0.0, "minutes": 3.0,
               "store": {"tasks": tasks},
               "evalset": {"n_objects": 5, "views": 3, "classes": ["a", "b", "c"]}}
    text = reproduce.render_table(summary, results, "conv3")
    assert "Table 1" in text and "Table 2" in text
    assert ("| root network, random init | 0.250 | 0.468 | 0.242 | 0.250 ± 0.020 | 0.300 | "
            "0.310 | 0.150 ± 0.010 | 0.300 |") in text
    assert "| all tasks except grasp | 0.309 | 0.632 | 0.263 |" in text
    assert "| identity (inspect) | 40 | 0 |" in text and "| total | 100 | 0 |" in text
    assert "not run here" in text  # the ImageNet row has the paper's numbers only
    # the paper's columns say so, and the source is cited, not a file outside the repo
    assert "| Household (paper) | UW RGB-D (paper) | Caltech-256 (paper) |" in text
    assert "../" not in text and "ECCV 2016, Tables 1 and 2" in text
    assert "never touched" not in text
    assert "continued an earlier one" not in text
    assert "paired over the held-out objects" not in text  # no per-object scores: no table
    resumed = reproduce.render_table({**summary, "reused": ["collect chunk 1"]}, results,
                                     "conv3")
    assert "continued an earlier one" in resumed and "collect chunk 1" in resumed
    assert "3 min in all" in text
    again = reproduce.render_table({**summary, "invocations": [
        {"finished": 0.0, "minutes": 50.0}, {"finished": 1.0, "minutes": 3.0}]}, results,
        "conv3")
    assert "53 min of work over 2 invocations, this one 3 min" in again
    (tmp_path / "runs.json").write_text("{half written")
    assert reproduce._ledger(tmp_path, 5.0, 1.234) == [{"finished": 5.0, "minutes": 1.23}]
    assert len(reproduce._ledger(tmp_path, 6.0, 2.0)) == 2
    reproduce.render_chart(results, "conv3", tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000


@pytest.mark.unit
def test_report_differences_are_paired_over_objects(tmp_path):
    results = {"random": _with_objects(_fake_result("random", 0.3), "pool5",
                                       [0.0, 0.5, 1.0, 0.25], [0.5, 0.5, 0.0, 1.0]),
               "all": _with_objects(_fake_result("all", 0.4), "pool5",
                                    [0.25, 0.75, 1.0, 0.5], [1.0, 0.5, 0.5, 1.0]),
               "autoencoder": _fake_result("autoencoder", 0.35)}  # an older evaluation
    paired = reproduce.paired_differences(results, "pool5")
    assert set(paired) == {"all"} and set(paired["all"]) == {"random"}
    d, se, n = paired["all"]["random"]["recall_at_1"]
    assert (d, n) == (pytest.approx(0.1875), 4)
    assert se == pytest.approx(np.std([0.25, 0.25, 0.0, 0.25], ddof=1) / 2)
    d, se, n = paired["all"]["random"]["nn_accuracy_all"]
    assert d == pytest.approx(0.25) and se == pytest.approx(0.1443376)
    summary = {"scale": 1, "steps": 20, "finished": 0.0, "minutes": 3.0,
               "store": {"tasks": {t: {"train": 1, "held_out": 0}
                                   for t in ("grasp", "push", "poke", "inspect")}},
               "evalset": {"n_objects": 4, "views": 3, "classes": ["a", "b", "c"]}}
    text = reproduce.render_table(summary, results, "pool5")
    assert "same 4 objects" in text
    assert "| root network trained on robot tasks | +25.0 ± 14.4 | +18.8 ± 6.2 | - | - |" \
        in text
    as_json = {name: {base: {m: dict(zip(("difference", "se", "n_objects"), v))
                             for m, v in per.items()} for base, per in d.items()}
               for name, d in paired.items()}
    reproduce.render_chart(results, "pool5", tmp_path / "one.png")
    reproduce.render_chart(results, "pool5", tmp_path / "two.png", as_json)
    one, two = (cv2.imread(str(tmp_path / f)) for f in ("one.png", "two.png"))
    assert two.shape[0] > 1.5 * one.shape[0]  # a second panel: the paired differences


@pytest.mark.unit
def test_finished_stages_are_skipped(tmp_path, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(reproduce, "_run", fail)
    folder = tmp_path / "variants" / "all"
    folder.mkdir(parents=True)
    (folder / "done.json").write_text(json.dumps({"name": "all", "steps": 20}))
    assert reproduce.stage_train("all", "grasp", tmp_path / "s.db", folder, 20, 0)["steps"] == 20
    (tmp_path / "collect").mkdir()
    (tmp_path / "collect" / "chunk_0.done").write_text("done")
    reproduce.stage_collect(tmp_path / "s.db", tmp_path, 100, 60.0, 1)
    out_json, png = tmp_path / "eval" / "all.json", tmp_path / "nn.png"
    out_json.parent.mkdir()
    ckpt = tmp_path / "checkpoint.pt"
    ckpt.write_bytes(b"weights")
    done = {**_with_objects(_fake_result("all", 0.5), "conv3", [1.0, 0.0], [0.5, 0.5]),
            "checkpoint_key": reproduce._checkpoint_key(str(ckpt)),
            "eval_version": reproduce.EVAL_VERSION}
    out_json.write_text(json.dumps(done))
    png.write_bytes(b"png")
    got = reproduce.stage_eval("all", str(ckpt), tmp_path, out_json, png, "conv3", 64, 0.125)
    assert got["classification"]["conv3"]["nn_accuracy"] == 0.5
    # an evaluation from before per-object scores is done again (here it fails loudly)
    out_json.write_text(json.dumps({**done, "eval_version": 1}))
    with pytest.raises(Exception, match="checkpoint"):
        reproduce.stage_eval("all", str(ckpt), tmp_path, out_json, png, "conv3", 64, 0.125)
    out_json.write_text(json.dumps(done))
    # weights trained further since: the old numbers are not reused (this file is no
    # checkpoint, so evaluating it again fails loudly)
    ckpt.write_bytes(b"weights, trained further")
    with pytest.raises(Exception, match="checkpoint"):
        reproduce.stage_eval("all", str(ckpt), tmp_path, out_json, png, "conv3", 64, 0.125)
    # a different step count retrains (the train command resumes from its checkpoint)
    with pytest.raises(AssertionError, match="ran again"):
        reproduce.stage_train("all", "grasp", tmp_path / "s.db", folder, 40, 0)
    assert os.path.exists(folder / "done.json")


@pytest.mark.unit
def test_seed_reaches_collection_and_every_training(tmp_path, monkeypatch):
    import subprocess

    ran = []

    def record(cmd, what):
        ran.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"step": 20}\n')

    monkeypatch.setattr(reproduce, "_run", record)
    reproduce.stage_collect(tmp_path / "s.db", tmp_path, 3000, 600.0, 2, seed=3)
    assert [c[c.index("--seed") + 1] for c in ran] == ["3000", "3001"]  # one per chunk
    assert all(c[c.index("--until") + 1] == "3000" for c in ran)  # the store's total
    # a store that reaches its count stops the chunks (here: after the first of six)
    counts = iter([0, 3000, 3000])
    monkeypatch.setattr(reproduce, "stored", lambda store: next(counts))
    ran.clear()
    reproduce.stage_collect(tmp_path / "t.db", tmp_path / "t", 3000, 1800.0, 2, seed=4)
    assert [c[c.index("--seed") + 1] for c in ran] == ["4000"]
    for name, tasks in (("all", "grasp,push"), ("autoencoder", "autoencoder"),
                        ("context", "pretext:context")):
        ran.clear()
        info = reproduce.stage_train(name, tasks, tmp_path / "s.db", tmp_path / name, 20, 1,
                                     seed=3)
        assert ran[0][ran[0].index("--seed") + 1] == "3" and info["metrics"] == {"step": 20}
    new = tmp_path / "new"
    new.mkdir()
    reproduce._check_seed(new, 3)
    reproduce._check_seed(new, 3)  # resuming with the same seed is fine
    with pytest.raises(RuntimeError, match="--seed 3, not 0"):
        reproduce._check_seed(new, 0)
    old = tmp_path / "old"
    (old / "variants").mkdir(parents=True)  # a folder from before seeds were recorded
    with pytest.raises(RuntimeError, match="--seed 0, not 3"):
        reproduce._check_seed(old, 3)
