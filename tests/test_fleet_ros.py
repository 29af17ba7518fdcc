"""A fleet that cannot be spoofed, over real DDS: real node processes, a real PyBullet arm,
a real SQLite store, and forgers that know everything but the fleet key (the fleet id is
on every message). See curious_robot/fleet.py."""

from __future__ import annotations

import os
import signal
import textwrap
import time

import pytest

from curious_robot.fleet import default_key_path, load_key
from curious_robot.store import ReplayStore
from tests.helpers.procs import Proc
from tests.test_collect_graph import count, learner, wait_count

pytestmark = pytest.mark.ros

#: publishes Interactions of robot "intruder": forged in several ways, and one good one
INTRUDER = textwrap.dedent("""
    import secrets, sys, time
    import numpy as np
    import rclpy
    from curious_robot.convert import record_to_msg
    from curious_robot.fleet import FleetKey, interaction_bytes, load_key
    from curious_robot.nodes.common import RELIABLE
    from curious_robot.record import Interaction
    from curious_robot_interfaces.msg import Interaction as InteractionMsg

    key = load_key(sys.argv[1], create=False)
    other = FleetKey(secrets.token_bytes(32))
    rclpy.init()
    node = rclpy.create_node("intruder")
    pub = node.create_publisher(InteractionMsg, "/interactions", RELIABLE)

    def msg(seq, fleet, signer):
        rec = Interaction(task="grasp", robot="intruder", seq=seq, action=[0.0, 0.0, 0.5],
                          outcome=[0.02], before=np.full((32, 32, 3), seq, np.uint8))
        m = record_to_msg(rec)
        m.fleet = fleet
        m.auth = signer.sign(interaction_bytes(m)) if signer is not None else b""
        return m

    msgs = [msg(0, other.fleet_id, other),  # another fleet altogether
            msg(1, key.fleet_id, other),  # claims our fleet, signed with another key
            msg(2, key.fleet_id, None),  # claims our fleet, not signed
            msg(3, key.fleet_id, key)]  # the fleet's own
    tampered = msg(4, key.fleet_id, key)
    tampered.action = [0.1, 0.0, 0.5]  # changed after signing
    msgs.append(tampered)
    while pub.get_subscription_count() < 2:
        rclpy.spin_once(node, timeout_sec=0.1)
    time.sleep(1.0)
    while True:
        for m in msgs:
            pub.publish(m)
        print("SENT", flush=True)
        for _ in range(10):
            rclpy.spin_once(node, timeout_sec=0.1)
    """)

#: prints every ack, and whether it verifies with the fleet key for the message it acks
CHECKING_LISTENER = textwrap.dedent("""
    import sys
    import rclpy
    from curious_robot.fleet import ack_bytes, load_key
    from curious_robot.nodes.common import RELIABLE
    from curious_robot_interfaces.msg import IngestAck, Interaction

    key = load_key(sys.argv[1], create=False)
    auth = {}
    rclpy.init()
    node = rclpy.create_node("checking_listener")
    def on_ack(m):
        a = auth.get((m.robot, m.seq))
        ok = a is not None and key.verify(ack_bytes(m, a), m.auth)
        print("ACK", m.robot, m.seq, m.status, "signed" if ok else "UNSIGNED", flush=True)
    node.create_subscription(Interaction, "/interactions",
                             lambda m: auth.setdefault((m.robot, m.seq), bytes(m.auth)),
                             RELIABLE)
    node.create_subscription(IngestAck, "/interaction_acks", on_ack, RELIABLE)
    print("LISTENING", flush=True)
    rclpy.spin(node)
    """)


def test_interactions_not_signed_by_the_fleet_are_not_stored_and_not_acknowledged(tmp_path):
    store = str(tmp_path / "replay.db")
    key_path = default_key_path(store)
    load_key(key_path)
    listener = Proc(CHECKING_LISTENER, args=[key_path])
    listener.wait_for("LISTENING")
    lrn = learner(store)
    pub = Proc(INTRUDER, args=[key_path])
    try:
        pub.wait_for("SENT", timeout=60)
        first = listener.wait_for("ACK intruder", timeout=60).split()
        for _ in range(3):  # the forged ones went out every time as well
            pub.wait_for("SENT", timeout=30)
        time.sleep(1.0)
    finally:
        pub.stop()
        lrn.stop()  # SIGTERM: a clean stop with the goodbye line
        listener.stop()
    acks = [line.split() for line in listener.lines if line.startswith("ACK intruder")]
    # (an ack sent before the listener matched the learner is lost: resends say duplicate)
    assert first[2] == "3" and first[3] in ("stored", "duplicate"), first
    assert {(a[2], a[4]) for a in acks} == {("3", "signed")}, acks  # none for the rest
    with ReplayStore(store, readonly=True) as s:
        assert [(r.robot, r.seq) for r in s.get_many(s.ids(), images=False)] == \
            [("intruder", 3)]
    out = "\n".join(lrn.lines)
    assert "refused interactions" in out, out[-3000:]
    goodbye = [line for line in lrn.lines if "stopped cleanly" in line]
    assert goodbye and "refused (" in goodbye[0] and "interactions)" in goodbye[0], goodbye


#: answers /robot_status with a huge seq (its first `answers` requests; then it withdraws
#: the service, so the learner's answer can reach the manager: a forger that always
#: answers first only delays the start, a denial of service no signature prevents) and
#: acks every interaction as stored, once signed with a key of its own and once unsigned
FORGER = textwrap.dedent("""
    import secrets, sys
    import rclpy
    from curious_robot.fleet import FleetKey, ack_bytes, status_bytes
    from curious_robot.nodes.common import RELIABLE
    from curious_robot_interfaces.msg import IngestAck, Interaction
    from curious_robot_interfaces.srv import RobotStatus

    fleet, answers = sys.argv[1], int(sys.argv[2])
    wrong = FleetKey(secrets.token_bytes(32))
    rclpy.init()
    node = rclpy.create_node("forger")
    pub = node.create_publisher(IngestAck, "/interaction_acks", RELIABLE)
    answered = [0]

    def on_interaction(m):
        for signed in (True, False):
            ack = IngestAck(robot=m.robot, seq=m.seq, status="stored", fleet=fleet)
            ack.auth = wrong.sign(ack_bytes(ack, m.auth)) if signed else b""
            pub.publish(ack)
        print("FORGED_ACK", m.robot, m.seq, flush=True)

    def on_status(req, res):
        res.last_seq, res.count, res.fleet = 2**62, 7, fleet
        res.auth = wrong.sign(status_bytes(fleet, req.nonce, req.robot, res.last_seq,
                                           res.count))
        answered[0] += 1
        print("FORGED_STATUS", req.robot, flush=True)
        return res

    node.create_subscription(Interaction, "/interactions", on_interaction, RELIABLE)
    srv = node.create_service(RobotStatus, "/robot_status", on_status)
    print("FORGING", flush=True)
    while rclpy.ok():
        rclpy.spin_once(node, timeout_sec=0.1)
        if srv is not None and answered[0] >= answers:
            node.destroy_service(srv)
            srv = None
            print("STATUS_GONE", flush=True)
    """)


def _seqs(store: str) -> list[int]:
    with ReplayStore(store, readonly=True) as s:
        return sorted(r.seq for r in s.get_many(s.ids(), images=False) if r.robot == "robot0")


@pytest.mark.slow
def test_forged_status_answers_and_acks_change_nothing(tmp_path):
    """A forged /robot_status answer (seq near 2^62) is refused and the manager keeps
    asking until the learner answers; forged acks (another key, or none) of records the
    learner never got do not make the manager drop them: they are resent and stored."""
    store = str(tmp_path / "replay.db")
    key = load_key(default_key_path(store))
    logs = tmp_path / "logs"
    forger = Proc(FORGER, args=[key.fleet_id, "3"])
    forger.wait_for("FORGING")
    robot = Proc(code="import sys; from curious_robot.cli import main; sys.exit(main())",
                 args=["collect", "--no-learner", "--duration", "300", "--store", store,
                       "--log-dir", str(logs)])
    lrn = None
    try:
        forger.wait_for("FORGED_STATUS", timeout=120)
        forger.wait_for("STATUS_GONE", timeout=60)
        assert count(store) == 0
        lrn = learner(store)
        wait_count(store, 3, timeout=120)
        os.killpg(lrn.popen.pid, signal.SIGKILL)  # from now on only the forger acks
        lrn.popen.wait()
        stored = set(_seqs(store))
        deadline = time.monotonic() + 120
        while True:
            forged = {int(line.split()[2]) for line in list(forger.lines)
                      if line.startswith("FORGED_ACK robot0")}
            if len(forged - stored) >= 2:
                break
            assert time.monotonic() < deadline, "the robot published nothing to forge"
            time.sleep(0.5)
        lrn = learner(store)
        deadline = time.monotonic() + 120
        while not forged <= set(_seqs(store)):
            assert time.monotonic() < deadline, \
                f"dropped after a forged ack: {sorted(forged - set(_seqs(store)))}"
            time.sleep(0.5)
        # what the dead learner missed is resent between interactions: let it arrive
        # before the robot stops (a stop leaves it in the spool for the next run)
        deadline = time.monotonic() + 60
        while (seqs := _seqs(store)) != list(range(len(seqs))) and \
                time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        robot.stop(timeout=20)
        if lrn is not None:
            lrn.stop()
        forger.stop()
    seqs = _seqs(store)
    assert seqs[0] == 0 and seqs == list(range(len(seqs)))  # from 0, no gaps: not 2^62
    manager_log = (logs / "robot0.log").read_text()  # the robot's nodes share one process
    assert "refused status answers" in manager_log, manager_log[-3000:]
    assert "refused acks" in manager_log, manager_log[-3000:]
    assert "starts at seq 0" in manager_log


OPERATOR = textwrap.dedent("""
    import secrets, sys, threading, time
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor
    from std_srvs.srv import Trigger
    from curious_robot.commands.release_stop import release_request
    from curious_robot.fleet import FleetKey, load_key
    from curious_robot_interfaces.action import Grasp
    from curious_robot_interfaces.srv import ReleaseStop

    key = load_key(sys.argv[1], create=False)
    rclpy.init()
    n = rclpy.create_node("operator", namespace="/robot0")
    ex = MultiThreadedExecutor(2); ex.add_node(n)
    threading.Thread(target=ex.spin, daemon=True).start()
    estop = n.create_client(Trigger, "emergency_stop")
    release = n.create_client(ReleaseStop, "release_stop")
    grasp = ActionClient(n, Grasp, "grasp")
    assert estop.wait_for_service(timeout_sec=90) and release.wait_for_service(timeout_sec=30)
    assert grasp.wait_for_server(timeout_sec=30)

    def call(client, request):
        done = threading.Event()
        f = client.call_async(request); f.add_done_callback(lambda _f: done.set())
        assert done.wait(30)
        return f.result()

    def goal_accepted():
        done = threading.Event()
        f = grasp.send_goal_async(Grasp.Goal(x=0.0, y=0.0, angle=0.0))
        f.add_done_callback(lambda _f: done.set())
        assert done.wait(30)
        h = f.result()
        if h.accepted:
            h.cancel_goal_async()
        return h.accepted

    def say(what, res):
        print(what, res.success, res.message.replace(" ", "_"), flush=True)

    print("STOP", call(estop, Trigger.Request()).success, goal_accepted(), flush=True)
    say("FORGED", call(release, release_request(FleetKey(secrets.token_bytes(32)), "robot0")))
    unsigned = release_request(key, "robot0"); unsigned.auth = b""
    say("UNSIGNED", call(release, unsigned))
    say("OTHER_ARM", call(release, release_request(key, "robot1")))
    say("STALE", call(release, release_request(key, "robot0", time.time_ns() - 30 * 10**9)))
    print("STILL_STOPPED", not goal_accepted(), flush=True)
    good = release_request(key, "robot0")
    say("GOOD", call(release, good))
    print("MOVING", goal_accepted(), flush=True)
    call(estop, Trigger.Request())
    say("REPLAY", call(release, good))
    print("DONE", flush=True)
    """)


def test_only_a_fresh_release_signed_by_the_fleet_releases_the_stop(tmp_path):
    key_path = str(tmp_path / "fleet.key")
    load_key(key_path)
    arm = Proc(code="import sys; from curious_robot.nodes.arm import main; sys.exit(main())",
               args=["--ros-args", "-r", "__node:=arm", "-r", "__ns:=/robot0",
                     "-p", "n_objects:=2", "-p", f"fleet_key:={key_path}"])
    op = Proc(OPERATOR, args=[key_path])
    try:
        op.wait_for("DONE", timeout=180)
    finally:
        op.stop()
        arm.stop()
    said = {line.split()[0]: line.split()[1:] for line in op.lines if line[:1].isupper()}
    assert said["STOP"] == ["True", "False"], op.lines  # anyone may stop: goals refused
    for forged, why in (("FORGED", "not_this_arm's_fleet"), ("UNSIGNED", "does_not_verify"),
                        ("OTHER_ARM", "does_not_verify"), ("STALE", "from_this_arm's_clock")):
        assert said[forged][0] == "False" and why in said[forged][1], (forged, said[forged])
    assert said["STILL_STOPPED"] == ["True"]
    assert said["GOOD"][0] == "True" and said["MOVING"] == ["True"], said
    assert said["REPLAY"][0] == "False" and "not_newer" in said["REPLAY"][1], said
    assert any("refused stop releases" in line for line in arm.lines), arm.lines[-20:]
    goodbye = [line for line in arm.lines if "stopped cleanly" in line]
    assert goodbye and "5 stop releases" in goodbye[0], goodbye


def test_a_node_refuses_a_key_file_others_may_read(tmp_path):
    key_path = tmp_path / "fleet.key"
    load_key(key_path)
    key_path.chmod(0o644)
    proc = learner(str(tmp_path / "replay.db"), fleet_key=str(key_path))
    rc = proc.popen.wait(timeout=60)
    time.sleep(0.2)
    out = "\n".join(proc.lines)
    assert rc == 2, out
    assert f"chmod 600 {key_path}" in out and "parameter 'fleet_key'" in out, out
