"""The learner node: ingests interactions from any number of robots into the replay store,
acknowledges each one, and (when ``train`` is on) trains the root network beside ingestion.

Subscribes /interactions (Interaction); publishes /interaction_acks (IngestAck: stored,
duplicate or rejected with the reason), /model_updates (ModelUpdate, latched);
serves /robot_status (RobotStatus: a robot's last stored sequence number, so a restarted
robot continues where it stopped).

Ingestion runs on its own thread with its own store connection; a malformed interaction
is rejected with a logged reason and counted, and the store is untouched.

With a fleet key (parameter ``fleet_key``, curious_robot/fleet.py) an Interaction is
taken only when the fleet signed it; one that does not verify is not stored and gets no
ack at all (its reason is logged, rate-limited, and counted), and every ack and status
answer is signed.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import Counter

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from curious_robot.convert import msg_to_record
from curious_robot.nodes.common import LATCHED, RELIABLE, FleetAuth, ParameterError, run
from curious_robot.record import InvalidInteraction, validate


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 3

class LearnerNode(Node):
    #: s the learner still takes interactions after a shutdown signal
    GRACE = 1.0

    def __init__(self, **kwargs):
        super().__init__("learner", **kwargs)
        from curious_robot.node_config import declare, learner_node_params

        p = declare(self, learner_node_params())
        self.store_path = p.store
        folder = os.path.dirname(os.path.abspath(self.store_path))
        if not os.path.isdir(folder):
            raise ParameterError(f"parameter 'store' = {self.store_path!r}: folder {folder} "
                                 "does not exist")
        self.train, self.report_every, self.queue_size = p.train, p.report_every, p.queue_size
        self.fleet = FleetAuth(self, p.fleet_key)
        from curious_robot.store import ReplayStore, StoreError

        try:
            self.store = ReplayStore(self.store_path, exclusive=True)
        except StoreError as exc:
            raise ParameterError(f"parameter 'store' = {self.store_path!r}: {exc}") from exc
        self.store_lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()  # not acknowledged, or a bug caught
        self.inbox: queue.Queue = queue.Queue(maxsize=self.queue_size)

        from curious_robot_interfaces.msg import IngestAck, Interaction, ModelUpdate
        from curious_robot_interfaces.srv import RobotStatus

        self.pub_ack = self.create_publisher(IngestAck, "/interaction_acks", RELIABLE)
        self.pub_model = self.create_publisher(ModelUpdate, "/model_updates", LATCHED)
        from diagnostic_msgs.msg import DiagnosticArray

        self.pub_health = self.create_publisher(DiagnosticArray, "/diagnostics", RELIABLE)
        self.fatal = ""  # why ingestion died (then the node ends: see _watch)
        self._last_ingest = time.monotonic()
        self._failures_seen = 0
        self.sub = self.create_subscription(Interaction, "/interactions", self._on_interaction,
                                            RELIABLE,
                                            callback_group=MutuallyExclusiveCallbackGroup())
        self.status_srv = self.create_service(RobotStatus, "/robot_status", self._on_status,
                                              callback_group=MutuallyExclusiveCallbackGroup())
        self.stop = threading.Event()
        self.worker = threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)
        self.worker.start()
        self.trainer = None
        self._ingest_mark: tuple[float, int] | None = None  # (time, stored) at last report
        if self.train:
            self._start_training()
        self._trainer_stopper: threading.Thread | None = None
        self.report_timer = self.create_timer(self.report_every, self._report)
        self.watch_timer = self.create_timer(1.0, self._watch)
        self.get_logger().info(f"learner storing into {self.store_path} "
                               f"({self.store.count()} interactions already there)")

    def stopping(self) -> None:
        """Shutdown: training finishes its cycle and saves a checkpoint (in the background);
        interactions still arriving for ``GRACE`` s (the robots' last ones: they stop at
        the same signal) are taken; then no more are accepted (a robot resends what is
        not acknowledged), and what is queued is stored and acknowledged."""
        if self.trainer is not None:
            self._trainer_stopper = threading.Thread(
                target=self.trainer.stop, kwargs={"timeout": 5.0}, name="stop-training",
                daemon=True)
            self._trainer_stopper.start()
        self.report_timer.cancel()
        self.watch_timer.cancel()
        time.sleep(self.GRACE)
        self.destroy_subscription(self.sub)
        self.destroy_service(self.status_srv)
        self.stop.set()  # the ingest thread ends once the queue is empty
        self.worker.join(timeout=2.5)
        if self.worker.is_alive():
            raise RuntimeError(f"ingestion did not finish; {self.inbox.qsize()} interactions "
                               "left unacknowledged")

    def close(self) -> None:
        self.stop.set()
        self.worker.join(timeout=1.0)
        if self._trainer_stopper is not None:
            self._trainer_stopper.join(timeout=5.0)
        elif self.trainer is not None:
            self.trainer.stop(timeout=5.0)
        with self.store_lock:
            self.store.close()
        if self.trainer is not None and self.trainer.running:
            raise RuntimeError("online training did not stop in 5 s")
        if self.fatal:
            raise RuntimeError(self.fatal)  # the exit code says the learner failed

    def summary(self) -> str:
        stored = sum(v for k, v in self.counts.items() if k != "duplicate")
        out = (f"stored {stored} this run, {self.counts['duplicate']} duplicates, "
               f"{sum(self.rejected.values())} rejected; store closed")
        refused = self.fleet.summary()
        if refused:
            out += f"; {refused} unverified, not stored, not acknowledged"
        if self.trainer is not None:
            saved = self.trainer.saved_step
            out += f"; checkpoint step {saved}" if saved >= 0 else "; no checkpoint"
        return out

    def _start_training(self) -> None:
        from curious_robot.learning.online import OnlineTrainer

        self.trainer = OnlineTrainer.from_node_parameters(self)
        self.trainer.start()

    # ----------------------------------------------------------------- ingestion
    def _on_interaction(self, msg) -> None:
        # the executor thread only queues; the ingest thread does the work
        self.inbox.put(msg)

    def _ingest_loop(self) -> None:
        try:
            self._ingest_forever()
        except BaseException as exc:  # noqa: BLE001 - recorded; _watch ends the node
            self.fatal = f"the ingest thread died: {exc!r}"
            raise

    def _ingest_forever(self) -> None:
        while True:
            try:
                msg = self.inbox.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    return
                continue
            try:
                self._ingest(msg)
                self._last_ingest = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - one bad message must not end ingestion
                self.failures["ingest_errors"] += 1
                self.get_logger().error(f"ingest of {getattr(msg, 'robot', '?')}/"
                                        f"{getattr(msg, 'seq', '?')} failed: {exc!r}")

    #: retries of a store write that failed for a reason that may pass (lock held, disk
    #: full): waits of 0.5, 1, 2, 4 s; after that the record is not acknowledged, so its
    #: robot sends it again later.
    STORE_RETRIES = (0.5, 1.0, 2.0, 4.0)

    def _store(self, rec):
        from curious_robot.store import StoreError

        for wait in (*self.STORE_RETRIES, None):
            try:
                with self.store_lock:
                    expected = self.store.last_seq(rec.robot)
                    return expected, self.store.add(rec)
            except StoreError as exc:
                if wait is None or self.stop.is_set():
                    raise
                self.get_logger().warning(f"storing {rec.robot}/{rec.seq} failed ({exc}); "
                                       f"retrying in {wait:g} s")
                self.stop.wait(wait)

    def _ingest(self, msg) -> None:
        from curious_robot_interfaces.msg import IngestAck

        from curious_robot.store import StoreError

        if self.fleet.check_interaction(msg) is not None:
            return  # not the fleet's: no ack (the reason is logged and counted)
        ack = IngestAck(robot=msg.robot, seq=msg.seq)
        ack.header.stamp = self.get_clock().now().to_msg()
        try:
            rec = validate(msg_to_record(msg))
            expected, res = self._store(rec)
            ack.status = res.status
            if res.status == "stored":
                self.counts[rec.task] += 1
                if expected is not None and rec.seq > expected + 1:
                    self.get_logger().warning(
                        f"gap from robot '{rec.robot}': seq {expected + 1}..{rec.seq - 1} "
                        "missing (it may still arrive)")
            else:
                self.counts["duplicate"] += 1
        except InvalidInteraction as exc:
            ack.status, ack.reason = "rejected", str(exc)
            kind = str(exc).split(":")[0][:60]
            self.rejected[kind] += 1
            self.get_logger().error(
                f"rejected interaction {msg.robot}/{msg.seq} ({msg.task[:40]}): {exc}")
        except StoreError as exc:  # not acknowledged: the robot resends it later
            self.failures["store_errors"] += 1
            self.get_logger().error(f"could not store {msg.robot}/{msg.seq}: {exc}; "
                                    "not acknowledged, it will be sent again")
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an image the codec refuses
            ack.status, ack.reason = "rejected", f"cannot store this record: {exc!r}"[:500]
            self.rejected["unstorable"] += 1
            self.get_logger().error(
                f"rejected interaction {msg.robot}/{msg.seq}: {ack.reason}")
        self.pub_ack.publish(self.fleet.sign_ack(ack, msg.auth))

    def _on_status(self, request, response):
        with self.store_lock:
            last = self.store.last_seq(request.robot)
            robots = self.store.robots()
        response.last_seq = -1 if last is None else int(last)
        response.count = int(robots.get(request.robot, {}).get("count", 0))
        return self.fleet.sign_status(request, response)

    def _watch(self) -> None:
        """Once a second: ingestion that died ends the node (so ``collect`` and a
        supervisor see a failed process instead of a learner that answers but stores
        nothing)."""
        if self.worker.is_alive() or self.stop.is_set():
            return
        self.fatal = self.fatal or "the ingest thread ended"
        self.get_logger().fatal(f"{self.fatal}; nothing would be stored, so the learner "
                                "stops (robots keep their records and resend them)")
        self._publish_health()
        self.watch_timer.cancel()
        import signal

        os.kill(os.getpid(), signal.SIGTERM)  # the clean shutdown path; close() fails

    def _publish_health(self) -> None:
        """diagnostic_msgs/DiagnosticArray on /diagnostics (the ROS convention; rqt's
        runtime monitor and Foxglove show it): ERROR when ingestion died, WARN when
        records failed to store since the last report or the queue is 80 % full."""
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        failures = sum(self.failures.values())
        queued = self.inbox.qsize()
        if self.fatal or not self.worker.is_alive():
            level, text = DiagnosticStatus.ERROR, self.fatal or "ingest thread not running"
        elif failures > self._failures_seen or queued >= 0.8 * self.queue_size:
            level, text = DiagnosticStatus.WARN, (
                f"{failures - self._failures_seen} record(s) not stored since the last "
                f"report" if failures > self._failures_seen else f"queue {queued} of "
                f"{self.queue_size}")
        else:
            level, text = DiagnosticStatus.OK, "ingesting"
        self._failures_seen = failures
        stored = sum(v for k, v in self.counts.items() if k != "duplicate")
        values = {"stored": stored, "duplicates": self.counts["duplicate"],
                  "rejected": sum(self.rejected.values()),
                  "refused": self.fleet.refused["interactions"], "failures": failures,
                  "queue": queued,
                  "seconds_since_last_ingest": round(time.monotonic() - self._last_ingest, 1)}
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: ingestion",
                                  message=text, hardware_id=self.store_path,
                                  values=[KeyValue(key=k, value=str(v))
                                          for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_health.publish(msg)

    def _report(self) -> None:
        self._publish_health()
        stored = {k: v for k, v in self.counts.items() if k != "duplicate"}
        msg = (f"stored {sum(stored.values())} this run {dict(sorted(stored.items()))}, "
               f"duplicates {self.counts['duplicate']}, rejected {sum(self.rejected.values())}, "
               f"queue {self.inbox.qsize()}")
        if self.fleet.refused:
            msg += f", {self.fleet.summary()}"
        if self.failures:
            msg += f", failures {dict(sorted(self.failures.items()))}"
        if self.trainer is not None:
            msg += f", {self.trainer.status()}"
            now, n = time.monotonic(), sum(stored.values())  # ingest rate into TensorBoard
            if self._ingest_mark is not None and now > self._ingest_mark[0]:
                self.trainer.log_scalar("ingest/interactions_per_s", (n - self._ingest_mark[1])
                                        / (now - self._ingest_mark[0]))
            self._ingest_mark = (now, n)
        self.get_logger().info(msg)

    def announce(self, path: str, step: int, position: int, losses: dict[str, float]) -> None:
        """Publish a ModelUpdate for a checkpoint just written (called by the trainer)."""
        from curious_robot_interfaces.msg import ModelUpdate

        msg = ModelUpdate(path=os.path.abspath(path), step=int(step),
                          store_position=int(position), tasks=list(losses),
                          losses=[float(v) for v in losses.values()])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_model.publish(msg)


def main() -> int:
    return run(LearnerNode, threads=THREADS)

