"""At-least-once delivery of interactions: the outbox the manager and the pilot share."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from curious_robot.nodes.common import Outbox

pytestmark = pytest.mark.unit


class Log:
    def __init__(self):
        self.lines = []

    def warning(self, text):
        self.lines.append(("warn", text))

    def error(self, text):
        self.lines.append(("error", text))


def ack(seq, robot="r0", status="stored", reason=""):
    return SimpleNamespace(robot=robot, seq=seq, status=status, reason=reason)


def test_outbox_keeps_resends_and_forgets_on_ack():
    sent, log = [], Log()
    box = Outbox("r0", sent.append, log, resend_after=0.05)
    for seq in range(3):
        box.send(seq, f"m{seq}")
    assert sent == ["m0", "m1", "m2"] and len(box) == 3
    box.resend()  # nothing is late yet
    assert len(sent) == 3
    box.on_ack(ack(1, robot="r1"))  # another robot's ack changes nothing
    assert len(box) == 3
    box.on_ack(ack(0))
    assert len(box) == 2
    time.sleep(0.06)
    box.resend()
    assert sorted(sent[3:]) == ["m1", "m2"]
    assert [k for k, _ in log.lines] == ["warn", "warn"]
    box.resend()  # just resent: not due again yet
    assert len(sent) == 5


def test_a_later_ack_makes_older_unacked_messages_due_at_once():
    sent, log = [], Log()
    box = Outbox("r0", sent.append, log, resend_after=3600.0)
    for seq in range(4):
        box.send(seq, f"m{seq}")
    box.on_ack(ack(2, status="rejected", reason="bad image"))
    assert ("error", "learner rejected seq 2: bad image") in log.lines
    box.resend()  # 0 and 1 were lost on the way (the learner answered 2); 3 may be in flight
    assert sent[4:] == ["m0", "m1"]
    assert len(box) == 3
