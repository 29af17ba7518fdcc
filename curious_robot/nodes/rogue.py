"""The rogue of ``curious-robot chaos``: a node on the fleet's ROS domain that does not hold
the fleet key (it knows the fleet id, which every message carries) and tries what a
stranger on the network can:

- malformed and oversized Interactions on ``/interactions`` (:func:`malformed`: images
  too large or with wrong byte counts, NaN / huge / miscounted actions, unknown tasks,
  over-long strings, too many views, tactile floods, garbage seqs), unsigned, signed with
  a key of its own, or from another fleet: counted as *injected*;
- well-formed records in a real robot's name (seqs from :data:`SPOOF_SEQ`, never a real
  one) and real robots' records replayed under another seq: *forged* interactions;
- acks of real robots' records that the learner has not acknowledged (seen on
  ``/interactions`` or waiting in the robots' outbox spools), unsigned, signed with its
  own key, or a genuine ack replayed for another seq: if a manager believed one it
  would drop the record (:meth:`Rogue.ack_targets` lets chaos check that it did not);
- answers on ``/robot_status`` (a server of the same name) claiming a last seq near
  2^63 (:data:`FORGED_SEQ`): a manager that believed one would number its records from
  there; it answers half the requests at once and the rest late, so the learner's
  answer can still win (a forger that always answers first only delays a start);
- releases of each arm's emergency stop (``/robotN/release_stop``) signed with its own
  key or not at all: an answer ``success`` is a release the arm accepted.

Everything it sends is counted by kind; what is believed is measured by chaos from the
outside (store, spools, answers), never assumed.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

#: a forged /robot_status answer claims a last seq of at least this
FORGED_SEQ = 2**63 - 2**20
#: spoofed and replayed records carry seqs from here on: no real robot reaches them
SPOOF_SEQ = 2**40
#: malformed kinds, in the order the rogue cycles through them
MALFORMED = ("image_too_large", "image_side", "image_bytes", "image_step",
             "image_encoding", "nan_action", "huge_action", "action_count", "unknown_task",
             "empty_robot", "long_strings", "too_many_views", "tactile_flood",
             "truth_mismatch", "garbage_seq", "nan_depth", "no_image")


def _base(robot: str, seq: int):
    from curious_robot.convert import record_to_msg
    from curious_robot.record import Interaction

    rec = Interaction(task="grasp", robot=robot, seq=seq, action=[0.0, 0.0, 0.5],
                      outcome=[0.02], before=np.full((32, 32, 3), seq % 251, np.uint8),
                      object_id="obj0000", object_model="rogue_cube",
                      truth={"mass": 0.1}, stamp_start=time.time() - 1.0,
                      stamp_end=time.time())
    return record_to_msg(rec)


def malformed(kind: str, robot: str, seq: int):
    """An Interaction message of ``robot`` that breaks one rule (``kind`` in
    :data:`MALFORMED`), unsigned (the caller signs it, or not)."""
    from sensor_msgs.msg import Image

    m = _base(robot, seq)
    if kind == "image_too_large":  # claims 5000 x 5000 (75 MB), carries 3 kB
        m.image_before = Image(height=5000, width=5000, encoding="rgb8", step=15000,
                               data=bytes(3000))
    elif kind == "image_side":  # a side past the limit, bytes that match it
        m.image_before = Image(height=2, width=4097, encoding="rgb8", step=4097 * 3,
                               data=bytes(2 * 4097 * 3))
    elif kind == "image_bytes":
        m.image_before.data = bytes(100)
    elif kind == "image_step":
        m.image_before.step = 7
    elif kind == "image_encoding":
        m.image_before.encoding = "jpeg"
    elif kind == "nan_action":
        m.action = [math.nan, 0.0, 0.5]
    elif kind == "huge_action":
        m.action = [1e300, -1e300, 0.5]
    elif kind == "action_count":
        m.action = [0.0] * 17
    elif kind == "unknown_task":
        m.task = "levitate"
    elif kind == "empty_robot":
        m.robot = ""
    elif kind == "long_strings":
        m.object_id, m.object_model = "x" * 100_000, "y" * 5_000
    elif kind == "too_many_views":
        m.views = [Image(height=8, width=8, encoding="rgb8", step=24, data=bytes(192))
                   for _ in range(40)]
    elif kind == "tactile_flood":
        m.tactile.depth = [0.001] * 10_001
        m.tactile.force = [1.0] * 10_001
    elif kind == "truth_mismatch":
        m.truth_keys, m.truth_values = ["a", "b", "c"], [1.0, 2.0]
    elif kind == "garbage_seq":
        m.seq = 2**64 - 1
    elif kind == "nan_depth":
        m.depth_before = Image(height=4, width=4, encoding="32FC1", step=16,
                               data=np.full((4, 4), np.nan, np.float32).tobytes())
    elif kind == "no_image":
        m.image_before = Image()
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return m


class Rogue:
    """The rogue node and what it did. ``fleet_id``: the id it claims (public; '' for an
    unauthenticated fleet); ``robots``: the fleet's robot names; ``spools``: robot ->
    outbox spool file (read, never written). Thread-safe counters."""

    def __init__(self, fleet_id: str, robots: list[str], spools: dict[str, Path],
                 seed: int, inject_every: float = 0.5, release_every: float = 3.0):
        import rclpy
        from rclpy.callback_groups import ReentrantCallbackGroup

        from curious_robot.fleet import FleetKey
        from curious_robot.nodes.common import RELIABLE
        from curious_robot_interfaces.msg import IngestAck, Interaction
        from curious_robot_interfaces.srv import ReleaseStop, RobotStatus

        self.fleet_id, self.robots, self.spools = fleet_id, list(robots), dict(spools)
        self.own = FleetKey(secrets.token_bytes(32))  # a key, not the fleet's
        self.other = FleetKey(secrets.token_bytes(32))  # another fleet altogether
        self.rng = np.random.default_rng([seed, 4242])
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.forged: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()  # what was answered as accepted
        self._targets: dict[tuple[str, int], float] = {}  # forged acks: (robot, seq) -> t
        self._seen: dict[str, object] = {}  # robot -> its latest real Interaction
        self._genuine_ack = None  # an ack the learner sent (to replay for other seqs)
        self._mine: set[bytes] = set()  # signatures of the rogue's own acks
        self._n = 0
        self.active = True
        self.node = rclpy.create_node("rogue")
        group = ReentrantCallbackGroup()
        self.pub = self.node.create_publisher(Interaction, "/interactions", RELIABLE)
        self.pub_ack = self.node.create_publisher(IngestAck, "/interaction_acks", RELIABLE)
        self.node.create_subscription(Interaction, "/interactions", self._on_interaction,
                                      RELIABLE, callback_group=group)
        self.node.create_subscription(IngestAck, "/interaction_acks", self._on_ack,
                                      RELIABLE, callback_group=group)
        self.status_srv = self.node.create_service(RobotStatus, "/robot_status",
                                                   self._on_status, callback_group=group)
        self.releases = {r: self.node.create_client(ReleaseStop, f"/{r}/release_stop",
                                                    callback_group=group)
                         for r in self.robots}
        self.timers = [
            self.node.create_timer(inject_every, self._inject, callback_group=group),
            self.node.create_timer(1.5, self._ack_spooled, callback_group=group),
            self.node.create_timer(release_every, self._release, callback_group=group)]

    # ------------------------------------------------------------------ bookkeeping
    def _count(self, counter: Counter, kind: str, n: int = 1) -> None:
        with self.lock:
            counter[kind] += n

    def totals(self) -> dict:
        with self.lock:
            return {"injected": dict(self.injected), "forged": dict(self.forged),
                    "accepted": dict(self.accepted)}

    def ack_targets(self, older_than: float) -> list[tuple[str, int]]:
        """(robot, seq) of records the rogue sent forged acks for at least ``older_than``
        s ago (each returned once): if one of them left its robot's spool without being
        stored, a manager believed a forged ack."""
        now = time.monotonic()
        with self.lock:
            due = [k for k, t in self._targets.items() if now - t >= older_than]
            for k in due:
                del self._targets[k]
        return due

    def halt(self) -> None:
        """Stop every attack (the subscriptions stay, sending nothing)."""
        self.active = False
        for t in self.timers:
            t.cancel()
        if self.status_srv is not None:
            self.node.destroy_service(self.status_srv)
            self.status_srv = None

    def destroy(self) -> None:
        self.halt()
        self.node.destroy_node()

    # ------------------------------------------------------------------ signing
    def _sign_interaction(self, msg, how: str):
        """``how``: 'unsigned' (claims the fleet, no signature), 'own_key' (claims the
        fleet, signed with the rogue's key) or 'other_fleet'."""
        from curious_robot.fleet import interaction_bytes
        from curious_robot.record import InvalidInteraction

        key = {"unsigned": None, "own_key": self.own, "other_fleet": self.other}[how]
        msg.fleet = self.other.fleet_id if how == "other_fleet" else self.fleet_id
        if key is None:
            msg.auth = b""
            return msg
        try:
            msg.auth = key.sign(interaction_bytes(msg))
        except (InvalidInteraction, ValueError, OverflowError):
            msg.auth = secrets.token_bytes(32)  # too malformed to encode: any 32 bytes
        return msg

    def _pick(self, options):
        with self.lock:
            return options[int(self.rng.integers(len(options)))]

    # ------------------------------------------------------------------ attacks
    def _inject(self) -> None:
        if not self.active:
            return
        with self.lock:
            n = self._n
            self._n += 1
        robot = self.robots[n % len(self.robots)]
        kind = MALFORMED[n % len(MALFORMED)]
        how = ("unsigned", "own_key", "other_fleet")[(n // len(MALFORMED)) % 3]
        self.pub.publish(self._sign_interaction(malformed(kind, robot, SPOOF_SEQ + n), how))
        self._count(self.injected, kind)
        if n % 4 == 0:  # a well-formed record in a real robot's name
            msg = self._sign_interaction(_base(robot, SPOOF_SEQ + n), how)
            self.pub.publish(msg)
            self._count(self.forged, "interactions")
        if n % 4 == 2:  # a real record replayed under another seq, its signature kept
            with self.lock:
                real = self._seen.get(robot)
            if real is not None:
                real.seq = SPOOF_SEQ + n
                self.pub.publish(real)
                self._count(self.forged, "replayed interactions")

    def _forge_acks(self, robot: str, seq: int, interaction_auth=b"") -> None:
        from curious_robot.fleet import ack_bytes
        from curious_robot_interfaces.msg import IngestAck

        for how in ("unsigned", "own_key"):
            ack = IngestAck(robot=robot, seq=seq, status="stored", fleet=self.fleet_id)
            ack.auth = b"" if how == "unsigned" else self.own.sign(
                ack_bytes(ack, bytes(interaction_auth)))
            if len(ack.auth):
                with self.lock:
                    if len(self._mine) > 10_000:
                        self._mine.clear()
                    self._mine.add(bytes(ack.auth))
            self.pub_ack.publish(ack)
        n = 2
        with self.lock:
            genuine = self._genuine_ack
        if genuine is not None:  # the learner's own signature, for another record
            replay = IngestAck(robot=robot, seq=seq, status=genuine.status,
                               reason=genuine.reason, fleet=genuine.fleet,
                               auth=bytes(genuine.auth))
            self.pub_ack.publish(replay)
            n += 1
        self._count(self.forged, "acks", n)
        with self.lock:
            self._targets.setdefault((robot, int(seq)), time.monotonic())

    def _on_interaction(self, msg) -> None:
        if not self.active or msg.robot not in self.robots or msg.seq >= SPOOF_SEQ:
            return
        with self.lock:
            self._seen[msg.robot] = msg
        self._forge_acks(msg.robot, int(msg.seq), msg.auth)  # before the learner's ack

    def _on_ack(self, ack) -> None:
        if ack.robot in self.robots and ack.seq < SPOOF_SEQ and len(ack.auth):
            with self.lock:
                if bytes(ack.auth) in self._mine:
                    return
                if self._genuine_ack is None or self.rng.random() < 0.1:
                    self._genuine_ack = ack

    def _ack_spooled(self) -> None:
        """Acks for what the robots' spools hold: records not yet acknowledged."""
        from curious_robot.spool import SpoolError, snapshot

        if not self.active:
            return
        for robot, path in self.spools.items():
            try:
                pending = sorted(snapshot(path).pending)
            except SpoolError:
                continue
            for seq in pending[:20]:
                self._forge_acks(robot, seq)

    def _on_status(self, request, response):
        with self.lock:
            late = self.rng.random() < 0.5
            offset = int(self.rng.integers(1000))
        if late:  # after the learner's answer: the asker has what it needs
            time.sleep(3.0)
        response.last_seq, response.count, response.fleet = FORGED_SEQ + offset, 7, \
            self.fleet_id
        from curious_robot.fleet import status_bytes

        response.auth = self.own.sign(status_bytes(self.fleet_id, request.nonce,
                                                   request.robot, response.last_seq,
                                                   response.count))
        self._count(self.forged, "status answers")
        return response

    def _release(self) -> None:
        if not self.active:
            return
        from builtin_interfaces.msg import Time

        from curious_robot.fleet import release_bytes
        from curious_robot_interfaces.srv import ReleaseStop

        for robot, client in self.releases.items():
            if not client.service_is_ready():
                continue
            now = time.time_ns()
            req = ReleaseStop.Request(fleet=self.fleet_id,
                                      stamp=Time(sec=now // 10**9, nanosec=now % 10**9))
            if self._pick((True, False)):
                req.auth = self.own.sign(release_bytes(self.fleet_id, robot, now))
            future = client.call_async(req)
            self._count(self.forged, "releases")
            future.add_done_callback(self._on_release_answer)

    def _on_release_answer(self, future) -> None:
        res = future.result()
        if res is not None and res.success:
            self._count(self.accepted, "releases")
