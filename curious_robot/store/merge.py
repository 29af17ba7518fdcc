"""Merge replay stores collected apart into one (``curious-robot store merge``).

Rules
- Inputs are read-only (SQLite ``mode=ro``): a merge never changes them, whatever happens.
- Every input must be a replay store whose schema this code reads: the current version or
  an older one the store migrates (its records get the defaults of the columns added
  since, as :data:`~curious_robot.store.store.MIGRATIONS` gives them), with exactly the
  tables and columns that version has. A newer or unknown version, or tables that do not
  match the version the store claims, is a schema mismatch: refused before anything is
  written (:class:`MergeInputError`).
- Records are copied in the order the inputs are given, each input in its row order;
  images are copied as stored (the same compressed bytes and CRC, never decoded).
- ``(robot, seq)`` is the key. A key already merged from an earlier input, with the same
  content (every field but the row id, the time it was stored and its source; images
  byte-equal, or equal once decoded), is an identical duplicate: dropped and counted. The
  same key with different content is a conflict: the merge is refused (exit 1, no
  output), listing the conflicts, since neither record can be called the right one.
- Provenance: the output's ``sources`` table names every input (absolute path, and for a
  record an input had itself merged, the store it came from before, ``origin``), and each
  record's ``source`` column points at its row. ``store stats`` shows them.
- The output is written to a temporary file in its own folder (``.<name>.merge-<pid>``),
  fsynced and then renamed over ``--out``: a crash or a refusal leaves no half store
  (at most that temporary file, from a killed merge, which a later merge does not use).
  An existing output is refused unless ``force``; an output that is one of the inputs
  (under any spelling, through a link) always is.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from curious_robot.store import codec
from curious_robot.store.store import (_SCHEMA, FORMAT_NAME, MIGRATIONS, SCHEMA_VERSION,
                                       ReplayStore, StoreError)

#: records per transaction
BATCH = 500
#: seconds between progress lines
PROGRESS_EVERY_S = 2.0
#: longest list of conflicts kept in a report
CONFLICT_CAP = 50
#: columns compared to tell an identical duplicate from a conflict (all but id, added, source)
_IGNORED = {"id", "added", "source"}


class MergeInputError(ValueError):
    """Bad input (missing file, not a store, schema mismatch, bad output path): nothing
    was written. The message names the file and the problem."""


class MergeConflict(RuntimeError):
    """A (robot, seq) stored with different content in two inputs: nothing was written."""

    def __init__(self, conflicts: list[str], total: int):
        self.conflicts, self.total = conflicts, total
        more = f" (and {total - len(conflicts)} more)" if total > len(conflicts) else ""
        super().__init__(f"{total} conflicting record(s): the same robot and seq with "
                         f"different content{more}; first: {conflicts[0]}")


@dataclass
class InputReport:
    path: str
    schema_version: int
    records: int = 0
    stored: int = 0
    duplicate: int = 0


@dataclass
class MergeReport:
    out: str
    inputs: list[InputReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(i.records for i in self.inputs)

    @property
    def stored(self) -> int:
        return sum(i.stored for i in self.inputs)

    @property
    def duplicate(self) -> int:
        return sum(i.duplicate for i in self.inputs)

    def as_dict(self) -> dict:
        return {"out": self.out, "records": self.records, "stored": self.stored,
                "duplicate": self.duplicate, "seconds": round(self.seconds, 3),
                "records_per_s": round(self.records / self.seconds, 1) if self.seconds else None,
                "inputs": [asdict(i) for i in self.inputs]}


# -- schema ---------------------------------------------------------------------------------


def expected_tables(version: int) -> dict[str, list[str]]:
    """table -> columns of a replay store at schema ``version`` (current schema, less what
    the migrations from ``version`` on add)."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        tables = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]
                  for t in _tables(conn)}
    finally:
        conn.close()
    for v in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS[v]:
            if m := re.match(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", statement):
                tables[m[1]].remove(m[2])
            elif m := re.match(r"\s*CREATE TABLE (\w+)", statement):
                del tables[m[1]]
    return tables


def _tables(conn: sqlite3.Connection, schema: str = "main") -> list[str]:
    return sorted(r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name != 'sqlite_sequence'"))


def _readonly_uri(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro"


def _check_input(path: Path) -> int:
    """The schema version of input store ``path``; :class:`MergeInputError` if it is not a
    store this code can merge."""
    if not path.exists():
        raise MergeInputError(f"{path}: no such file")
    if not path.is_file():
        raise MergeInputError(f"{path} is not a file")
    try:
        ReplayStore(path, readonly=True).close()  # not SQLite, not a store, newer schema
    except StoreError as exc:
        raise MergeInputError(str(exc)) from None
    conn = sqlite3.connect(_readonly_uri(path), uri=True)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta"))
        version = int(meta["schema_version"])
        found = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]
                 for t in _tables(conn)}
    except (sqlite3.Error, KeyError, ValueError) as exc:
        raise MergeInputError(f"cannot read replay store {path}: {exc}") from None
    finally:
        conn.close()
    if meta.get("format") != FORMAT_NAME:  # pragma: no cover - ReplayStore checks it first
        raise MergeInputError(f"{path} is not a replay store")
    expected = expected_tables(version)
    if {t: sorted(c) for t, c in found.items()} != {t: sorted(c) for t, c in expected.items()}:
        diffs = []
        for t in sorted(set(found) | set(expected)):
            have, want = set(found.get(t, ())), set(expected.get(t, ()))
            if t not in found:
                diffs.append(f"table {t} is missing")
            elif t not in expected:
                diffs.append(f"unknown table {t}")
            else:
                if want - have:
                    diffs.append(f"{t} lacks {', '.join(sorted(want - have))}")
                if have - want:
                    diffs.append(f"{t} has unknown {', '.join(sorted(have - want))}")
        raise MergeInputError(f"schema mismatch: {path} says schema version {version} but "
                              f"its tables differ from that version's ({'; '.join(diffs)})")
    return version


def check_paths(inputs: list[str | os.PathLike], out: str | os.PathLike,
                force: bool = False) -> tuple[list[Path], list[int], Path]:
    """(input paths, their schema versions, output path) after every check a merge makes
    before writing; :class:`MergeInputError` naming the first problem."""
    if not inputs:
        raise MergeInputError("no input stores given")
    paths = [Path(p) for p in inputs]
    versions = [_check_input(p) for p in paths]
    for i, p in enumerate(paths):
        for q in paths[:i]:
            if os.path.samefile(p, q):
                raise MergeInputError(f"{p} and {q} are the same file (given twice)")
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise MergeInputError(f"--out {out}: folder {parent} does not exist")
    if out.is_dir():
        raise MergeInputError(f"--out {out} is a folder")
    if os.path.lexists(out):
        for p in paths:
            if out.exists() and os.path.samefile(out, p):
                raise MergeInputError(f"--out {out} is the input {p}: the output must be a "
                                      "new file")
        if not force:
            raise MergeInputError(f"--out {out} exists (--force replaces it once the merge "
                                  "succeeds)")
    for p in paths:  # the output's sidecar files must not be an input's either
        for suffix in ("-wal", "-shm", "-journal"):
            side = Path(str(out) + suffix)
            if side.exists() and os.path.samefile(side, p):
                raise MergeInputError(f"--out {out}: {side} is the input {p}")
    return paths, versions, out


# -- merging --------------------------------------------------------------------------------


def _default_sql(conn: sqlite3.Connection, column: str) -> str:
    for r in conn.execute("PRAGMA main.table_info(interactions)"):
        if r[1] == column:
            if r[4] is None:
                raise MergeInputError(f"column {column} has no default to fill in")
            return r[4]
    raise KeyError(column)  # pragma: no cover


def _images(conn: sqlite3.Connection, schema: str, row_id: int) -> dict[str, tuple]:
    return {r[0]: r[1:] for r in conn.execute(
        f"SELECT role, encoding, dtype, shape, crc32, data FROM {schema}.images "
        "WHERE interaction_id = ?", (row_id,))}


def _same_images(a: dict[str, tuple], b: dict[str, tuple]) -> bool:
    if set(a) != set(b):
        return False
    for role, x in a.items():
        y = b[role]
        if x == y:
            continue
        try:  # the same pixels may have been compressed by another codec version
            u = codec.decode(x[0], x[1], tuple(json.loads(x[2])), x[4], x[3])
            v = codec.decode(y[0], y[1], tuple(json.loads(y[2])), y[4], y[3])
        except (codec.CodecError, ValueError, TypeError):
            return False
        if u.dtype != v.dtype or u.shape != v.shape or not np.array_equal(u, v):
            return False
    return True


def merge(inputs: list[str | os.PathLike], out: str | os.PathLike, *, force: bool = False,
          progress: Callable[[str], None] | None = None) -> MergeReport:
    """Merge ``inputs`` into a new store ``out`` (see the module doc for the rules).

    Raises :class:`MergeInputError` (bad input) or :class:`MergeConflict` with nothing
    written, :class:`StoreError` if writing fails (the temporary file is removed)."""
    t0 = time.monotonic()
    paths, versions, out = check_paths(inputs, out, force)
    report = MergeReport(out=str(out), inputs=[InputReport(str(p), v)
                                               for p, v in zip(paths, versions)])
    tmp = out.with_name(f".{out.name}.merge-{os.getpid()}")
    _remove(tmp)
    try:
        ReplayStore(tmp).close()  # the current schema, made the store's own way
        conn = sqlite3.connect(tmp.resolve().as_uri(), uri=True, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = MEMORY")  # a crash loses only the temp file
            conn.execute("PRAGMA synchronous = OFF")  # fsynced once, before the rename
            conflicts, n_conflicts = [], 0
            total = 0
            for path, entry in zip(paths, report.inputs):
                conn.execute("ATTACH DATABASE ? AS src", (_readonly_uri(path),))
                try:
                    found = _merge_one(conn, path, entry, conflicts, report, t0, progress)
                finally:
                    conn.execute("DETACH DATABASE src")
                n_conflicts += found
                total += entry.stored
            if n_conflicts:
                raise MergeConflict(conflicts, n_conflicts)
            n = conn.execute("SELECT count(*) FROM interactions").fetchone()[0]
            if n != total:  # pragma: no cover - a bug, not an input problem
                raise StoreError(f"merge wrote {n} interactions, expected {total}")
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, out)
        dir_fd = os.open(out.parent if str(out.parent) else ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except sqlite3.Error as exc:
        _remove(tmp)
        raise StoreError(f"cannot write merged store {tmp}: {exc}") from exc
    except BaseException:
        _remove(tmp)
        raise
    report.seconds = time.monotonic() - t0
    return report


def _remove(tmp: Path) -> None:
    for p in (tmp, *(Path(str(tmp) + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _merge_one(conn: sqlite3.Connection, path: Path, entry: InputReport,
               conflicts: list[str], report: MergeReport, t0: float,
               progress: Callable[[str], None] | None) -> int:
    """Copy the records of the attached input ``src``; returns the number of conflicts."""
    have = {r[1] for r in conn.execute("PRAGMA src.table_info(interactions)")}
    columns = [r[1] for r in conn.execute("PRAGMA main.table_info(interactions)")
               if r[1] not in ("id", "source")]
    exprs = [f"s.{c}" if c in have else _default_sql(conn, c) for c in columns]
    compared = [e for c, e in zip(columns, exprs) if c not in _IGNORED]
    # provenance: the input's own sources (0: collected there) -> rows of the output's table
    created = dict(conn.execute("SELECT key, value FROM src.meta")).get("created", "")
    origins = {0: ("", created)}
    if "source" in have:
        for sid, spath, sorigin, screated in conn.execute(
                "SELECT id, path, origin, created FROM src.sources"):
            origins[int(sid)] = (spath + (f" <- {sorigin}" if sorigin else ""), screated)
        used = {r[0] for r in conn.execute("SELECT DISTINCT source FROM src.interactions")}
        origins = {sid: o for sid, o in origins.items() if sid in used}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS srcmap (src INTEGER PRIMARY KEY, "
                 "out INTEGER NOT NULL)")
    conn.execute("DELETE FROM temp.srcmap")
    now = time.time()
    conn.execute("BEGIN")
    try:
        for sid, (origin, screated) in origins.items():
            out_id = conn.execute(
                "INSERT INTO main.sources (path, origin, created, merged) VALUES (?, ?, ?, ?)",
                (os.path.abspath(path), origin, screated, now)).lastrowid
            conn.execute("INSERT INTO temp.srcmap (src, out) VALUES (?, ?)", (sid, out_id))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    source_expr = "s.source" if "source" in have else "0"
    insert_rows = (
        f"INSERT INTO main.interactions ({', '.join(columns)}, source) "
        f"SELECT {', '.join(exprs)}, (SELECT out FROM temp.srcmap WHERE src = {source_expr}) "
        "FROM src.interactions s WHERE s.id > ? AND s.id <= ? AND NOT EXISTS (SELECT 1 FROM "
        "main.interactions m WHERE m.robot = s.robot AND m.seq = s.seq) ORDER BY s.id")
    insert_images = (
        "INSERT INTO main.images (interaction_id, role, encoding, dtype, shape, crc32, data) "
        "SELECT m.id, i.role, i.encoding, i.dtype, i.shape, i.crc32, i.data "
        "FROM src.images i JOIN src.interactions s ON s.id = i.interaction_id "
        "JOIN main.interactions m ON m.robot = s.robot AND m.seq = s.seq "
        "WHERE s.id > ? AND s.id <= ? AND m.source IN (SELECT out FROM temp.srcmap)")
    overlap = ("SELECT s.id, m.id, s.robot, s.seq FROM src.interactions s "
               "JOIN main.interactions m ON m.robot = s.robot AND m.seq = s.seq "
               "WHERE s.id > ? AND s.id <= ?")
    compare = f"SELECT {', '.join(compared)} FROM src.interactions s WHERE s.id = ?"
    compare_main = (f"SELECT {', '.join(c for c in columns if c not in _IGNORED)} "
                    "FROM main.interactions WHERE id = ?")
    ids = [r[0] for r in conn.execute("SELECT id FROM src.interactions ORDER BY id")]
    n_conflicts = 0
    last_print = time.monotonic()
    for start in range(0, len(ids), BATCH):
        lo, hi = (ids[start - 1] if start else 0), ids[min(start + BATCH, len(ids)) - 1]
        conn.execute("BEGIN")
        try:
            for sid, mid, robot, seq in conn.execute(overlap, (lo, hi)).fetchall():
                same = (conn.execute(compare, (sid,)).fetchone()
                        == conn.execute(compare_main, (mid,)).fetchone()
                        and _same_images(_images(conn, "src", sid), _images(conn, "main", mid)))
                if same:
                    entry.duplicate += 1
                    continue
                n_conflicts += 1
                if len(conflicts) < CONFLICT_CAP:
                    first = conn.execute("SELECT path FROM main.sources WHERE id = (SELECT "
                                         "source FROM main.interactions WHERE id = ?)",
                                         (mid,)).fetchone()[0]
                    conflicts.append(f"robot {robot!r} seq {seq}: {path} differs from "
                                     f"{first}")
            entry.stored += conn.execute(insert_rows, (lo, hi)).rowcount
            conn.execute(insert_images, (lo, hi))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        entry.records += min(start + BATCH, len(ids)) - start
        if progress is not None and time.monotonic() - last_print >= PROGRESS_EVERY_S:
            last_print = time.monotonic()
            rate = report.records / max(last_print - t0, 1e-9)
            progress(f"merge: {path}: {entry.records}/{len(ids)} records; "
                     f"{report.records} in all, {rate:.0f} records/s")
    return n_conflicts
