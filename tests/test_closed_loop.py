"""``curious-robot eval-grasp``: the in-process closed loop (real PyBullet, real torch) with
a tiny checkpoint, its JSON, the same scene sequence for every policy, the Wilson
interval, and argument errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from curious_robot.cli import main
from curious_robot.learning.synthetic import synthetic_interactions
from curious_robot.learning.closed_loop import angle_error, wilson_interval
from curious_robot.learning.networks import ModelConfig
from curious_robot.learning.train import TrainConfig, Trainer
from curious_robot.store import ReplayStore

torch.set_num_threads(1)
KEYS = {"attempts", "successes", "success_rate", "ci95", "errors", "angle_error_deg",
        "select_ms", "seconds", "seconds_per_attempt"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval")
    with ReplayStore(folder / "replay.db") as store:
        for rec in synthetic_interactions(6, np.random.default_rng(0), size=64):
            store.add(rec)
        trainer = Trainer(store, ModelConfig(input_size=64, width=0.25),
                          TrainConfig(batch_size=4, min_records=4), "cpu")
        trainer.train_steps(1)
        trainer.save(folder / "run" / "checkpoint.pt")
    return folder / "run"


@pytest.mark.unit
def test_wilson_interval_and_angle_error():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))
    lo, hi = wilson_interval(60, 60)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.9398, abs=1e-3)
    assert angle_error(0.1, np.pi - 0.1) == pytest.approx(0.2)
    assert angle_error(0.0, np.pi / 2) == pytest.approx(np.pi / 2)


@pytest.mark.sim
def test_eval_grasp_all_policies_json(checkpoint, capsys):
    code = main(["eval-grasp", "--checkpoint", str(checkpoint), "--attempts", "6",
                 "--objects", "4", "--reset-every", "3", "--seed", "1", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"random", "model", "curious"}
    for name, r in out.items():
        assert KEYS <= set(r), name
        assert r["attempts"] == 6 and 0 <= r["successes"] <= 6
        assert r["success_rate"] == pytest.approx(r["successes"] / 6)
        lo, hi = r["ci95"]
        assert 0.0 <= lo <= r["success_rate"] <= hi <= 1.0
        assert r["errors"] == 0
    assert out["model"]["checkpoint_step"] == 1 and "checkpoint_step" not in out["random"]


@pytest.mark.sim
def test_same_scenes_for_every_run_and_table_output(capsys):
    args = ["eval-grasp", "--policy", "random", "--attempts", "4", "--objects", "3",
            "--reset-every", "2", "--seed", "5"]
    assert main([*args, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["random"]
    assert main([*args, "--json"]) == 0
    second = json.loads(capsys.readouterr().out)["random"]
    for key in ("successes", "angle_error_deg", "errors"):
        assert first[key] == second[key], key
    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:2] == ["policy", "success"]
    assert table.splitlines()[1].startswith("random")


@pytest.mark.unit
def test_argument_errors(tmp_path, capsys):
    assert main(["eval-grasp", "--policy", "model", "--attempts", "2"]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert main(["eval-grasp", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert main(["eval-grasp", "--checkpoint", str(tmp_path / "bad.pt"),
                 "--policy", "curious"]) == 1
    assert main(["eval-grasp", "--policy", "random", "--attempts", "0"]) == 2


@pytest.mark.sim
def test_json_stdout_is_one_clean_document():
    """PyBullet prints "argv[0]=" on the C stdout at every connect; --json must not."""
    res = subprocess.run([sys.executable, "-m", "curious_robot.cli", "eval-grasp", "--policy",
                          "random", "--attempts", "2", "--objects", "2", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert set(json.loads(res.stdout)) == {"random"}
