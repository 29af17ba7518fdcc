"""The signal audit (curious-robot audit-signals): a signal the ground truth determines gets
a ceiling far above the baseline, pure noise gets none, the head column comes from a real
trained checkpoint, and bad input exits 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from curious_robot.cli import main as cli_main
from curious_robot.evaluation.audit import audit, ceiling_model
from curious_robot.learning.networks import ModelConfig
from curious_robot.learning.predict import Predictor
from curious_robot.learning.train import TrainConfig, Trainer
from curious_robot.record import Interaction
from curious_robot.store import ReplayStore

pytestmark = pytest.mark.unit
torch.set_num_threads(1)

SIZE = 64


def _patch(rng, angle):
    import cv2

    img = np.full((SIZE, SIZE, 3), 60, np.uint8)
    c, d = SIZE // 2, SIZE // 3
    dx, dy = int(d * np.cos(angle)), int(d * np.sin(angle))
    cv2.line(img, (c - dx, c - dy), (c + dx, c + dy), (200, 180, 40), 6)
    return img


def records(n: int, seed: int, noise: bool) -> list[Interaction]:
    """Grasps that succeed when the gripper closes across the object (|angle - best| near
    90 deg) and pokes whose slope and intercept follow stiffness and damping, or, with
    ``noise``, outcomes
    drawn independently of everything."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        truth = {"mass": float(rng.uniform(0.05, 0.5)), "friction": float(rng.uniform(0.3, 1)),
                 "stiffness": float(rng.uniform(3e3, 4e4)), "damping": float(rng.uniform(5, 200)),
                 "min_width": float(rng.uniform(0.02, 0.06)),
                 "width_along_angle": float(rng.uniform(0.02, 0.08)),
                 "local_width": float(rng.uniform(0.02, 0.08)),
                 "enclosed_width": float(rng.uniform(0.0, 0.08)),
                 "finger_clearance_high": float(rng.uniform(-0.02, 0.04)),
                 "finger_clearance_low": float(rng.uniform(-0.02, 0.0)),
                 "pinch_width": float(rng.uniform(0.0, 0.05)),
                 "offset_along": float(rng.uniform(0.0, 0.02)),
                 "offset_across": float(rng.uniform(0.0, 0.02)),
                 "top_height": float(rng.uniform(0.02, 0.1)),
                 "best_angle": float(rng.uniform(0, np.pi)),
                 "lift": 0.1}  # measured by the primitive: the audit must not read it
        angle = float(rng.uniform(0, np.pi))
        ok = np.cos(2 * (angle - truth["best_angle"])) < 0
        if noise:
            ok = bool(rng.random() < 0.5)
        held = i % 4 == 0
        out.append(Interaction(task="grasp", robot="r", seq=2 * i, object_id=f"o{i}",
                               held_out=held, action=[0.0, 0.0, angle], success=bool(ok),
                               outcome=[0.03], before=_patch(rng, truth["best_angle"]),
                               truth=truth))
        slope, icpt = truth["stiffness"], -0.05 * truth["damping"]
        if noise:
            slope, icpt = float(rng.uniform(3e3, 4e4)), float(rng.uniform(-10, 0))
        out.append(Interaction(task="poke", robot="r", seq=2 * i + 1, object_id=f"o{i}",
                               held_out=held, action=[0.0, 0.0], success=True,
                               outcome=[slope, icpt, 0.002, 5.0],
                               before=_patch(rng, 0.0), truth=truth,
                               tactile_depth=[0.001, 0.002], tactile_force=[1.0, 2.0]))
    return out


def make_store(path, n=160, seed=0, noise=False) -> str:
    with ReplayStore(path) as s:
        for r in records(n, seed, noise):
            s.add(r)
    return str(path)


def test_ceiling_model_recovers_a_quadratic_rule_and_not_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] * x[:, 1] > 0).astype(float)  # needs the product term
    pred, _ = ceiling_model("accuracy", x[:200], y[:200], x[200:])
    assert np.mean((pred > 0.5) == y[200:]) > 0.85
    pred, _ = ceiling_model("error", x[:200], 2 * x[:200, 2] ** 2, x[200:])
    assert np.mean(np.abs(pred - 2 * x[200:, 2] ** 2)) < 0.2


def test_a_determined_signal_has_a_ceiling_far_above_the_baseline(tmp_path):
    path = make_store(tmp_path / "signal.db", n=320)  # 15 grasp features, 135 quadratic
    with ReplayStore(path, readonly=True) as s:
        res = audit(s, tasks=["grasp", "poke"])
    g, p = res["grasp"], res["poke"]
    assert g["metric"] == "accuracy" and p["metric"] == "error"
    assert g["n_held_out"] == 80 and g["head"] is None  # no checkpoint: no head column
    assert g["ceiling"] > 0.85 and g["ceiling"] > g["baseline_interval"][1]
    assert p["ceiling"] < 0.5 * p["baseline"]
    assert "lift" not in g["features"]


def test_noise_has_no_ceiling_above_the_baseline(tmp_path):
    path = make_store(tmp_path / "noise.db", noise=True)
    with ReplayStore(path, readonly=True) as s:
        res = audit(s, tasks=["grasp", "poke"])
    g, p = res["grasp"], res["poke"]
    assert g["ceiling_interval"][0] < g["baseline"] + 0.1
    assert p["ceiling"] > 0.8 * p["baseline"]


def test_cli_json_with_a_trained_checkpoint_and_bad_input(tmp_path, capsys):
    path = make_store(tmp_path / "signal.db", n=80)
    with ReplayStore(path, readonly=True) as s:
        trainer = Trainer(s, ModelConfig(input_size=SIZE, width=0.125, fc6_dim=256,
                                         fc7_dim=128, head_dim=128),
                          TrainConfig(tasks=("grasp", "poke"), batch_size=8, min_records=4),
                          "cpu")
        trainer.train_steps(3)
        trainer.save(tmp_path / "run" / "checkpoint.pt")
    assert cli_main(["audit-signals", "--store", path, "--checkpoint", str(tmp_path / "run"),
                     "--tasks", "grasp,poke", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) == {"grasp", "poke"}
    for r in res.values():
        assert {"metric", "baseline", "ceiling", "head"} <= set(r)
        assert r["head"] is not None and len(r["head_interval"]) == 2
    ckpt = Predictor.from_checkpoint(tmp_path / "run")  # the head scored in its own units
    assert "poke" in ckpt.stats
    for argv, words in [
        (["--store", str(tmp_path / "missing.db")], "does not exist"),
        (["--store", path, "--tasks", "juggle"], "unknown or unaudited"),
        (["--store", path, "--checkpoint", str(tmp_path / "nothing")], "cannot load"),
        (["--store", path, "--max-records", "3"], "at least"),
    ]:
        assert cli_main(["audit-signals", *argv]) == 2
        assert words in capsys.readouterr().err
