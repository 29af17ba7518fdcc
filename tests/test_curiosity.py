"""Curiosity at the object and task level (learning/curiosity.py) and the ``policy`` field
of every record: record -> message -> store -> stats -> MCAP and back, old stores."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3

import numpy as np
import pytest

from curious_robot.cli import main as cli_main
from curious_robot.learning.curiosity import (LearningProgress, grasp_uncertainty,
                                              object_shares)
from curious_robot.record import (Interaction, InvalidInteraction, parse_policy, policy_text,
                                  validate)
from curious_robot.store import SCHEMA_VERSION, ReplayStore, StoreError



# -- object level -------------------------------------------------------------------------

@pytest.mark.unit
def test_object_shares_prefer_uncertain_objects_and_keep_the_floor():
    p = object_shares([0.9, 0.1, 0.0], floor=0.3)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] > p[1] > p[2]
    assert p.min() >= 0.3 / 3 - 1e-12  # no object is never touched
    assert p[2] == pytest.approx(0.1)
    # all equally (un)certain, or nothing known: uniform
    np.testing.assert_allclose(object_shares([0.0, 0.0], 0.3), [0.5, 0.5])
    np.testing.assert_allclose(object_shares([0.4, np.nan], 1.0), [0.5, 0.5])
    with pytest.raises(ValueError, match="floor"):
        object_shares([1.0], 1.5)
    with pytest.raises(ValueError, match="no object"):
        object_shares([], 0.1)


@pytest.mark.unit
def test_score_cache_keeps_undisturbed_objects_and_voids_what_moved_and_its_neighbours():
    from curious_robot.learning.curiosity import ScoreCache

    cache = ScoreCache(tol=0.002, extent=0.1, margin=0.0)
    table = [(0.00, 0.00, 0.3, 0.05, 0.04, 0.03),   # a
             (0.05, 0.02, 1.0, 0.06, 0.03, 0.02),   # b, 5.4 cm from a
             (0.30, 0.10, 3.1, 0.04, 0.04, 0.08)]   # c, far from both
    assert cache.scores(table, step=50) == [None, None, None]  # nothing scored yet
    cache.keep(table, [0.9, 0.5, 0.1], step=50)
    # the same scene (1 mm of depth noise, c's yaw wraps around pi): every score kept
    again = [(0.001, 0.0, 0.3, 0.05, 0.04, 0.03), table[1],
             (0.30, 0.10, 3.1 - np.pi + 0.001, 0.04, 0.04, 0.08)]
    assert cache.scores(again, step=50) == [0.9, 0.5, 0.1]
    # a was pushed 3 cm: a and its neighbour b are scored again, c keeps its score
    pushed = [(0.03, 0.0, 0.3, 0.05, 0.04, 0.03), table[1], table[2]]
    assert cache.scores(pushed, step=50) == [None, None, 0.1]
    # told to leave neighbours alone, only a itself is scored again
    own = ScoreCache(tol=0.002, extent=0.1, margin=0.0, neighbours=False)
    own.keep(table, [0.9, 0.5, 0.1], step=50)
    assert own.scores(pushed, step=50) == [None, 0.5, 0.1]
    # c was picked up and is gone: nothing near it, so a and b keep theirs
    assert cache.scores(table[:2], step=50) == [0.9, 0.5]
    # a new model scores everything again
    assert cache.scores(table, step=100) == [None, None, None]
    with pytest.raises(ValueError, match="3 objects but 2 scores"):
        cache.keep(table, [0.1, 0.2], step=100)


@pytest.mark.unit
def test_object_choice_follows_the_shares():
    rng = np.random.default_rng(0)
    p = object_shares([0.95, 0.05, 0.05, 0.05], floor=0.2)
    picks = rng.choice(4, size=20000, p=p)
    counts = np.bincount(picks, minlength=4) / 20000
    np.testing.assert_allclose(counts, p, atol=0.015)
    assert counts[0] > 0.6 and counts[1:].min() > 0.05


@pytest.mark.unit
def test_grasp_uncertainty_is_the_entropy_at_the_best_angle():
    probs = np.array([[0.5, 0.1, 0.2],     # best 0.5: most uncertain
                      [0.99, 0.5, 0.5],    # best 0.99: the model is sure it grasps
                      [0.01, 0.02, 0.0]])  # sure it fails
    h = grasp_uncertainty(probs)
    assert h[0] == pytest.approx(1.0)
    assert h[0] > h[2] > h[1] or h[0] > h[1] > h[2]
    assert h[1] < 0.1 and h[2] < 0.2
    with pytest.raises(ValueError, match="objects, angles"):
        grasp_uncertainty(np.zeros(3))


# -- task level ---------------------------------------------------------------------------

@pytest.mark.unit
def test_progress_gives_the_fastest_improving_task_the_most_time_with_floors():
    lp = LearningProgress(["grasp", "push", "poke"], [2.0, 1.0, 1.0], floor=0.1,
                          smoothing=1.0)
    # nothing reported yet: every task unknown, treated alike
    np.testing.assert_allclose(lp.shares(), [1 / 3] * 3)
    losses = {"grasp": 1.0, "push": 1.0, "poke": 1.0}
    for _ in range(5):
        for t in lp.tasks:
            lp.spent(t, 10.0)
        lp.report(losses)
        # grasp improves 0.1 per 10 s, push 0.01, poke not at all
        losses = {"grasp": losses["grasp"] - 0.1, "push": losses["push"] - 0.01,
                  "poke": losses["poke"] + 0.05}
    rates = lp.rates()
    assert rates["grasp"] == pytest.approx(0.01)
    assert rates["push"] == pytest.approx(0.001)
    assert rates["poke"] == 0.0
    p = lp.shares()
    assert p.sum() == pytest.approx(1.0)
    assert p[0] > p[1] > p[2]
    assert p[2] == pytest.approx(0.1)  # the floor
    assert p[0] == pytest.approx(0.1 + 0.7 * 10 / 11)


@pytest.mark.unit
def test_progress_is_per_robot_second_and_tries_unknown_tasks():
    lp = LearningProgress(["a", "b"], [1.0, 1.0], floor=0.05, smoothing=1.0)
    # the same loss drop, but b needed ten times the robot time: a gets more
    for t, secs in (("a", 1.0), ("b", 10.0)):
        lp.spent(t, secs)
    lp.report({"a": 1.0, "b": 1.0})
    lp.spent("a", 1.0)
    lp.spent("b", 10.0)
    lp.report({"a": 0.5, "b": 0.5})
    time = lp.time_shares()
    assert time[0] == pytest.approx(0.05 + 0.9 * 10 / 11)
    # b's interactions take ten times as long: it is drawn ten times less per share of
    # time, so a draw ratio of time[0] / 1 s against time[1] / 10 s
    np.testing.assert_allclose(lp.durations(), [1.0, 10.0])
    p = lp.shares()
    assert p[0] / p[1] == pytest.approx((time[0] / 1.0) / (time[1] / 10.0))
    rng = np.random.default_rng(1)
    drawn = rng.choice(2, size=20000, p=p)
    spent = np.array([1.0, 10.0])[drawn]
    assert spent[drawn == 0].sum() / spent.sum() == pytest.approx(time[0], abs=0.02)
    # a task without two reports yet counts as the fastest, so it is tried
    lp2 = LearningProgress(["a", "b"], [1.0, 1.0], floor=0.0, smoothing=1.0)
    lp2.report({"a": 1.0})
    lp2.spent("a", 5.0)
    lp2.report({"a": 0.9})
    assert lp2.shares()[1] == pytest.approx(0.5)  # b untried: a's 5 s a guess of its cost
    # nobody improves: the fixed weights
    lp3 = LearningProgress(["a", "b"], [3.0, 1.0], floor=0.1, smoothing=1.0)
    for _ in range(2):
        lp3.spent("a", 1.0)
        lp3.spent("b", 1.0)
        lp3.report({"a": 1.0, "b": 1.0})
    np.testing.assert_allclose(lp3.shares(), [0.1 + 0.8 * 0.75, 0.1 + 0.8 * 0.25])
    # ... which are shares of interactions: where a is twice as slow, it keeps them
    lp4 = LearningProgress(["a", "b"], [3.0, 1.0], floor=0.0, smoothing=1.0)
    for _ in range(2):
        lp4.spent("a", 2.0)
        lp4.spent("b", 1.0)
        lp4.report({"a": 1.0, "b": 1.0})
    np.testing.assert_allclose(lp4.shares(), [0.75, 0.25])
    np.testing.assert_allclose(lp4.time_shares(), [6 / 7, 1 / 7])


@pytest.mark.unit
def test_progress_refuses_bad_settings():
    with pytest.raises(ValueError, match="no room"):
        LearningProgress(["a", "b", "c"], [1, 1, 1], floor=0.5)
    with pytest.raises(ValueError, match="equal length"):
        LearningProgress(["a"], [1, 1])
    with pytest.raises(ValueError, match="positive sum"):
        LearningProgress(["a"], [0.0])


# -- the policy field ---------------------------------------------------------------------

@pytest.mark.unit
def test_policy_text_round_trips_and_refuses_malformed_names():
    text = policy_text(task="progress", object="curious", action="model")
    assert text == "task=progress,object=curious,action=model"
    assert parse_policy(text) == {"task": "progress", "object": "curious", "action": "model"}
    assert parse_policy("") == {}
    assert policy_text(action="random") == "action=random"
    for bad in ("curious", "task=a,task=b", "speed=fast", "task="):
        with pytest.raises(ValueError, match="malformed"):
            parse_policy(bad)
    with pytest.raises(ValueError, match="unknown policy level"):
        policy_text(mood="happy")
    with pytest.raises(ValueError, match="without"):
        policy_text(task="a,b")


def _rec(seq: int, policy: str, task: str = "grasp") -> Interaction:
    rng = np.random.default_rng(seq)
    action = {"grasp": [0.1, -0.2, 1.3], "poke": [0.01, 0.02]}[task]
    outcome = {"grasp": [0.03], "poke": [812.5, -0.25, 0.004, 3.5]}[task]
    return Interaction(task=task, robot="robot0", seq=seq, object_id="o1",
                       object_model="mug.urdf", action=action, outcome=outcome,
                       success=True,
                       before=rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
                       stamp_start=100.0 + seq, stamp_end=101.0 + seq, policy=policy)


@pytest.mark.unit
def test_validate_refuses_a_malformed_policy():
    with pytest.raises(InvalidInteraction, match="malformed policy"):
        validate(_rec(0, "curious"))
    validate(_rec(0, ""))  # records from before the field


@pytest.mark.unit
def test_policy_round_trip_record_msg_store_stats_mcap(tmp_path, capsys):
    from curious_robot.convert import msg_to_record, record_to_msg

    policies = ["task=fixed,object=random,action=random",
                "task=progress,object=curious,action=curious",
                "task=progress,object=curious,action=curious", ""]
    recs = [_rec(i, p, "grasp" if i < 3 else "poke") for i, p in enumerate(policies)]
    for rec in recs:
        assert msg_to_record(record_to_msg(rec)).policy == rec.policy
    src = tmp_path / "src.db"
    with ReplayStore(src) as s:
        for rec in recs:
            assert s.add(rec).stored
        assert [r.policy for r in s.get_many(s.ids())] == policies
        stats = s.stats()
    assert stats["per_policy"] == {
        "grasp": {"task=fixed,object=random,action=random": 1,
                  "task=progress,object=curious,action=curious": 2},
        "poke": {"": 1}}
    assert cli_main(["store", "stats", str(src)]) == 0
    out = capsys.readouterr().out
    assert "grasp by policy: 1 task=fixed,object=random,action=random, 2 task=progress" in out
    assert "poke by policy: 1 (unknown)" in out
    bag = tmp_path / "run.mcap"
    assert cli_main(["store", "export", str(src), "--format", "mcap", "--out", str(bag)]) == 0
    capsys.readouterr()
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(bag), "--store", str(dst), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stored"] == 4
    with ReplayStore(dst, readonly=True) as s:
        assert [r.policy for r in s.get_many(s.ids())] == policies


@pytest.mark.unit
def test_a_store_from_before_the_policy_column_opens_and_migrates(tmp_path):
    path = tmp_path / "old.db"
    with ReplayStore(path) as s:
        assert s.add(_rec(0, "task=fixed,object=random,action=random")).stored
    # make it a version-1 store: the table without the column (nor those of later
    # versions), version 1
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE sources; ALTER TABLE interactions DROP COLUMN source;"
        "ALTER TABLE interactions DROP COLUMN policy;"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    conn.close()
    with ReplayStore(path, readonly=True) as s:  # read as it is, nothing written
        assert s.get(1).policy == ""
        assert s.stats()["schema_version"] == 1
        assert s.stats()["per_policy"] == {"grasp": {"": 1}}
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    conn.close()
    with ReplayStore(path) as s:  # a writer migrates (to the current version)
        assert s.stats()["schema_version"] == SCHEMA_VERSION
        assert s.get(1).policy == ""
        assert s.add(_rec(1, "task=fixed,object=curious,action=model")).stored
        assert s.get(2).policy == "task=fixed,object=curious,action=model"
        assert s.check() == []
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version '0'"):
        ReplayStore(path)


# -- the experiment command ---------------------------------------------------------------

def _experiment(out, *extra) -> list[str]:
    return ["curiosity", "--budget", "80", "--seeds", "1", "--policies", "random,curious",
            "--out", str(out), "--fractions", "0.5,1", "--heldout", "40", "--attempts", "4",
            "--skip", "representation", "--steps-per-interaction", "0.1", *extra]


@pytest.mark.unit
@pytest.mark.parametrize("change,message", [
    ({"--policies": "random,psychic"}, "unknown psychic"),
    ({"--policies": "random,random"}, "twice"),
    ({"--budget": "70"}, "needs at least 40"),
    ({"--fractions": "0,1"}, "in (0, 1]"),
    ({"--skip": "vibes"}, "unknown vibes"),
    ({"--seeds": "0"}, "--seeds must be >= 1"),
    ({"--steps-per-interaction": "-1"}, "--steps-per-interaction must be >= 0"),
])
def test_curiosity_bad_input_exits_2_and_touches_nothing(tmp_path, capsys, change, message):
    out = tmp_path / "exp"
    argv = _experiment(out)
    for flag, value in change.items():
        argv[argv.index(flag) + 1] = value
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.unit
@pytest.mark.parametrize("item,message", [
    ("grasp_selector.policy=curious", "sets that parameter itself"),
    ("arm.object_split=all", "sets that parameter itself"),
    ("learner.steps_per_interaction=2.0", "sets that parameter itself"),
    ("learner.dutty=1", "unknown parameter 'dutty'"),
    ("nobody.x=1", "no node named 'nobody'"),
])
def test_curiosity_set_refuses_policy_parameters_and_unknown_ones(tmp_path, capsys, item,
                                                                  message):
    out = tmp_path / "exp"
    assert cli_main(_experiment(out, "--set", item)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.unit
def test_curiosity_refuses_another_experiments_folder(tmp_path, capsys):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "experiment.json").write_text(json.dumps({
        "kind": "curiosity", "budget": 3000, "fractions": [0.5, 1.0], "heldout": 40,
        "attempts": 4, "skip": ["representation"], "robots": 1, "evalset_objects": None,
        "policies": ["random"], "seeds": 1}))
    before = (out / "experiment.json").read_text()
    assert cli_main(_experiment(out)) == 2
    err = capsys.readouterr().err
    assert "another experiment's results" in err and "budget 3000 there, 80 now" in err
    assert (out / "experiment.json").read_text() == before
    # the same settings but other --set overrides (a folder from before --set: none)
    meta = json.loads(before)
    meta["budget"] = 80
    (out / "experiment.json").write_text(json.dumps(meta))
    assert cli_main(_experiment(out, "--set", "learner.duty=1.0")) == 2
    err = capsys.readouterr().err
    assert "different sets" in err and "['learner.duty=1.0'] now" in err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert cli_main(_experiment(other)) == 2
    assert "not a curiosity experiment folder" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]


@pytest.mark.unit
def test_curves_aggregate_over_seeds(tmp_path):
    from curious_robot.evaluation.curiosity import aggregate, render_curves

    points = [{"policy": pol, "seed": s, "target": n, "robot_seconds": 10.0 * n,
               "metrics": {"grasp_bin_accuracy": base + 0.01 * n + 0.02 * s}}
              for pol, base in (("random", 0.5), ("curious", 0.6)) for s in range(3)
              for n in (8, 16)]
    summary = aggregate(points)
    row = summary["curious"]["grasp_bin_accuracy"][1]
    assert row["interactions"] == 16 and row["n"] == 3
    assert row["mean"] == pytest.approx(0.6 + 0.16 + 0.02)
    assert row["lo"] < row["mean"] < row["hi"]
    assert row["hi"] - row["mean"] == pytest.approx(4.303 * 0.02 / np.sqrt(3))
    assert row["robot_seconds"] == 160.0
    pngs = render_curves(summary, tmp_path)
    assert [p.name for p in pngs] == ["curves_grasp_bin_accuracy.png"]
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.unit
def test_first_reach_interpolates_and_says_never():
    from curious_robot.evaluation.curiosity import first_reach

    xs, ys = [750, 1500, 2250, 3000], [0.40, 0.50, 0.60, 0.70]
    assert first_reach(xs, ys, 0.55) == pytest.approx(1875)
    assert first_reach(xs, ys, 0.30) == 750  # at the first evaluation: an upper bound
    assert first_reach(xs, ys, 0.70) == 3000
    assert first_reach(xs, ys, 0.71) is None


def _points(curves: dict) -> list[dict]:
    """(policy, seed) -> grasp success at 750 .. 3000 interactions (2 s of robot time
    each)."""
    return [{"policy": pol, "seed": seed, "target": n, "interactions": n + 1,
             "robot_seconds": 2.0 * n, "metrics": {"grasp_success": y}}
            for (pol, seed), ys in curves.items()
            for n, y in zip((750, 1500, 2250, 3000), ys)]


@pytest.mark.unit
def test_reach_counts_interactions_to_the_random_policys_final_value():
    from curious_robot.evaluation.curiosity import reach, report_markdown

    points = _points({("random", 0): [0.2, 0.3, 0.4, 0.5], ("random", 1): [0.2, 0.3, 0.4, 0.7],
                      ("curious", 0): [0.4, 0.8, 0.8, 0.8], ("curious", 1): [0.6, 0.7, 0.7, 0.7],
                      # an unfinished run counts neither way
                      ("curious", 2): [0.1]})
    entry = reach(points)["grasp_success"]
    assert entry["reference_final"]["mean"] == pytest.approx(0.6)
    assert entry["budget"] == 3000
    cur = entry["policies"]["curious"]
    assert cur["runs"] == 2 and cur["reached"] == 2
    assert cur["seeds"]["0"]["interactions"] == pytest.approx(1125)
    assert cur["seeds"]["0"]["robot_seconds"] == pytest.approx(2250)
    assert cur["seeds"]["1"]["interactions"] == 750
    assert cur["interactions"]["mean"] == pytest.approx(937.5)
    assert cur["fraction_of_budget"]["mean"] == pytest.approx(937.5 / 3000)
    assert cur["interactions"]["lo"] < 937.5 < cur["interactions"]["hi"]
    rnd = entry["policies"]["random"]
    # seed 0 never gets to the mean of both seeds' final values: no mean is claimed
    assert rnd["reached"] == 1 and rnd["seeds"]["0"]["interactions"] is None
    assert "interactions" not in rnd
    assert "grasp_bin_accuracy" not in reach(points)  # not measured: not reported
    first, last = entry["along"][0], entry["along"][-1]
    assert first["interactions"] == 750 and last["interactions"] == 3000
    assert first["policies"]["curious"]["mean"] == pytest.approx(0.5)  # seed 2 unfinished
    d = last["minus_reference"]["curious"]
    assert d["mean"] == pytest.approx(0.15)
    # Welch: se = sqrt(0.005 / 2 + 0.02 / 2), about 1.5 degrees of freedom -> t(1)
    assert d["hi"] - d["mean"] == pytest.approx(12.706 * math.sqrt(0.0125))
    assert set(first["minus_reference"]) == {"curious"}  # the reference is not its own
    meta = {"policies": ["random", "curious"], "budget": 3000, "robots": 1,
            "fractions": [0.25, 0.5, 0.75, 1.0], "heldout": 40, "attempts": 4}
    text = report_markdown(meta, {}, reach(points), {})
    assert "| interactions | curious | random | curious - random |" in text, text
    assert "| 3000 | 0.750 [0.115, 1.385] | 0.600 [-0.671, 1.871] | 0.150 [" in text, text


@pytest.mark.unit
def test_rates_come_from_each_runs_records_and_leave_out_the_pauses(tmp_path):
    from curious_robot.evaluation.curiosity import rates, report_markdown

    def store(policy: str, seconds_each: float, stopped_after: int | None = None) -> None:
        path = tmp_path / "runs" / policy / "seed0" / "replay.db"
        path.parent.mkdir(parents=True)
        with ReplayStore(path) as s:
            t = 1000.0
            for i in range(8):
                if i == 4:
                    t += 500.0  # an evaluation between two stretches: not collection time
                if i == stopped_after:
                    t += 3 * 3600.0  # the machine went away; the stretch continued later
                rec = _rec(i, "")
                rec.stamp_start, rec.stamp_end = t, t + seconds_each
                t += seconds_each + 1.0  # 1 s between interactions (waiting for objects)
                assert s.add(rec).stored

    store("random", 1.0)
    store("curious", 3.0)
    store("model", 1.0, stopped_after=2)
    points = [{"policy": pol, "seed": 0, "target": n, "interactions": n,
               "robot_seconds": 0.0, "metrics": {}}
              for pol in ("random", "curious", "model") for n in (4, 8)]
    rate = rates(tmp_path, points)
    # each stretch: 4 records over 4 x 1 s of motion and 3 x 1 s of waiting
    assert rate["random"]["per_s"]["mean"] == pytest.approx(8 / 14)
    # the interrupted stretch: two parts of 2 records, each 2 x 1 s of motion and 1 s wait
    assert rate["model"]["per_s"]["mean"] == pytest.approx(8 / 13)
    del rate["model"]
    assert rate["random"]["per_robot_second"]["mean"] == pytest.approx(1.0)
    assert rate["curious"]["per_s"]["mean"] == pytest.approx(8 / 30)
    assert rate["curious"]["per_s_vs_random"] == pytest.approx(14 / 30)
    assert rate["curious"]["per_robot_second_vs_random"] == pytest.approx(1 / 3)
    meta = {"policies": ["random", "curious"], "budget": 8, "robots": 1,
            "fractions": [0.5, 1.0], "heldout": 40, "attempts": 4}
    text = report_markdown(meta, {}, {}, rate)
    assert "| curious | 0.27 | 0.47 | 0.33 | 0.33 |" in text
    assert "No run has reached the budget yet." in text


@pytest.mark.unit
def test_choices_show_what_each_policy_picked(tmp_path):
    from curious_robot.evaluation.curiosity import choices, rates, report_markdown

    rand = "task=fixed,object=random,action=random"
    runs = {"random": [_rec(i, rand) for i in range(4)],
            "curious": [_rec(0, "task=progress,object=random,action=random"),
                        _rec(1, "task=progress,object=curious,action=curious"),
                        _rec(2, "task=progress,object=curious,action=curious", "poke"),
                        _rec(3, "task=progress,object=curious,action=curious", "poke")]}
    runs["curious"][1].success = False
    runs["curious"][2].object_model = "cup.urdf"
    runs["curious"][3].stamp_end += 2.0  # a poke of 3 s: the other three take 1 s
    for policy, recs in runs.items():
        path = tmp_path / "runs" / policy / "seed0" / "replay.db"
        path.parent.mkdir(parents=True)
        with ReplayStore(path) as s:
            for rec in recs:
                assert s.add(rec).stored
    points = [{"policy": pol, "seed": 0, "target": 4, "interactions": 4,
               "robot_seconds": 0.0, "metrics": {}} for pol in runs]
    chose = choices(tmp_path, points)
    assert chose["random"]["task_share"] == {"grasp": 1.0}
    assert chose["random"]["curious_share"] == {"task": 0.0, "object": 0.0, "action": 0.0}
    assert chose["random"]["success"] == {"grasp": 1.0}
    assert chose["random"]["object_models"] == 1
    cur = chose["curious"]
    assert cur["task_share"] == {"grasp": 0.5, "poke": 0.5}
    assert cur["time_share"] == {"grasp": pytest.approx(2 / 6), "poke": pytest.approx(4 / 6)}
    assert cur["success"] == {"grasp": 0.5, "poke": 1.0}
    assert cur["object_models"] == 2 and cur["top_object_share"] == 0.75
    assert cur["curious_share"] == {"task": 1.0, "object": 0.75, "action": 0.75}
    meta = {"policies": ["random", "curious"], "budget": 4, "robots": 1,
            "fractions": [1.0], "heldout": 40, "attempts": 4}
    rate = rates(tmp_path, points)
    # curious is slower per robot-second (6 s for 4 records against 4 s) only because it
    # poked, and a poke of its took longer: at random's task mix (grasps only) it is as fast
    assert rate["curious"]["per_robot_second_vs_random"] == pytest.approx(4 / 6)
    assert rate["curious"]["task_seconds"]["grasp"]["mean"] == pytest.approx(1.0)
    assert rate["curious"]["task_seconds"]["poke"]["mean"] == pytest.approx(2.0)
    assert rate["curious"]["per_robot_second_at_reference_mix"]["mean"] == pytest.approx(1.0)
    assert rate["curious"]["per_robot_second_at_reference_mix_vs_random"] == pytest.approx(1)
    assert "poke" not in rate["random"]["task_seconds"]
    text = report_markdown(meta, {}, {}, rate, chose)
    assert ("| curious | 50 % / 33 % / 50 % | 50 % / 67 % / 100 % | 2 | 75 % | 75 % | 75 % "
            "| 100 % |") in text, text
    assert "| curious | 1.000 | 2.000 | 1.00 | 1.00 |" in text, text
    assert "| random | 1.000 | - | 1.00 | 1.00 |" in text, text


@pytest.mark.slow
@pytest.mark.ros
def test_curiosity_small_run_writes_curves_and_resumes(tmp_path, capsys):
    out = tmp_path / "exp"
    assert cli_main(_experiment(out)) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert first["new_points"] == 4 and first["points"] == 4
    results = json.loads((out / "results.json").read_text())
    assert {(p["policy"], p["target"]) for p in results["points"]} == {
        ("random", 40), ("random", 80), ("curious", 40), ("curious", 80)}
    for p in results["points"]:
        assert p["interactions"] >= p["target"] and p["robot_seconds"] > 0
    # every evaluated model has had 0.1 training steps per interaction, whatever the
    # learner managed online (paced: never more)
    for p in results["points"]:
        assert p["metrics"]["model_step"] == np.ceil(0.1 * p["interactions"]), p
        assert p["pacing"]["learner_step"] <= p["metrics"]["model_step"], p
    # by the end every run has a model, evaluated on the held-out set and in closed loop
    for p in results["points"]:
        if p["target"] == 80:
            assert p["has_model"], p
            assert p["metrics"]["grasp_bin_accuracy"] is not None
            assert 0.0 <= p["metrics"]["grasp_success"] <= 1.0
    # the runs recorded what chose each interaction
    with ReplayStore(out / "runs" / "curious" / "seed0" / "replay.db", readonly=True) as s:
        curious = s.stats()["per_policy"]
    with ReplayStore(out / "runs" / "random" / "seed0" / "replay.db", readonly=True) as s:
        random_ = s.stats()["per_policy"]
    seen = {p for per in curious.values() for p in per}
    assert all(p.startswith("task=progress,object=") for p in seen)
    # the second stretch starts from the first one's model: curiosity is engaged
    assert any("object=curious" in p for p in seen), seen
    assert any(p.endswith("action=curious") for p in seen), seen
    assert {p for per in random_.values() for p in per} == {
        "task=fixed,object=random,action=random"}
    with ReplayStore(out / "heldout" / "replay.db", readonly=True) as s:
        # held-out objects only (a push's record names no object model: not held out)
        assert s.count() >= 40 and s.count(held_out=True) >= s.count() // 2
    assert (out / "curves_grasp_success.png").is_file() or \
        not any("grasp_success" in m for m in results["summary"].values())
    assert any(out.glob("curves_*.png"))
    # the report: both runs' speed from their own records, the reach of random's final value
    assert set(results["rates"]) == {"random", "curious"}
    assert results["rates"]["curious"]["per_s"]["mean"] > 0
    assert "grasp_success" in results["reach"]
    assert "## Collection speed" in (out / "report.md").read_text()
    assert results["choices"]["curious"]["curious_share"]["task"] == 1.0
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/point_*.json")}
    counts = {pol: json.loads((out / "runs" / pol / "seed0" / "point_80.json").read_text())[
        "interactions"] for pol in ("random", "curious")}
    # a second invocation finds everything done: no collection, no evaluation
    assert cli_main(_experiment(out)) == 0
    results_now = json.loads((out / "results.json").read_text())
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["new_points"] == 0 and again["points"] == 4
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/point_*.json")} == stamps
    for pol, n in counts.items():
        with ReplayStore(out / "runs" / pol / "seed0" / "replay.db", readonly=True) as s:
            assert s.count() == n
    # a point evaluated on another held-out set (before heldout_records) is re-evaluated
    # from its frozen checkpoint; the rest are left alone
    path = out / "runs" / "random" / "seed0" / "point_80.json"
    old = json.loads(path.read_text())
    stale = dict(old, metrics=dict(old["metrics"], grasp_bin_accuracy=-1.0))
    del stale["heldout_records"]
    path.write_text(json.dumps(stale))
    assert cli_main(_experiment(out)) == 0
    capsys.readouterr()
    fresh = json.loads(path.read_text())
    assert fresh["heldout_records"] == 40 and fresh["heldout_reevaluated"]
    assert fresh["metrics"]["grasp_bin_accuracy"] == old["metrics"]["grasp_bin_accuracy"]
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/point_*.json")
            if p != path} == {p: t for p, t in stamps.items() if p != path}
    results_now = json.loads((out / "results.json").read_text())
    # published without stores, checkpoints or logs; a copy of that continues the
    # experiment: the held-out set, re-collected, is the one the points were evaluated on
    pub = tmp_path / "published"
    assert cli_main(_experiment(out, "--export", str(pub))) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["exported"] > 0
    assert not [f for f in pub.rglob("*") if f.suffix in (".db", ".pt", ".log", ".key")]
    again = tmp_path / "again"
    shutil.copytree(pub, again)
    assert cli_main(_experiment(again)) == 0
    cont = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cont["new_points"] == 0 and cont["points"] == 4
    # the set is the first 40 records (those in flight at the stop may differ)
    assert json.loads((again / "heldout" / "digest.json").read_text()) == json.loads(
        (out / "heldout" / "digest.json").read_text())
    assert json.loads((out / "heldout" / "digest.json").read_text())["records"] == 40
    assert {p["heldout_records"] for p in results_now["points"]} == {40}
    assert json.loads((again / "results.json").read_text())["rates"] == results_now["rates"]
    # a held-out set that differs from the recorded one stops the experiment
    digest = again / "heldout" / "digest.json"
    digest.write_text(digest.read_text().replace('"sha256": "', '"sha256": "0'))
    assert cli_main(_experiment(again)) == 1
    assert "the held-out set differs" in capsys.readouterr().err
    digest.write_text(json.dumps(json.loads((out / "heldout" / "digest.json").read_text())))
    # a run with points but no store (exported unfinished) is not continued from nothing
    (again / "runs" / "random" / "seed1").mkdir()
    shutil.copy(again / "runs" / "random" / "seed0" / "point_40.json",
                again / "runs" / "random" / "seed1" / "point_40.json")
    assert cli_main(_experiment(again, "--seeds", "2")) == 1
    assert "holds points up to 40 interactions but no store" in capsys.readouterr().err
    assert not (again / "runs" / "random" / "seed1" / "replay.db").exists()


@pytest.mark.unit
def test_policy_sets_configure_each_level_and_continue_from_the_model(tmp_path):
    from curious_robot.evaluation.curiosity import policy_sets

    sets = policy_sets("curious")
    assert "interaction_manager.object_policy=curious" in sets
    assert "interaction_manager.task_policy=progress" in sets
    assert {"grasp_selector.policy=curious", "push_selector.policy=curious",
            "poke_selector.policy=curious"} <= set(sets)
    assert not any("checkpoint" in s for s in sets)
    assert not any("checkpoint" in s for s in policy_sets("random", tmp_path / "none.pt"))
    ckpt = tmp_path / "checkpoint_40.pt"
    ckpt.write_bytes(b"x")
    assert f"interaction_manager.checkpoint={ckpt}" in policy_sets("curious", ckpt)
    assert "grasp_selector.policy=random" in policy_sets("random", ckpt)


@pytest.mark.unit
def test_run_sets_pace_training_and_let_the_user_choose_the_duty():
    from curious_robot.evaluation.curiosity import run_sets

    cfg = {"steps_per_interaction": 0.5, "sets": ["arm.n_objects=6"]}
    sets = run_sets(cfg, "random")
    assert sets[:3] == ["learner.duty=1.0", "arm.n_objects=6",
                        "learner.steps_per_interaction=0.5"]
    assert "grasp_selector.policy=random" in sets
    # collect's --set: the later one wins, so the user's duty overrides the experiment's
    assert run_sets({**cfg, "sets": ["learner.duty=0.5"]}, "random")[:2] == [
        "learner.duty=1.0", "learner.duty=0.5"]
    unpaced = run_sets({"steps_per_interaction": 0.0, "sets": []}, "curious")
    assert not any(s.startswith("learner.duty") or "steps_per_interaction" in s
                   for s in unpaced)


@pytest.mark.unit
def test_top_up_trains_a_model_that_fell_behind_to_its_steps(tmp_path):
    """The learner stopped short of k x interactions: the evaluation first trains its
    checkpoint (resumed, the same recipe) up to there; one already there is left alone."""
    from curious_robot.evaluation.curiosity import top_up
    from curious_robot.learning.checkpoint import load_checkpoint
    from curious_robot.learning.synthetic import synthetic_interactions

    store = tmp_path / "replay.db"
    with ReplayStore(store) as s:
        for rec in synthetic_interactions(12, np.random.default_rng(0), size=64,
                                          tasks=("grasp",)):
            s.add(rec)
    ck = tmp_path / "replay.checkpoints"
    assert top_up(store, ck, 4, 1) == {"steps": 4, "learner_step": None,
                                       "trained_step": None}  # no model yet: nothing
    assert cli_main(["train", "--store", str(store), "--out", str(ck), "--steps", "2",
                     "--tasks", "grasp", "--input-size", "64", "--width", "0.25",
                     "--batch-size", "4", "--min-records", "2", "--threads", "1"]) == 0
    assert top_up(store, ck, 5, 1) == {"steps": 5, "learner_step": 2, "trained_step": 5}
    assert load_checkpoint(ck / "checkpoint.pt")["step"] == 5
    before = (ck / "checkpoint.pt").stat().st_mtime_ns
    assert top_up(store, ck, 3, 1) == {"steps": 3, "learner_step": 5, "trained_step": 5}
    assert (ck / "checkpoint.pt").stat().st_mtime_ns == before


@pytest.mark.unit
def test_error_ratios_compare_across_checkpoints():
    from curious_robot.evaluation.curiosity import error_ratios

    got = error_ratios({"push_error": 1.5, "push_mean_baseline_error": 2.0,
                        "poke_error": None, "poke_mean_baseline_error": 1.0,
                        "grasp_bin_accuracy": 0.6})
    assert got == {"push_error_ratio": 0.75}


@pytest.mark.unit
def test_the_signature_covers_the_policy_and_older_records_still_verify():
    from curious_robot.fleet import record_bytes

    rec = _rec(0, "")
    plain = record_bytes("f", rec)
    rec.policy = "task=fixed,object=random,action=random"
    signed = record_bytes("f", rec)
    assert signed != plain  # a changed policy breaks the signature
    rec.policy = "task=fixed,object=curious,action=random"
    assert record_bytes("f", rec) != signed
    # a record without the field signs as before the field existed
    import dataclasses

    old = dataclasses.replace(rec, policy="")
    assert record_bytes("f", old) == plain


@pytest.mark.unit
def test_store_digest_sees_content_not_stamps_and_check_digest_refuses_a_change(tmp_path):
    from curious_robot.evaluation.curiosity import StorePrefix, check_digest, store_digest

    def store(name: str, change=None):
        path = tmp_path / name / "replay.db"
        path.parent.mkdir()
        with ReplayStore(path) as s:
            for i in range(3):
                rec = _rec(i, "task=fixed,object=random,action=random")
                rec.stamp_start += 50.0 * (name == "later")  # collected at another time
                rec.stamp_end += 50.0 * (name == "later")
                if change and i == 2:
                    change(rec)
                assert s.add(rec).stored
        return store_digest(path)

    first = store("first")
    assert first["records"] == 3
    assert store("later") == first
    moved = store("moved", lambda r: r.action.__setitem__(0, 0.1001))
    failed = store("failed", lambda r: setattr(r, "success", False))
    assert len({first["sha256"], moved["sha256"], failed["sha256"]}) == 3
    # a re-collection that overshot: its first records are the set
    assert store_digest(tmp_path / "moved" / "replay.db", 2) == \
        store_digest(tmp_path / "first" / "replay.db", 2) != first
    with ReplayStore(tmp_path / "moved" / "replay.db", readonly=True) as s:
        view = StorePrefix(s, 2)
        assert view.ids().tolist() == s.ids().tolist()[:2]
        assert view.count("grasp") == 2 and view.count(success=False) == 0
        assert [r.seq for r in view.get_many(view.ids().tolist(), images=False)] == [0, 1]
        assert StorePrefix(s, 10).count() == 3 and StorePrefix(s, 0).count() == 0
    recorded = tmp_path / "digest.json"
    check_digest(recorded, first, "the held-out set")  # first time: recorded
    assert json.loads(recorded.read_text()) == first
    check_digest(recorded, dict(first), "the held-out set")  # the same: goes on
    with pytest.raises(RuntimeError, match="the held-out set differs"):
        check_digest(recorded, moved, "the held-out set")
    assert json.loads(recorded.read_text()) == first  # the record is kept


@pytest.mark.unit
def test_a_finished_runs_summary_outlives_its_store_and_export_copies_no_data(tmp_path):
    from curious_robot.evaluation.curiosity import choices, export, rates

    out = tmp_path / "exp"
    rand = "task=fixed,object=random,action=random"
    run_dir = out / "runs" / "random" / "seed0"
    run_dir.mkdir(parents=True)
    with ReplayStore(run_dir / "replay.db") as s:
        for i in range(4):
            assert s.add(_rec(i, rand)).stored
    (run_dir / "checkpoint_4.pt").write_bytes(b"model")
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "arm.log").write_text("log")
    points = [{"policy": "random", "seed": 0, "target": n, "interactions": n,
               "robot_seconds": float(n), "metrics": {}} for n in (2, 4)]
    for p in points:
        (run_dir / f"point_{p['target']}.json").write_text(json.dumps(p))
    (out / "experiment.json").write_text("{}")
    before = rates(out, points), choices(out, points)
    assert before[0]["random"]["per_robot_second"]["mean"] == pytest.approx(1.0)
    assert (run_dir / "run.json").is_file()
    stale = dict(json.loads((run_dir / "run.json").read_text()), version=1,
                 rate={"per_s": 99.0, "per_robot_second": 99.0})
    (run_dir / "run.json").write_text(json.dumps(stale))
    assert rates(out, points) == before[0]  # an older version's: computed again from the store
    assert json.loads((run_dir / "run.json").read_text())["version"] == 2
    unfinished = out / "runs" / "random" / "seed1"  # a run stopped after its first point
    unfinished.mkdir()
    (unfinished / "point_2.json").write_text(json.dumps(dict(points[0], seed=1)))
    dest = tmp_path / "published"
    copied = export(out, dest, 4)
    assert {p.relative_to(dest).as_posix() for p in copied} == {
        "experiment.json", "runs/random/seed0/point_2.json",
        "runs/random/seed0/point_4.json", "runs/random/seed0/run.json"}
    # the exported folder has no store, yet reports the same speed and choices
    assert (rates(dest, points), choices(dest, points)) == before
    # a summary made for other counts (a run that went on) is not used without its store
    assert rates(dest, [dict(p, interactions=p["interactions"] + 1) for p in points]) == {}
