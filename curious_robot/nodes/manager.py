"""The interaction manager: the robot's loop.

sense (fresh DetectedObjects after the last motion) -> pick a task and an object -> get a
patch of it from the arm -> ask the task's selector for action parameters -> run the
action -> gather the outcome (and, for a poke, the tactile node's response) -> publish
an Interaction on /interactions -> keep it until the learner acknowledges it (resending
after a timeout: delivery is at-least-once, the learner's store makes it exactly-once).

Task and object choice (learning/curiosity.py holds the scoring): ``task_policy`` fixed
(the ``weight_<task>`` shares) or progress (learning progress per robot-second from the
losses the learner announces on /model_updates, ``task_floor`` each); ``object_policy``
random or curious (in proportion to the grasp head's uncertainty on each candidate's
patch, ``object_floor`` spread evenly). Every record says what chose it in ``policy``
(``task=..,object=..,action=..``, record.policy_text).

Sequence numbers continue after a restart: the manager asks the learner (robot_status)
for the last one it stored.

With a fleet key (parameter ``fleet_key``, curious_robot/fleet.py) every Interaction is
signed, and an ack or a status answer counts only when the learner signed it: a forged
ack does not drop a record, a forged status answer does not move the sequence numbers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from curious_robot import tasks as registry
from curious_robot.convert import from_time, msg_to_image, record_to_msg
from curious_robot.nodes.common import (LATCHED, RELIABLE, SENSOR, FleetAuth,
                                         ParameterError, Stopping, make_outbox, run,
                                         status_request)
from curious_robot.learning.curiosity import LearningProgress, ScoreCache, object_shares
from curious_robot.record import Interaction, policy_text


def wait_result(future, timeout: float, stop: threading.Event, progress=None):
    """Wait on an rclpy future from a thread that is not spinning: its result, ``None``
    after ``timeout`` s; raises :class:`Stopping` as soon as ``stop`` is set. With
    ``progress`` (-> monotonic time of the last sign of progress) the ``timeout`` counts
    from that sign: work that is progressing, however slowly, is never cut off."""
    if future.done():  # answered already: no round through the executor for the callback
        return future.result()
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    start = time.monotonic()

    def deadline() -> float:
        return max(start, progress() if progress is not None else start) + timeout

    while not done.wait(min(0.1, max(0.0, deadline() - time.monotonic()))):
        if stop.is_set():
            raise Stopping
        if time.monotonic() >= deadline():
            return None
    return future.result()


#: seconds a refused goal waits for this node's own shutdown before it counts as a
#: refusal: at Ctrl-C the arm stops accepting goals a moment before the manager stops
#: sending them (their stopping() hooks run side by side, or in separate processes)
REFUSAL_GRACE = 1.0

#: requests :func:`call_many` keeps in flight: a service holds at most its QoS depth
#: (``qos_profile_services_default``: 10) of waiting requests and drops the oldest beyond
#: that, whose answers would then never come
IN_FLIGHT = 8


def call_many(client, requests: list, timeout: float, stop: threading.Event) -> list:
    """The answers to ``requests`` to the service of ``client``, in their order, up to
    :data:`IN_FLIGHT` of them sent before the first is awaited (the server answers one
    while the others travel; each answer lets the next request go); ``timeout`` counts
    for all of them together: :class:`TimeoutError` when the service is not there or has
    not answered them all by then, :class:`Stopping` once ``stop`` is set. From a thread
    that is not spinning, as :func:`wait_result`."""
    if not requests:
        return []
    deadline = time.monotonic() + timeout
    while not client.service_is_ready():
        if stop.wait(0.1):
            raise Stopping
        if time.monotonic() >= deadline:
            raise TimeoutError(f"service {client.srv_name} not available")
    futures = [client.call_async(r) for r in requests[:IN_FLIGHT]]
    answers = []
    for i in range(len(requests)):
        if stop.is_set():
            raise Stopping
        res = wait_result(futures[i], max(0.0, deadline - time.monotonic()), stop)
        if res is None:
            for f in futures:
                f.cancel()
            what = f" {len(requests)} requests" if len(requests) > 1 else ""
            raise TimeoutError(f"service {client.srv_name} did not answer{what} in "
                               f"{timeout}s")
        answers.append(res)
        if len(futures) < len(requests):
            futures.append(client.call_async(requests[len(futures)]))
    return answers


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 4

class ManagerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("interaction_manager", **kwargs)
        from curious_robot.node_config import declare, manager_params

        p = declare(self, manager_params(),
                    robot=self.get_namespace().strip("/") or "robot0")
        if not p.robot:
            raise ParameterError("parameter 'robot' must not be empty")
        self.robot = p.robot
        self.threads = p.threads
        known = registry.names("arm")
        weights = [getattr(p, f"weight_{t}") for t in known if t in p.tasks]
        if sum(weights) <= 0:
            raise ParameterError("parameters 'weight_<task>' of the tasks "
                                 f"{p.tasks} are all 0")
        self.weights = np.asarray(weights, float) / np.sum(weights)
        self.tasks = [t for t in known if t in p.tasks]  # the order of the weights
        seed = p.seed
        self.max_interactions, self.reset_every = p.max_interactions, p.reset_every
        self.action_timeout, self.resend_after = p.action_timeout, p.resend_after
        self.max_unacked = p.max_unacked
        self.rng = np.random.default_rng([seed, 7919])
        self.cond = threading.Condition()
        self.task_policy, self.object_policy = p.task_policy, p.object_policy
        self.object_floor = p.object_floor
        self.progress = (LearningProgress(self.tasks, list(self.weights), floor=p.task_floor)
                         if self.task_policy == "progress" else None)
        self.predictor = None  # object curiosity's model (the learner's newest checkpoint)
        # object curiosity's scores of undisturbed objects; its extent, a patch's side, is
        # set from the GetPatch answers before anything is cached
        self.score_cache = ScoreCache(neighbours=p.rescore_neighbours)
        if self.object_policy == "curious" and p.checkpoint:
            self._load_predictor(p.checkpoint)
        self.fleet = FleetAuth(self, p.fleet_key)

        import curious_robot_interfaces.action as actions
        from curious_robot_interfaces.msg import (DetectedObjects, IngestAck, Interaction as
                                                  InteractionMsg, ModelUpdate, TactileResponse)
        from curious_robot_interfaces.srv import GetPatch, ResetScene, RobotStatus, SelectAction

        group = ReentrantCallbackGroup()
        self.action_types = {t.name: getattr(actions, t.action_type)
                             for t in registry.all_tasks("arm")}
        self.actions = {name: ActionClient(self, t, name, callback_group=group)
                        for name, t in self.action_types.items()}
        self.selectors = {
            task: self.create_client(SelectAction, f"{registry.get(task).selector}/select",
                                     callback_group=group) for task in set(self.tasks)}
        self.get_patch = self.create_client(GetPatch, "get_patch", callback_group=group)
        self.reset_scene = self.create_client(ResetScene, "reset_scene", callback_group=group)
        self.robot_status = self.create_client(RobotStatus, "/robot_status",
                                               callback_group=group)
        self.pub = self.create_publisher(InteractionMsg, "/interactions", RELIABLE)
        self.outbox = make_outbox(self, self.robot, self.pub, self.resend_after, p.outbox_dir,
                                  InteractionMsg, self.fleet)
        from geometry_msgs.msg import PolygonStamped

        self.area: tuple[float, float, float, float] | None = None  # the arm's, latched
        self.reach_margin = p.reach_margin
        self.unreachable = 0  # objects seen outside the arm's area and not chosen
        self.create_subscription(PolygonStamped, "workspace", self._on_area, LATCHED,
                                 callback_group=group)
        self.create_subscription(DetectedObjects, "objects", self._on_objects, SENSOR,
                                 callback_group=group)
        self.create_subscription(TactileResponse, "tactile/response", self._on_tactile,
                                 RELIABLE, callback_group=group)
        self.create_subscription(IngestAck, "/interaction_acks",
                                 self.outbox.on_ack, RELIABLE,
                                 callback_group=group)
        if self.progress is not None or self.object_policy == "curious":
            self.create_subscription(ModelUpdate, "/model_updates", self._on_model, LATCHED,
                                     callback_group=group)
        self.objects = None
        self.tactile: dict[str, object] = {}
        self.seq = 0
        self.done = 0
        self.last_progress = 0.0  # monotonic time of the running action's last feedback
        self.admission_waits = 0  # times the robot waited for the learner's acks
        #: interactions that produced no record, by why (the goodbye line reports them):
        #: 'not accepted' / 'aborted' by the arm, 'timed out', 'skipped' (a service
        #: timed out), 'no patch', 'selector refused', 'no tactile'
        self.failures: Counter[str] = Counter()
        #: object curiosity's work: choices made with a model, patches fetched and scored
        self.scored = Counter()
        #: where the robot's time went (the goodbye line reports the means): seconds and
        #: counts of choosing the object (with its patches, scored or not), choosing the
        #: action (the patch, the selector's answer) and acting (goal sent -> result)
        self.seconds: Counter[str] = Counter()
        self.timed: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="manager-loop", daemon=True)
        self.thread.start()

    def stopping(self) -> None:
        """Shutdown: start no new interaction and give up the one in progress (its goal is
        canceled; nothing half done is published), then wait a little for the learner to
        acknowledge what was published (what stays unacknowledged is not stored)."""
        self.stop.set()
        with self.cond:
            self.cond.notify_all()
        self.thread.join(timeout=2.0)
        if self.thread.is_alive():
            raise RuntimeError("the interaction loop did not end in 2 s")
        self.outbox.wait_acknowledged(2.0)
        self.outbox.close()  # the loop has ended: nothing writes to the spool any more

    def summary(self) -> str:
        refused = self.fleet.summary()
        failed = ", ".join(f"{n} {why}" for why, n in sorted(self.failures.items()))
        paused = (f"; paused {self.admission_waits} time(s) for the learner's acks"
                  if self.admission_waits else "")
        scored = (f"; object curiosity scored {self.scored['patches']} patches over "
                  f"{self.scored['choices']} choices" if self.scored["choices"] else "")
        spent = ", ".join(f"{what} {1000 * self.seconds[what] / self.timed[what]:.0f}"
                          for what in ("object choice", "action choice", "acting")
                          if self.timed[what])
        spent = f"; mean ms per interaction: {spent}" if spent else ""
        return (f"{self.done} interactions sent, {self.outbox.delivery()}; "
                f"no record: {failed or 'none'}{paused}{scored}{spent}"
                + (f"; {refused}" if refused else ""))

    def _timed(self, what: str, since: float) -> float:
        """Add the seconds since ``since`` (monotonic) to ``what``'s time; now."""
        now = time.monotonic()
        self.seconds[what] += now - since
        self.timed[what] += 1
        return now

    # ----------------------------------------------------------------- callbacks
    def _on_area(self, msg) -> None:
        xs = [p.x for p in msg.polygon.points]
        ys = [p.y for p in msg.polygon.points]
        if xs and ys:  # Point32 is single precision: 0.1 mm in from each edge
            e = 1e-4
            self.area = (min(xs) + e, max(xs) - e, min(ys) + e, max(ys) - e)

    def reachable(self, objects: list) -> list:
        """The objects whose centroid lies inside the arm's area, ``reach_margin`` in from
        its edges (all of them until the arm has published its area):
        :func:`curious_robot.selection.reachable`."""
        from curious_robot.selection import Workspace, reachable

        area = None if self.area is None else Workspace(*self.area)
        return reachable(objects, area, self.reach_margin)

    def _on_objects(self, msg) -> None:
        with self.cond:
            self.objects = msg
            self.cond.notify_all()

    def _on_tactile(self, msg) -> None:
        with self.cond:
            self.tactile[msg.poke_id] = msg
            while len(self.tactile) > 32:
                self.tactile.pop(next(iter(self.tactile)))
            self.cond.notify_all()

    def _on_model(self, msg) -> None:
        """A new checkpoint: its losses feed task progress; object curiosity reloads."""
        if self.progress is not None:
            with self.cond:
                self.progress.report(dict(zip(msg.tasks, msg.losses)))
        if self.object_policy == "curious" and msg.path:
            try:
                self._load_predictor(msg.path)
            except (OSError, RuntimeError, ValueError) as exc:
                self.get_logger().error(f"cannot load checkpoint {msg.path}: {exc}")

    def _load_predictor(self, path: str) -> None:
        from curious_robot.learning.predict import Predictor, inference_threads
        from curious_robot.paths import resolve_checkpoint

        try:
            path = str(resolve_checkpoint(path))
        except FileNotFoundError as exc:
            raise ParameterError(f"parameter 'checkpoint': {exc}") from exc
        with self.cond:
            if self.predictor is not None and str(self.predictor.path) == path:
                return  # the same file: Predictor.maybe_reload follows its rewrites
        inference_threads(self.threads)
        predictor = Predictor.shared(path)  # the selectors beside it read the same file
        with self.cond:
            self.predictor = predictor
        self.get_logger().info(f"object curiosity: model {path}")

    # ----------------------------------------------------------------- choice
    def _choose_task(self) -> tuple[str, str]:
        """(task, task-level policy name) of the next interaction."""
        if self.progress is None:
            return str(self.rng.choice(self.tasks, p=self.weights)), "fixed"
        with self.cond:
            shares = self.progress.shares()
        return str(self.rng.choice(self.tasks, p=shares)), "progress"

    def _choose_object(self, candidates: list):
        """(object, its patch or None, object-level policy name): uniform, or in proportion
        to the model's grasp uncertainty on each candidate's patch (falls back to uniform,
        and says so, until a model is there). Objects nothing disturbed since they were
        scored keep their score (:class:`ScoreCache`): only the others' patches are fetched
        and scored."""
        predictor = self.predictor
        if self.object_policy != "curious" or predictor is None:
            return candidates[int(self.rng.integers(len(candidates)))], None, "random"
        from curious_robot.convert import msg_to_image
        from curious_robot.learning.curiosity import grasp_uncertainty
        from curious_robot_interfaces.srv import GetPatch

        predictor.maybe_reload()
        rows = [(o.centroid.x, o.centroid.y, o.yaw, o.size.x, o.size.y, o.size.z)
                for o in candidates]
        scores = self.score_cache.scores(rows, predictor.step)
        patches: list = [None] * len(candidates)
        images = {}
        stale = [i for i in range(len(candidates)) if scores[i] is None]  # moved since
        answers = self._call_many(self.get_patch, [
            GetPatch.Request(x=candidates[i].centroid.x, y=candidates[i].centroid.y)
            for i in stale])
        for i, res in zip(stale, answers):
            if res.success:
                patches[i] = res
                images[i] = msg_to_image(res.patch, "patch")
                self.score_cache.extent = float(res.patch_size)
        if images:
            fresh = grasp_uncertainty(predictor.grasp_scores_batch(list(images.values())))
            for i, value in zip(images, fresh):
                scores[i] = float(value)
        self.scored.update(choices=1, patches=len(images))
        ok = [i for i, v in enumerate(scores) if v is not None]
        self.score_cache.keep([rows[i] for i in ok], [scores[i] for i in ok], predictor.step)
        if not ok:
            return candidates[int(self.rng.integers(len(candidates)))], None, "random"
        shares = object_shares([scores[i] for i in ok], self.object_floor)
        k = ok[int(self.rng.choice(len(ok), p=shares))]
        return candidates[k], patches[k], "curious"

    # ----------------------------------------------------------------- helpers
    def _call(self, client, request, timeout: float = 10.0):
        return call_many(client, [request], timeout, self.stop)[0]

    def _call_many(self, client, requests: list, timeout: float = 10.0) -> list:
        return call_many(client, requests, timeout, self.stop)

    def _wait_objects(self, newer_than: float, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.stop.is_set():
                o = self.objects
                if o is not None and from_time(o.header.stamp) >= newer_than:
                    return o
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))
        return None

    def _wait_tactile(self, poke_id: str, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while poke_id not in self.tactile:
                left = deadline - time.monotonic()
                if self.stop.is_set():
                    raise Stopping
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))
            return self.tactile.pop(poke_id)

    def _start_seq(self) -> int:
        while not self.stop.is_set():
            try:
                request = status_request(self.robot)
                res = self._call(self.robot_status, request, 5.0)
            except TimeoutError as exc:
                self.get_logger().info(f"waiting for the learner: {exc}", throttle_duration_sec=10)
                continue
            if self.fleet.verify_status(request, res) is None:
                return int(res.last_seq) + 1
            if self.stop.wait(1.0):  # refused (logged): ask again
                break
        raise Stopping

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ----------------------------------------------------------------- the loop
    def _loop(self) -> None:
        try:
            for client in self.actions.values():
                while not client.server_is_ready():
                    if self.stop.wait(0.5):
                        return
                    self.get_logger().info(f"waiting for action {client._action_name}",
                                           throttle_duration_sec=10)
            self.seq = self._start_seq()
            if self.outbox.max_seq is not None:  # an earlier run's records wait in the spool
                self.seq = max(self.seq, self.outbox.max_seq + 1)
            self.get_logger().info(f"robot '{self.robot}' starts at seq {self.seq}")
            last_motion = 0.0
            since_reset = 0
            while not self.stop.is_set():
                if self.max_interactions and self.done >= self.max_interactions:
                    self._drain()
                    self.get_logger().info(f"done: {self.done} interactions")
                    return
                self.outbox.resend()
                self._admit()
                objects = self._wait_objects(last_motion)
                if objects is None:
                    continue
                if not objects.objects or (self.reset_every and since_reset >= self.reset_every):
                    self._reset()
                    last_motion, since_reset = self._now(), 0
                    continue
                candidates = self.reachable(objects.objects)
                if not candidates:  # everything drifted out of reach: put the scene back
                    self.unreachable += len(objects.objects)
                    self.get_logger().info(f"none of {len(objects.objects)} objects is within "
                                           "the arm's reach: resetting the scene")
                    self._reset()
                    last_motion, since_reset = self._now(), 0
                    continue
                self.unreachable += len(objects.objects) - len(candidates)
                task, task_policy = self._choose_task()
                started = self._now()
                self.accepted_at = None
                try:
                    t = time.monotonic()
                    obj, patch, object_policy = self._choose_object(candidates)
                    self._timed("object choice", t)
                    rec = self._interact(task, obj, patch)
                except TimeoutError as exc:
                    self.get_logger().warning(f"{task} skipped: {exc}")
                    self.failures["skipped"] += 1
                    rec = None
                # the arm publishes no idle frame between accepting a goal and its
                # post-motion frame, so any detection stamped after the acceptance is fresh
                last_motion = self.accepted_at or self._now()
                end = self._now()
                since_reset += 1
                if self.progress is not None:
                    with self.cond:
                        self.progress.spent(task, end - started)
                if rec is None:
                    continue
                rec.policy = policy_text(task=task_policy, object=object_policy,
                                         **({"action": rec.policy} if rec.policy else {}))
                rec.stamp_start, rec.stamp_end = started, end
                self._publish(rec)
        except Stopping:
            return
        except Exception as exc:  # noqa: BLE001 - log and let the process be restarted
            self.get_logger().fatal(f"manager loop failed: {exc!r}")
            raise

    def _admit(self) -> None:
        """Admission: with ``max_unacked`` interactions waiting for the learner's ack, wait
        (resending what is due) until it catches up, instead of piling more on a learner
        or a network that is behind. Raises :class:`Stopping` when the node stops."""
        if not self.max_unacked or len(self.outbox) < self.max_unacked:
            return
        self.admission_waits += 1
        self.get_logger().info(f"{len(self.outbox)} interactions wait for the learner's "
                               "ack: pausing until it catches up", throttle_duration_sec=10)
        while len(self.outbox) >= self.max_unacked:
            if self.stop.wait(0.2):
                raise Stopping
            self.outbox.resend()

    def _drain(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.outbox) and time.monotonic() < deadline and not self.stop.is_set():
            self.outbox.resend()
            time.sleep(0.1)

    def _reset(self) -> None:
        from curious_robot_interfaces.srv import ResetScene

        res = self._call(self.reset_scene, ResetScene.Request(seed=-1), 60.0)
        self.get_logger().info(f"scene reset: {res.message}")

    def _publish(self, rec: Interaction) -> None:
        rec.robot, rec.seq = self.robot, self.seq
        msg = self.fleet.sign_interaction(record_to_msg(rec))
        self.outbox.send(self.seq, msg)
        self.seq += 1
        self.done += 1

    def _interact(self, task: str, obj, patch=None) -> Interaction | None:
        """One interaction with ``obj`` (``patch``: its GetPatch answer, if fetched
        already); the record's ``policy`` holds the selector's policy name."""
        from curious_robot_interfaces.srv import GetPatch, SelectAction

        t = time.monotonic()
        if patch is None:
            patch = self._call(self.get_patch, GetPatch.Request(x=obj.centroid.x,
                                                                y=obj.centroid.y))
        if not patch.success:
            self.get_logger().warning(f"no patch at the object: {patch.message}")
            self.failures["no patch"] += 1
            return None
        sel = self._call(self.selectors[task], SelectAction.Request(
            task=task, object=obj, patch=patch.patch, patch_size=patch.patch_size,
            workspace=list(self.area or ())))
        if not sel.success:
            self.get_logger().warning(f"{task} selector refused: {sel.message}")
            self.failures["selector refused"] += 1
            return None
        t = self._timed("action choice", t)
        a = list(sel.action)
        spec = registry.get(task)
        r, self.accepted_at = self._run_action(task, spec.goal(self.action_types[task].Goal, a))
        self._timed("acting", t)
        if r is None:
            return None
        tactile = None
        if spec.tactile:
            tactile = self._wait_tactile(r.poke_id)
            if tactile is None:
                self.get_logger().warning(f"no tactile response for {task} {r.poke_id}")
                self.failures["no tactile"] += 1
                return None
        fields = spec.outcome(r, tactile, msg_to_image)
        if fields is None or fields.get("before") is None:
            return None
        return Interaction(task=task, robot=self.robot, seq=0, object_id=r.object_id,
                           object_model=r.object_model, held_out=r.held_out, action=a,
                           truth=dict(zip(r.truth_keys, r.truth_values)), sim_step=r.sim_step,
                           policy=sel.policy, **fields)

    def _run_action(self, task: str, goal):
        from action_msgs.msg import GoalStatus

        client = self.actions[task]

        def on_feedback(_msg) -> None:
            self.last_progress = time.monotonic()

        self.last_progress = time.monotonic()
        handle = wait_result(client.send_goal_async(goal, feedback_callback=on_feedback),
                             10.0, self.stop)
        accepted = self._now()
        if handle is None or not handle.accepted:
            if self.stop.wait(REFUSAL_GRACE):
                raise Stopping  # the arm refuses goals once it shuts down, as we do
            self.get_logger().warning(f"{task} goal not accepted")
            self.failures["not accepted"] += 1
            return None, accepted
        try:
            res = wait_result(handle.get_result_async(), self.action_timeout, self.stop,
                              progress=lambda: self.last_progress)
        except Stopping:
            handle.cancel_goal_async()
            raise
        if res is None:
            self.get_logger().error(f"{task} made no progress for {self.action_timeout} s; "
                                    "cancel")
            handle.cancel_goal_async()
            self.failures["timed out"] += 1
            return None, accepted
        if res.status != GoalStatus.STATUS_SUCCEEDED:
            self.get_logger().warning(f"{task} ended with status {res.status}: "
                                   f"{res.result.message}")
            self.failures["aborted"] += 1
            return None, accepted
        return res.result, accepted


def main() -> int:
    return run(ManagerNode, threads=THREADS)

