"""The hardware path over real DDS: the arm node's hardware backend driving the fake
ros2_control arm (separate processes), alone and inside the whole collect graph."""

from __future__ import annotations

import pathlib
import textwrap
import time

import pytest
import yaml

from curious_robot.arm.deploy import deploy_graph
from curious_robot.store import ReplayStore, StoreError
from tests.helpers.procs import Proc
from tests.helpers.setup_nodes import node_targets

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parents[1]
PANDA = str(ROOT / "config" / "hardware" / "panda_sim.yaml")


def node(executable: str, name: str, ns: str, *args: str) -> Proc:
    module, func = node_targets(ROOT)[executable].split(":")
    return Proc(code=f"import sys; from {module} import {func} as m; sys.exit(m())",
                args=["--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={ns}", *args])


def fake(ns: str = "/robot0", *params: str) -> Proc:
    p = node("fake_hardware", "fake_hardware", ns, "-p", f"hardware_config:={PANDA}",
             "-p", "n_objects:=4", "-p", "seed:=3", *params)
    p.wait_for("[INFO]", timeout=60)
    return p


def arm(ns: str = "/robot0", *params: str) -> Proc:
    return node("arm_node", "arm", ns, "-p", "backend:=hardware",
                "-p", f"hardware_config:={PANDA}", *params)


CLIENT = textwrap.dedent("""
    import time, threading, rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor
    from curious_robot.arm.ros_io import BEST_EFFORT
    from curious_robot_interfaces.action import Grasp
    from sensor_msgs.msg import JointState
    from std_srvs.srv import Trigger
    from trajectory_msgs.msg import JointTrajectory

    rclpy.init()
    n = rclpy.create_node("client", namespace="/robot0")
    ex = MultiThreadedExecutor(3); ex.add_node(n)
    threading.Thread(target=ex.spin, daemon=True).start()
    states, trajs = [], []
    n.create_subscription(JointState, "hw/joint_states",
                          lambda m: states.append((time.monotonic(), list(m.position[:7]))),
                          BEST_EFFORT)
    n.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                          lambda m: trajs.append(m), 10)
    grasp = ActionClient(n, Grasp, "grasp")
    assert grasp.wait_for_server(timeout_sec=30)
    estop = n.create_client(Trigger, "emergency_stop")
    assert estop.wait_for_service(timeout_sec=30)
    time.sleep(1.0)

    def run(goal, on_feedback=None):
        done = threading.Event()
        fut = grasp.send_goal_async(goal, feedback_callback=on_feedback)
        fut.add_done_callback(lambda f: done.set())
        done.wait(30); h = fut.result()
        done2 = threading.Event(); r = h.get_result_async()
        r.add_done_callback(lambda f: done2.set()); done2.wait(60)
        return r.result()

    res = run(Grasp.Goal(x=0.5, y=0.0, angle=0.0))
    time.sleep(0.5)
    print("OUTSIDE", res.status, len(trajs), res.result.message.replace(" ", "_"), flush=True)

    deadline = time.monotonic() + 30  # joint states flowing before the motion starts
    while len(states) < 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    # the feedback callback only notes the moment; the stop is called from this thread,
    # so the executor is free to deliver the service's answer (the node's default callback
    # group is mutually exclusive: a callback waiting on a response would starve it)
    stopped = {}
    progress_now = threading.Event()
    def on_fb(fb):
        if fb.feedback.progress > 0.1 and not progress_now.is_set():
            stopped["moving"] = True
            progress_now.set()
    def stop_when_moving():
        progress_now.wait(60)
        if "moving" not in stopped:  # the motion ended without getting going
            return
        stopped["t"] = time.monotonic()
        f = estop.call_async(Trigger.Request())
        ev = threading.Event(); f.add_done_callback(lambda _f: ev.set())
        if ev.wait(10):
            stopped["answered"] = time.monotonic()
    # a busy machine can starve the control loop into a (correct) safety stop before the
    # motion gets going; such a try says why and the motion is tried again
    for attempt in range(3):
        start = states[-1][1]
        stopper = threading.Thread(target=stop_when_moving, daemon=True); stopper.start()
        res = run(Grasp.Goal(x=0.1, y=-0.1, angle=0.3), on_fb)
        progress_now.set(); stopper.join(15)  # wakes the stopper if no feedback came
        if "answered" in stopped:
            break
        print("RETRY", res.status, res.result.message.replace(" ", "_"), flush=True)
        stopped.clear(); progress_now.clear()
        time.sleep(1.0)
    else:
        print("ESTOP never reached the moving arm", flush=True)
        raise SystemExit(1)
    time.sleep(1.5)
    t = stopped["answered"]
    before = [q for s, q in states if s <= stopped["t"]]
    later = [q for s, q in states if s >= t + 0.1]
    # how far the arm had gone from where this motion started when the stop was called
    moved_before = max(abs(a - b) for a, b in zip(before[-1], start))
    drift = max(max(abs(a - b) for a, b in zip(q, later[0])) for q in later)
    print("ESTOP", res.status, f"{moved_before:.4f}", f"{drift:.4f}",
          f"{(t - stopped['t']) * 1000:.0f}ms", flush=True)
    """)


def test_refusal_and_emergency_stop_over_ros():
    hw = fake()
    a = arm()
    try:
        a.wait_for("[INFO]", timeout=60)
        client = Proc(CLIENT)
        try:
            line = client.wait_for("OUTSIDE", timeout=90).split()
            assert line[1] == "6" and "outside_the_workspace" in line[3], line  # aborted
            assert line[2] == "0", "a trajectory was sent for a refused target"
            line = client.wait_for("ESTOP", timeout=90).split()
            assert line[1] == "6", line  # aborted
            assert float(line[2]) > 0.005, line  # it was moving when the stop came
            assert float(line[3]) < 0.01, line  # and it stayed where the stop left it
        finally:
            client.stop()
    finally:
        a.stop()
        hw.stop()


REJECTED_CLIENT = textwrap.dedent("""
    import threading, rclpy
    from rclpy.action import ActionClient
    from rclpy.executors import MultiThreadedExecutor
    from curious_robot_interfaces.action import Grasp

    rclpy.init()
    n = rclpy.create_node("client", namespace="/robot0")
    ex = MultiThreadedExecutor(2); ex.add_node(n)
    threading.Thread(target=ex.spin, daemon=True).start()
    grasp = ActionClient(n, Grasp, "grasp")
    assert grasp.wait_for_server(timeout_sec=30)
    done = threading.Event()
    fut = grasp.send_goal_async(Grasp.Goal(x=0.1, y=-0.1, angle=0.3))
    fut.add_done_callback(lambda f: done.set())
    done.wait(30)
    r = fut.result().get_result_async()
    done2 = threading.Event(); r.add_done_callback(lambda f: done2.set()); done2.wait(60)
    res = r.result()
    print("RESULT", res.status, res.result.message.replace(" ", "_"), flush=True)
    """)


def test_a_trajectory_the_controller_rejects_is_reported_as_an_error_over_ros():
    """The fake controller refuses every trajectory on its topic, silently, as a
    joint_trajectory_controller does (it only logs): the follow check finds it and the
    grasp ends as an error that says so, instead of a late 'done'."""
    hw = fake("/robot0", "-p", "refuse_trajectories:=joint 4 is in an error state")
    a = arm()
    try:
        a.wait_for("[INFO]", timeout=60)
        client = Proc(REJECTED_CLIENT)
        try:
            line = client.wait_for("RESULT", timeout=90).split()
        finally:
            client.stop()
    finally:
        a.stop()
        hw.stop()
    assert line[1] == "6", line  # aborted
    assert "not_following_the_trajectory" in line[2], line
    assert any("trajectory rejected: joint 4 is in an error state" in x for x in hw.lines)
    assert any("not following the trajectory" in x and "ERROR" in x for x in a.lines), a.lines


def test_mismatched_joint_names_refuse_to_start_over_ros():
    hw = fake("/robot0", "-p", "joint_prefix:=left_")
    a = arm()
    try:
        rc = a.popen.wait(timeout=60)
    finally:
        a.stop()
        hw.stop()
    out = "\n".join(a.lines)
    assert rc == 2, out
    assert "refusing to start" in out and "panda_joint1" in out, out


def count_tasks(store: str) -> dict:
    try:
        with ReplayStore(store, readonly=True) as s:
            return s.stats()["tasks"]
    except (StoreError, OSError, KeyError):
        return {}


@pytest.mark.slow
def test_all_four_tasks_reach_the_store_through_the_hardware_path(tmp_path):
    store = str(tmp_path / "replay.db")
    specs = deploy_graph(PANDA, fake_hardware=True, store=store, seed=2, fake_objects=6)
    overrides = {s.fqn: {"ros__parameters": dict(s.parameters)} for s in specs}
    manager = overrides["/robot0/interaction_manager"]["ros__parameters"]
    manager.update(weight_grasp=1.0, weight_push=1.0, weight_poke=1.0, weight_inspect=1.0)
    if "/learner" in overrides:  # storing is what is under test here, not training
        overrides["/learner"]["ros__parameters"]["train"] = False
    path = tmp_path / "overrides.yaml"
    path.write_text(yaml.safe_dump(overrides))
    config = str(ROOT / "config" / "collect.yaml")
    procs = []
    try:
        for s in specs:
            procs.append(node(s.executable, s.name, s.namespace or "/", "--params-file",
                              config, "--params-file", str(path)))
            if s.executable == "fake_hardware":
                procs[-1].wait_for("[INFO]", timeout=60)
        deadline = time.monotonic() + 480  # the fake arm moves in real time: minutes
        tasks = {}
        while time.monotonic() < deadline:
            tasks = count_tasks(store)
            if all(tasks.get(t) for t in ("grasp", "push", "poke", "inspect")):
                break
            dead = [p for p in procs if p.popen.poll() is not None]
            assert not dead, "\n".join(dead[0].lines[-30:])
            time.sleep(2.0)
        assert all(tasks.get(t) for t in ("grasp", "push", "poke", "inspect")), (
            tasks, "\n".join(procs[1].lines[-20:]))
    finally:
        for p in reversed(procs):
            p.stop()
    with ReplayStore(store, readonly=True) as s:
        assert s.check() == []
        recs = s.get_many(s.ids(), images=False)
    assert all(r.object_id == "" and r.truth == {} for r in recs)  # hardware knows no ids
