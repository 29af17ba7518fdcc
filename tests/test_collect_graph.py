"""Collect mode end to end over real DDS: real node processes, a real PyBullet world, a real
SQLite store. Robots, learner and listeners are separate processes."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import pytest

from curious_robot.store import ReplayStore, StoreError
from tests.helpers.procs import Proc

pytestmark = pytest.mark.ros
EXE = os.path.dirname(sys.executable)

ACK_LISTENER = textwrap.dedent("""
    import rclpy
    from curious_robot.nodes.common import RELIABLE
    from curious_robot_interfaces.msg import IngestAck, Interaction
    rclpy.init()
    node = rclpy.create_node("ack_listener")
    node.create_subscription(IngestAck, "/interaction_acks", lambda m: print(
        "ACK", m.robot, m.seq, m.status, m.reason.replace(" ", "_") or "-", flush=True),
        RELIABLE)
    node.create_subscription(Interaction, "/interactions", lambda m: print(
        "SEEN", m.robot, m.seq, flush=True), RELIABLE)
    print("LISTENING", flush=True)
    rclpy.spin(node)
    """)


def learner(store: str, *extra: str, fleet_key: str | None = None) -> Proc:
    """A learner on ``store`` with the fleet key collect gives its robots (``None``:
    beside the store; '': unauthenticated)."""
    from curious_robot.fleet import default_key_path

    key = default_key_path(store) if fleet_key is None else fleet_key
    return Proc(
        code="import sys; from curious_robot.nodes.learner import main; sys.exit(main())",
        args=["--ros-args", "-p", f"store:={store}", "-p", "report_every:=2.0",
              *(["-p", f"fleet_key:={key}"] if key else []), *extra])


def robots(store: str, duration: float, n: int = 1, seed: int = 0) -> Proc:
    return Proc(code="import sys; from curious_robot.cli import main; sys.exit(main())",
                args=["collect", "--no-learner", "--robots", str(n), "--seed", str(seed),
                      "--duration", str(duration), "--store", store])


def count(store: str) -> int:
    if not os.path.exists(store):
        return 0
    try:
        with ReplayStore(store, readonly=True) as s:
            return s.count()
    except StoreError:  # the learner is still creating the file
        return 0


def wait_count(store: str, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = count(store)
        if c >= n:
            return c
        time.sleep(0.5)
    raise AssertionError(f"store has {count(store)} < {n} interactions after {timeout}s")


def _stored(s: ReplayStore) -> set[tuple[str, int]]:
    """Every (robot, seq) an open store holds."""
    return {(r.robot, r.seq) for r in s.get_many(s.ids(), images=False)}


def seen(listener: Proc) -> set[tuple[str, int]]:
    """Every (robot, seq) a robot published on /interactions while the listener ran."""
    return {(p[1], int(p[2])) for p in (line.split() for line in list(listener.lines))
            if p and p[0] == "SEEN"}


def acked(listener: Proc) -> set[tuple[str, int]]:
    out = set()
    for line in list(listener.lines):
        parts = line.split()
        if parts and parts[0] == "ACK" and parts[3] in ("stored", "duplicate"):
            out.add((parts[1], int(parts[2])))
    return out


@pytest.mark.slow
def test_two_robots_feed_one_learner_without_gaps_or_duplicates(tmp_path):
    store = str(tmp_path / "replay.db")
    proc = Proc(code="import sys; from curious_robot.cli import main; sys.exit(main())",
                args=["collect", "--robots", "2", "--duration", "55", "--store", store,
                      "--seed", "4", "--log-dir", str(tmp_path / "logs"),
                      "--set", "learner.train=false"])
    assert proc.popen.wait(timeout=150) == 0, "\n".join(proc.lines[-30:])
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == []
        robots_seen = s.robots()
        stats = s.stats()
        # a record that names its object names its model too, even when the motion
        # pushed the object off the table (facts are read before the scene's upkeep)
        named = [s.get(i, images=False) for i in s.ids()]
        unnamed = [(r.task, r.object_id) for r in named if r.object_id and not r.object_model]
    assert not unnamed, unnamed
    assert set(robots_seen) == {"robot0", "robot1"}
    for name, info in robots_seen.items():
        assert info["count"] >= 5, (name, info)
        assert info["gaps"] == [] and info["min_seq"] == 0
        assert info["max_seq"] == info["count"] - 1  # contiguous and no duplicates
    assert sum(1 for t in ("grasp", "push", "poke", "inspect") if stats["tasks"][t]) >= 3
    # every record says what chose it: the default task and object policies, the selectors'
    assert {p for per in stats["per_policy"].values() for p in per} == {
        "task=fixed,object=random,action=random"}
    assert "interactions" in "\n".join(proc.lines)  # progress was shown
    # managers pick only objects inside the arm's published area and selectors keep the
    # actions there, so the arm refuses nothing for being out of reach
    logs = "\n".join(f.read_text(errors="replace") for f in (tmp_path / "logs").rglob("*")
                     if f.is_file())
    assert "interaction_manager" in logs
    assert "is outside the workspace" not in logs


@pytest.mark.slow
def test_kill9_learner_then_restart_loses_nothing_and_sequence_goes_on(tmp_path):
    store = str(tmp_path / "replay.db")
    listener = Proc(ACK_LISTENER)
    listener.wait_for("LISTENING")
    first = learner(store)
    robot = robots(store, duration=300)
    try:
        wait_count(store, 6, timeout=90)
        os.killpg(first.popen.pid, signal.SIGKILL)  # no chance to clean up
        first.popen.wait()
        before_kill = acked(listener)
        assert before_kill
        time.sleep(2.0)  # the robot keeps working, its interactions go unacknowledged
        second = learner(store)
        try:
            n_after = wait_count(store, count(store) + 6, timeout=90)
            # everything published so far, the records sent while the learner was down
            # among them (no gaps alone is not enough: the first records the new learner
            # stores can be resent ones that all come before those)
            down = {k for k in seen(listener) if k[0] == "robot0"}
            deadline = time.monotonic() + 90  # unacknowledged ones are resent
            while time.monotonic() < deadline:
                with ReplayStore(store, readonly=True) as s:
                    if down <= _stored(s) and not s.robots()["robot0"]["gaps"]:
                        break
                time.sleep(0.5)
        finally:
            robot.stop(timeout=20)
            time.sleep(1.0)
            second.stop()
    finally:
        robot.stop()
        listener.stop()
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == []
        stored = _stored(s)
        info = s.robots()["robot0"]
    assert before_kill <= stored, f"acknowledged but lost: {before_kill - stored}"
    assert down - stored == set(), "published while the learner was down, never stored"
    assert count(store) >= n_after > len(before_kill)
    assert info["gaps"] == [] and info["max_seq"] == info["count"] - 1


def _spooled(path) -> list[int]:
    import sqlite3

    if not os.path.exists(path):
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return [r[0] for r in db.execute("SELECT seq FROM pending ORDER BY seq")]


def _unstored(spool, store) -> set[int]:
    """Seqs waiting in the outbox spool that the store does not hold."""
    pending = _spooled(spool)
    if not pending:
        return set()
    with ReplayStore(store, readonly=True) as s:
        return set(pending) - {seq for _, seq in _stored(s)}


@pytest.mark.slow
def test_kill9_manager_resends_its_spooled_outbox_after_restart(tmp_path):
    """Interactions the learner never acknowledged survive a kill -9 of the robot: they
    wait in the outbox spool (beside the store) and are sent again after restart."""
    store = str(tmp_path / "replay.db")
    spool = tmp_path / "replay.outbox" / "robot0.outbox.db"
    lrn = learner(store)
    robot = robots(store, duration=300)
    try:
        wait_count(store, 3, timeout=90)
        os.kill(lrn.popen.pid, signal.SIGSTOP)  # frozen: nothing is acknowledged
        deadline = time.monotonic() + 90
        # the first records in the spool may be ones the learner stored but had not yet
        # acknowledged when it froze: wait for one it never received
        while not _unstored(spool, store):
            assert time.monotonic() < deadline, "nothing waited unacknowledged and unstored"
            time.sleep(0.3)
        os.killpg(robot.popen.pid, signal.SIGKILL)  # the robot dies without cleaning up
        robot.popen.wait()
        pending = _spooled(spool)
        os.killpg(lrn.popen.pid, signal.SIGKILL)  # and the learner loses what it queued
        os.kill(lrn.popen.pid, signal.SIGCONT)
        lrn.popen.wait()
        with ReplayStore(store, readonly=True) as s:
            missing = set(pending) - {r.seq for r in s.get_many(s.ids(), images=False)}
        assert missing, "the test needs records that were never stored"
        lrn = learner(store)
        robot = robots(store, duration=300)
        deadline = time.monotonic() + 150
        while True:
            with ReplayStore(store, readonly=True) as s:
                stored = {r.seq for r in s.get_many(s.ids(), images=False)}
                info = s.robots()["robot0"]
            if missing <= stored and info["max_seq"] > max(pending):
                break
            assert time.monotonic() < deadline, f"never stored after restart: {missing - stored}"
            time.sleep(0.5)
    finally:
        robot.stop(timeout=20)
        lrn.stop()
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == []
        info = s.robots()["robot0"]
    assert info["gaps"] == [] and info["max_seq"] == info["count"] - 1
    assert not missing & set(_spooled(spool))  # acknowledged now, so gone from the spool


@pytest.mark.slow
def test_kill9_whole_collect_then_restart_continues_sequence(tmp_path):
    store = str(tmp_path / "replay.db")
    args = ["collect", "--robots", "1", "--duration", "300", "--store", store,
            "--set", "learner.train=false"]
    code = "import sys; from curious_robot.cli import main; sys.exit(main())"
    run1 = Proc(code=code, args=args)
    wait_count(store, 4, timeout=90)
    os.killpg(run1.popen.pid, signal.SIGKILL)  # the runner; its nodes die with it
    run1.popen.wait()
    time.sleep(1.0)
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == []
        first_max = s.last_seq("robot0")
    run2 = Proc(code=code, args=["collect", "--robots", "1", "--duration", "25", "--store",
                                 store, "--set", "learner.train=false"])
    assert run2.popen.wait(timeout=120) == 0, "\n".join(run2.lines[-30:])
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == []
        info = s.robots()["robot0"]
    assert info["max_seq"] > first_max
    assert info["gaps"] == [] and info["max_seq"] == info["count"] - 1


BAD_PUBLISHER = textwrap.dedent("""
    import math, sys, time
    import numpy as np
    import rclpy
    from curious_robot.convert import record_to_msg
    from curious_robot.nodes.common import RELIABLE
    from curious_robot.record import Interaction
    from curious_robot_interfaces.msg import Interaction as InteractionMsg

    rclpy.init()
    node = rclpy.create_node("bad_publisher")
    pub = node.create_publisher(InteractionMsg, "/interactions", RELIABLE)
    img = np.zeros((32, 32, 3), np.uint8)

    def good(seq, **kw):
        rec = Interaction(task="grasp", robot="bad", seq=seq, action=[0.0, 0.0, 0.5],
                          outcome=[0.02], before=img)
        for k, v in kw.items():
            setattr(rec, k, v)
        return record_to_msg(rec)

    msgs = []
    m = good(0); m.image_before.data = bytes(m.image_before.data)[:100]; msgs.append(m)
    m = good(1); m.image_before.width = 31; msgs.append(m)
    m = good(2); m.action = [0.0, math.nan, 0.5]; msgs.append(m)
    m = good(3); m.outcome = [math.nan]; msgs.append(m)
    m = good(4); m.task = "juggle"; msgs.append(m)
    m = good(5); m.image_before.encoding = "rgb8"; m.image_before.step = 7; msgs.append(m)
    msgs.append(good(6, before=np.zeros((1, 1_100_000, 3), np.uint8)))  # PNG refuses it
    msgs.append(good(7))
    while pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)
    while True:  # again and again: acks sent before the listener matched are lost
        for m in msgs:
            pub.publish(m)
        print("SENT", len(msgs), flush=True)
        for _ in range(20):
            rclpy.spin_once(node, timeout_sec=0.1)
    """)


def test_malformed_interactions_are_rejected_with_reasons_and_store_untouched(tmp_path):
    store = str(tmp_path / "replay.db")
    listener = Proc(ACK_LISTENER)
    listener.wait_for("LISTENING")
    lrn = learner(store, fleet_key="")  # unauthenticated: the checks behind the signature
    pub = Proc(BAD_PUBLISHER)
    try:
        pub.wait_for("SENT", timeout=60)
        status = {}
        deadline = time.monotonic() + 60
        while len(status) < 8 and time.monotonic() < deadline:
            a = listener.wait_for("ACK bad", timeout=30).split()
            status.setdefault(int(a[2]), (a[3], a[4]))
    finally:
        pub.stop()
        lrn.stop()
        listener.stop()
    for seq in range(7):
        assert status[seq][0] == "rejected", status[seq]
    assert "bytes" in status[0][1] and "step" in status[1][1]
    assert "action[1]" in status[2][1] and "outcome[0]" in status[3][1]
    assert "unknown_task" in status[4][1] and "step" in status[5][1]
    assert "side" in status[6][1]  # bounded before any copy (record.LIMITS)
    # the good one after them all is stored: the first ack says so, resends "duplicate"
    assert status[7][0] in ("stored", "duplicate") and status[7][1] == "-"
    with ReplayStore(store, readonly=True) as s:
        assert s.count() == 1 and s.check() == []
    assert any("rejected interaction bad/4" in line for line in lrn.lines)


GOOD_PUBLISHER = textwrap.dedent("""
    import sys
    import numpy as np
    import rclpy
    from curious_robot.convert import record_to_msg
    from curious_robot.nodes.common import RELIABLE
    from curious_robot.record import Interaction
    from curious_robot_interfaces.msg import Interaction as InteractionMsg

    rclpy.init()
    node = rclpy.create_node("good_publisher")
    pub = node.create_publisher(InteractionMsg, "/interactions", RELIABLE)
    msg = record_to_msg(Interaction(task="grasp", robot="patient", seq=0,
                                    action=[0.0, 0.0, 0.5], outcome=[0.02],
                                    before=np.zeros((32, 32, 3), np.uint8)))
    while pub.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.1)
    while True:  # as a robot's outbox does until acknowledged
        pub.publish(msg)
        print("SENT", flush=True)
        for _ in range(20):
            rclpy.spin_once(node, timeout_sec=0.1)
    """)

HEALTH_LISTENER = textwrap.dedent("""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    rclpy.init()
    node = rclpy.create_node("health_listener")
    def show(m):
        for s in m.status:
            v = {kv.key: kv.value for kv in s.values}
            print("HEALTH", s.name.replace(" ", "_"), int.from_bytes(s.level, "little")
                  if isinstance(s.level, bytes) else int(s.level), v.get("stored"),
                  v.get("failures"), flush=True)
    node.create_subscription(DiagnosticArray, "/diagnostics", show, 10)
    print("LISTENING", flush=True)
    rclpy.spin(node)
    """)

LOCKER = textwrap.dedent("""
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # holds the write lock: every writer waits
    print("LOCKED", flush=True)
    time.sleep(float(sys.argv[2]))
    db.execute("ROLLBACK")
    print("RELEASED", flush=True)
    """)


def test_a_locked_store_is_retried_and_the_record_stored_after_release(tmp_path):
    """A store error (here: another process holds the write lock longer than the busy
    timeout) does not end ingestion: the learner retries with backoff, stores the record
    once the lock is gone and reports its health on /diagnostics."""
    store = str(tmp_path / "replay.db")
    health = Proc(HEALTH_LISTENER)
    health.wait_for("LISTENING")
    lrn = learner(store, fleet_key="")  # the publisher below signs nothing
    try:
        deadline = time.monotonic() + 60
        while not any("learner storing into" in line for line in lrn.lines):
            assert time.monotonic() < deadline, lrn.lines
            time.sleep(0.2)
        locker = Proc(LOCKER, args=[store, "14"])
        locker.wait_for("LOCKED", timeout=30)
        pub = Proc(GOOD_PUBLISHER)
        try:
            locker.wait_for("RELEASED", timeout=60)
            assert count(store) == 0  # nothing could be written while locked
            wait_count(store, 1, timeout=60)
            line = health.wait_for("HEALTH learner:_ingestion 0 1", timeout=30)
        finally:
            pub.stop()
            locker.stop()
    finally:
        lrn.stop()
        health.stop()
    assert any("retrying in" in line for line in lrn.lines), lrn.lines[-20:]
    assert line.split()[-1] == "0"  # retried and stored: no record failed
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == [] and s.last_seq("patient") == 0


def test_a_second_learner_on_the_same_store_exits_2(tmp_path):
    store = str(tmp_path / "replay.db")
    first = learner(store)
    try:
        deadline = time.monotonic() + 60  # the first one holds the store
        while not any("learner storing into" in line for line in first.lines):
            assert time.monotonic() < deadline and first.popen.poll() is None, first.lines
            time.sleep(0.2)
        second = Proc(code="import sys; from curious_robot.nodes.learner import main; "
                           "sys.exit(main())", args=["--ros-args", "-p", f"store:={store}"])
        assert second.popen.wait(timeout=60) == 2
        time.sleep(0.2)
        assert "already open for writing by another learner" in "\n".join(second.lines)
        assert first.popen.poll() is None  # the first one is unharmed
    finally:
        first.stop()


@pytest.mark.parametrize("code,args,name", [
    ("from curious_robot.nodes.learner import main",
     ["-p", "store:=/no/such/folder/replay.db"], "store"),
    ("from curious_robot.nodes.manager import main", ["-p", "tasks:=[grasp,juggle]"],
     "tasks"),
    ("from curious_robot.nodes.arm import main", ["-p", "camera_rate:=-1.0"],
     "camera_rate"),
    ("from curious_robot.nodes.selector import grasp_main as main", ["-p", "policy:=psychic"],
     "policy"),
])
def test_invalid_parameters_stop_the_node_naming_the_parameter(code, args, name):
    proc = Proc(code=f"import sys; {code}; sys.exit(main())", args=["--ros-args", *args])
    rc = proc.popen.wait(timeout=60)
    time.sleep(0.2)
    out = "\n".join(proc.lines)
    assert rc == 2, out
    assert f"parameter '{name}'" in out, out


@pytest.mark.parametrize("args,message", [
    (["--nodes", "tactile_node,grasp_selector", "--ros-args", "-p", "policy:=psychic"],
     "grasp_selector: parameter 'policy'"),
    (["--nodes", "tactile_node,juggler"], "unknown or empty ['juggler']"),
])
def test_a_container_with_a_bad_node_exits_2_naming_it(args, message):
    """A robot_container whose node has an invalid parameter (or that is asked for a node
    it does not know) starts nothing and exits 2 naming the node."""
    proc = Proc(code="import sys; from curious_robot.nodes.container import main; "
                     "sys.exit(main())", args=args)
    rc = proc.popen.wait(timeout=60)
    time.sleep(0.2)
    out = "\n".join(proc.lines)
    assert rc == 2, out
    assert message in out, out


MODEL_LISTENER = textwrap.dedent("""
    import rclpy
    from curious_robot.nodes.common import LATCHED
    from curious_robot_interfaces.msg import ModelUpdate
    rclpy.init()
    node = rclpy.create_node("model_listener")
    node.create_subscription(ModelUpdate, "/model_updates", lambda m: print(
        "MODEL", m.step, m.store_position, m.path, flush=True), LATCHED)
    print("LISTENING", flush=True)
    rclpy.spin(node)
    """)


def _fill_store(path: str, n_per_task: int = 12) -> None:
    """Real records from the simulated world, written straight into the store."""
    import numpy as np

    from curious_robot.record import Interaction

    rng = np.random.default_rng(0)
    with ReplayStore(path) as s:
        seq = 0
        for task, n_act, n_out in (("grasp", 3, 1), ("poke", 2, 4)):
            for i in range(n_per_task):
                img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
                s.add(Interaction(task=task, robot="filler", seq=seq, object_id=f"o{i % 4}",
                                  held_out=i % 4 == 0, action=list(rng.uniform(0, 1, n_act)),
                                  success=bool(i % 2), outcome=list(rng.uniform(0, 1, n_out)),
                                  before=img))
                seq += 1


@pytest.mark.slow
def test_kill9_learner_mid_training_resumes_from_its_checkpoint(tmp_path):
    store = str(tmp_path / "replay.db")
    _fill_store(store)
    listener = Proc(MODEL_LISTENER)
    listener.wait_for("LISTENING")
    args = ["-p", "train:=true", "-p", "save_every:=3", "-p", "steps_per_round:=1",
            "-p", "input_size:=64", "-p", "width:=0.25", "-p", "batch_size:=4",
            "-p", "duty:=1.0", "-p", "min_records:=4", "-p", "tasks:=grasp,poke"]
    first = learner(store, *args)
    try:
        step1 = int(listener.wait_for("MODEL", timeout=120).split()[1])
        os.killpg(first.popen.pid, signal.SIGKILL)
        first.popen.wait()
        second = learner(store, *args)
        try:
            steps = []
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not steps:
                line = listener.wait_for("MODEL", timeout=120)
                step = int(line.split()[1])
                if step > step1:
                    steps.append(step)
        finally:
            second.stop()
    finally:
        listener.stop()
    assert steps and steps[0] > step1
    assert any("resum" in line.lower() for line in second.lines), second.lines[-20:]
    with ReplayStore(store, readonly=True) as s:
        assert s.count() == 24 and s.check() == []


def test_goodbye_lines_are_summed_by_reason(tmp_path):
    """collect's summary reads the managers' goodbye lines: reasons come out clean (the
    line's closing parenthesis is not part of the last one) and sum over robots."""
    from curious_robot.commands.collect import Graph

    g = Graph([], "", "", tmp_path)
    lines = {
        "robot0": "[INFO] [1.0] [robot0.interaction_manager]: interaction_manager: stopped "
                  "cleanly (612 interactions sent, all acknowledged; no record: 1 not "
                  "accepted)\n",
        "robot1": "... stopped cleanly (5 interactions sent, all acknowledged; no record: "
                  "2 timed out, 1 not accepted)\n",
        "robot2": "... stopped cleanly (9 interactions sent, all acknowledged; no record: "
                  "none)\n",
        "learner": "[INFO] learner: stopped cleanly (stored 26 this run, 3 duplicates, ...)\n",
    }
    for name, text in lines.items():
        (tmp_path / f"{name}.log").write_text(text)
        g.logs[name] = tmp_path / f"{name}.log"
    assert g.goodbyes() == ({"not accepted": 2, "timed out": 2}, 3)
    assert g.time_spent() == {}  # these managers did not say where their time went


def test_where_the_robots_time_went_is_averaged_over_robots_by_interactions(tmp_path):
    """collect's ``ms_per_interaction`` reads the managers' goodbye lines, each robot
    weighted by the interactions it sent."""
    from curious_robot.commands.collect import Graph

    g = Graph([], "", "", tmp_path)
    lines = {
        "robot0": "[INFO] [1.0] [robot0.interaction_manager]: interaction_manager: stopped "
                  "cleanly (300 interactions sent, all acknowledged; no record: none; object "
                  "curiosity scored 930 patches over 300 choices; mean ms per interaction: "
                  "object choice 30, action choice 14, acting 300)\n",
        "robot1": "... stopped cleanly (100 interactions sent, all acknowledged; no record: "
                  "1 timed out; mean ms per interaction: object choice 2, action choice 6, "
                  "acting 340; 2 refused (bad signature))\n",
    }
    for name, text in lines.items():
        (tmp_path / f"{name}.log").write_text(text)
        g.logs[name] = tmp_path / f"{name}.log"
    assert g.time_spent() == {"object_choice": 23.0, "action_choice": 12.0, "acting": 310.0}
    assert g.goodbyes()[0] == {"timed out": 1}


@pytest.mark.unit
def test_set_overrides_are_checked_before_anything_starts(tmp_path, capsys):
    """A misspelt parameter or a bad value given to --set is refused up front with the
    node's own rule (a node refusing it minutes into a run would waste the run); an int
    for a float parameter is the float."""
    from curious_robot.cli import main as cli_main
    from curious_robot.commands.collect import _overrides
    from curious_robot.graph import collect_graph

    specs = collect_graph(robots=2)
    sections = _overrides(specs, ["learner.duty=1", "grasp_selector.policy=curious"])
    assert sections["/learner"]["ros__parameters"]["duty"] == 1.0
    assert type(sections["/learner"]["ros__parameters"]["duty"]) is float
    assert sections["/robot1/grasp_selector"]["ros__parameters"]["policy"] == "curious"
    for bad, message in (("learner.dutty=1", "unknown parameter 'dutty'"),
                         ("learner.duty=7", "duty = 7.0 must be <= 1"),
                         ("arm.n_objects=many", "n_objects = 'many' must be a int")):
        with pytest.raises(ValueError, match=message):
            _overrides(specs, [bad])
    store = tmp_path / "replay.db"
    assert cli_main(["collect", "--store", str(store), "--duration", "5",
                     "--set", "learner.dutty=1"]) == 2
    assert "unknown parameter 'dutty'" in capsys.readouterr().err
    assert not store.exists()
