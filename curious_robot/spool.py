"""A robot's outbox on disk: serialized interactions not yet acknowledged by the learner.

The interaction manager (and the drone pilot) write each interaction here before
publishing it and delete it when the learner acknowledges it, so a manager killed with
``kill -9``, or a machine that loses power, sends the rest again after restart instead of
losing them; the store's ``UNIQUE(robot, seq)`` turns a resend of something already
stored into ``duplicate``. One small SQLite file per robot (WAL, ``synchronous=FULL``:
a record is on disk before it is published). A lock (``flock`` on the file) admits one
process per spool, so two managers that claim the same robot name in one folder are told
so instead of mixing their sequence numbers. Pure: no rclpy; the caller gives bytes.

Beside what waits (table ``pending``) the file keeps a ledger of every seq the robot
ever put there (table ``sensed``: seq and wall time, written in the same transaction as
the record, never deleted): what the robot recorded as sensed, which ``curious-robot
chaos`` compares with what the store holds (:func:`snapshot` reads both without taking
the owner's lock).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from curious_robot.owner_lock import LockHeld, take


class SpoolError(RuntimeError):
    """The spool file cannot be used (named in the message)."""


class Spool:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise SpoolError(f"outbox folder {self.path.parent} does not exist")
        self._lock = threading.Lock()
        try:
            self._fd = take(self.path.with_name(self.path.name + ".lock"))
        except LockHeld as exc:
            raise SpoolError(f"outbox {self.path} is in use by another process (pid "
                             f"{exc.holder}): two robots with one name?") from None
        try:
            self._db = sqlite3.connect(str(self.path), isolation_level=None,
                                       check_same_thread=False, timeout=10.0)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS pending "
                             "(seq INTEGER PRIMARY KEY, data BLOB NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS sensed "
                             "(seq INTEGER PRIMARY KEY, at REAL NOT NULL)")
        except sqlite3.DatabaseError as exc:
            self.close()
            raise SpoolError(f"outbox {self.path} is not usable: {exc}") from exc

    def put(self, seq: int, data: bytes) -> None:
        """Keep ``data`` as ``seq`` until :meth:`remove`, and note ``seq`` in the ledger
        (one transaction, on disk when this returns)."""
        with self._lock:
            if self._db is None:
                raise SpoolError(f"outbox {self.path} is closed")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT OR REPLACE INTO pending (seq, data) VALUES (?, ?)",
                                 (int(seq), sqlite3.Binary(data)))
                self._db.execute("INSERT OR IGNORE INTO sensed (seq, at) VALUES (?, ?)",
                                 (int(seq), time.time()))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def remove(self, seq: int) -> None:
        """Forget ``seq`` (acknowledged). After :meth:`close` a no-op: the record stays on
        disk and the next run sends it again (the store answers ``duplicate``)."""
        with self._lock:
            if self._db is None:
                return
            self._db.execute("DELETE FROM pending WHERE seq = ?", (int(seq),))

    def items(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return [(int(s), bytes(d)) for s, d in
                    self._db.execute("SELECT seq, data FROM pending ORDER BY seq")]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def sensed(self) -> list[int]:
        """Every seq ever put here (the ledger), ascending."""
        with self._lock:
            return [int(r[0]) for r in self._db.execute("SELECT seq FROM sensed ORDER BY seq")]

    def close(self) -> None:
        """Close the file and release the lock. Waits for a statement another thread is
        running (an ack's delete): closing a connection under a running statement can
        crash the interpreter."""
        with self._lock:
            db, self._db = getattr(self, "_db", None), None
            if db is not None:
                db.close()
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)


@dataclass(frozen=True)
class Snapshot:
    """What a spool file holds at one moment: seqs waiting for an ack, and the ledger."""

    pending: frozenset[int]
    sensed: frozenset[int]


def snapshot(path: str | os.PathLike) -> Snapshot:
    """Read a spool file without owning it (its manager may be running, or killed): a
    read-only connection, no lock. A file that does not exist yet is empty; one written
    before the ledger existed has an empty ledger. Raises :class:`SpoolError`."""
    path = Path(path)
    if not path.exists():
        return Snapshot(frozenset(), frozenset())
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            pending = {int(r[0]) for r in db.execute("SELECT seq FROM pending")} \
                if "pending" in tables else set()
            sensed = {int(r[0]) for r in db.execute("SELECT seq FROM sensed")} \
                if "sensed" in tables else set()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise SpoolError(f"outbox {path} cannot be read: {exc}") from exc
    return Snapshot(frozenset(pending), frozenset(sensed))
