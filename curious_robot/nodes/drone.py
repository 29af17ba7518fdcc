"""The simulated drone as a ROS 2 node, with the topics a real drone driver offers:

    publishes  camera/image_raw (sensor_msgs/Image, rgb8, forward camera, ~6 Hz)
               imu (sensor_msgs/Imu: specific force and angular velocity, body axes, 48 Hz)
               pose (geometry_msgs/PoseStamped, frame 'room', 48 Hz)
               contact (std_msgs/Bool, simulation only: touched something this period)
               room (std_msgs/String, latched JSON: layout_seed, held_out)
    subscribes cmd_vel (geometry_msgs/Twist: linear.x forward m/s, angular.z yaw rate)
    services   reset_pose (std_srvs/Trigger: put the drone at a random free pose)
               new_room (std_srvs/Trigger: build the next room of this drone's sequence)

A real driver with the same topics takes its place; the pilot does not need contact,
room or the services (it then detects collisions from the IMU and pose alone).

Stamps are ``start + simulation time``, so time differences are simulation time whatever
the pacing (``real_time_factor``: 1 = real time, 0 = as fast as possible). A velocity
command older than ``cmd_timeout`` wall seconds is replaced by hovering.
"""

from __future__ import annotations

import json
import threading
import time

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from curious_robot.convert import image_to_msg, to_time
from curious_robot.nodes.common import LATCHED, SENSOR, ParameterError, run


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 2

class DroneNode(Node):
    def __init__(self, **kwargs):
        super().__init__("drone", **kwargs)
        from curious_robot.drone.sim import load_config
        from curious_robot.node_config import DroneParams, declare

        p = declare(self, DroneParams)
        config_path = p.world_config
        try:
            self.cfg = load_config(config_path or None)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"parameter 'world_config' = {config_path!r}: {exc}") from exc
        self.seed, self.room_index, self.room_stride = p.seed, p.room_index, p.room_stride
        self.held_out_share, self.rtf = p.held_out_share, p.real_time_factor
        self.cmd_timeout = p.cmd_timeout
        import numpy as np

        self.rng = np.random.default_rng([self.seed, 1201])
        from geometry_msgs.msg import PoseStamped, Twist
        from sensor_msgs.msg import Image, Imu
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        self.pub_image = self.create_publisher(Image, "camera/image_raw", SENSOR)
        self.pub_imu = self.create_publisher(Imu, "imu", SENSOR)
        self.pub_pose = self.create_publisher(PoseStamped, "pose", SENSOR)
        self.pub_contact = self.create_publisher(Bool, "contact", SENSOR)
        self.pub_room = self.create_publisher(String, "room", LATCHED)
        group = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Twist, "cmd_vel", self._on_cmd, SENSOR, callback_group=group)
        self.create_service(Trigger, "reset_pose", self._on_reset, callback_group=group)
        self.create_service(Trigger, "new_room", self._on_new_room, callback_group=group)
        self.lock = threading.Lock()
        self.cmd = (0.0, 0.0)
        self.cmd_wall = -float("inf")
        self.sim = None
        self.rooms_built = 0
        self._build_room()
        self.stamp0 = time.time()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="drone-sim", daemon=True)
        self.thread.start()

    def stopping(self) -> None:
        """Shutdown: the simulation loop ends (the drone stops publishing)."""
        self.stop.set()
        self.thread.join(timeout=2.0)
        if self.thread.is_alive():
            raise RuntimeError("the simulation loop did not end in 2 s")

    def close(self) -> None:
        self.stop.set()
        if not self.lock.acquire(timeout=2.0):
            raise RuntimeError("the simulation stayed busy; not closed")
        try:
            if self.sim is not None:
                self.sim.close()
                self.sim = None
        finally:
            self.lock.release()

    def summary(self) -> str:
        return f"{self.rooms_built} room(s) built"

    # ----------------------------------------------------------------- rooms
    def _next_layout(self) -> int:
        split = self.cfg.layouts
        k = self.rooms_built
        self.rooms_built += 1
        if self.held_out_share > 0 and self.rng.random() < self.held_out_share:
            return split.held_out_seeds[int(self.rng.integers(split.held_out_count))]
        return split.train_seed(self.room_index + k * self.room_stride)

    def _build_room(self) -> str:
        from std_msgs.msg import String

        from curious_robot.drone.sim import DroneSim

        layout = self._next_layout()
        with self.lock:
            old_steps = self.sim.step_count if self.sim is not None else 0
            if self.sim is not None:
                self.sim.close()
            self.sim = DroneSim(layout, self.cfg, seed=self.seed * 7919 + self.rooms_built)
            self.sim.step_count = old_steps  # simulation time runs on across rooms
            held_out = self.sim.layout.held_out
        self.pub_room.publish(String(data=json.dumps({"layout_seed": layout,
                                                      "held_out": held_out})))
        msg = f"room {layout}{' (held out)' if held_out else ''}"
        self.get_logger().info(msg)
        return msg

    # ----------------------------------------------------------------- callbacks
    def _on_cmd(self, msg) -> None:
        self.cmd = (float(msg.linear.x), float(msg.angular.z))
        self.cmd_wall = time.monotonic()

    def _on_reset(self, _request, response):
        with self.lock:
            x, y, yaw = self.sim.reset_random()
        response.success, response.message = True, f"x {x:.2f} y {y:.2f} yaw {yaw:.2f}"
        return response

    def _on_new_room(self, _request, response):
        response.success, response.message = True, self._build_room()
        return response

    # ----------------------------------------------------------------- the loop
    def _loop(self) -> None:
        from curious_robot.drone.sim import DroneSim  # noqa: F401 - import before timing

        wall0, tick = time.monotonic(), 0
        try:
            while not self.stop.is_set():
                fresh = time.monotonic() - self.cmd_wall <= self.cmd_timeout
                cmd = self.cmd if fresh else (0.0, 0.0)
                with self.lock:
                    sim = self.sim
                    if tick % sim.flight.camera_every == 0:
                        image, t_image = sim.image(), sim.time
                    else:
                        image = None
                    imu = sim.step(*cmd)
                    pos, orn = sim.position(), sim.orientation()
                    t = sim.time
                tick += 1
                if image is not None:
                    self.pub_image.publish(image_to_msg(image, "rgb8", self._header(
                        t_image, "camera")))
                self._publish_state(t, imu, pos, orn)
                if self.rtf > 0:
                    ahead = t / self.rtf - (time.monotonic() - wall0)
                    if ahead > 0:
                        time.sleep(ahead)
        except Exception as exc:  # noqa: BLE001 - log and let the process be restarted
            self.get_logger().fatal(f"drone simulation failed: {exc!r}")
            raise

    def _header(self, t: float, frame: str):
        from std_msgs.msg import Header

        return Header(stamp=to_time(self.stamp0 + t), frame_id=frame)

    def _publish_state(self, t, imu, pos, orn) -> None:
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import Imu
        from std_msgs.msg import Bool

        m = Imu(header=self._header(t, "base_link"))
        m.orientation.x, m.orientation.y, m.orientation.z, m.orientation.w = orn
        a, w = imu.linear_acceleration, imu.angular_velocity
        m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z = map(float, a)
        m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = map(float, w)
        self.pub_imu.publish(m)
        p = PoseStamped(header=self._header(t, "room"))
        p.pose.position.x, p.pose.position.y, p.pose.position.z = map(float, pos)
        p.pose.orientation.x, p.pose.orientation.y, p.pose.orientation.z, \
            p.pose.orientation.w = orn
        self.pub_pose.publish(p)
        self.pub_contact.publish(Bool(data=bool(imu.contact)))


def main() -> int:
    return run(DroneNode, threads=THREADS)
