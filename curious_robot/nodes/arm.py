"""The arm node: publishes the RGB-D camera, camera_info and joint_states, and serves the
grasp / push / poke / inspect actions, the scene reset and patch services, with one of two
backends (curious_robot.arm): ``sim`` owns a PyBullet world; ``hardware`` drives a
ros2_control arm through a safety layer (hardware_config YAML; docs/deploy.md), relaying
its camera driver's frames on the topics below.

Topics (relative, so a namespace per robot works):
  camera/color/image_raw (rgb8), camera/depth/image_raw (32FC1, m), camera/camera_info,
  camera/pose (latched PoseStamped: camera in the table frame), joint_states,
  tactile/raw (TactileReadings: each poke's readings in chunks)
Actions: one per arm task of the registry (curious_robot.tasks: grasp, push, poke,
inspect), each served by the same generic loop.  Services: reset_scene, get_patch, emergency_stop
(std_srvs/Trigger: anyone may stop the arm), release_stop (ReleaseStop: with a fleet key,
only a fresh request signed by the fleet releases; `curious-robot release-stop`).
Hardware only: ~/planned_trajectory, ~/planned_path (dry run).
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from curious_robot import tasks as registry
from curious_robot.convert import image_to_msg
from curious_robot.nodes.common import (LATCHED, RELIABLE, SENSOR, FleetAuth, ParameterError,
                                         run)

TACTILE_CHUNK = 256  # readings per TactileReadings message


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 4

class RefusedToStart(ParameterError):
    """The hardware does not match its configuration; the node exits (code 2)."""


class ArmNode(Node):
    """The arm node; its backend (parameter ``backend``) is ``sim`` (a PyBullet world in
    this process) or ``hardware`` (a ros2_control arm, see docs/deploy.md)."""

    def __init__(self, **kwargs):
        super().__init__("arm", **kwargs)
        from curious_robot.node_config import ArmParams, declare

        p = declare(self, ArmParams, robot=self.get_namespace().strip("/") or "robot0")
        if not p.robot:
            raise ParameterError("parameter 'robot' must not be empty")
        self.robot, kind = p.robot, p.backend
        self.camera_rate, self.max_poke_force = p.camera_rate, p.max_poke_force
        seed, config_path, n_objects, split = p.seed, p.world_config, p.n_objects, p.object_split
        hw_path, dry_run = p.hardware_config, p.dry_run
        self.fleet = FleetAuth(self, p.fleet_key)
        self.release_guard = None
        if self.fleet.key is not None:
            from curious_robot.fleet import ReleaseGuard

            self.release_guard = ReleaseGuard(self.fleet.key, self.robot)
        self.lock = threading.Lock()
        self.busy_lock = threading.Lock()
        self.busy = 0  # goals accepted and not finished
        self.estop = threading.Event()
        self.closing = threading.Event()  # shutting down: no new goals, motions abort
        self.served = 0  # goals finished (any outcome)
        group = ReentrantCallbackGroup()
        if kind == "sim":
            self.backend = self._sim_backend(config_path, n_objects, split, seed)
        else:
            self.backend = self._hardware_backend(hw_path, dry_run, group)

        from curious_robot_interfaces.msg import TactileReadings
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image, JointState

        self.pub_rgb = self.create_publisher(Image, "camera/color/image_raw", SENSOR)
        self.pub_depth = self.create_publisher(Image, "camera/depth/image_raw", SENSOR)
        self.pub_info = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR)
        # on hardware the robot's own joint_states may already be this topic: no echo
        self.pub_joints = None
        if kind == "sim" or self.resolve_topic_name("joint_states") != \
                self.resolve_topic_name(self.backend.cfg.topics.joint_states):
            self.pub_joints = self.create_publisher(JointState, "joint_states", SENSOR)
        self.pub_tactile = self.create_publisher(TactileReadings, "tactile/raw", RELIABLE)
        self.pub_pose = self.create_publisher(PoseStamped, "camera/pose", LATCHED)
        self._publish_camera_pose()
        from geometry_msgs.msg import PolygonStamped

        self.pub_area = self.create_publisher(PolygonStamped, "workspace", LATCHED)
        self._publish_target_area()

        import curious_robot_interfaces.action as actions
        for task in registry.all_tasks("arm"):
            ActionServer(self, getattr(actions, task.action_type), task.name,
                         execute_callback=self._executor_for(task),
                         goal_callback=self._on_goal,
                         cancel_callback=lambda _h: CancelResponse.ACCEPT,
                         callback_group=group)
        from curious_robot_interfaces.srv import GetPatch, ReleaseStop, ResetScene
        from std_srvs.srv import Trigger
        self.create_service(ResetScene, "reset_scene", self._on_reset, callback_group=group)
        self.create_service(GetPatch, "get_patch", self._on_patch, callback_group=group)
        # the e-stop must never wait behind a motion's callbacks
        stop_group = MutuallyExclusiveCallbackGroup()
        self.create_service(Trigger, "emergency_stop", self._on_estop, callback_group=stop_group)
        self.create_service(ReleaseStop, "release_stop", self._on_release,
                            callback_group=stop_group)
        self.camera_timer = self.create_timer(1.0 / self.camera_rate, self._on_camera_timer,
                          callback_group=MutuallyExclusiveCallbackGroup())
        if kind == "sim":
            world = self.backend.world
            self.get_logger().info(
                f"sim arm '{self.robot}' ready: {len(world.objects())} objects, seed {seed}")
        else:
            self.get_logger().info(
                f"hardware arm '{self.robot}' ready: {self.backend.cfg.arm.name} via "
                f"{self.resolve_topic_name(self.backend.cfg.topics.joint_trajectory)}"
                + (" (DRY RUN: plans are published, nothing moves)"
                   if self.backend.cfg.safety.dry_run else ""))

    def _sim_backend(self, config_path: str, n_objects: int, split: str, seed: int):
        from curious_robot.arm.sim import SimBackend
        from curious_robot.world import World, WorldConfig

        try:
            config = WorldConfig.from_yaml(config_path) if config_path else WorldConfig()
        except (OSError, ValueError) as exc:
            raise ParameterError(f"parameter 'world_config' = {config_path!r}: {exc}") from exc
        if n_objects:
            config.num_objects = n_objects
        config.object_split = split
        return SimBackend(World(config, seed=seed))

    def _hardware_backend(self, path: str, dry_run: bool, group):
        from rclpy.executors import SingleThreadedExecutor

        from curious_robot.arm.backend import StartupRefused
        from curious_robot.arm.config import HardwareConfig
        from curious_robot.arm.hardware import HardwareBackend
        from curious_robot.arm.ros_io import RosRobotIO

        if not path:
            raise ParameterError("parameter 'hardware_config' must name a hardware YAML "
                                 "(config/hardware/*.yaml) when backend is hardware")
        try:
            cfg = HardwareConfig.from_yaml(path)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"parameter 'hardware_config' = {path!r}: {exc}") from exc
        cfg.safety.dry_run = bool(cfg.safety.dry_run or dry_run)
        cfg.safety.max_poke_force = min(cfg.safety.max_poke_force, self.max_poke_force)
        try:
            io = RosRobotIO(self, cfg, group)
        except ValueError as exc:
            raise ParameterError(f"parameter 'hardware_config' = {path!r}: {exc}") from exc
        backend = HardwareBackend(cfg, io)
        # nothing spins this node yet: pump a private executor while checking the robot
        ex = SingleThreadedExecutor()
        ex.add_node(self)
        io.pump = lambda timeout: ex.spin_once(timeout_sec=timeout)
        try:
            backend.start()
        except StartupRefused as exc:
            backend.close()
            raise RefusedToStart(f"refusing to start: {exc}") from exc
        finally:
            io.pump = None
            ex.remove_node(self)
            ex.shutdown()
        return backend

    def stopping(self) -> None:
        """Shutdown: refuse new goals, abort running motions (their goals end aborted, so
        the manager records nothing half done), stop the camera, wait for the goals."""
        self.closing.set()
        self.camera_timer.cancel()
        deadline = time.monotonic() + 3.0
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.busy:
            raise RuntimeError(f"{self.busy} goal(s) still running")

    def close(self) -> None:
        if not self.lock.acquire(timeout=2.0):
            raise RuntimeError("the backend stayed busy; closed without its lock")
        try:
            self.backend.close()
        finally:
            self.lock.release()

    def summary(self) -> str:
        refused = self.fleet.summary()
        return f"{self.served} goals served" + (f"; {refused}" if refused else "")

    # ----------------------------------------------------------------- publishing
    def _stamp(self):
        return self.get_clock().now().to_msg()

    def _publish_target_area(self) -> None:
        """The rectangle (table frame, z 0) inside which this arm accepts a primitive's
        target, latched on ``workspace``: the manager picks only objects inside it and the
        selectors keep actions inside it, so nothing is chosen that the arm will refuse."""
        from geometry_msgs.msg import Point32, PolygonStamped

        (x0, x1), (y0, y1) = self.backend.robot.target_area()
        msg = PolygonStamped()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = "table"
        msg.polygon.points = [Point32(x=float(x), y=float(y), z=0.0)
                              for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        self.pub_area.publish(msg)

    def _publish_camera_pose(self) -> None:
        from geometry_msgs.msg import PoseStamped

        pose = np.asarray(self.backend.camera_model().pose)
        msg = PoseStamped()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = "table"
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, pose[:3, 3])
        from curious_robot.motion.geometry import quat_from_matrix

        q = quat_from_matrix(pose[:3, :3])
        (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
         msg.pose.orientation.w) = q
        self.pub_pose.publish(msg)

    def publish_sensors(self, fresh: bool = False) -> None:
        """Publish one RGB-D frame (with ``fresh``: one taken after the last motion) and
        the joint state (caller holds the lock)."""
        from sensor_msgs.msg import CameraInfo, JointState

        frame = self.backend.frame(fresh=fresh)
        if frame is None:
            self.get_logger().warning("no camera frame to publish", throttle_duration_sec=10)
            return
        stamp = frame.stamp if frame.stamp is not None and not isinstance(
            frame.stamp, float) else self._stamp()
        cam = self.backend.camera_model()
        for pub, img, enc in ((self.pub_rgb, frame.rgb, "rgb8"),
                              (self.pub_depth, frame.depth, "32FC1")):
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
        js_now = self.backend.joint_state()
        if self.pub_joints is not None and js_now is not None:
            names, pos, vel, eff = js_now
            js = JointState()
            js.header.stamp = stamp
            js.name = list(names)
            js.position, js.velocity, js.effort = (list(map(float, v)) for v in (pos, vel, eff))
            self.pub_joints.publish(js)

    def _on_camera_timer(self) -> None:
        if self.closing.is_set():
            return
        if self.busy == 0 and self.lock.acquire(blocking=False):
            try:
                self.publish_sensors()
            finally:
                self.lock.release()

    # ----------------------------------------------------------------- services
    def _on_reset(self, request, response):
        if self.closing.is_set():
            response.success, response.message = False, "the arm is shutting down"
            return response
        with self.lock:
            try:
                out = self.backend.reset(int(request.seed) if request.seed >= 0 else None,
                                         int(request.n_objects))
                response.success, response.message = out.success, out.message
                response.object_ids = list(out.object_ids)
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                response.success, response.message = False, f"reset failed: {exc}"
            response.sim_step = int(self.backend.step_count)
            self.publish_sensors(fresh=True)
        return response

    def _on_patch(self, request, response):
        if self.closing.is_set():
            response.success, response.message = False, "the arm is shutting down"
            return response
        with self.lock:
            try:
                rgb = self.backend.patch(request.x, request.y)
                response.patch = image_to_msg(rgb, "rgb8")
                response.patch_size = float(self.backend.patch_extent)
                response.success = True
            except ValueError as exc:
                response.success, response.message = False, str(exc)
        return response

    def _on_estop(self, _request, response):
        self.estop.set()
        self.backend.emergency_stop()  # halts a running trajectory now, not at the next check
        response.success, response.message = True, "emergency stop: motions halted"
        self.get_logger().warning("emergency stop requested")
        return response

    def _on_release(self, request, response):
        if self.release_guard is not None:
            why = self.release_guard.check(
                request.fleet, int(request.stamp.sec) * 1_000_000_000 + int(request.stamp.nanosec),
                request.auth, time.time_ns())
            if why is not None:
                self.fleet.refuse("stop releases", why)
                response.success = False
                response.message = f"release refused: {why}; the emergency stop stays on"
                return response
        self.estop.clear()
        self.backend.release_stop()
        response.success, response.message = True, "emergency stop released"
        return response

    # ----------------------------------------------------------------- actions
    def _on_goal(self, _goal):
        if self.estop.is_set() or self.closing.is_set():
            return GoalResponse.REJECT
        with self.busy_lock:
            # no idle camera frames from now on until the motion's own post-motion frame:
            # every frame stamped after a goal's acceptance shows the scene after it
            self.busy += 1
        return GoalResponse.ACCEPT

    def _done(self) -> None:
        with self.busy_lock:
            self.busy -= 1
            self.served += 1

    def _executor_for(self, task):
        def run_and_release(handle):
            try:
                return self._execute(task, handle)
            finally:
                self._done()
        return run_and_release

    def _object_fields(self, result, object_id: str | None = None) -> dict:
        oid = object_id if object_id is not None else (getattr(result, "object_id", "") or "")
        out = {"object_id": oid, "object_model": "", "held_out": False,
               "truth_keys": [], "truth_values": []}
        truth = dict(getattr(result, "truth", {}) or {})
        facts = self.backend.object_facts(oid) if oid else None
        if facts is not None:
            out["object_model"], out["held_out"] = facts.model, facts.held_out
            for key, value in facts.truth.items():
                truth.setdefault(key, value)
        truth = {k: float(v) for k, v in truth.items()
                 if isinstance(v, (int, float, np.floating, np.integer))}
        out["truth_keys"], out["truth_values"] = list(truth), list(truth.values())
        return out

    def _run(self, handle, fn, feedback_type, phase: str):
        """Run a backend primitive under the lock with feedback, cancel and e-stop."""
        from curious_robot.arm.backend import DryRunDone, SafetyStop
        from curious_robot.motion.results import Aborted

        feedback = feedback_type()

        def progress(fraction: float) -> None:
            if hasattr(feedback, "phase"):
                feedback.phase = phase
            feedback.progress = float(fraction)
            handle.publish_feedback(feedback)

        def should_stop() -> bool:
            return (self.estop.is_set() or self.closing.is_set()
                    or handle.is_cancel_requested)

        with self.lock:
            try:
                result = fn(progress=progress, should_stop=should_stop)
                error = None
            except Aborted as exc:
                result, error = None, f"aborted: {exc or 'canceled or emergency stop'}"
            except ValueError as exc:
                result, error = None, f"refused: {exc}"
            except SafetyStop as exc:
                result, error = None, f"safety stop: {exc}"
                if not self.closing.is_set():  # shutting down: the stop is ours
                    self.get_logger().error(f"{phase}: safety stop: {exc}")
            except DryRunDone as exc:
                result, error = None, f"dry run: {exc}"
            try:
                self.backend.after_motion()
            except Exception as exc:  # noqa: BLE001 - keep serving after a bad scene
                self.get_logger().error(f"scene maintenance failed, resetting: {exc}")
                self.backend.reset()
            if not self.closing.is_set():  # nobody waits for this frame when shutting down
                self.publish_sensors(fresh=True)
            step = int(self.backend.step_count)
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

    def _execute(self, task, handle):
        """Run one goal of ``task``: its motion on the backend under the lock, then its
        result message (and, for a tactile task, the raw readings on tactile/raw)."""
        import curious_robot_interfaces.action as actions

        action_type = getattr(actions, task.action_type)
        action, options = task.from_goal(handle.request)
        fields = {}

        def run(**kw):
            result = task.execute(self.backend, action, options, **kw)
            # the object's facts now, before the scene upkeep after the motion respawns
            # an object the motion pushed off the table (its record lost them before)
            fields.update(self._object_fields(result, task.result_object_id(result)))
            return result

        res, error, step = self._run(handle, run, action_type.Feedback, task.name)
        out = action_type.Result(sim_step=step)
        if task.tactile:
            out.poke_id = f"{self.robot}-{uuid.uuid4().hex[:12]}"
        if res is not None:
            task.fill_result(out, res, image_to_msg)
            for k, v in fields.items():
                setattr(out, k, v)
            if task.tactile:
                self._publish_tactile(out.poke_id, list(out.depth), list(out.force))
        return self._finish(handle, out, error)

    def _publish_tactile(self, poke_id: str, depth: list[float], force: list[float]) -> None:
        """The raw tactile stream of one press, in chunks, for the tactile node."""
        from curious_robot_interfaces.msg import TactileReadings

        stamp = self._stamp()
        for i in range(0, max(len(depth), 1), TACTILE_CHUNK):
            chunk = TactileReadings(poke_id=poke_id, first_index=i,
                                    depth=depth[i:i + TACTILE_CHUNK],
                                    force=force[i:i + TACTILE_CHUNK],
                                    last=i + TACTILE_CHUNK >= len(depth))
            chunk.header.stamp, chunk.header.frame_id = stamp, "probe"
            self.pub_tactile.publish(chunk)


def main() -> int:
    return run(ArmNode, threads=THREADS)
