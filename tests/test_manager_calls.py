"""The manager's service calls from its interaction thread (which does not spin): many
requests in flight at once, answers in order, one deadline for all, a stop that ends the
wait (real rclpy: a service node and a client node on a spinning executor)."""

from __future__ import annotations

import threading
import time

import pytest

pytestmark = pytest.mark.ros


@pytest.fixture
def patch_service():
    import rclpy
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
    from rclpy.executors import MultiThreadedExecutor

    from curious_robot_interfaces.srv import GetPatch

    context = rclpy.Context()
    rclpy.init(context=context)
    server = rclpy.create_node("test_patch_server", context=context)
    client_node = rclpy.create_node("test_patch_client", context=context)
    served = []

    def answer(request, response):
        time.sleep(0.05)  # a render
        served.append(request.x)
        response.success, response.patch_size = True, float(request.x)
        response.message = f"{request.x:g},{request.y:g}"
        return response

    server.create_service(GetPatch, "test_get_patch", answer,
                          callback_group=MutuallyExclusiveCallbackGroup())
    client = client_node.create_client(GetPatch, "test_get_patch")
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(server)
    executor.add_node(client_node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield client, GetPatch, served
    executor.shutdown()
    server.destroy_node()
    client_node.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(timeout=5)


def test_call_many_answers_in_order_under_one_deadline(patch_service):
    from curious_robot.nodes.common import Stopping
    from curious_robot.nodes.manager import call_many

    client, GetPatch, served = patch_service
    stop = threading.Event()
    requests = [GetPatch.Request(x=float(i), y=10.0 + i) for i in range(5)]
    answers = call_many(client, requests, 10.0, stop)
    assert [a.message for a in answers] == [f"{i},{10 + i}" for i in range(5)]
    assert sorted(served) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert call_many(client, [], 10.0, stop) == []
    with pytest.raises(TimeoutError, match="did not answer in 0.01s"):
        call_many(client, requests[:1], 0.01, stop)
    # five answers of 50 ms each cannot all come within 0.12 s
    with pytest.raises(TimeoutError, match="did not answer 5 requests"):
        call_many(client, requests, 0.12, stop)
    time.sleep(0.4)  # let the server finish what it was given
    stop.set()
    t0 = time.monotonic()
    with pytest.raises(Stopping):
        call_many(client, requests, 10.0, stop)
    assert time.monotonic() - t0 < 1.0


def test_call_many_answers_more_requests_than_the_service_queue_holds(patch_service):
    """A service keeps at most its QoS depth (10 by default) of waiting requests; more sent
    at once would drop the oldest and their answers would never come. call_many keeps a
    window of them in flight, so 25 (a crowded table) are all answered, in order."""
    from rclpy.qos import qos_profile_services_default

    from curious_robot.nodes.manager import call_many

    client, GetPatch, served = patch_service
    n = 2 * qos_profile_services_default.depth + 5
    requests = [GetPatch.Request(x=float(i), y=-1.0) for i in range(n)]
    t0 = time.monotonic()
    answers = call_many(client, requests, 10.0, threading.Event())
    assert [a.patch_size for a in answers] == [float(i) for i in range(n)]
    assert sorted(served) == [float(i) for i in range(n)]
    assert time.monotonic() - t0 < 0.05 * n + 2.0


@pytest.fixture
def refusing_arm():
    """A real grasp action server that refuses every goal (what an arm does once it is
    shutting down or e-stopped), and a client node beside it, spun by one executor."""
    import rclpy
    from rclpy.action import ActionClient, ActionServer, GoalResponse
    from rclpy.executors import MultiThreadedExecutor

    from curious_robot_interfaces.action import Grasp

    context = rclpy.Context()
    rclpy.init(context=context)
    server_node = rclpy.create_node("test_refusing_arm", context=context)
    client_node = rclpy.create_node("test_refused_manager", context=context)
    ActionServer(server_node, Grasp, "test_grasp", execute_callback=lambda h: None,
                 goal_callback=lambda _g: GoalResponse.REJECT)
    client = ActionClient(client_node, Grasp, "test_grasp")
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    executor.add_node(server_node)
    executor.add_node(client_node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    assert client.wait_for_server(timeout_sec=10.0)
    yield client_node, client, Grasp
    executor.shutdown()
    client.destroy()
    server_node.destroy_node()
    client_node.destroy_node()
    rclpy.shutdown(context=context)
    thread.join(timeout=5)


def _manager_host(client_node, client):
    """What ManagerNode._run_action reads of its node: the action clients, the stop
    event, the failure counts, the logger and the clock."""
    import collections
    import types

    return types.SimpleNamespace(actions={"grasp": client}, stop=threading.Event(),
                                 failures=collections.Counter(), last_progress=0.0,
                                 action_timeout=5.0, get_logger=client_node.get_logger,
                                 _now=time.time)


def test_a_refused_goal_counts_as_refused_only_after_the_grace(refusing_arm):
    """A goal the arm refuses while the manager runs on is a refusal, counted once the
    grace has passed without the manager's own shutdown."""
    from curious_robot.nodes.manager import REFUSAL_GRACE, ManagerNode

    client_node, client, Grasp = refusing_arm
    host = _manager_host(client_node, client)
    t0 = time.monotonic()
    result, _accepted = ManagerNode._run_action(host, "grasp",
                                                Grasp.Goal(x=0.0, y=0.0, angle=0.0))
    assert result is None
    assert time.monotonic() - t0 >= REFUSAL_GRACE
    assert host.failures == {"not accepted": 1}


def test_a_goal_refused_as_the_manager_stops_is_not_a_refusal(refusing_arm):
    """At Ctrl-C the arm stops accepting goals a moment before the manager stops sending
    them: a refusal followed by the manager's own stop within the grace is the shutdown,
    not a refused action (the 8-robot bench once counted one)."""
    from curious_robot.nodes.common import Stopping
    from curious_robot.nodes.manager import REFUSAL_GRACE, ManagerNode

    client_node, client, Grasp = refusing_arm
    host = _manager_host(client_node, client)
    threading.Timer(0.3 * REFUSAL_GRACE, host.stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(Stopping):
        ManagerNode._run_action(host, "grasp", Grasp.Goal(x=0.0, y=0.0, angle=0.0))
    assert time.monotonic() - t0 < REFUSAL_GRACE
    assert not host.failures
