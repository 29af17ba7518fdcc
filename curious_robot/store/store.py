"""The replay store: interactions and their images in one SQLite file.

Design
- SQLite in WAL mode: one writer (the learner's ingestion thread) and any number of
  readers (training loop, command line; threads or processes) work at the same time.
  Each thread gets its own connection; ``busy_timeout`` covers the short write locks.
- ``synchronous=FULL`` (the default): every commit is fsynced before
  :meth:`ReplayStore.add` returns, so an acknowledged interaction survives a power loss or
  a kernel crash as well as a killed process; a robot never reuses a seq the learner
  acknowledged. ``synchronous="NORMAL"`` skips the fsync (survives ``kill -9`` but not a
  power loss); ``curious-robot bench store`` measures what FULL costs.
- ``exclusive=True`` (the learner): a lock file beside the store (``<store>-writer.lock``,
  ``flock``) admits one such writer; a second one gets a :class:`StoreError` naming the
  holder's pid, so two learners never race on one store, its checkpoints and status.
- One transaction per interaction: the row and all its images, or nothing.
- ``UNIQUE(robot, seq)``: a record already stored is reported as ``duplicate``.
- Images are compressed losslessly (:mod:`curious_robot.store.codec`): PNG for rgb8,
  zlib for float32 depth; a CRC-32 per blob detects damage. Plain values (action,
  outcome, tactile samples, truth) are JSON text. No pickle anywhere.
- Rows are never deleted, so row ids grow with insertion order and the highest one is
  the "store position" a checkpoint records.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, NamedTuple

import numpy as np

from curious_robot import tasks as registry
from curious_robot.record import IMAGE_ROLES, Interaction, InvalidInteraction, validate
from curious_robot.store import codec

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
#: The ``sources`` table (provenance of merged records, :mod:`curious_robot.store.merge`).
_SOURCES_TABLE = """CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        origin TEXT NOT NULL,
        created TEXT NOT NULL,
        merged REAL NOT NULL,
        UNIQUE (path, origin))"""
#: Schema changes this code applies when it opens an older store for writing (version ->
#: statements that bring it to version + 1); read-only, an older store is read as it is.
#: 1 -> 2: the ``policy`` column (what chose the task, object and action; "" before).
#: 2 -> 3: provenance: the ``sources`` table and the ``source`` column (0: collected into
#: this store; else the ``sources`` row of the store a merge copied the record from).
MIGRATIONS = {1: ("ALTER TABLE interactions ADD COLUMN policy TEXT NOT NULL DEFAULT ''",),
              2: (_SOURCES_TABLE,
                  "ALTER TABLE interactions ADD COLUMN source INTEGER NOT NULL DEFAULT 0")}
FORMAT_NAME = "curious_robot.replay_store"
#: Longest list of missing seq numbers reported per robot.
GAP_CAP = 100
BUSY_TIMEOUT_S = 10.0
#: Most problems :meth:`ReplayStore.check` lists before summarising the rest.
PROBLEM_CAP = 200
_CHUNK = 256
SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE interactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task TEXT NOT NULL,
        robot TEXT NOT NULL,
        seq INTEGER NOT NULL,
        object_id TEXT NOT NULL,
        object_model TEXT NOT NULL,
        held_out INTEGER NOT NULL,
        success INTEGER NOT NULL,
        action TEXT NOT NULL,
        outcome TEXT NOT NULL,
        tactile_depth TEXT NOT NULL,
        tactile_force TEXT NOT NULL,
        truth TEXT NOT NULL,
        stamp_start REAL NOT NULL,
        stamp_end REAL NOT NULL,
        sim_step INTEGER NOT NULL,
        n_views INTEGER NOT NULL,
        added REAL NOT NULL,
        policy TEXT NOT NULL DEFAULT '',
        source INTEGER NOT NULL DEFAULT 0,
        UNIQUE (robot, seq))""",
    "CREATE INDEX interactions_by_task ON interactions (task, held_out, success)",
    "CREATE INDEX interactions_by_object ON interactions (object_id)",
    """CREATE TABLE images (
        interaction_id INTEGER NOT NULL REFERENCES interactions (id),
        role TEXT NOT NULL,
        encoding TEXT NOT NULL,
        dtype TEXT NOT NULL,
        shape TEXT NOT NULL,
        crc32 INTEGER NOT NULL,
        data BLOB NOT NULL,
        UNIQUE (interaction_id, role))""",
    _SOURCES_TABLE,
)

_COLUMNS = ("id", "task", "robot", "seq", "object_id", "object_model", "held_out", "success",
            "action", "outcome", "tactile_depth", "tactile_force", "truth", "stamp_start",
            "stamp_end", "sim_step", "policy", "n_views")
_SELECT_IMAGES = "SELECT interaction_id, role, encoding, dtype, shape, crc32, data FROM images"


class StoreError(RuntimeError):
    """The store file cannot be opened, read or written; the message names the file."""


class AddResult(NamedTuple):
    status: str  # 'stored' or 'duplicate'
    row_id: int | None

    @property
    def stored(self) -> bool:
        return self.status == "stored"


def _where(task=None, held_out=None, success=None, after_id=None, upto_id=None):
    clauses, params = [], []
    for column, value in (("task", task), ("held_out", held_out), ("success", success)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value if column == "task" else int(bool(value)))
    if after_id is not None:
        clauses.append("id > ?")
        params.append(int(after_id))
    if upto_id is not None:
        clauses.append("id <= ?")
        params.append(int(upto_id))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _check_storable(rec: Interaction) -> None:
    """What the table needs beyond :func:`validate`: finite stamps, 64-bit integers."""
    for name in ("stamp_start", "stamp_end"):
        value = getattr(rec, name)
        if not isinstance(value, (int, float, np.integer, np.floating)) \
                or not math.isfinite(value):
            raise InvalidInteraction(f"{name} is not a finite number: {value!r}")
    for name in ("seq", "sim_step"):
        value = getattr(rec, name)
        if not isinstance(value, (int, np.integer)) or not -2**63 <= int(value) < 2**63:
            raise InvalidInteraction(f"{name} must be a 64-bit integer, got {value!r}")


def _floats(values) -> str:
    return json.dumps([float(v) for v in values])


class ReplayStore:
    """Interactions in an SQLite file; safe to share between threads (see module doc)."""

    def __init__(self, path: str | os.PathLike, readonly: bool = False, *,
                 synchronous: str = "FULL", exclusive: bool = False):
        self.path = Path(path)
        self.readonly = bool(readonly)
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self._synchronous = synchronous.upper()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []  # from before a fork; never used
        self._pid = os.getpid()
        self._closed = False
        self._id_cache: dict[tuple, tuple[np.ndarray, int]] = {}
        self._writer_fd: int | None = None
        self._version = SCHEMA_VERSION
        self._check_path()
        if exclusive:
            if self.readonly:
                raise ValueError("a read-only store cannot be the exclusive writer")
            self._take_writer_lock()
        try:
            self._init_schema(self._conn())
        except BaseException:
            self.close()
            raise

    # -- opening ------------------------------------------------------------------------

    def _check_path(self) -> None:
        p = self.path
        if p.is_dir():
            raise StoreError(f"replay store path {p} is a folder, not a file")
        if p.exists():
            try:
                with open(p, "rb") as f:
                    head = f.read(len(SQLITE_MAGIC))
            except OSError as exc:
                raise StoreError(f"cannot read replay store {p}: {exc}") from exc
            if head and head != SQLITE_MAGIC:
                raise StoreError(f"{p} is not an SQLite database (not a replay store)")
            return
        if self.readonly:
            raise StoreError(f"replay store {p} does not exist")
        parent = p.parent if str(p.parent) else Path(".")
        if not parent.is_dir():
            raise StoreError(f"cannot create replay store {p}: folder {parent} does not exist")

    @property
    def writer_lock_path(self) -> Path:
        return self.path.with_name(self.path.name + "-writer.lock")

    def _take_writer_lock(self) -> None:
        from curious_robot.owner_lock import LockHeld, take

        try:
            self._writer_fd = take(self.writer_lock_path)
        except LockHeld as exc:
            raise StoreError(f"replay store {self.path} is already open for writing by "
                             f"another learner (pid {exc.holder}); one learner per store") \
                from None
        except OSError as exc:
            raise StoreError(f"cannot create the writer lock {self.writer_lock_path}: "
                             f"{exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True,
                                       timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S,
                                       isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            if not self.readonly:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise StoreError(f"cannot put replay store {self.path} in WAL mode "
                                     f"(journal mode stays {mode!r})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open replay store {self.path}: {exc}") from exc
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StoreError(f"replay store {self.path} is closed")
        if os.getpid() != self._pid:
            # A forked child must not use its parent's connections: keep them referenced
            # (closing them here could disturb the parent's locks) and open new ones.
            with self._lock:
                if os.getpid() != self._pid:
                    self._inherited.extend(self._conns)
                    self._conns = []
                    self._local = threading.local()
                    self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            with self._lock:
                self._conns.append(conn)
            self._local.conn = conn
        return conn

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        try:
            tables = self._tables(conn)
            if "meta" not in tables:
                if tables - {"sqlite_sequence"}:
                    raise StoreError(f"{self.path} is an SQLite database but not a replay "
                                     f"store (tables: {', '.join(sorted(tables))})")
                if self.readonly:
                    raise StoreError(f"{self.path} is an empty database, not a replay store")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if "meta" not in self._tables(conn):  # another process may have won
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", (
                            ("format", FORMAT_NAME),
                            ("schema_version", str(SCHEMA_VERSION)),
                            ("created", repr(time.time()))))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                log.info("created replay store %s (schema %d)", self.path, SCHEMA_VERSION)
            if not self.readonly:
                self._migrate(conn)
            problem = self._schema_problem(conn)
            if problem:
                raise StoreError(problem)
            self._version = int(dict(conn.execute("SELECT key, value FROM meta")).get(
                "schema_version", SCHEMA_VERSION))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read replay store {self.path}: {exc}") from exc

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring an older store to :data:`SCHEMA_VERSION` (:data:`MIGRATIONS`, one
        transaction per step); a store of an unknown or newer version is left alone."""
        while True:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = row[0] if row else None
            if version is None or not version.isdigit() or int(version) not in MIGRATIONS:
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                ).fetchone()[0] == version:  # another process may have won
                    for statement in MIGRATIONS[int(version)]:
                        conn.execute(statement)
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                 (str(int(version) + 1),))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            log.info("replay store %s: schema %s -> %d", self.path, version, int(version) + 1)

    @property
    def _select_rows(self) -> str:
        """The row query; a store read read-only at an older schema has no policy column."""
        columns = [c if c != "policy" or self._version >= 2 else "'' AS policy"
                   for c in _COLUMNS]
        return f"SELECT {', '.join(columns)} FROM interactions"

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _schema_problem(self, conn: sqlite3.Connection) -> str | None:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT_NAME:
            return (f"{self.path} is not a replay store (meta format is "
                    f"{meta.get('format')!r}, expected {FORMAT_NAME!r})")
        version = meta.get("schema_version")
        readable = {str(SCHEMA_VERSION)} | ({str(v) for v in MIGRATIONS} if self.readonly
                                            else set())
        if version not in readable:
            newer = version is not None and version.isdigit() and int(version) > SCHEMA_VERSION
            return (f"replay store {self.path} has schema version {version!r}; this code reads "
                    f"version {SCHEMA_VERSION}"
                    + (" (the file was written by a newer curious_robot: upgrade)" if newer
                       else " (unknown version)"))
        return None

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection of this store (call when no thread uses it any more)."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        if os.getpid() != self._pid:
            self._inherited.extend(conns)
            return
        for conn in conns:
            try:
                conn.close()
            except sqlite3.Error as exc:  # pragma: no cover - best effort
                log.warning("closing %s: %s", self.path, exc)
        fd, self._writer_fd = self._writer_fd, None
        if fd is not None:
            os.close(fd)  # releases the flock; the file stays (its content is advisory)

    def __enter__(self) -> ReplayStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplayStore({str(self.path)!r}, readonly={self.readonly})"

    # -- writing ------------------------------------------------------------------------

    def add(self, rec: Interaction) -> AddResult:
        """Store one interaction with all its images in one transaction.

        Raises :class:`~curious_robot.record.InvalidInteraction` (nothing written) for a
        malformed record; returns ``AddResult('duplicate', None)`` (nothing written) when
        the store already holds this robot's ``seq``.
        """
        _check_storable(validate(rec))
        if self.readonly:
            raise StoreError(f"replay store {self.path} is open read-only")
        duplicate = "SELECT 1 FROM interactions WHERE robot = ? AND seq = ?"
        if self._query(duplicate, (rec.robot, int(rec.seq))):  # cheap early answer
            return AddResult("duplicate", None)
        images = [(role, codec.encode(img)) for role, img in rec.images().items()]
        row = (rec.task, rec.robot, int(rec.seq), str(rec.object_id), str(rec.object_model),
               int(bool(rec.held_out)), int(bool(rec.success)), _floats(rec.action),
               _floats(rec.outcome), _floats(rec.tactile_depth), _floats(rec.tactile_force),
               json.dumps({str(k): float(v) for k, v in rec.truth.items()}),
               float(rec.stamp_start), float(rec.stamp_end), int(rec.sim_step),
               str(rec.policy), len(rec.views), time.time())
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute(duplicate, (rec.robot, int(rec.seq))).fetchone():
                    conn.execute("ROLLBACK")
                    log.debug("duplicate interaction %s/%d", rec.robot, rec.seq)
                    return AddResult("duplicate", None)
                row_id = conn.execute(
                    f"INSERT INTO interactions ({', '.join(_COLUMNS[1:])}, added) "
                    f"VALUES ({', '.join('?' * len(row))})", row).lastrowid
                conn.executemany(
                    "INSERT INTO images (interaction_id, role, encoding, dtype, shape, crc32, "
                    "data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(row_id, role, e.encoding, e.dtype, json.dumps(e.shape), e.crc32, e.data)
                     for role, e in images])
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot add {rec.robot}/{rec.seq} to replay store "
                             f"{self.path}: {exc}") from exc
        return AddResult("stored", int(row_id))

    # -- reading: indexes ---------------------------------------------------------------

    def _query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        try:
            return self._conn().execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read replay store {self.path}: {exc}") from exc

    def _scalar(self, sql: str, params: Iterable = ()):
        return self._query(sql, params)[0][0]

    def position(self) -> int:
        """Highest row id (0 when empty): where a checkpoint's data ends."""
        return int(self._scalar("SELECT max(id) FROM interactions") or 0)

    def last_seq(self, robot: str) -> int | None:
        """Highest stored ``seq`` of ``robot`` (``None`` if it has none)."""
        value = self._scalar("SELECT max(seq) FROM interactions WHERE robot = ?", (robot,))
        return None if value is None else int(value)

    def count(self, task: str | None = None, held_out: bool | None = None,
              success: bool | None = None) -> int:
        where, params = _where(task, held_out, success)
        return int(self._scalar(f"SELECT count(*) FROM interactions{where}", params))

    def ids(self, task: str | None = None, held_out: bool | None = None,
            success: bool | None = None, after_id: int | None = None) -> np.ndarray:
        """Row ids (ascending, int64) matching the filters; ``after_id`` excludes older rows."""
        return self._ids(task, held_out, success, after_id)

    def _ids(self, task, held_out, success, after_id=None, upto_id=None) -> np.ndarray:
        where, params = _where(task, held_out, success, after_id, upto_id)
        rows = self._query(f"SELECT id FROM interactions{where} ORDER BY id", params)
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def keys(self) -> list[tuple[str, int]]:
        """(robot, seq) of every row, in row order (a key stored twice would appear
        twice; the UNIQUE constraint says it cannot)."""
        return [(str(r), int(q)) for r, q in
                self._query("SELECT robot, seq FROM interactions ORDER BY id")]

    def robots(self) -> dict[str, dict]:
        """robot -> {'count', 'min_seq', 'max_seq', 'n_missing', 'gaps'}.

        ``gaps`` lists the seq numbers missing between the robot's lowest and highest stored
        seq (at most :data:`GAP_CAP` of them); ``n_missing`` counts all of them.
        """
        out: dict[str, dict] = {}
        for robot, n, lo, hi in self._query(
                "SELECT robot, count(*), min(seq), max(seq) FROM interactions GROUP BY robot "
                "ORDER BY robot"):
            out[robot] = {"count": int(n), "min_seq": int(lo), "max_seq": int(hi),
                          "n_missing": int(hi - lo + 1 - n), "gaps": []}
        if any(r["n_missing"] for r in out.values()):
            for robot, first, last in self._query(
                    "SELECT robot, prev + 1, seq - 1 FROM (SELECT robot, seq, LAG(seq) OVER "
                    "(PARTITION BY robot ORDER BY seq) AS prev FROM interactions) "
                    "WHERE seq - prev > 1 ORDER BY robot, seq"):
                gaps = out[robot]["gaps"]
                gaps.extend(range(first, min(last, first + GAP_CAP - len(gaps) - 1) + 1))
        return out

    def objects(self) -> list[tuple[str, int, bool, int]]:
        """(object, n_ids, held_out, n_interactions) of every distinct object, sorted.

        An object is its model where records name one, else its id: ids count spawns per
        world, so two robots' (or two resets') ``obj0003`` are different objects, and one
        model respawned gets new ids. ``n_ids`` is how many ids it had."""
        return [(key, int(ids), bool(h), int(n)) for key, ids, h, n in self._query(
            "SELECT coalesce(nullif(object_model, ''), object_id) AS k, "
            "count(DISTINCT object_id), max(held_out), count(*) FROM interactions "
            "WHERE k != '' GROUP BY k ORDER BY k")]

    def sources(self) -> list[dict]:
        """Where merged records came from (``curious-robot store merge``): one entry per
        source (id, path, origin, created, merged, interactions), and one with id 0 and
        path "" for records collected into this store, when there are any. Empty for a
        store of schema < 3 read as it is."""
        if self._version < 3:
            return []
        counts = dict(self._query("SELECT source, count(*) FROM interactions GROUP BY source"))
        out = []
        if counts.get(0):
            out.append({"id": 0, "path": "", "origin": "", "created": "", "merged": None,
                        "interactions": int(counts[0])})
        for sid, path, origin, created, merged in self._query(
                "SELECT id, path, origin, created, merged FROM sources ORDER BY id"):
            out.append({"id": int(sid), "path": path, "origin": origin, "created": created,
                        "merged": float(merged), "interactions": int(counts.get(sid, 0))})
        return out

    # -- reading: records ---------------------------------------------------------------

    def get(self, row_id: int, images: bool = True) -> Interaction:
        """The full record of one row; raises ``KeyError`` for an unknown row id."""
        return self.get_many([row_id], images=images)[0]

    def get_many(self, row_ids: Iterable[int], images: bool = True) -> list[Interaction]:
        """Records in the order of ``row_ids`` (repeats allowed); ``KeyError`` if unknown."""
        wanted = [int(i) for i in row_ids]
        rows, blobs = self._fetch(sorted(set(wanted)), images)
        missing = [i for i in wanted if i not in rows]
        if missing:
            raise KeyError(f"no interaction with row id {missing[0]} in {self.path}")
        out = []
        for i in wanted:
            try:
                decoded = ({role: _decode_blob(b) for role, b in blobs.get(i, {}).items()}
                           if images else None)
                out.append(_build(rows[i], decoded))
            except (codec.CodecError, ValueError, TypeError, KeyError) as exc:
                raise StoreError(f"row {i} of replay store {self.path} is damaged: "
                                 f"{exc}") from exc
        return out

    def _fetch(self, ids: list[int], images: bool) -> tuple[dict, dict]:
        rows: dict[int, tuple] = {}
        blobs: dict[int, dict[str, tuple]] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for r in self._query(f"{self._select_rows} WHERE id IN ({marks})", chunk):
                rows[r[0]] = r
            if images:
                for b in self._query(f"{_SELECT_IMAGES} WHERE interaction_id IN ({marks})",
                                     chunk):
                    blobs.setdefault(b[0], {})[b[1]] = b[2:]
        return rows, blobs

    def sample(self, task: str, n: int, rng: np.random.Generator, held_out: bool = False,
               success: bool | None = None) -> list[Interaction]:
        """``n`` random records of ``task`` (index lookup, then ``n`` row reads).

        Drawn without replacement when enough rows match, with replacement otherwise; an
        empty list when none match. ``held_out=None`` mixes both.
        """
        registry.get(task)  # ValueError naming the known tasks
        ids = self._cached_ids(task, held_out, success)
        if n <= 0 or len(ids) == 0:
            return []
        pick = rng.choice(ids, size=int(n), replace=int(n) > len(ids))
        return self.get_many(pick.tolist())

    def _cached_ids(self, task, held_out, success) -> np.ndarray:
        """Matching ids, read incrementally: rows are only ever appended."""
        key = (task, held_out, success)
        with self._lock:
            ids, upto = self._id_cache.get(key, (np.zeros(0, np.int64), 0))
        pos = self.position()
        if pos > upto:
            ids = np.concatenate([ids, self._ids(task, held_out, success, upto, pos)])
            with self._lock:
                if self._id_cache.get(key, (None, -1))[1] < pos:
                    self._id_cache[key] = (ids, pos)
        return ids

    # -- summaries ----------------------------------------------------------------------

    def stats(self) -> dict:
        """Counts and rates (what ``curious-robot store stats --json`` prints)."""
        per_task = {t: {"count": 0, "success": 0, "held_out": 0} for t in registry.names()}
        for task, n, n_ok, n_held in self._query(
                "SELECT task, count(*), sum(success), sum(held_out) FROM interactions "
                "GROUP BY task"):
            per_task[task] = {"count": int(n), "success": int(n_ok), "held_out": int(n_held)}
        for entry in per_task.values():
            entry["success_rate"] = entry["success"] / entry["count"] if entry["count"] else None
        total = sum(e["count"] for e in per_task.values())
        held = sum(e["held_out"] for e in per_task.values())
        by_policy: dict[str, dict[str, int]] = {}
        policy = "policy" if self._version >= 2 else "''"
        for task, pol, n in self._query(
                f"SELECT task, {policy}, count(*) FROM interactions GROUP BY task, {policy} "
                "ORDER BY task, 2"):
            by_policy.setdefault(task, {})[pol] = int(n)
        objects = self.objects()
        n_images, image_bytes = self._query("SELECT count(*), sum(length(data)) FROM images")[0]
        wal = Path(str(self.path) + "-wal")
        return {
            "path": str(self.path),
            "schema_version": self._version,
            "interactions": total,
            "position": self.position(),
            "tasks": {t: e["count"] for t, e in per_task.items()},
            "success_rate": {t: e["success_rate"] for t, e in per_task.items()},
            "per_task": per_task,
            # task -> policy field (record.policy_text; "" unknown) -> interactions
            "per_policy": by_policy,
            "robots": self.robots(),
            # where the records came from: merged stores name their sources (see sources())
            "sources": self.sources(),
            "objects": len(objects),
            "held_out_objects": sum(1 for o in objects if o[2]),
            "held_out_share": held / total if total else 0.0,
            "images": int(n_images),
            "image_bytes": int(image_bytes or 0),
            "file_bytes": self.path.stat().st_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0,
        }

    def check(self) -> list[str]:
        """Problems found (empty = healthy): SQLite integrity, schema version, duplicate
        seq, orphan images, and every row's images and record (decoded and validated)."""
        problems: list[str] = []
        conn = self._conn()
        try:
            messages = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if messages != ["ok"]:
                problems += [f"integrity_check: {m}" for m in messages[:20]]
            schema = self._schema_problem(conn)
            if schema:
                return problems + [schema]
            for robot, seq, n in conn.execute(
                    "SELECT robot, seq, count(*) FROM interactions GROUP BY robot, seq "
                    "HAVING count(*) > 1"):
                problems.append(f"robot {robot!r} seq {seq} is stored {n} times")
            orphans = conn.execute("SELECT count(*) FROM images WHERE interaction_id NOT IN "
                                   "(SELECT id FROM interactions)").fetchone()[0]
            if orphans:
                problems.append(f"{orphans} images belong to no interaction")
            if self._version >= 3:
                for source, n in conn.execute(
                        "SELECT source, count(*) FROM interactions WHERE source != 0 AND "
                        "source NOT IN (SELECT id FROM sources) GROUP BY source"):
                    problems.append(f"{n} interactions name source {source}, which the "
                                    "sources table does not hold")
            all_ids = self._ids(None, None, None)
        except sqlite3.Error as exc:
            return problems + [f"cannot read {self.path}: {exc}"]
        n_row_problems = 0
        for start in range(0, len(all_ids), _CHUNK):
            chunk = all_ids[start:start + _CHUNK].tolist()
            try:
                rows, blobs = self._fetch(chunk, images=True)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            for i in chunk:
                for p in _row_problems(rows[i], blobs.get(i, {})):
                    n_row_problems += 1
                    if n_row_problems <= PROBLEM_CAP:
                        problems.append(f"row {i} ({rows[i][2]}/{rows[i][3]}): {p}")
        if n_row_problems > PROBLEM_CAP:
            problems.append(f"... and {n_row_problems - PROBLEM_CAP} more row problems")
        return problems


# -- rows <-> records -------------------------------------------------------------------


def _decode_blob(blob: tuple) -> np.ndarray:
    encoding, dtype, shape, crc, data = blob
    return codec.decode(encoding, dtype, tuple(json.loads(shape)), data, crc)


def _build(row: tuple, images: dict[str, np.ndarray] | None) -> Interaction:
    (_id, task, robot, seq, object_id, object_model, held_out, success, action, outcome,
     tactile_depth, tactile_force, truth, stamp_start, stamp_end, sim_step, policy,
     n_views) = row
    rec = Interaction(
        task=task, robot=robot, seq=int(seq), object_id=object_id, object_model=object_model,
        held_out=bool(held_out), success=bool(success), action=json.loads(action),
        outcome=json.loads(outcome), tactile_depth=json.loads(tactile_depth),
        tactile_force=json.loads(tactile_force), truth=json.loads(truth),
        stamp_start=float(stamp_start), stamp_end=float(stamp_end), sim_step=int(sim_step),
        policy=str(policy))
    if images is not None:
        for role in IMAGE_ROLES:
            setattr(rec, role, images.get(role))
        rec.views = [images[f"view{i}"] for i in range(n_views)]
    return rec


def _row_problems(row: tuple, blobs: dict[str, tuple]) -> list[str]:
    problems = []
    n_views = row[-1]
    expected = set(IMAGE_ROLES) | {f"view{i}" for i in range(n_views)}
    for role in sorted(set(blobs) - expected):
        problems.append(f"unexpected image {role!r}")
    for i in range(n_views):
        if f"view{i}" not in blobs:
            problems.append(f"image view{i} is missing ({n_views} views declared)")
    good = {}
    for role, blob in sorted(blobs.items()):
        try:
            good[role] = _decode_blob(blob)
        except (codec.CodecError, ValueError, TypeError) as exc:
            problems.append(f"image {role}: {exc}")
    if problems:
        return problems
    try:
        validate(_build(row, good))
    except InvalidInteraction as exc:
        problems.append(f"invalid record: {exc}")
    except (ValueError, TypeError) as exc:
        problems.append(f"unreadable record: {exc}")
    for value, name in ((row[13], "stamp_start"), (row[14], "stamp_end")):
        if not isinstance(value, float) or not math.isfinite(value):
            problems.append(f"{name} is not a finite number: {value!r}")
    return problems


