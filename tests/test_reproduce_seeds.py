"""``reproduce --seeds``: the seed list, the category test stage (real renders, real
network) and the report over seeds (means, standard errors over seeds, paired differences
and each task's contribution) from fabricated per-seed evaluations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from curious_robot.evaluation import reproduce
from curious_robot.evaluation import seeds as S
from curious_robot.learning.networks import LAYERS

LAYER = "pool5"


def _cli(capsys, *args):
    from curious_robot.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- arguments -----------------------------------------------------------------------------


@pytest.mark.unit
def test_parse_seeds():
    assert S.parse_seeds("0,1,2") == [0, 1, 2]
    assert S.parse_seeds(" 3 , 0") == [3, 0]
    assert S.parse_seeds("5") == [5]
    for bad, why in (("0,0", "twice"), ("-1", ">= 0"), ("a", "not an integer"),
                     ("0,,1", "comma-separated"), ("", "comma-separated"),
                     ("1.5", "not an integer")):
        with pytest.raises(ValueError, match=why):
            S.parse_seeds(bad)


@pytest.mark.unit
def test_bad_arguments_exit_2_and_create_nothing(tmp_path, capsys):
    base = ("reproduce", "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"),
            "--categories", str(tmp_path / "c"))
    for extra, said in ((("--seeds", "0,0"), "twice"), (("--seeds=-1",), ">= 0"),
                        (("--seeds", "a"), "not an integer"),
                        (("--seed", "1", "--seeds", "0,1"), "not both"),
                        (("--seed", "-2"), "--seed must be >= 0"),
                        (("--seeds", "0,1", "--store", str(tmp_path / "s.db")), "--store"),
                        (("--seeds", "0,1", "--variants", "all,nope"), "unknown variants"),
                        (("--seeds", "0,1", "--scale", "0"), "--scale"),
                        (("--mode", "drone", "--seeds", "0,1"), "--mode arm"),
                        (("--mode", "drone", "--jobs", "2"), "--jobs only apply"),
                        (("--seeds", "0,1", "--jobs", "-1"), "--jobs must be >= 0")):
        code, _, err = _cli(capsys, *base, *extra)
        assert code == 2, (extra, err)
        assert said in err, (extra, err)
    assert not list(tmp_path.iterdir())
    # a work folder of another seed is refused before anything is written
    (tmp_path / "w-seed-1").mkdir()
    (tmp_path / "w-seed-1" / "seed.json").write_text(json.dumps({"seed": 7}))
    code, _, err = _cli(capsys, *base, "--seeds", "0,1")
    assert code == 2 and "--seed 7, not 1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-seed-1"]


@pytest.mark.unit
def test_work_folders_per_seed():
    assert str(reproduce.work_folder(None, 0.5, 0, True)) == "runs/reproduce/scale-0.5"
    assert str(reproduce.work_folder(None, 0.5, 2, True)) == "runs/reproduce/scale-0.5-seed-2"
    assert str(reproduce.work_folder(None, 1.0, 2, False)) == "runs/reproduce/scale-1-seed-2"
    assert str(reproduce.work_folder("/x/w", 1.0, 2, True)) == "/x/w-seed-2"
    assert str(reproduce.work_folder("/x/w", 1.0, 0, True)) == "/x/w"
    assert str(reproduce.work_folder("/x/w", 1.0, 2, False)) == "/x/w"  # --seed 2 --work
    assert reproduce._checkpoint_key("random") == reproduce._checkpoint_key("random", 0)
    assert reproduce._checkpoint_key("random", 3) == "random:3"
    assert S.DEFAULT_VARIANTS == ("random", "all", "identity", "autoencoder", "no-grasp",
                                  "no-push", "no-poke", "no-identity")


# -- the report over seeds (fabricated per-seed evaluations) -------------------------------


def _run(units: dict[str, dict[str, list[float]]]) -> dict:
    """One seed's run from per-unit scores: ``{variant: {metric: [score per unit]}}``
    (the same list at every layer for the category 1-NN)."""
    results, cats = {}, {}
    for name, per in units.items():
        objs = {f"obj_{i:03d}": v for i, v in enumerate(per["recall_at_1"])}
        shape = {f"obj_{i:03d}": v for i, v in enumerate(per["nn_accuracy_all"])}
        results[name] = {"name": name, "retrieval": {LAYER: {
            "recall_at_1": float(np.mean(per["recall_at_1"])),
            "nn_accuracy_all": float(np.mean(per["nn_accuracy_all"])),
            "per_instance": {"recall_at_1": objs, "nn_accuracy_all": shape}}}}
        inst = {f"mug/inst_{i:02d}": v for i, v in enumerate(per["category"])}
        cats[name] = {"name": name, "split": "test", "by_layer": {
            L: {"nn_accuracy": float(np.mean(per["category"])), "per_instance": inst}
            for L in LAYERS}}
    return {"results": results, "categories": cats}


PUSH_SWINGS = np.array([0.3, -0.2, 0.25, -0.15, 0.1, -0.12])


def _fabricated() -> dict:
    """Three seeds. Removing grasp costs 20 points of category accuracy in every seed
    (give or take one); removing poke moves it by +1, -1.5, +0.5 points (noise)."""
    rng = np.random.default_rng(0)
    runs = {}
    for seed, (grasp_cost, poke_noise) in zip((0, 1, 2), ((0.20, 0.01), (0.21, -0.015),
                                                          (0.19, 0.005))):
        base = rng.uniform(0.3, 0.6, 6)
        units = {"random": {m: list(base - 0.1) for m in S.MAIN_METRICS},
                 "autoencoder": {m: list(base - 0.05) for m in S.MAIN_METRICS},
                 "all": {m: list(base + rng.normal(0, 0.02, 6)) for m in S.MAIN_METRICS}}
        units["no-grasp"] = {m: list(np.asarray(v) - grasp_cost)
                             for m, v in units["all"].items()}
        units["no-poke"] = {m: list(np.asarray(v) - poke_noise)
                            for m, v in units["all"].items()}
        # removing push: +3 points in every seed, but only as the mean of the same large
        # per-object swings (nothing over seeds, a lot over objects)
        units["no-push"] = {m: list(np.asarray(v) - PUSH_SWINGS)
                            for m, v in units["all"].items()}
        runs[seed] = _run(units)
    return runs


def _summary(seeds) -> dict:
    tasks = {t: {"train": 10 * (i + 1), "held_out": 1}
             for i, t in enumerate(reproduce.ALL_TASKS)}
    return {"scale": 0.05, "seeds": list(seeds), "steps": 20, "finished": 0.0,
            "minutes": 4.0, "evalset": {"n_objects": 6},
            "categories": {"n_images": 12, "n_instances": 6, "n_categories": 1},
            "per_seed": {str(s): {"store": {"tasks": tasks}, "minutes": 1.25} for s in seeds}}


@pytest.mark.unit
def test_report_over_seeds_means_errors_and_contributions(tmp_path):
    runs = _fabricated()
    names = ["random", "all", "autoencoder", "no-grasp", "no-push", "no-poke"]
    res = S.build(runs, names, LAYER)
    # a score: the mean over seeds of each seed's score, ± the spread over seeds / sqrt(3)
    per = [runs[s]["categories"]["all"]["by_layer"][LAYER]["nn_accuracy"] for s in (0, 1, 2)]
    cell = res["scores"]["all"]["category"]
    assert cell["mean"] == pytest.approx(np.mean(per))
    assert cell["se"] == pytest.approx(np.std(per, ddof=1) / np.sqrt(3))
    assert cell["per_seed"] == {"0": per[0], "1": per[1], "2": per[2]}
    # each task's contribution: all minus all-but-it, mean of the per-seed differences
    grasp = res["differences"]["contribution"]["grasp"]["category"]
    assert grasp["mean"] == pytest.approx(0.20)
    assert grasp["se"] == pytest.approx(np.std([0.20, 0.21, 0.19], ddof=1) / np.sqrt(3))
    assert grasp["exceeds_2se"] is True
    assert [p["difference"] for p in grasp["per_seed"].values()] == \
        pytest.approx([0.20, 0.21, 0.19])
    assert all(p["n"] == 6 for p in grasp["per_seed"].values())
    poke = res["differences"]["contribution"]["poke"]["recall_at_1"]
    assert poke["mean"] == pytest.approx(0.0, abs=1e-9) and poke["exceeds_2se"] is False
    assert grasp["units_se"] == pytest.approx(0.0, abs=1e-9) and grasp["exceeds_2_units_se"]
    assert grasp["n_units"] == 6
    push = res["differences"]["contribution"]["push"]["category"]
    assert push["mean"] == pytest.approx(PUSH_SWINGS.mean())
    assert push["se"] == pytest.approx(0.0, abs=1e-9) and push["exceeds_2se"]
    assert push["units_se"] == pytest.approx(PUSH_SWINGS.std(ddof=1) / np.sqrt(6))
    assert not push["exceeds_2_units_se"]
    assert set(res["differences"]["contribution"]) == {"grasp", "push", "poke"}
    # minus random init: +10 points in every unit of every seed, give or take all's noise
    vs_random = res["differences"]["vs_random"]["all"]["nn_accuracy_all"]
    assert vs_random["mean"] == pytest.approx(0.1, abs=0.02) and vs_random["exceeds_2se"]
    assert set(res["differences"]["vs_autoencoder"]) == {"random", "all", "no-grasp",
                                                         "no-push", "no-poke"}
    assert res["differences"]["vs_autoencoder"]["random"]["category"]["mean"] == \
        pytest.approx(-0.05)
    # category accuracy at every layer, random and all, and all minus random per layer
    assert set(res["category_layers"]["random"]) == set(LAYERS)
    assert all(res["category_layers_minus_random"]["all"][L]["exceeds_2se"] for L in LAYERS)

    text = S.render_table(_summary((0, 1, 2)), res)
    assert "| grasp | +20.0 ± 0.6 (+20.0, +21.0, +19.0) | yes |" in text
    poke_row = next(line for line in text.splitlines() if line.startswith("| poke |"))
    assert "(+1.0, -1.5, +0.5) | no |" in poke_row and "| yes |" not in poke_row
    assert "within two s.e. over the objects / instances: push: category 1-NN (test) (+3.0; " \
        "± 8.8 over 6 units); push: R@1" in text
    assert "instances: all tasks except push: category 1-NN (test) (+6.8; ± 9.0" in text
    assert "mean of the 3 per-seed differences" in text and "standard error over seeds" in text
    assert "| Household (paper) | UW RGB-D (paper) | Caltech-256 (paper) |" in text
    assert "| all tasks except grasp | 0.309 | 0.632 | 0.263 |" in text
    assert "`all` is not below random init at any layer" in text
    assert "../" not in text and "/tmp" not in text
    S.render_chart(res, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 5000
    reproduce.report_seeds(_summary((0, 1, 2)), runs, names, LAYER, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["differences"]["contribution"]["grasp"]["category"]["exceeds_2se"] is True
    assert saved["seeds"] == [0, 1, 2] and saved["summary"]["steps"] == 20
    assert (tmp_path / "out" / "table.md").read_text() == text


@pytest.mark.unit
def test_below_random_at_a_layer_is_said():
    runs = _fabricated()
    for run in runs.values():  # all is 30 points below random init at conv1 in every seed
        q = run["categories"]["all"]["by_layer"]["conv1"]
        q["per_instance"] = {k: v - 0.3 for k, v in
                             run["categories"]["random"]["by_layer"]["conv1"]
                             ["per_instance"].items()}
    res = S.build(runs, ["random", "all"], LAYER)
    text = S.render_table(_summary((0, 1, 2)), res)
    assert "`all` is below random init at conv1, by more than two s.e. at conv1." in text
    assert res["differences"]["contribution"] == {}  # no ablation ran: nothing to show
    assert S.exceeds_two_se(0.1, None) is False and S.exceeds_two_se(-0.3, 0.1) is True


@pytest.mark.unit
def test_the_category_layer_is_chosen_on_validation_never_on_test():
    """`all` is best at conv3 on validation and at pool5 on test: the report reads the
    category 1-NN at conv3 for every variant; each variant's own best validation layer
    gets its own table, and the auto-encoder's is its own."""
    runs = _fabricated()
    val = {"all": {"conv3": 0.6, "pool5": 0.4}, "autoencoder": {"fc6": 0.5, "conv3": 0.3},
           "random": {"conv2": 0.3}}
    for run in runs.values():
        for name, c in run["categories"].items():
            c["val_by_layer"] = {L: {"nn_accuracy": val.get(name, {}).get(L, 0.1)}
                                 for L in LAYERS}
        for name in ("all", "autoencoder", "random"):  # test: pool5 best, for all three
            q = run["categories"][name]["by_layer"]["pool5"]
            q["per_instance"] = {k: v + 0.2 for k, v in q["per_instance"].items()}
            q["nn_accuracy"] += 0.2
    names = ["random", "all", "autoencoder", "no-grasp"]
    res = S.build(runs, names, "pool5")
    assert (res["category_layer"], res["category_layer_chosen_by"]) == ("conv3", "validation")
    per = [runs[s]["categories"]["all"]["by_layer"]["conv3"]["nn_accuracy"] for s in runs]
    assert res["scores"]["all"]["category"]["mean"] == pytest.approx(np.mean(per))
    assert res["differences"]["contribution"]["grasp"]["category"]["mean"] == \
        pytest.approx(0.20)
    assert res["category_layers_val"]["all"]["conv3"]["mean"] == pytest.approx(0.6)
    own = res["category_own_layer"]
    assert (own["all"]["layer"], own["autoencoder"]["layer"], own["random"]["layer"]) == \
        ("conv3", "fc6", "conv2")
    # all at conv3 minus the auto-encoder at fc6: unit scores of two layers, paired
    d = res["category_own_layer_all_minus"]["autoencoder"]
    assert d["mean"] == pytest.approx(0.05, abs=0.02)
    text = S.render_table(_summary((0, 1, 2)), res)
    assert "Metrics, frozen root features at layer `pool5`, the category 1-NN at `conv3`" \
        in text
    assert "chosen by `reproduce` from validation instances, never from the test split" \
        in text
    assert "| all, validation split | " in text
    assert "| auto-encoder trained on all robot data | fc6 | " in text
    assert "`all` at `conv3` minus auto-encoder trained on all robot data at `fc6`: " in text
    # no validation scores (an older record): the report layer, said so
    bare = S.build(_fabricated(), names, "pool5")
    assert (bare["category_layer"], bare["category_layer_chosen_by"]) == \
        ("pool5", "report layer")
    assert "the report layer (no validation scores to choose from)" in \
        S.render_table(_summary((0, 1, 2)), bare)


# -- the category test stage (real renders, a real random-init root) -----------------------


@pytest.mark.sim
def test_category_stage_scores_every_layer_per_instance_and_is_reused(tmp_path):
    from curious_robot.evaluation import categories as C

    folder = tmp_path / "cats"
    C.generate(folder, n=4, views=2, categories=["mug", "box"])
    out_json = tmp_path / "eval" / "random.categories.json"
    reproduce.REUSED.clear()
    first = reproduce.stage_categories("random", "random", folder, out_json, 64, 0.125,
                                       seed=1)
    assert first["split"] == "test" and first["checkpoint_key"] == "random:1"
    assert set(first["by_layer"]) == set(LAYERS) == set(first["val_by_layer"])
    assert all(0.0 <= q["nn_accuracy"] <= 1.0 and q["n_images"] == 8
               for q in first["val_by_layer"].values())  # the val split: 4 of 8 instances
    test_instances = {f"{o['category']}/inst_{o['index']:02d}"
                      for o in json.loads((folder / "meta.json").read_text())["objects"]
                      if o["split"] == "test"}
    for q in first["by_layer"].values():
        assert set(q["per_instance"]) == test_instances  # the test split only
        assert 0.0 <= q["nn_accuracy"] <= 1.0 and q["n_images"] == 8
        assert np.mean(list(q["per_instance"].values())) == pytest.approx(q["nn_accuracy"],
                                                                          abs=1e-4)
    assert json.loads(out_json.read_text()) == json.loads(json.dumps(first))
    mtime = out_json.stat().st_mtime_ns
    again = reproduce.stage_categories("random", "random", folder, out_json, 64, 0.125,
                                       seed=1)
    assert again == json.loads(out_json.read_text()) and out_json.stat().st_mtime_ns == mtime
    assert reproduce.REUSED == ["category test of random"]
    # another seed's random init is other weights: evaluated again
    other = reproduce.stage_categories("random", "random", folder, out_json, 64, 0.125,
                                       seed=2)
    assert other["checkpoint_key"] == "random:2" and out_json.stat().st_mtime_ns != mtime
    # per-instance scores of two seeds pair up in the report's differences
    runs = {1: {"categories": {"all": first, "random": other}},
            2: {"categories": {"all": other, "random": first}}}
    d = S.seed_difference(runs, "all", "random", "category", "conv3")
    assert d["n_seeds"] == 2 and d["mean"] == pytest.approx(0.0, abs=1e-9)
    assert {p["n"] for p in d["per_seed"].values()} == {len(test_instances)}
    # a category set made with other parameters: evaluated again
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "version": -1}))
    mtime = out_json.stat().st_mtime_ns
    reproduce.REUSED.clear()
    reproduce.stage_categories("random", "random", folder, out_json, 64, 0.125, seed=2)
    assert reproduce.REUSED == [] and out_json.stat().st_mtime_ns != mtime


# -- trainings at once ---------------------------------------------------------------------

FAKE_TRAIN = r'''
import json, sys, time
args = sys.argv[1:]
out = args[args.index("--out") + 1]
tasks = args[args.index("--tasks") + 1] if "--tasks" in args else args[0]
import os
os.makedirs(out, exist_ok=True)
t0 = time.time()
print("fake training", tasks, file=sys.stderr, flush=True)
time.sleep(0.6)
with open(os.path.join(out, "span.json"), "w") as f:
    json.dump({"start": t0, "end": time.time(), "threads": args[args.index("--threads") + 1]}, f)
if tasks == "fail":
    sys.exit(3)
print(json.dumps({"step": int(args[args.index("--steps") + 1])}))
'''


@pytest.mark.unit
def test_plan_jobs_splits_the_cores():
    assert reproduce.plan_jobs(0, 0, 7, 2) == (2, 1)  # one one-thread training per core
    assert reproduce.plan_jobs(0, 0, 7, 16) == (7, 2)
    assert reproduce.plan_jobs(0, 0, 1, 2) == (1, 0)  # alone: torch's own thread count
    assert reproduce.plan_jobs(1, 0, 7, 2) == (1, 0)
    assert reproduce.plan_jobs(3, 4, 7, 2) == (3, 4)  # --threads is kept
    assert reproduce.plan_jobs(0, 0, 0, 2) == (1, 0)
    costs = {n: reproduce.training_cost(t) for n, (_, t) in reproduce.VARIANTS.items() if t}
    assert costs["all"] == 7 and costs["no-identity"] == 4 and costs["identity"] == 3
    assert costs["autoencoder"] == costs["context"] == 2


@pytest.mark.unit
def test_trainings_run_at_once_each_recorded_and_a_failure_stops_nothing(tmp_path,
                                                                          monkeypatch):
    import sys

    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAIN)
    monkeypatch.setattr(reproduce, "_cli", lambda: [sys.executable, str(script)])
    monkeypatch.setattr(reproduce, "cpu_cores", lambda: 2)
    variants = {n: (t, tmp_path / n) for n, t in
                (("autoencoder", "autoencoder"), ("all", "grasp,push"), ("identity", "inspect"))}
    got = reproduce.stage_train_all(variants, tmp_path / "s.db", 20, 0, 0, seed=1)
    assert list(got) == ["autoencoder", "all", "identity"]  # in the order given
    for name, (_, folder) in variants.items():
        done = json.loads((folder / "done.json").read_text())
        assert done["metrics"] == {"step": 20} and done["threads"] == 1 and \
            done["tasks"] == variants[name][0]
    spans = {n: json.loads((f / "span.json").read_text()) for n, (_, f) in variants.items()}
    assert {s["threads"] for s in spans.values()} == {"1"}
    # two at a time, the costliest first: all (grasp + push: 3) and identity (3) overlap,
    # the auto-encoder (2) starts after one of them ended
    a, b, c = spans["all"], spans["identity"], spans["autoencoder"]
    assert a["start"] < b["end"] and b["start"] < a["end"]
    assert c["start"] >= min(a["end"], b["end"]) - 0.05
    # done earlier: nothing runs again
    reproduce.REUSED.clear()
    assert reproduce.stage_train_all(variants, tmp_path / "s.db", 20, 0, 0)["all"]["steps"] == 20
    assert reproduce.REUSED == ["training of autoencoder", "training of all",
                                "training of identity"]
    # one variant fails: the others still finish and are kept; the stage then raises
    bad = {"broken": ("fail", tmp_path / "broken"), "ok": ("grasp", tmp_path / "ok")}
    with pytest.raises(RuntimeError, match="training variant broken failed \\(exit 3\\)"):
        reproduce.stage_train_all(bad, tmp_path / "s.db", 20, 2, 0)
    assert (tmp_path / "ok" / "done.json").is_file()
    assert not (tmp_path / "broken" / "done.json").exists()


# -- seed records: a seed finished once is read back, by any later invocation ------------


def _fake_seed(seed: int, names) -> tuple[dict, dict, dict]:
    run = _fabricated()[seed % 3]
    for c in run["categories"].values():
        c["by_layer"][LAYER].update(n_images=12, n_instances=6, n_categories=1)
    tasks = {t: {"train": 10, "held_out": 1} for t in reproduce.ALL_TASKS}
    summary = {"scale": 0.05, "seed": seed, "steps": 20, "layer": LAYER,
               "store": {"tasks": tasks}, "evalset": {"n_objects": 6}, "minutes": 2.0,
               "invocations": [{"finished": 0.0, "minutes": 1.5}, {"finished": 1.0,
                                                                   "minutes": 2.0}]}
    return summary, {n: run["results"].get(n, run["results"]["all"]) for n in names}, \
        {n: run["categories"].get(n, run["categories"]["all"]) for n in names}


@pytest.mark.unit
def test_finished_seeds_are_read_back_from_their_records(tmp_path, monkeypatch, capsys):
    ran = []

    def fake_run_seed(args, seed, work, names, steps, layer, nn_dir, category_set):
        ran.append(seed)
        return _fake_seed(seed, names)

    monkeypatch.setattr(reproduce, "run_seed", fake_run_seed)
    names = "random,all,autoencoder,no-grasp,no-push,no-poke"
    base = ("reproduce", "--seeds", "0,1", "--scale", "0.05", "--work", str(tmp_path / "w"),
            "--out", str(tmp_path / "o"), "--variants", names)
    code, out, _ = _cli(capsys, *base)
    assert code == 0 and ran == [0, 1]
    record = json.loads((tmp_path / "o" / "seeds" / "seed-1.json").read_text())
    assert record["key"]["code"] == reproduce.code_fingerprint() and \
        record["key"]["seed"] == 1 and record["variants"] == names.split(",")
    assert set(record["results"]["all"]["retrieval"][LAYER]["per_instance"]) == \
        {"recall_at_1", "nn_accuracy_all"}
    first = (tmp_path / "o" / "table.md").read_text()
    assert "read back" not in first and "| 0 | 10 | 10 | 10 | 10 | 3.5 |" in first

    # a later invocation adds a seed: the two finished ones are read back, not run
    ran.clear()
    code, out, _ = _cli(capsys, *base[:2], "0,1,2", *base[3:])
    assert code == 0 and ran == [2]
    text = (tmp_path / "o" / "table.md").read_text()
    assert "over 3 seeds" in text and "read back from their records" in text
    assert "seed 0 (" in text and "seed 1 (" in text and "seed 2 (" not in text
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["seeds"] == [0, 1, 2]
    # the same numbers as running them: the report over seeds 0,1 is unchanged
    code, _, _ = _cli(capsys, *base)
    assert code == 0 and ran == [2]
    again = (tmp_path / "o" / "table.md").read_text()
    def body(text):
        return [line for line in text.splitlines()
                if line and not line.startswith(("Generated", "Seeds finished"))]

    assert "Seeds finished" in again and body(again) == body(first)

    # another code fingerprint, step count or set of variants: the seed runs again
    monkeypatch.setattr(reproduce, "code_fingerprint", lambda: "0" * 64)
    code, _, _ = _cli(capsys, *base)
    assert code == 0 and ran == [2, 0, 1]
    ran.clear()
    code, _, _ = _cli(capsys, *base, "--steps", "21")
    assert ran == [0, 1]
    ran.clear()
    code, _, _ = _cli(capsys, *base[:-1], names + ",no-identity", "--steps", "21")
    assert ran == [0, 1]
    ran.clear()
    code, _, _ = _cli(capsys, *base[:-1], "random,all", "--steps", "21")  # a subset: read
    assert code == 0 and ran == []
    # a record that is not JSON is run again, not trusted
    (tmp_path / "o" / "seeds" / "seed-0.json").write_text("{half")
    code, _, _ = _cli(capsys, *base, "--steps", "21")
    assert code == 0 and ran == [0]


@pytest.mark.unit
def test_code_fingerprint_follows_the_data_folders(tmp_path, monkeypatch):
    import curious_robot.paths

    for folder in ("sim", "config"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.yaml").write_text("x: 1\n")
    monkeypatch.setattr(curious_robot.paths, "share_dir", lambda: tmp_path)
    one = reproduce.code_fingerprint()
    assert len(one) == 64 and reproduce.code_fingerprint() == one
    (tmp_path / "config" / "a.yaml").write_text("x: 2\n")
    assert reproduce.code_fingerprint() != one
    (tmp_path / "config" / "a.yaml").write_text("x: 1\n")
    assert reproduce.code_fingerprint() == one
    (tmp_path / "sim" / "b.urdf").write_text("<robot/>")
    assert reproduce.code_fingerprint() != one
    assert reproduce.REPORT_ONLY == ("evaluation/seeds.py",)
    # a module's docstrings and comments are not what runs; its code is
    code = b'"""Doc."""\nimport os\n\n\ndef f(x):\n    """Doc."""\n    return x + 1  # one\n'
    same = b'"""Other doc."""\nimport os\n\ndef f(x):\n    # a comment\n    return x + 1\n'
    other = b'"""Doc."""\nimport os\n\n\ndef f(x):\n    """Doc."""\n    return x + 2\n'
    assert reproduce._code_only(code) == reproduce._code_only(same)
    assert reproduce._code_only(code) != reproduce._code_only(other)
    assert reproduce._code_only(b'def g():\n    """Only a docstring."""\n') == \
        reproduce._code_only(b"def g():\n    pass\n")
