"""RobotIO over ROS 2 topics: what a ros2_control arm, its gripper, force sensor and an
RGB-D camera driver publish and accept (names from :class:`~curious_robot.arm.config.Topics`).

  out: joint_trajectory (trajectory_msgs/JointTrajectory, to a joint_trajectory_controller),
       or, when configured, follow_joint_trajectory (control_msgs/FollowJointTrajectory
       action: a refused or aborted goal stops the motion with the controller's reason;
       needs control_msgs, which a ROS 2 distribution has and PyPI does not),
       gripper_command (std_msgs/Float64MultiArray, to a forward position controller),
       ~/planned_trajectory + ~/planned_path (dry run: JointTrajectory, MarkerArray)
  in:  joint_states / gripper_state (sensor_msgs/JointState), wrench
       (geometry_msgs/WrenchStamped), color / depth (sensor_msgs/Image), camera_info
  srv: scene_reset (std_srvs/Trigger, optional)

Subscriptions use best-effort QoS so that they match reliable and sensor-data publishers.
Readings are timed with the monotonic clock at arrival.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from curious_robot.convert import msg_to_image

from .backend import Frame
from .config import HardwareConfig
from .hardware import RobotIO, State

BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT,
                         history=HistoryPolicy.KEEP_LAST)
COMMANDS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)


#: s the controller's action server has to accept or refuse a trajectory goal
GOAL_ANSWER_TIMEOUT = 1.0


def _secs(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class RosRobotIO(RobotIO):
    def __init__(self, node, config: HardwareConfig, callback_group=None):
        from geometry_msgs.msg import WrenchStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory
        from visualization_msgs.msg import MarkerArray

        self.node = node
        self.cfg = config
        t = config.topics
        self.cond = threading.Condition()
        self.pump = None  # set while nothing spins the node (start-up): spin_once(timeout)
        self._joints: dict[str, tuple[float, float]] = {}
        self._reported: list[str] | None = None
        self._state: State | None = None
        self._force: np.ndarray | None = None
        self._force_t: float | None = None
        self._info = None
        self._color = self._depth = None  # (arrival, msg)
        kw = {"callback_group": callback_group}
        node.create_subscription(JointState, t.joint_states, self._on_joints, BEST_EFFORT, **kw)
        if node.resolve_topic_name(t.gripper_state) != node.resolve_topic_name(t.joint_states):
            node.create_subscription(JointState, t.gripper_state, self._on_gripper,
                                     BEST_EFFORT, **kw)
        node.create_subscription(WrenchStamped, t.wrench, self._on_wrench, BEST_EFFORT, **kw)
        node.create_subscription(Image, t.color, self._on_color, BEST_EFFORT, **kw)
        node.create_subscription(Image, t.depth, self._on_depth, BEST_EFFORT, **kw)
        node.create_subscription(CameraInfo, t.camera_info, self._on_info, BEST_EFFORT, **kw)
        self.pub_traj = node.create_publisher(JointTrajectory, t.joint_trajectory, COMMANDS)
        self.pub_grip = node.create_publisher(Float64MultiArray, t.gripper_command, COMMANDS)
        self.pub_plan = node.create_publisher(JointTrajectory, "~/planned_trajectory", COMMANDS)
        self.pub_path = node.create_publisher(MarkerArray, "~/planned_path", COMMANDS)
        self.follow = None  # the controller's FollowJointTrajectory action, when configured
        self._goal = None  # the running goal's handle
        self._goal_error = ""  # why the controller gave up the running goal
        if t.follow_joint_trajectory:
            try:
                from control_msgs.action import FollowJointTrajectory
            except ImportError as exc:
                raise ValueError(
                    f"topics.follow_joint_trajectory = {t.follow_joint_trajectory!r} needs "
                    "control_msgs (in a ROS 2 distribution: the ros-<distro>-control-msgs "
                    "package); leave it empty to use the topic "
                    f"{t.joint_trajectory!r} and the follow check") from exc
            from rclpy.action import ActionClient

            self._follow_type = FollowJointTrajectory
            self.follow = ActionClient(node, FollowJointTrajectory, t.follow_joint_trajectory,
                                       **kw)
        self.reset_client = None
        if t.scene_reset:
            from std_srvs.srv import Trigger
            self.reset_client = node.create_client(Trigger, t.scene_reset, **kw)

    # ------------------------------------------------------------ callbacks
    def _on_joints(self, msg) -> None:
        with self.cond:
            self._reported = list(msg.name)
            self._merge(msg)

    def _on_gripper(self, msg) -> None:
        with self.cond:
            for i, n in enumerate(msg.name):
                if n in self.cfg.gripper.joints and i < len(msg.position):
                    self._joints[n] = (float(msg.position[i]), 0.0)

    def _merge(self, msg) -> None:
        for i, n in enumerate(msg.name):
            if i < len(msg.position):
                v = float(msg.velocity[i]) if i < len(msg.velocity) else 0.0
                self._joints[n] = (float(msg.position[i]), v)
        arm = self.cfg.arm.arm_joints
        if not all(n in self._joints for n in arm):
            return
        g = self.cfg.gripper
        width = g.width_of([self._joints[n][0] for n in g.joints]) \
            if all(n in self._joints for n in g.joints) else float("nan")
        self._state = State(time.monotonic(), np.array([self._joints[n][0] for n in arm]),
                            np.array([self._joints[n][1] for n in arm]), width,
                            None if self._force is None else self._force.copy(),
                            self._force_t)
        self.cond.notify_all()

    def _on_wrench(self, msg) -> None:
        f = msg.wrench.force
        with self.cond:
            self._force = np.array([f.x, f.y, f.z])
            self._force_t = time.monotonic()

    def _on_color(self, msg) -> None:
        with self.cond:
            self._color = (time.monotonic(), msg)
            self.cond.notify_all()

    def _on_depth(self, msg) -> None:
        with self.cond:
            self._depth = (time.monotonic(), msg)
            self.cond.notify_all()

    def _on_info(self, msg) -> None:
        with self.cond:
            self._info = msg
            self.cond.notify_all()

    def _wait(self, pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                if pred():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if self.pump is None:
                    self.cond.wait(min(left, 0.1))
                    continue
            self.pump(min(left, 0.05))

    # ------------------------------------------------------------ RobotIO
    def now(self) -> float:
        return time.monotonic()

    def state(self) -> State | None:
        with self.cond:
            return self._state

    def wait_state(self, after: float, timeout: float) -> State | None:
        ok = self._wait(lambda: self._state is not None and self._state.t > after, timeout)
        return self.state() if ok else None

    def reported_joints(self, timeout: float) -> list[str] | None:
        self._wait(lambda: self._reported is not None and self._state is not None, timeout)
        if self._reported is None:
            return None
        # a name check needs the gripper too, where it comes on its own topic
        self._wait(lambda: self._state is not None
                   and np.isfinite(self._state.gripper_width), min(timeout, 2.0))
        return list(self._reported)

    def camera_info(self, timeout: float):
        self._wait(lambda: self._info is not None, timeout)
        i = self._info
        return None if i is None else (i.width, i.height, list(i.k), i.header.frame_id)

    def frame(self, after: float | None, timeout: float) -> Frame | None:
        after = -1.0 if after is None else after

        def ready() -> bool:
            c, d = self._color, self._depth
            return (c is not None and d is not None and c[0] > after and d[0] > after
                    and _secs(c[1].header.stamp) == _secs(d[1].header.stamp))
        if not self._wait(ready, timeout):
            with self.cond:  # a pair with different stamps (drivers without sync): newest
                c, d = self._color, self._depth
                if c is None or d is None or c[0] <= after or d[0] <= after:
                    return None
        with self.cond:
            c, d = self._color[1], self._depth[1]
        rgb = msg_to_image(c, "color")
        if c.encoding == "bgr8":
            rgb = rgb[:, :, ::-1]
        depth = msg_to_image(d, "depth")
        if d.encoding == "16UC1":
            depth = depth.astype(np.float32) * np.float32(self.cfg.calibration.depth_scale)
        return Frame(np.ascontiguousarray(rgb), depth.astype(np.float32), c.header.stamp)

    def _trajectory(self, times, positions):
        from builtin_interfaces.msg import Duration
        from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

        msg = JointTrajectory()
        msg.joint_names = list(self.cfg.arm.arm_joints)
        for t, q in zip(times, positions):
            pt = JointTrajectoryPoint()
            pt.positions = [float(v) for v in q]
            pt.time_from_start = Duration(sec=int(t), nanosec=int((t - int(t)) * 1e9))
            msg.points.append(pt)
        return msg  # header.stamp 0: start now, replacing any running trajectory

    def _future(self, future, timeout: float):
        """``future``'s result within ``timeout`` s (None if it did not come)."""
        future.add_done_callback(lambda _f: self._notify())
        if not self._wait(future.done, timeout):
            return None
        return future.result()

    def _notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def controller_problem(self, timeout: float) -> str:
        if self.follow is None or self._wait(self.follow.server_is_ready, timeout):
            return ""
        return (f"the controller's action {self.cfg.topics.follow_joint_trajectory} "
                f"(control_msgs/FollowJointTrajectory) is not available within {timeout:.0f} s")

    def send_trajectory(self, times, positions) -> None:
        msg = self._trajectory(times, positions)
        if self.follow is None:
            self.pub_traj.publish(msg)  # a rejection is silent here: the follow check
            return
        from curious_robot.motion.results import TrajectoryRejected

        with self.cond:
            self._goal, self._goal_error = None, ""
        name = self.cfg.topics.follow_joint_trajectory
        if not self.follow.server_is_ready():
            raise TrajectoryRejected(f"the controller's action {name} is not available")
        goal = self._follow_type.Goal(trajectory=msg)
        handle = self._future(self.follow.send_goal_async(goal), GOAL_ANSWER_TIMEOUT)
        if handle is None:
            raise TrajectoryRejected(f"the controller's action {name} did not answer the goal "
                                     f"within {GOAL_ANSWER_TIMEOUT} s")
        if not handle.accepted:
            raise TrajectoryRejected(f"the controller refused the trajectory ({name})")
        with self.cond:
            self._goal = handle
        handle.get_result_async().add_done_callback(
            lambda f, h=handle: self._on_goal_result(h, f))

    def _on_goal_result(self, handle, future) -> None:
        from action_msgs.msg import GoalStatus

        res = future.result()
        with self.cond:
            if handle is not self._goal:
                return  # an earlier goal, replaced or stopped: its end says nothing now
            code = int(res.result.error_code)
            if res.status != GoalStatus.STATUS_SUCCEEDED or code != 0:
                text = res.result.error_string or "no reason given"
                self._goal_error = f"status {res.status}, error code {code}: {text}"
            self._goal = None
            self.cond.notify_all()

    def trajectory_error(self) -> str:
        with self.cond:
            return self._goal_error

    def hold(self, q) -> None:
        self.send_trajectory([0.05], [np.asarray(q, float)])

    def stop(self) -> None:
        with self.cond:  # what the goal does from now on is the stop's doing
            goal, self._goal, self._goal_error = self._goal, None, ""
        if goal is not None:
            goal.cancel_goal_async()
        self.pub_traj.publish(self._trajectory([], []))  # no points: hold where it is

    def send_gripper(self, values) -> None:
        from std_msgs.msg import Float64MultiArray

        self.pub_grip.publish(Float64MultiArray(data=[float(v) for v in values]))

    def publish_plan(self, times, positions, tool_points) -> None:
        from geometry_msgs.msg import Point
        from visualization_msgs.msg import Marker, MarkerArray

        msg = self._trajectory(times, positions)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = self.cfg.base_frame
        self.pub_plan.publish(msg)
        m = Marker(ns="planned_tool_path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
        m.header = msg.header
        m.pose.orientation.w = 1.0
        m.scale.x = 0.004
        m.color.r, m.color.g, m.color.b, m.color.a = 1.0, 0.5, 0.0, 1.0
        m.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in tool_points]
        self.pub_path.publish(MarkerArray(markers=[m]))

    def reset_scene(self, seed):
        if self.reset_client is None:
            return None
        from std_srvs.srv import Trigger

        if not self.reset_client.wait_for_service(timeout_sec=5.0):
            return False, f"scene reset service {self.reset_client.srv_name} not available"
        done = threading.Event()
        fut = self.reset_client.call_async(Trigger.Request())
        fut.add_done_callback(lambda _f: done.set())
        if not done.wait(30.0):
            return False, "scene reset did not answer in 30 s"
        r = fut.result()
        return bool(r.success), r.message
