"""Fake hardware: a simulated ros2_control arm on the topics a real one would use, so the
arm node's hardware backend runs end to end without a robot.

A PyBullet world (curious_robot.arm.fake.FakeArm) follows received JointTrajectory
messages at a fixed control rate within the joints' velocity limits, drives the gripper
from Float64MultiArray commands and publishes joint_states (arm + finger joints), the
wrist force (WrenchStamped: net contact force on the arm) and an RGB-D camera (color,
depth 32FC1, camera_info). All topic names come from the hardware YAML (``topics``), as
the arm node reads them. ``topics.scene_reset`` (std_srvs/Trigger) clears the table and
drops new objects, the job a person does at a real robot.

    ros2 run curious_robot fake_hardware --ros-args -p hardware_config:=.../panda_sim.yaml
"""

from __future__ import annotations

import time

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from curious_robot.convert import image_to_msg
from curious_robot.nodes.common import SENSOR, ParameterError, run


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 3

class FakeHardwareNode(Node):
    def __init__(self, **kwargs):
        super().__init__("fake_hardware", **kwargs)
        from curious_robot.arm.config import HardwareConfig
        from curious_robot.arm.fake import FakeArm
        from curious_robot.node_config import FakeHardwareParams, declare
        from curious_robot.world import World, WorldConfig

        p = declare(self, FakeHardwareParams)
        path, world_path, seed, n_objects = p.hardware_config, p.world_config, p.seed, p.n_objects
        split, rate, prefix = p.object_split, p.control_rate, p.joint_prefix
        self.camera_rate = p.camera_rate
        try:
            self.cfg = HardwareConfig.from_yaml(path)
            wcfg = WorldConfig.from_yaml(world_path) if world_path else WorldConfig()
        except (OSError, ValueError) as exc:
            raise ParameterError(f"parameter 'hardware_config' / 'world_config': {exc}") \
                from exc
        wcfg.arm = self.cfg.arm
        if n_objects:
            wcfg.num_objects = n_objects
        wcfg.object_split = split
        self.fake = FakeArm(World(wcfg, seed=seed), rate or self.cfg.safety.control_rate,
                            joint_prefix=prefix)
        self.fake.refuse = p.refuse_trajectories

        from geometry_msgs.msg import WrenchStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        t = self.cfg.topics
        self.pub_joints = self.create_publisher(JointState, t.joint_states, SENSOR)
        self.pub_gripper = None
        if self.resolve_topic_name(t.gripper_state) != self.resolve_topic_name(t.joint_states):
            self.pub_gripper = self.create_publisher(JointState, t.gripper_state, SENSOR)
        self.pub_wrench = self.create_publisher(WrenchStamped, t.wrench, SENSOR)
        self.pub_color = self.create_publisher(Image, t.color, SENSOR)
        self.pub_depth = self.create_publisher(Image, t.depth, SENSOR)
        self.pub_info = self.create_publisher(CameraInfo, t.camera_info, SENSOR)
        commands = MutuallyExclusiveCallbackGroup()
        self.create_subscription(JointTrajectory, t.joint_trajectory, self._on_trajectory, 10,
                                 callback_group=commands)
        self.create_subscription(Float64MultiArray, t.gripper_command, self._on_gripper, 10,
                                 callback_group=commands)
        if t.scene_reset:
            from std_srvs.srv import Trigger
            self.create_service(Trigger, t.scene_reset, self._on_reset,
                                callback_group=MutuallyExclusiveCallbackGroup())
        self._ticks = 0
        self._t0: float | None = None
        self._loop_timers = [
            self.create_timer(self.fake.period, self._on_tick,
                              callback_group=MutuallyExclusiveCallbackGroup()),
            self.create_timer(1.0 / self.camera_rate, self._on_camera,
                              callback_group=MutuallyExclusiveCallbackGroup())]
        self.get_logger().info(
            f"fake hardware '{self.cfg.arm.name}' ready: {len(self.fake.world.objects())} "
            f"objects, seed {seed}, control at {1.0 / self.fake.period:.0f} Hz, trajectories "
            f"on {self.resolve_topic_name(t.joint_trajectory)}")

    def stopping(self) -> None:
        """Shutdown: the control loop and the camera stop (the arm holds still)."""
        for timer in self._loop_timers:
            timer.cancel()

    def close(self) -> None:
        if not self.fake.lock.acquire(timeout=2.0):
            raise RuntimeError("the simulated arm stayed busy; not closed")
        try:
            self.fake.world.close()
        finally:
            self.fake.lock.release()

    def summary(self) -> str:
        return f"{self._ticks} control ticks"

    # ------------------------------------------------------------ commands
    def _on_trajectory(self, msg) -> None:
        if not msg.points:  # an empty trajectory stops the controller
            self.fake.stop()
            return
        times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
        why = self.fake.command(list(msg.joint_names), times,
                                [list(p.positions) for p in msg.points])
        if why:
            self.get_logger().error(f"trajectory rejected: {why}")

    def _on_gripper(self, msg) -> None:
        g = self.cfg.gripper
        values = list(msg.data)
        if g.command == "single" and values:
            # back to a width, then to the simulated per-finger position
            values = [(values[0] - g.command_offset) / g.command_scale / 2.0]
        self.fake.gripper(values)

    def _on_reset(self, _request, response):
        response.message = self.fake.reset()
        response.success = True
        self.get_logger().info(f"scene reset: {response.message}")
        return response

    # ------------------------------------------------------------ the control loop
    def _on_tick(self) -> None:
        from geometry_msgs.msg import WrenchStamped
        from sensor_msgs.msg import JointState

        # real time: when a tick comes late (a busy machine), catch up (at most 4 periods)
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now - self.fake.period
        due = int((now - self._t0) / self.fake.period) - self._ticks
        for _ in range(max(1, min(due, 4))):
            self.fake.tick()
            self._ticks += 1
        if due > 4:
            self._t0 = now - self._ticks * self.fake.period  # give up on the backlog
        if self._ticks % int(2.0 / self.fake.period) < max(1, due):
            self.fake.maintain()
        stamp = self.get_clock().now().to_msg()
        names, pos, vel, eff = self.fake.joint_state()
        js = JointState(name=list(names), position=[float(v) for v in pos],
                        velocity=[float(v) for v in vel], effort=[float(v) for v in eff])
        js.header.stamp = stamp
        if self.pub_gripper is not None:
            n_fingers = len(self.fake.finger_joints)
            grip = JointState(name=js.name[-n_fingers:], position=js.position[-n_fingers:])
            grip.header.stamp = stamp
            js.name, js.position = js.name[:-n_fingers], js.position[:-n_fingers]
            js.velocity, js.effort = js.velocity[:-n_fingers], js.effort[:-n_fingers]
            self.pub_gripper.publish(grip)
        w = self.fake.wrench()
        ws = WrenchStamped()
        ws.header.stamp, ws.header.frame_id = stamp, self.cfg.base_frame
        ws.wrench.force.x, ws.wrench.force.y, ws.wrench.force.z = (float(v) for v in w[:3])
        ws.wrench.torque.x, ws.wrench.torque.y, ws.wrench.torque.z = (float(v) for v in w[3:])
        # the wrench first: a joint-state reading then carries the force of its own tick
        self.pub_wrench.publish(ws)
        self.pub_joints.publish(js)

    def _on_camera(self) -> None:
        from sensor_msgs.msg import CameraInfo

        rgb, depth = self.fake.capture()
        stamp = self.get_clock().now().to_msg()
        w, h, k = self.fake.camera_info()
        for pub, img, enc in ((self.pub_color, rgb, "rgb8"), (self.pub_depth, depth, "32FC1")):
            msg = image_to_msg(img, enc)
            msg.header.stamp, msg.header.frame_id = stamp, "camera"
            pub.publish(msg)
        info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
        info.header.stamp, info.header.frame_id = stamp, "camera"
        info.k = [float(v) for v in k]
        info.d = [0.0] * 5
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
        self.pub_info.publish(info)


def main() -> int:
    return run(FakeHardwareNode, threads=THREADS)
