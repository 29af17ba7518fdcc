"""The pilot node: the crash-collecting loop of "Learning to Fly by Crashing" on ROS 2.

Flies the drone (any driver with the standard topics: camera/image_raw, imu, pose,
cmd_vel) straight until a collision (an IMU spike, a contact report where the driver
gives one, or a stall seen in the pose), backs off, turns to a random new heading and
flies on; labels the frames of each straight flight by their time to the collision
(:mod:`curious_robot.drone.pilot`) and publishes them as ``crash`` Interactions on
/interactions, like the arm's interaction manager: per-robot sequence numbers that
continue after a restart (/robot_status), kept until the learner acknowledges them on
/interaction_acks (spooled to ``outbox_dir``), resent after ``resend_after`` seconds,
signed with the fleet key (``fleet_key``) whose signature acks and status answers need.

Optional, simulation only: ``contact`` (a bumper), ``room`` (layout seed and the held-out
flag of the records), the ``reset_pose`` service (after the drone is upset) and
``new_room`` (every ``crashes_per_room`` collisions).
"""

from __future__ import annotations

import json
import math
import threading

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from curious_robot.convert import from_time, msg_to_image, record_to_msg
from curious_robot.nodes.common import (RELIABLE, SENSOR, FleetAuth, ParameterError,
                                         make_outbox, run, status_request)


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 3

class PilotNode(Node):
    def __init__(self, **kwargs):
        super().__init__("pilot", **kwargs)
        from dataclasses import asdict, fields

        from curious_robot.drone.pilot import Pilot, PilotConfig
        from curious_robot.node_config import declare, pilot_params

        p = declare(self, pilot_params(), robot=self.get_namespace().strip("/") or "drone0")
        if not p.robot:
            raise ParameterError("parameter 'robot' must not be empty")
        self.robot = p.robot
        flight = {f.name for f in fields(PilotConfig)}
        try:
            self.pilot = Pilot(PilotConfig(**{k: float(v) for k, v in asdict(p).items()
                                              if k in flight}), seed=p.seed)
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        self.max_interactions, self.crashes_per_room = p.max_interactions, p.crashes_per_room
        self.resend_after = p.resend_after
        self.fleet = FleetAuth(self, p.fleet_key)

        from geometry_msgs.msg import PoseStamped, Twist
        from sensor_msgs.msg import Image, Imu
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        from curious_robot_interfaces.msg import IngestAck, Interaction as InteractionMsg
        from curious_robot_interfaces.srv import RobotStatus

        from curious_robot.nodes.common import LATCHED

        flight = MutuallyExclusiveCallbackGroup()  # the pilot's state: one callback at a time
        other = ReentrantCallbackGroup()
        self.pub_cmd = self.create_publisher(Twist, "cmd_vel", SENSOR)
        self.pub = self.create_publisher(InteractionMsg, "/interactions", RELIABLE)
        self.outbox = make_outbox(self, self.robot, self.pub, self.resend_after, p.outbox_dir,
                                  InteractionMsg, self.fleet)
        self.create_subscription(Imu, "imu", self._on_imu, SENSOR, callback_group=flight)
        self.create_subscription(Image, "camera/image_raw", self._on_image, SENSOR,
                                 callback_group=flight)
        self.create_subscription(PoseStamped, "pose", self._on_pose, SENSOR,
                                 callback_group=flight)
        self.create_subscription(Bool, "contact", self._on_contact, SENSOR,
                                 callback_group=flight)
        self.create_subscription(String, "room", self._on_room, LATCHED, callback_group=flight)
        self.create_subscription(IngestAck, "/interaction_acks",
                                 self.outbox.on_ack, RELIABLE,
                                 callback_group=other)
        self.robot_status = self.create_client(RobotStatus, "/robot_status",
                                               callback_group=other)
        self.reset_pose = self.create_client(Trigger, "reset_pose", callback_group=other)
        self.new_room = self.create_client(Trigger, "new_room", callback_group=other)
        self.layout_seed: int | None = None
        self.held_out = False
        self.contact = False
        self.pose: tuple | None = None  # (t, x, y, z, yaw, tilt in degrees)
        self.last_t = 0.0
        self.forward_speed: float | None = None
        self.busy = False  # a reset / room change is in flight: hover, no labels
        self.seq: int | None = None
        self.done = 0
        self.room_crashes = 0
        self.stop = threading.Event()
        threading.Thread(target=self._start_seq, name="pilot-seq", daemon=True).start()
        self.create_timer(1.0, self.outbox.resend, callback_group=other)

    def stopping(self) -> None:
        """Shutdown: hover from now on and publish no more frames, then wait a little for
        the learner to acknowledge what was published (what stays unacknowledged is not
        stored)."""
        from geometry_msgs.msg import Twist

        self.stop.set()
        self.pub_cmd.publish(Twist())
        self.outbox.wait_acknowledged(2.0)

    def close(self) -> None:
        self.outbox.close()  # the executor has stopped: nothing writes to the spool any more

    def summary(self) -> str:
        refused = self.fleet.summary()
        return (f"{self.done} frames sent, {self.pilot.collisions} collisions, "
                f"{self.outbox.delivery()}" + (f"; {refused}" if refused else ""))

    # ----------------------------------------------------------------- sequence numbers
    def _start_seq(self) -> None:
        while not self.stop.is_set():
            if not self.robot_status.service_is_ready():
                if not self.stop.wait(0.5):
                    self.get_logger().info("waiting for the learner (/robot_status)",
                                           throttle_duration_sec=10)
                continue
            answered = threading.Event()
            request = status_request(self.robot)
            future = self.robot_status.call_async(request)
            future.add_done_callback(lambda _f, e=answered: e.set())
            if not answered.wait(5.0) or future.result() is None:
                continue
            if self.fleet.verify_status(request, future.result()) is not None:
                self.stop.wait(1.0)  # refused (logged): ask again
                continue
            seq = int(future.result().last_seq) + 1
            if self.outbox.max_seq is not None:  # an earlier run's frames wait in the spool
                seq = max(seq, self.outbox.max_seq + 1)
            self.seq = seq
            self.get_logger().info(f"robot '{self.robot}' starts at seq {self.seq}")
            return

    # ----------------------------------------------------------------- sensors
    def _on_room(self, msg) -> None:
        try:
            info = json.loads(msg.data)
            self.layout_seed = int(info["layout_seed"])
            self.held_out = bool(info.get("held_out", False))
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().warning(f"ignoring room message {msg.data!r}: {exc}")

    def _on_contact(self, msg) -> None:
        self.contact = self.contact or bool(msg.data)

    def _on_pose(self, msg) -> None:
        t = from_time(msg.header.stamp)
        p, q = msg.pose.position, msg.pose.orientation
        yaw = math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))
        tilt = math.degrees(math.acos(max(-1.0, min(1.0, 1 - 2 * (q.x * q.x + q.y * q.y)))))
        if self.pose is not None and t > self.pose[0]:
            dt = t - self.pose[0]
            vx, vy = (p.x - self.pose[1]) / dt, (p.y - self.pose[2]) / dt
            self.forward_speed = vx * math.cos(yaw) + vy * math.sin(yaw)
        self.pose = (t, p.x, p.y, p.z, yaw, tilt)

    def _on_image(self, msg) -> None:
        if self.busy or self.seq is None or self.stop.is_set():
            return
        img = msg_to_image(msg, "camera/image_raw")
        if img is not None and img.ndim == 3 and img.shape[1] >= img.shape[0]:
            self.pilot.on_frame(from_time(msg.header.stamp), img)

    def _on_imu(self, msg) -> None:
        from geometry_msgs.msg import Twist

        t = self.last_t = from_time(msg.header.stamp)
        cmd = Twist()
        if self.seq is None or self.busy or self._finished() or self.stop.is_set():
            self.pub_cmd.publish(cmd)  # hover
            return
        if self.pose is not None and (self.pose[5] > 60.0 or self.pose[3] < 0.3):
            self._call_then_restart(self.reset_pose, "upset: reset pose")
            self.pub_cmd.publish(cmd)
            return
        a = msg.linear_acceleration
        contact, self.contact = self.contact, False
        before = self.pilot.collisions
        forward, yaw_rate = self.pilot.tick(t, (a.x, a.y, a.z), contact, self.forward_speed)
        cmd.linear.x, cmd.angular.z = float(forward), float(yaw_rate)
        self.pub_cmd.publish(cmd)
        for frame in self.pilot.take():
            self._publish(frame)
        if self.pilot.collisions > before:
            self.room_crashes += 1
            self.get_logger().info(
                f"collision {self.pilot.collisions} (IMU peak {self.pilot.last_peak:.1f} "
                f"m/s^2), {self.done} frames published", throttle_duration_sec=5)
            if self.crashes_per_room and self.room_crashes >= self.crashes_per_room:
                self.room_crashes = 0
                self._call_then_restart(self.new_room, "next room")

    def _finished(self) -> bool:
        return bool(self.max_interactions) and self.done >= self.max_interactions

    def _call_then_restart(self, client, why: str) -> None:
        from std_srvs.srv import Trigger

        if not client.service_is_ready():
            return
        self.busy = True
        self.get_logger().info(why)

        def done(future):
            if future.result() is None or not future.result().success:
                self.get_logger().warning(f"{client.srv_name} failed")
            self.pose, self.forward_speed = None, None
            self.pilot.restart(self.last_t)
            self.busy = False

        client.call_async(Trigger.Request()).add_done_callback(done)

    # ----------------------------------------------------------------- interactions
    def _publish(self, frame) -> None:
        from curious_robot.drone.pilot import to_interaction

        if self._finished() or self.stop.is_set():
            return
        rec = to_interaction(frame, self.robot, self.seq, self.layout_seed, self.held_out)
        msg = self.fleet.sign_interaction(record_to_msg(rec))
        self.outbox.send(self.seq, msg)
        self.seq += 1
        self.done += 1
        if self._finished():
            self.get_logger().info(f"done: {self.done} interactions")


def main() -> int:
    return run(PilotNode, threads=THREADS)
