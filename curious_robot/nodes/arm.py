"""The arm node (simulation backend): owns a PyBullet world, publishes the RGB-D camera,
camera_info and joint_states, and serves the grasp / push / poke / inspect actions, the
scene reset and patch services.

Topics (relative, so a namespace per robot works):
  camera/color/image_raw (rgb8), camera/depth/image_raw (32FC1, m), camera/camera_info,
  camera/pose (latched PoseStamped: camera in the table frame), joint_states,
  tactile/raw (TactileReadings: each poke's readings in chunks)
Actions: grasp, push, poke, inspect.  Services: reset_scene, get_patch, emergency_stop.
"""

from __future__ import annotations

import math
import threading
import uuid

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from curious_robot.convert import image_to_msg
from curious_robot.nodes.common import LATCHED, RELIABLE, SENSOR, param, run

ACTIONS = ("grasp", "push", "poke", "inspect")
TACTILE_CHUNK = 256  # readings per TactileReadings message


def _quat_from_matrix(r: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) of a rotation matrix."""
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2.0,
                      r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2.0,
                      r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2.0,
                      r[1, 0] - r[0, 1])
    return x, y, z, w


class ArmNode(Node):
    def __init__(self, **kwargs):
        super().__init__("arm", **kwargs)
        from curious_robot.world import World, WorldConfig

        self.robot = param(self, "robot", self.get_namespace().strip("/") or "robot0",
                           lambda v: bool(v), "must not be empty")
        seed = param(self, "seed", 0, lambda v: v >= 0, "must be >= 0")
        config_path = param(self, "world_config", "")
        n_objects = param(self, "n_objects", 0, lambda v: v >= 0,
                          "must be >= 0 (0: the world config's number)")
        split = param(self, "object_split", "all", lambda v: v in ("train", "held_out", "all"),
                      "must be train, held_out or all")
        self.camera_rate = param(self, "camera_rate", 2.0, lambda v: v > 0, "must be > 0 Hz")
        self.max_poke_force = param(self, "max_poke_force", 20.0, lambda v: v > 0,
                                    "must be > 0 N")
        try:
            config = WorldConfig.from_yaml(config_path) if config_path else WorldConfig()
        except (OSError, ValueError) as exc:
            from curious_robot.nodes.common import ParameterError
            raise ParameterError(f"parameter 'world_config' = {config_path!r}: {exc}") from exc
        if n_objects:
            config.num_objects = n_objects
        config.object_split = split
        self.world = World(config, seed=seed)
        self.lock = threading.Lock()
        self.busy_lock = threading.Lock()
        self.busy = 0  # goals accepted and not finished
        self.estop = threading.Event()

        from curious_robot_interfaces.msg import TactileReadings
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState

        self.pub_rgb = self.create_publisher(Image, "camera/color/image_raw", SENSOR)
        self.pub_depth = self.create_publisher(Image, "camera/depth/image_raw", SENSOR)
        self.pub_info = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR)
        self.pub_joints = self.create_publisher(JointState, "joint_states", SENSOR)
        self.pub_tactile = self.create_publisher(TactileReadings, "tactile/raw", RELIABLE)
        self.pub_pose = self.create_publisher(PoseStamped, "camera/pose", LATCHED)
        self._publish_camera_pose()

        group = ReentrantCallbackGroup()
        from curious_robot_interfaces.action import Grasp, Inspect, Poke, Push
        for name, action_type in zip(ACTIONS, (Grasp, Push, Poke, Inspect)):
            ActionServer(self, action_type, name,
                         execute_callback=self._executor_for(name),
                         goal_callback=self._on_goal,
                         cancel_callback=lambda _h: CancelResponse.ACCEPT,
                         callback_group=group)
        from curious_robot_interfaces.srv import GetPatch, ResetScene
        from std_srvs.srv import Trigger
        self.create_service(ResetScene, "reset_scene", self._on_reset, callback_group=group)
        self.create_service(GetPatch, "get_patch", self._on_patch, callback_group=group)
        self.create_service(Trigger, "emergency_stop", self._on_estop, callback_group=group)
        self.create_service(Trigger, "release_stop", self._on_release, callback_group=group)
        self.create_timer(1.0 / self.camera_rate, self._on_camera_timer,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info(
            f"sim arm '{self.robot}' ready: {len(self.world.objects())} objects, seed {seed}")

    def close(self) -> None:
        with self.lock:
            self.world.close()

    # ----------------------------------------------------------------- publishing
    def _stamp(self):
        return self.get_clock().now().to_msg()

    def _publish_camera_pose(self) -> None:
        from geometry_msgs.msg import PoseStamped

        pose = np.asarray(self.world.camera.pose)
        msg = PoseStamped()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = "table"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, pose[:3, 3])
        q = _quat_from_matrix(pose[:3, :3])
        (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
         msg.pose.orientation.w) = q
        self.pub_pose.publish(msg)

    def publish_sensors(self) -> None:
        """Capture and publish one RGB-D frame and the joint state (caller holds the lock)."""
        from sensor_msgs.msg import CameraInfo, JointState

        rgb, depth = self.world.capture()
        stamp = self._stamp()
        cam = self.world.camera
        for pub, img, enc in ((self.pub_rgb, rgb, "rgb8"), (self.pub_depth, depth, "32FC1")):
            msg = image_to_msg(img, enc)
            msg.header.stamp, msg.header.frame_id = stamp, "camera"
            pub.publish(msg)
        info = CameraInfo()
        info.header.stamp, info.header.frame_id = stamp, "camera"
        info.width, info.height = int(cam.width), int(cam.height)
        info.distortion_model = "plumb_bob"
        info.d = [0.0] * 5
        info.k = [float(cam.fx), 0.0, float(cam.cx), 0.0, float(cam.fy), float(cam.cy),
                  0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [float(cam.fx), 0.0, float(cam.cx), 0.0, 0.0, float(cam.fy), float(cam.cy),
                  0.0, 0.0, 0.0, 1.0, 0.0]
        self.pub_info.publish(info)
        names, pos, vel, eff = self.world.joint_state()
        js = JointState()
        js.header.stamp = stamp
        js.name = list(names)
        js.position, js.velocity, js.effort = (list(map(float, v)) for v in (pos, vel, eff))
        self.pub_joints.publish(js)

    def _on_camera_timer(self) -> None:
        if self.busy == 0 and self.lock.acquire(blocking=False):
            try:
                self.publish_sensors()
            finally:
                self.lock.release()

    # ----------------------------------------------------------------- services
    def _on_reset(self, request, response):
        with self.lock:
            try:
                if request.seed >= 0 and hasattr(self.world, "reseed"):
                    self.world.reseed(int(request.seed))
                self.world.reset()
                response.success = True
                response.object_ids = [o.object_id for o in self.world.objects()]
                response.message = f"{len(response.object_ids)} objects on the table"
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                response.success, response.message = False, f"reset failed: {exc}"
            response.sim_step = int(self.world.step_count)
            self.publish_sensors()
        return response

    def _on_patch(self, request, response):
        with self.lock:
            try:
                rgb, _depth = self.world.patch(request.x, request.y)
                response.patch = image_to_msg(rgb, "rgb8")
                response.patch_size = float(self.world.config.patch_extent)
                response.success = True
            except ValueError as exc:
                response.success, response.message = False, str(exc)
        return response

    def _on_estop(self, _request, response):
        self.estop.set()
        response.success, response.message = True, "emergency stop: motions halted"
        self.get_logger().warn("emergency stop requested")
        return response

    def _on_release(self, _request, response):
        self.estop.clear()
        response.success, response.message = True, "emergency stop released"
        return response

    # ----------------------------------------------------------------- actions
    def _on_goal(self, _goal):
        if self.estop.is_set():
            return GoalResponse.REJECT
        with self.busy_lock:
            # no idle camera frames from now on until the motion's own post-motion frame:
            # every frame stamped after a goal's acceptance shows the scene after it
            self.busy += 1
        return GoalResponse.ACCEPT

    def _done(self) -> None:
        with self.busy_lock:
            self.busy -= 1

    def _executor_for(self, name: str):
        execute = getattr(self, f"_execute_{name}")

        def run_and_release(handle):
            try:
                return execute(handle)
            finally:
                self._done()
        return run_and_release

    def _object_fields(self, result, object_id: str | None = None) -> dict:
        oid = object_id if object_id is not None else (getattr(result, "object_id", "") or "")
        out = {"object_id": oid, "object_model": "", "held_out": False,
               "truth_keys": [], "truth_values": []}
        truth = dict(getattr(result, "truth", {}) or {})
        if oid:
            try:
                info = self.world.object(oid)
                out["object_model"], out["held_out"] = str(info.model), bool(info.held_out)
                for key in ("stiffness", "damping", "mass", "friction"):
                    truth.setdefault(key, float(getattr(info, key)))
            except (KeyError, ValueError):
                pass
        truth = {k: float(v) for k, v in truth.items()
                 if isinstance(v, (int, float, np.floating, np.integer))}
        out["truth_keys"], out["truth_values"] = list(truth), list(truth.values())
        return out

    def _run(self, handle, fn, feedback_type, phase: str):
        """Run a world primitive under the lock with feedback, cancel and e-stop."""
        from curious_robot.world.world import Aborted

        feedback = feedback_type()

        def progress(fraction: float) -> None:
            if hasattr(feedback, "phase"):
                feedback.phase = phase
            feedback.progress = float(fraction)
            handle.publish_feedback(feedback)

        def should_stop() -> bool:
            return self.estop.is_set() or handle.is_cancel_requested

        with self.lock:
            try:
                result = fn(progress=progress, should_stop=should_stop)
                error = None
            except Aborted as exc:
                result, error = None, f"aborted: {exc or 'canceled or emergency stop'}"
            except ValueError as exc:
                result, error = None, f"refused: {exc}"
            try:
                self.world.maintain()
            except Exception as exc:  # noqa: BLE001 - keep serving after a bad scene
                self.get_logger().error(f"scene maintenance failed, resetting: {exc}")
                self.world.reset()
            self.publish_sensors()
            step = int(self.world.step_count)
        return result, error, step

    def _finish(self, handle, out, error: str | None):
        if error is None:
            handle.succeed()
        elif handle.is_cancel_requested:
            handle.canceled()
        else:
            out.message = error
            handle.abort()
        if error is not None:
            out.message = error
        return out

    def _execute_grasp(self, handle):
        from curious_robot_interfaces.action import Grasp

        g = handle.request
        res, error, step = self._run(
            handle, lambda **kw: self.world.grasp(g.x, g.y, g.angle, **kw),
            Grasp.Feedback, "grasp")
        out = Grasp.Result(sim_step=step)
        if res is not None:
            out.success = bool(res.success)
            out.gripper_width = float(res.gripper_width)
            out.patch_before = image_to_msg(res.patch, "rgb8")
            for k, v in self._object_fields(res).items():
                setattr(out, k, v)
        return self._finish(handle, out, error)

    def _execute_push(self, handle):
        from curious_robot_interfaces.action import Push

        g = handle.request
        res, error, step = self._run(
            handle, lambda **kw: self.world.push((g.start.x, g.start.y), (g.end.x, g.end.y),
                                                 **kw), Push.Feedback, "push")
        out = Push.Result(sim_step=step)
        if res is not None:
            out.success = bool(getattr(res, "success", True))
            out.image_before = image_to_msg(res.before, "rgb8")
            out.image_after = image_to_msg(res.after, "rgb8")
            out.dx, out.dy, out.dyaw = float(res.dx), float(res.dy), float(res.dyaw)
            for k, v in self._object_fields(res).items():
                setattr(out, k, v)
        return self._finish(handle, out, error)

    def _execute_poke(self, handle):
        from curious_robot_interfaces.action import Poke
        from curious_robot_interfaces.msg import TactileReadings

        g = handle.request
        res, error, step = self._run(
            handle, lambda **kw: self.world.poke(g.x, g.y, **kw), Poke.Feedback, "poke")
        out = Poke.Result(sim_step=step, poke_id=f"{self.robot}-{uuid.uuid4().hex[:12]}")
        if res is not None:
            depth = [float(v) for v in res.depth]
            force = [float(v) for v in res.force]
            out.success = len(depth) > 0
            out.depth, out.force = depth, force
            out.reached_force_limit = bool(getattr(res, "reached_force_limit", False))
            out.patch_before = image_to_msg(res.patch, "rgb8")
            for k, v in self._object_fields(res).items():
                setattr(out, k, v)
            # the raw tactile stream of this press, in chunks, for the tactile node
            stamp = self._stamp()
            for i in range(0, max(len(depth), 1), TACTILE_CHUNK):
                chunk = TactileReadings(poke_id=out.poke_id, first_index=i,
                                        depth=depth[i:i + TACTILE_CHUNK],
                                        force=force[i:i + TACTILE_CHUNK],
                                        last=i + TACTILE_CHUNK >= len(depth))
                chunk.header.stamp, chunk.header.frame_id = stamp, "probe"
                self.pub_tactile.publish(chunk)
        return self._finish(handle, out, error)

    def _execute_inspect(self, handle):
        from curious_robot_interfaces.action import Inspect

        g = handle.request
        object_id = g.object_id
        if not object_id:
            with self.lock:
                near = self.world.object_at(g.x, g.y)
            object_id = near.object_id if near is not None else ""
        if not object_id:
            out = Inspect.Result(message=f"refused: no object at ({g.x:.3f}, {g.y:.3f})")
            handle.abort()
            return out
        res, error, step = self._run(
            handle, lambda **kw: self.world.inspect(object_id, **kw), Inspect.Feedback,
            "inspect")
        out = Inspect.Result(sim_step=step)
        if res is not None:
            out.success = bool(res.success)
            out.held_through_all = bool(res.held_through_all)
            out.patch_before = image_to_msg(res.patch, "rgb8")
            out.views = [image_to_msg(v, "rgb8") for v in res.views]
            for k, v in self._object_fields(res, object_id).items():
                setattr(out, k, v)
        return self._finish(handle, out, error)


def main() -> int:
    return run(ArmNode)
