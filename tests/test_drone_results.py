"""``curious-robot reproduce --mode drone`` (``make drone-results``) at a tiny size: real
pilot in real PyBullet rooms, a real ``train`` subprocess, real flights; the JSON it
writes, its chart, the exported model file, resuming, and argument errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from curious_robot.cli import main
from curious_robot.drone import results as drone
from curious_robot.learning.checkpoint import load_checkpoint, sha256

TINY = ["--rooms", "1", "--crashes", "2", "--held-out-rooms", "1", "--steps", "3",
        "--flights", "3", "--max-time", "4", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("drone_results")
    args = ["reproduce", "--mode", "drone", "--work", str(tmp / "work"), "--out",
            str(tmp / "out"), *TINY]
    code = main(args)
    return code, tmp, args


@pytest.mark.sim
def test_tiny_drone_results_write_the_json_chart_and_model(run):
    code, tmp, _ = run
    assert code == 0
    out = tmp / "out"
    r = json.loads((out / "results.json").read_text())
    assert r["schema"] == drone.SCHEMA
    assert r["command"].startswith("curious-robot reproduce --mode drone")
    assert r["config"] == {"seed": 0, "rooms": 1, "crashes": 2, "held_out_rooms": 1,
                           "steps": 3, "flights": 3, "max_time_s": 4.0}
    assert r["data"]["train"]["safe"] + r["data"]["train"]["unsafe"] > 0
    assert r["data"]["held_out"]["safe"] + r["data"]["held_out"]["unsafe"] > 0
    assert r["training"]["steps"] == 3
    assert set(r["policies"]) == set(drone.POLICIES)
    for name, s in r["policies"].items():
        assert s["flights"] == 3, name
        lo, hi = s["ci95_distance_m"]
        assert lo <= s["mean_distance_m"] <= hi
        assert 0 <= s["collided"] <= 3
        assert 0 < s["mean_time_s"] <= 4.0 + 0.05  # a flight may end one control tick over
        mine = [f["distance"] for f in r["flights"] if f["policy"] == name]
        assert s["mean_distance_m"] == pytest.approx(np.mean(mine))
    assert set(r["paired"]) == {"learned-straight", "random-straight"}
    assert len(r["flights"]) == 9
    assert {f["layout_seed"] for f in r["flights"]} == set(r["layouts"])
    assert all(s >= 100000 for s in r["layouts"])  # held-out rooms only
    acc = r["crash_head"]
    assert acc["crash_records"] == r["data"]["held_out"]["safe"] + \
        r["data"]["held_out"]["unsafe"]
    assert 0.0 <= acc["crash_accuracy"] <= 1.0
    # the model file: no optimizer state, its hash in the JSON
    model = tmp / "work" / drone.MODEL_NAME
    assert r["model"]["sha256"] == sha256(model)
    state = load_checkpoint(model)
    assert "optimizer" not in state and any(k.startswith("heads.crash") for k in state["model"])
    png = (out / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "| learned | 3 |" in (out / "table.md").read_text()


@pytest.mark.sim
def test_a_rerun_reuses_every_stage_and_other_sizes_need_another_work_folder(run, capsys):
    code, tmp, args = run
    assert code == 0
    before = (tmp / "work" / "data.json").stat().st_mtime_ns
    assert main(args) == 0
    assert (tmp / "work" / "data.json").stat().st_mtime_ns == before
    capsys.readouterr()
    other = [a if a != "2" else "3" for a in args]  # --crashes 3
    assert main(other) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.unit
@pytest.mark.parametrize("extra, message", [
    (["--flights", "0"], "--flights"),
    (["--rooms", "0"], "--rooms"),
    (["--max-time", "0"], "--max-time"),
    (["--scale", "0"], "--scale"),
    (["--seed", "-1"], "--seed"),
    (["--variants", "all"], "--variants"),
    (["--store", "x.db"], "--store"),
])
def test_bad_drone_arguments_exit_2(tmp_path, capsys, extra, message):
    code = main(["reproduce", "--mode", "drone", "--work", str(tmp_path / "w"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


@pytest.mark.unit
def test_drone_flags_are_refused_in_arm_mode_and_unknown_modes_by_argparse(tmp_path, capsys):
    assert main(["reproduce", "--flights", "3", "--work", str(tmp_path / "w")]) == 2
    assert "--flights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--mode", "boat"])
    assert exc.value.code == 2


@pytest.mark.unit
def test_mean_ci_and_paired_summary():
    m = drone.mean_ci([1.0, 2.0, 3.0])
    assert m["mean"] == 2.0 and m["sd"] == pytest.approx(1.0)
    assert m["ci95"] == pytest.approx([2.0 - 1.96 / 3 ** 0.5, 2.0 + 1.96 / 3 ** 0.5], abs=1e-3)
    flights = [{"policy": p, "distance": d, "time": 1.0, "collided": True}
               for d0 in (1.0, 2.0) for p, d in (("learned", d0 + 1), ("straight", d0),
                                                 ("random", d0 - 0.5))]
    summary, paired = drone.summarise(flights, drone.POLICIES)
    assert summary["learned"]["mean_distance_m"] == 2.5
    assert paired["learned-straight"]["difference_m"] == 1.0
    assert paired["learned-straight"]["ci95_m"] == [1.0, 1.0]
    assert paired["random-straight"]["difference_m"] == -0.5
