"""`curious-robot bench graph`: a real sweep over robot counts (each robot's nodes
composed in one process, a learner, a store), its JSON keys, and the files --out writes;
bad input exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CLI = "import sys; from curious_robot.cli import main; sys.exit(main())"
KEYS = {"robots", "seconds", "interactions", "per_s", "per_core_per_s",
        "in_process_per_core_per_s", "gaps", "duplicates", "refused", "startup_s",
        "rss_mb_per_robot"}


def _bench(tmp_path, *args, timeout=400):
    env = {**os.environ, "ROS_DOMAIN_ID": str(1 + (os.getpid() + 29) % 100),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_LOG_DIR": str(tmp_path / "roslog")}
    return subprocess.run([sys.executable, "-c", CLI, "bench", "graph", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_a_two_robot_sweep_reports_every_key_and_writes_table_and_plot(tmp_path):
    out = tmp_path / "scale"
    res = _bench(tmp_path, "--robots", "1,2", "--seconds", "12", "--json",
                 "--no-inprocess", "--out", str(out))
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["robots"] for r in rows] == [1, 2]
    for r in rows:
        assert KEYS <= set(r), KEYS - set(r)
        assert r["interactions"] > 0 and r["per_s"] > 0, r
        assert r["gaps"] == 0 and r["store_check"] == "ok" and r["stopped_cleanly"], r
        assert 0 < r["startup_s"] < 120 and r["rss_mb_per_robot"] > 50, r
        spent = r["ms_per_interaction"]  # from the managers' goodbye lines
        assert set(spent) == {"object_choice", "action_choice", "acting"}, spent
        assert 0 <= spent["object_choice"] < spent["acting"] and spent["acting"] > 50, spent
        assert r["per_core_per_s"] == pytest.approx(
            r["per_s"] / len(os.sched_getaffinity(0)), abs=2e-3)
    saved = json.loads((out / "scale.json").read_text())
    assert [r["robots"] for r in saved["results"]] == [1, 2]
    assert "--robots 1,2" in saved["command"]
    assert "| 2 |" in (out / "table.md").read_text()
    assert (out / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--robots", "0"], "robot counts >= 1"),
    (["--robots", "two"], "robot counts >= 1"),
    (["--seconds", "0"], "--seconds must be > 0"),
    (["--set", "nobody.x=1"], "no node named 'nobody'"),
])
def test_bad_arguments_exit_2(tmp_path, args, message):
    res = _bench(tmp_path, *args, timeout=60)
    assert res.returncode == 2 and message in res.stderr, res.stderr
