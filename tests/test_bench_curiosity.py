"""`curious-robot bench curiosity`: a real pair of runs (random, then curious, one robot
each through the whole ROS graph with online training), its JSON keys and ratio; bad input
exits 2 before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from curious_robot import paths
from curious_robot.commands.bench_curiosity import interval

CLI = "import sys; from curious_robot.cli import main; sys.exit(main())"


def _bench(tmp_path, *args, timeout=400):
    env = {**os.environ, "ROS_DOMAIN_ID": str(1 + (os.getpid() + 31) % 100),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_LOG_DIR": str(tmp_path / "roslog")}
    return subprocess.run([sys.executable, "-c", CLI, "bench", "curiosity", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.ros
@pytest.mark.slow
def test_one_seed_runs_both_policies_and_reports_their_ratio(tmp_path):
    res = _bench(tmp_path, "--seeds", "3", "--seconds", "6", "--json")
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["policies"] == ["random", "curious"] and len(out["pairs"]) == 1
    pair = out["pairs"][0]
    for policy in ("random", "curious"):
        r = pair[policy]
        assert r["interactions"] > 0 and r["gaps"] == 0 and r["store_check"] == "ok", r
        assert r["stopped_cleanly"] and r["refused"] == 0, r
        assert "learner.train=true" in r["set"] and "learner.steps_per_interaction=0.5" \
            in r["set"], r["set"]
        assert out["ms_per_interaction"][policy]["acting"] > 50, out["ms_per_interaction"]
    assert "grasp_selector.policy=curious" in pair["curious"]["set"]
    shipped = str(paths.shipped_model("arm").resolve())
    assert out["checkpoint"] == shipped  # the default: curiosity acts from the start
    assert f"interaction_manager.checkpoint={shipped}" in pair["curious"]["set"]
    from curious_robot.store import ReplayStore

    for policy, level in (("random", "object=random"), ("curious", "object=curious")):
        with ReplayStore(os.path.join(pair[policy]["logs"], "replay.db"), readonly=True) as st:
            chosen = [r.policy for r in st.get_many(st.ids().tolist(), images=False)]
        # curious from the first choice (a choice whose patches all failed is random)
        assert chosen and sum(level in p for p in chosen) >= 0.8 * len(chosen), \
            (policy, chosen[:5])
    assert "grasp_selector.policy=curious" not in pair["random"]["set"]
    assert pair["ratio"] == pytest.approx(
        pair["curious"]["per_s"] / pair["random"]["per_s"], abs=1e-3)
    assert out["ratio"] == {"mean": pair["ratio"], "lo": pair["ratio"],
                            "hi": pair["ratio"], "n": 1}
    assert pair["ratio_at_baseline_mix"] is None or pair["ratio_at_baseline_mix"] > 0


@pytest.mark.unit
@pytest.mark.parametrize("args, message", [
    (["--policies", "random,nosy"], "unknown policy 'nosy'"),
    (["--policies", "curious"], "give two different policies"),
    (["--policies", "random,random"], "give two different policies"),
    (["--seeds", "1,1"], "seed 1 is given twice"),
    (["--seconds", "0"], "--seconds must be > 0"),
    (["--steps-per-interaction", "-1"], "--steps-per-interaction must be >= 0"),
    (["--set", "nobody.x=1"], "no node named 'nobody'"),
    (["--checkpoint", "/nonexistent/model.pt"], "--checkpoint"),
])
def test_bad_arguments_exit_2(args, message, capsys, monkeypatch):
    from curious_robot.cli import main
    from curious_robot.commands import bench_graph

    def no_run(*_args, **_kwargs):
        raise AssertionError("a run started")

    monkeypatch.setattr(bench_graph, "graph_run", no_run)
    assert main(["bench", "curiosity", *args]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.unit
def test_interval_is_the_95_percent_t_interval_of_the_mean():
    assert interval([0.9]) == {"mean": 0.9, "lo": 0.9, "hi": 0.9, "n": 1}
    r = interval([0.9, 1.0, 0.95])  # sd 0.05, t(2) = 4.303: half width 0.124
    assert r["n"] == 3 and r["mean"] == pytest.approx(0.95)
    assert r["lo"] == pytest.approx(0.826, abs=1e-3) and r["hi"] == pytest.approx(1.074, abs=1e-3)


@pytest.mark.unit
def test_the_ratio_at_the_baselines_mix_weighs_each_tasks_seconds_by_the_baselines_shares(
        tmp_path):
    import numpy as np

    from curious_robot.commands.bench_curiosity import ratio_at_mix
    from curious_robot.learning.synthetic import synthetic_interactions
    from curious_robot.store import ReplayStore

    def store(name, seconds):  # seconds: one duration per record, by task
        recs = [r for r in synthetic_interactions(6, np.random.default_rng(0), size=32)]
        path = tmp_path / f"{name}.db"
        with ReplayStore(path) as s:
            t, seq = 100.0, 0
            for task, durations in seconds.items():
                rec = next(r for r in recs if r.task == task)
                for d in durations:
                    rec.robot, rec.seq, rec.stamp_start, rec.stamp_end = "r0", seq, t, t + d
                    s.add(rec)
                    t, seq = t + d + 0.01, seq + 1
        return path

    base = store("base", {"grasp": [0.2, 0.2, 0.2], "inspect": [0.6]})
    other = store("other", {"grasp": [0.3], "inspect": [0.6, 0.6, 0.6], "push": [0.4]})
    # at the baseline's mix (3/4 grasp, 1/4 inspect): 0.3 s against 0.375 s a record
    assert ratio_at_mix(base, other) == pytest.approx(0.3 / 0.375)
    assert ratio_at_mix(other, base) is None  # the baseline pushed, the other never did
