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


def test_a_spooled_outbox_survives_its_process_and_admits_one_owner(tmp_path):
    import subprocess
    import sys

    from curious_robot.spool import Spool, SpoolError

    path = tmp_path / "r0.outbox.db"
    sent, log = [], Log()
    box = Outbox("r0", sent.append, log, resend_after=60.0, spool=Spool(path),
                 encode=str.encode, decode=bytes.decode)
    for seq in range(4):
        box.send(seq, f"m{seq}")
    box.on_ack(ack(1))
    box.on_ack(ack(2, status="rejected", reason="bad"))  # never accepted: not kept either
    box.on_ack(ack(9))  # unknown seq: nothing to delete
    # another process cannot take this robot's spool while we hold it
    code = ("import sys; from curious_robot.spool import Spool, SpoolError\n"
            "try:\n    Spool(sys.argv[1])\nexcept SpoolError as e:\n    print(e); sys.exit(2)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "in use by another process" in out.stdout, out
    box.close()
    again, sent2 = Outbox("r0", [].append, log, resend_after=60.0, spool=Spool(path),
                          encode=str.encode, decode=bytes.decode), []
    again._publish = sent2.append
    assert again.recovered == 2 and again.max_seq == 3
    again.resend()  # recovered messages are due at once
    assert sorted(sent2) == ["m0", "m3"]
    again.close()
    path.with_name("junk.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(SpoolError, match="not usable"):
        Spool(path.with_name("junk.db"))
    with pytest.raises(SpoolError, match="does not exist"):
        Spool(tmp_path / "no" / "such.db")


def test_the_spool_ledger_keeps_every_seq_put_and_is_readable_while_owned(tmp_path):
    """What a robot recorded as sensed (the spool's ledger) stays when the record is
    acknowledged and deleted, and outlives the process; :func:`spool.snapshot` reads
    pending and ledger while another process owns the spool (``chaos`` does that)."""
    import sqlite3
    import subprocess
    import sys

    from curious_robot.spool import Snapshot, Spool, snapshot

    path = tmp_path / "r0.outbox.db"
    assert snapshot(path).sensed == frozenset()  # not created yet: empty
    code = ("import os, sys; from curious_robot.spool import Spool\n"
            "s = Spool(sys.argv[1])\n"
            "for q in range(5): s.put(q, b'x')\n"
            "s.remove(1); s.remove(3)\n"
            "print('READY', flush=True); sys.stdin.readline(); os._exit(9)")
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == "READY"
        snap = snapshot(path)  # the child still owns the spool
        assert snap.pending == {0, 2, 4} and snap.sensed == {0, 1, 2, 3, 4}
    finally:
        child.communicate("\n", timeout=30)  # dies without closing anything
    spool = Spool(path)
    spool.put(5, b"y")
    spool.remove(5)
    assert spool.sensed() == [0, 1, 2, 3, 4, 5] and len(spool) == 3
    spool.close()
    old = tmp_path / "old.outbox.db"  # a spool written before the ledger existed
    with sqlite3.connect(old) as db:
        db.execute("CREATE TABLE pending (seq INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        db.execute("INSERT INTO pending VALUES (7, x'00')")
    assert snapshot(old) == Snapshot(frozenset({7}), frozenset())


def test_with_a_verifier_only_acks_it_accepts_count():
    """A fleet's outbox (nodes.common.FleetAuth.verify_ack): a refused ack neither drops
    its message nor makes older ones due; an ack for nothing pending is ignored."""
    sent, log = [], Log()
    seen = []

    def verify(a, msg):
        seen.append((a.seq, msg))
        return None if a.reason != "forged" else "signature does not verify"

    box = Outbox("r0", sent.append, log, resend_after=3600.0, verify=verify)
    for seq in range(3):
        box.send(seq, f"m{seq}")
    box.on_ack(ack(2, reason="forged"))
    assert len(box) == 3 and seen == [(2, "m2")]  # checked against the message it acks
    box.resend()
    assert len(sent) == 3  # nothing made due by a forged later ack
    box.on_ack(ack(7))  # nothing waits for seq 7: not even checked
    assert seen == [(2, "m2")] and len(box) == 3
    box.on_ack(ack(2))
    assert len(box) == 2
    box.resend()
    assert sent[3:] == ["m0", "m1"]


def test_two_stores_in_one_folder_never_share_outboxes_or_checkpoints(tmp_path):
    from curious_robot.graph import collect_graph, outbox_dir
    from curious_robot.paths import beside_store

    a, b = tmp_path / "a.db", tmp_path / "b.db"
    assert outbox_dir(str(a)) != outbox_dir(str(b))
    assert beside_store(a, "checkpoints") == tmp_path / "a.checkpoints"
    managers = [s for s in collect_graph(robots=1, store=str(b))
                if s.executable == "interaction_manager"]
    assert managers[0].parameters["outbox_dir"] == str(tmp_path / "b.outbox")


def test_acks_racing_the_close_neither_crash_nor_lose_records(tmp_path):
    """Acks arrive on executor threads while shutdown closes the outbox: close waits for a
    delete in progress (closing SQLite under a running statement can crash the
    interpreter; a manager once died with SIGSEGV there), and an ack after close leaves
    its record on disk for the next run. Run in a child process, so a crash fails the
    test instead of ending pytest."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys, threading
        from types import SimpleNamespace
        from curious_robot.nodes.common import Outbox
        from curious_robot.spool import Spool

        class Log:
            def warning(self, text): pass
            error = warning

        path = sys.argv[1]
        for round in range(20):
            box = Outbox("r0", lambda m: None, Log(), 60.0, spool=Spool(path),
                         encode=str.encode, decode=bytes.decode)
            base = round * 1000
            for seq in range(base, base + 120):
                box.send(seq, f"m{seq}")
            def acks(start):
                for seq in range(base + start, base + 120, 4):
                    box.on_ack(SimpleNamespace(robot="r0", seq=seq, status="stored",
                                               reason=""))
            threads = [threading.Thread(target=acks, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            box.close()
            for t in threads:
                t.join()
            # what was not acknowledged before the close must still be on disk
            left = {s for s in box._pending if s >= base}
            again = Spool(path)
            on_disk = {s for s, _ in again.items() if s >= base}
            again.close()
            assert left <= on_disk, (round, sorted(left - on_disk))
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "r0.outbox.db")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr)
