"""Foundation: messages and actions cross real process boundaries over DDS."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from tests.helpers.procs import Proc

pytestmark = pytest.mark.ros

PUBLISHER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rclpy
    from curious_robot.convert import record_to_msg
    from curious_robot.record import Interaction

    rclpy.init()
    node = rclpy.create_node("test_publisher")
    from curious_robot_interfaces.msg import Interaction as InteractionMsg
    pub = node.create_publisher(InteractionMsg, "/interactions", 10)
    rng = np.random.default_rng(7)
    rec = Interaction(
        task="push", robot="robot3", seq=41, object_id="obj_5", object_model="random_urdfs/012",
        held_out=True, action=[0.1, -0.05, 0.2, 0.03], success=True, outcome=[0.02, 0.01, 0.3],
        before=rng.integers(0, 256, (128, 128, 3), dtype=np.uint8),
        after=rng.integers(0, 256, (128, 128, 3), dtype=np.uint8),
        truth={"stiffness": 1234.5, "mass": 0.2}, stamp_start=100.25, stamp_end=101.5,
        sim_step=9000)
    msg = record_to_msg(rec)
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print("MATCHED", pub.get_subscription_count(), flush=True)
    for _ in range(100):
        pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.1)
    """)

SUBSCRIBER = textwrap.dedent("""
    import hashlib, json
    import rclpy
    from curious_robot.convert import msg_to_record
    from curious_robot.record import validate
    from curious_robot_interfaces.msg import Interaction as InteractionMsg

    rclpy.init()
    node = rclpy.create_node("test_subscriber")
    got = []
    node.create_subscription(InteractionMsg, "/interactions", got.append, 10)
    print("READY", flush=True)
    while not got:
        rclpy.spin_once(node, timeout_sec=0.1)
    m = got[0]
    rec = validate(msg_to_record(m))
    print("GOT " + json.dumps({
        "task": rec.task, "robot": rec.robot, "seq": rec.seq, "object_id": rec.object_id,
        "object_model": rec.object_model, "held_out": rec.held_out, "action": rec.action,
        "success": rec.success, "outcome": rec.outcome, "truth": rec.truth,
        "stamp_start": rec.stamp_start, "stamp_end": rec.stamp_end, "sim_step": rec.sim_step,
        "encoding": [m.image_before.encoding, m.image_after.encoding],
        "shape": [list(rec.before.shape), list(rec.after.shape)],
        "sha": [hashlib.sha256(rec.before.tobytes()).hexdigest(),
                hashlib.sha256(rec.after.tobytes()).hexdigest()]}), flush=True)
    """)


def test_interaction_with_two_images_crosses_processes():
    sub = Proc(SUBSCRIBER)
    try:
        sub.wait_for("READY", timeout=30)
        pub = Proc(PUBLISHER)
        try:
            got = json.loads(sub.wait_for("GOT ", timeout=40)[4:])
        finally:
            pub.stop()
    finally:
        sub.stop()
    rng = np.random.default_rng(7)
    before = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    after = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    import hashlib

    assert got["sha"] == [hashlib.sha256(before.tobytes()).hexdigest(),
                          hashlib.sha256(after.tobytes()).hexdigest()]
    assert got["shape"] == [[128, 128, 3], [128, 128, 3]]
    assert got["encoding"] == ["rgb8", "rgb8"]
    assert got["task"] == "push" and got["robot"] == "robot3" and got["seq"] == 41
    assert got["object_id"] == "obj_5" and got["object_model"] == "random_urdfs/012"
    assert got["held_out"] is True and got["success"] is True
    assert got["action"] == [0.1, -0.05, 0.2, 0.03]
    assert got["outcome"] == [0.02, 0.01, 0.3]
    assert got["truth"] == {"stiffness": 1234.5, "mass": 0.2}
    assert got["stamp_start"] == pytest.approx(100.25) and got["stamp_end"] == \
        pytest.approx(101.5)
    assert got["sim_step"] == 9000


ACTION_SERVER = textwrap.dedent("""
    import time
    import rclpy
    from rclpy.action import ActionServer, CancelResponse, GoalResponse
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.executors import MultiThreadedExecutor
    from curious_robot_interfaces.action import Grasp

    rclpy.init()
    node = rclpy.create_node("test_grasp_server")

    def execute(handle):
        fb = Grasp.Feedback()
        for i in range(1, 101):
            if handle.is_cancel_requested:
                handle.canceled()
                print("CANCELED_AT", i, flush=True)
                return Grasp.Result(success=False, message=f"canceled at {i}")
            fb.phase, fb.progress = "descend", i / 100.0
            handle.publish_feedback(fb)
            time.sleep(0.05 if handle.request.angle > 1.0 else 0.002)
        handle.succeed()
        return Grasp.Result(success=True, gripper_width=0.031,
                            object_id=f"at_{handle.request.x:.2f}")

    ActionServer(node, Grasp, "grasp", execute_callback=execute,
                 goal_callback=lambda goal: GoalResponse.ACCEPT,
                 cancel_callback=lambda handle: CancelResponse.ACCEPT,
                 callback_group=ReentrantCallbackGroup())
    print("SERVING", flush=True)
    executor = MultiThreadedExecutor()
    executor.add_node(node)
    executor.spin()
    """)

ACTION_CLIENT = textwrap.dedent("""
    import time
    import rclpy
    from rclpy.action import ActionClient
    from curious_robot_interfaces.action import Grasp

    rclpy.init()
    node = rclpy.create_node("test_grasp_client")
    client = ActionClient(node, Grasp, "grasp")
    assert client.wait_for_server(timeout_sec=30)

    def run(goal, cancel_after=None):
        feedback = []
        fut = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(
            f.feedback.progress))
        rclpy.spin_until_future_complete(node, fut, timeout_sec=30)
        handle = fut.result()
        assert handle.accepted
        if cancel_after is not None:
            while len(feedback) < cancel_after:
                rclpy.spin_once(node, timeout_sec=0.1)
            cf = handle.cancel_goal_async()
            rclpy.spin_until_future_complete(node, cf, timeout_sec=30)
        rf = handle.get_result_async()
        rclpy.spin_until_future_complete(node, rf, timeout_sec=60)
        return rf.result(), feedback

    res, fb = run(Grasp.Goal(x=0.12, y=0.0, angle=0.5))
    print("DONE", res.status, res.result.success, round(res.result.gripper_width, 3),
          res.result.object_id, len(fb), flush=True)
    res, fb = run(Grasp.Goal(x=0.0, y=0.0, angle=2.0), cancel_after=5)
    print("CANCEL", res.status, res.result.success, res.result.message, len(fb), flush=True)
    """)


def test_grasp_action_across_processes_with_feedback_and_cancel():
    from action_msgs.msg import GoalStatus

    server = Proc(ACTION_SERVER)
    try:
        server.wait_for("SERVING", timeout=30)
        client = Proc(ACTION_CLIENT)
        try:
            done = client.wait_for("DONE", timeout=60).split()
            cancel = client.wait_for("CANCEL", timeout=60).split()
        finally:
            client.stop()
        server.wait_for("CANCELED_AT", timeout=10)
    finally:
        server.stop()
    assert int(done[1]) == GoalStatus.STATUS_SUCCEEDED
    assert done[2] == "True" and done[3] == "0.031" and done[4] == "at_0.12"
    assert int(done[5]) > 0  # feedback arrived
    assert int(cancel[1]) == GoalStatus.STATUS_CANCELED
    assert cancel[2] == "False" and cancel[3] == "canceled"
    assert 5 <= int(cancel[-1]) < 100  # stopped well before the end
