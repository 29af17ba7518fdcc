"""``curious-robot bench sim`` runs end to end (it once stopped at its first line when a
world method it times was renamed) and reports every figure, with the time breakdown."""

import json
import subprocess

import pytest

pytest.importorskip("pybullet")

pytestmark = pytest.mark.sim


def test_bench_sim_reports_rates_quality_and_the_breakdown(python, repo_root):
    out = subprocess.run(
        [python, "-m", "curious_robot.cli", "bench", "sim", "--json", "--attempts", "4",
         "--objects", "4", "--pokes", "2", "--pushes", "2", "--inspects", "1"],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("grasp_attempts_per_s", "grasp_success_random", "grasp_success_best_angle",
                "poke_per_s", "poke_stiffness_spearman", "push_per_s", "inspect_per_s",
                "inspect_hold_rate"):
        assert key in fig
    assert fig["grasp_attempts_per_s"] > 0 and fig["poke_per_s"] > 0
    assert fig["grasp_sim_steps"] > 0
    assert {"render", "physics_step", "ik", "collision_check", "settle"} <= \
        set(fig["grasp_time_ms"])
