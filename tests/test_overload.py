"""Graceful overload: a robot whose learner falls behind pauses (admission) instead of
piling up unacknowledged interactions, and carries on without a gap when the learner
catches up. Real processes over real DDS: `curious-robot collect` with one robot (its
nodes composed in one process) and a learner, the learner frozen with SIGSTOP and thawed
with SIGCONT."""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from curious_robot.store import ReplayStore, StoreError

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CLI = "import sys; from curious_robot.cli import main; sys.exit(main())"
WINDOW = 3


def _count(store: pathlib.Path) -> int:
    try:
        with ReplayStore(str(store), readonly=True) as s:
            return s.count()
    except StoreError:
        return 0


def _spooled(spool: pathlib.Path) -> int:
    """Interactions in the robot's outbox spool (sent, not acknowledged)."""
    if not spool.exists():
        return 0
    with sqlite3.connect(f"file:{spool}?mode=ro", uri=True) as db:
        table = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchone()[0]
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _learner_pid(parent: int) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
                cmd = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"learner" in cmd:
                return int(entry)
    raise AssertionError("no learner process")


def test_a_robot_pauses_while_the_learner_is_behind_and_resumes_without_gaps(tmp_path):
    store, logs = tmp_path / "replay.db", tmp_path / "logs"
    env = {**os.environ, "ROS_DOMAIN_ID": str(1 + (os.getpid() + 13) % 100),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "PYTHONUNBUFFERED": "1",
           "ROS_LOG_DIR": str(tmp_path / "roslog")}
    out = open(tmp_path / "collect.out", "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "collect", "--robots", "1", "--duration", "300",
         "--store", str(store), "--log-dir", str(logs), "--tasks", "grasp,push",
         "--set", f"interaction_manager.max_unacked={WINDOW}",
         "--set", "learner.train=false"],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True)
    spool = tmp_path / "replay.outbox" / "robot0.outbox.db"
    try:
        deadline = time.monotonic() + 120
        while _count(store) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, \
                (tmp_path / "collect.out").read_text()
            time.sleep(0.5)
        learner = _learner_pid(proc.pid)
        os.kill(learner, signal.SIGSTOP)  # the learner falls behind: nothing is acked
        frozen_at = _count(store)
        peak = 0
        for _ in range(60):  # 30 s: long enough for ~10 interactions at full speed
            peak = max(peak, _spooled(spool))
            time.sleep(0.5)
        os.kill(learner, signal.SIGCONT)
        assert WINDOW <= peak <= WINDOW + 1, f"{peak} unacknowledged with a window of {WINDOW}"
        deadline = time.monotonic() + 60
        while _count(store) < frozen_at + peak + 2:  # the backlog, then new ones
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"stuck at {_count(store)} after the learner came back"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(30)
        out.close()
    text = (tmp_path / "collect.out").read_text()
    robot_log = (logs / "robot0.log").read_text()
    assert rc == 0, text
    assert "pausing until it catches up" in robot_log, robot_log[-3000:]
    assert "paused" in robot_log and "for the learner's acks" in robot_log, robot_log[-2000:]
    with ReplayStore(str(store), readonly=True) as s:
        report = s.robots()["robot0"]
        assert report["n_missing"] == 0, report
        assert s.check() == []
