"""Robots on one machine, the learner on another (docs/scale.md), as two real
``curious-robot collect`` invocations in separate process groups on one DDS domain: a
robots-only run (``--no-learner``) with its own folder (its outbox spool) and a copy of the
fleet key, as a robot machine has, and a learner-only run (``--robots 0``) that owns the
store. Both are stopped with SIGINT (robots first), as a user stops them; the learner's
store must hold the robot's interactions with no seq gap and pass ``store check``."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from curious_robot.fleet import load_key
from curious_robot.store import ReplayStore, StoreError

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CLI = "import sys; from curious_robot.cli import main; sys.exit(main())"
#: seconds the two runs collect together (after the first stored interaction: start-up
#: on a loaded two-core machine takes 20-60 s more)
TOGETHER_S = 40.0
FIRST = 3  # the robot machine's robots are robot3.. (--first-robot)


class Run:
    """One ``curious-robot collect`` invocation in its own process group."""

    def __init__(self, name: str, folder: pathlib.Path, domain: int, *args: str):
        self.name, self.folder = name, folder
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "ROS_LOG_DIR": str(folder / "roslog")}
        env.pop("ROS_DOMAIN_ID", None)  # --domain-id says it, as on a machine of the fleet
        self.out = open(folder / f"{name}.out", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, "collect", "--duration", "600", "--network",
             "localhost", "--domain-id", str(domain), "--log-dir", str(folder / "logs"),
             *args],
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True)

    def output(self) -> str:
        return (self.folder / f"{self.name}.out").read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"{self.name} still running {timeout} s after SIGINT:\n"
                                 f"{self.output()[-4000:]}") from None
        finally:
            self.out.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _count(store: pathlib.Path) -> int:
    if not store.exists():
        return 0
    try:
        with ReplayStore(store, readonly=True) as s:
            return s.count()
    except StoreError:  # the learner is still creating the file
        return 0


def test_robots_only_and_learner_only_collect_runs_make_one_store(tmp_path):
    domain = 1 + (os.getpid() + 83) % 100
    learner_machine, robot_machine = tmp_path / "learner", tmp_path / "robots"
    learner_machine.mkdir()
    robot_machine.mkdir()
    store = learner_machine / "replay.db"
    key = load_key(learner_machine / "fleet.key")  # created on the learner machine,
    shutil.copy2(key.path, robot_machine / "fleet.key")  # copied to the robot machine
    learner = Run("learner", learner_machine, domain, "--robots", "0", "--store", str(store))
    robots = Run("robots", robot_machine, domain, "--no-learner", "--robots", "1",
                 "--first-robot", str(FIRST), "--seed", "7",
                 "--store", str(robot_machine / "replay.db"),
                 "--fleet-key", str(robot_machine / "fleet.key"))
    try:
        deadline = time.monotonic() + 180.0
        while _count(store) == 0:
            for run in (learner, robots):
                assert run.proc.poll() is None, \
                    f"{run.name} ended early:\n{run.output()[-4000:]}"
            assert time.monotonic() < deadline, (
                "nothing stored in 180 s\nlearner:\n" + learner.output()[-3000:]
                + "\nrobots:\n" + robots.output()[-3000:])
            time.sleep(1.0)
        time.sleep(TOGETHER_S)
        rc_robots = robots.stop()  # the robots first: the learner acks what they send last
        rc_learner = learner.stop()
    finally:
        robots.kill()
        learner.kill()
    assert rc_robots == 0, robots.output()[-4000:]
    assert rc_learner == 0, learner.output()[-4000:]
    # the robot's 7 nodes composed in one process; the learner in its own
    assert "1 of 1 processes stopped cleanly" in robots.output()
    assert "1 of 1 processes stopped cleanly" in learner.output()
    assert f"ROS_DOMAIN_ID {domain} (--domain-id)" in robots.output()
    assert f"fleet {key.fleet_id}" in robots.output()
    assert not (robot_machine / "replay.db").exists()  # robots only: no store of their own
    with ReplayStore(store, readonly=True) as s:
        robot_stats = s.robots()
        n = s.count()
    assert list(robot_stats) == [f"robot{FIRST}"], robot_stats
    r = robot_stats[f"robot{FIRST}"]
    assert r["count"] == n >= 3 and r["n_missing"] == 0, r
    # the robots-only run reports what its robots recorded (from their outboxes), which
    # is what the learner stored: all of it was acknowledged
    summary = yaml.safe_load(robots.output()[robots.output().index("robots_only:"):])
    assert (summary["recorded"], summary["not_acknowledged"]) == (n, 0), summary
    # ... and, from the managers' goodbye lines, the interactions that ended without a
    # record; the learner-only run, its duplicates (none: every record arrived once)
    no_record = summary["no_record"]
    assert summary["refused"] == no_record.get("not accepted", 0) + no_record.get("aborted", 0)
    out = learner.output()
    learner_summary = yaml.safe_load(out[out.rindex("\nstore: ") + 1:])
    assert learner_summary["duplicates"] == 0, learner_summary
    assert learner_summary["new_interactions"] == n, learner_summary
    check = subprocess.run([sys.executable, "-c", CLI, "store", "check", str(store)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("OK ")
    # what a learner stored merges as it is: into a new store, then again with the
    # original, whose records are all identical duplicates of the first copy's
    merged, again = tmp_path / "merged.db", tmp_path / "again.db"
    for inputs, out, dup in (([store], merged, 0), ([merged, store], again, n)):
        proc = subprocess.run([sys.executable, "-c", CLI, "store", "merge", *map(str, inputs),
                               "--out", str(out), "--json"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = json.loads(proc.stdout)
        assert (report["stored"], report["duplicate"]) == (n, dup), report
    check = subprocess.run([sys.executable, "-c", CLI, "store", "check", str(again)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
