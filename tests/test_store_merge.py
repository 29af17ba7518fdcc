"""``curious-robot store merge``: real SQLite stores made by the store's own API, merged by
the real command (in process, and as a process where exit codes and kills matter)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from curious_robot.cli import main as cli_main
from curious_robot.store import ReplayStore
from curious_robot.store import merge as merge_mod
from tests.test_store import assert_same, full_record, make, rgb

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[1]
TASKS = ("grasp", "push", "poke", "inspect")


def build(path: pathlib.Path, records) -> pathlib.Path:
    with ReplayStore(path) as s:
        for rec in records:
            assert s.add(rec).stored
    return path


def robot_records(robot: str, seqs, **kw):
    return [make(TASKS[seq % 4], robot, seq, **kw) for seq in seqs]


def digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: pathlib.Path) -> dict[str, str]:
    """name -> sha256 of every store file in ``folder`` (SQLite's -shm / -wal sidecars,
    which any reader of a WAL store creates, left out)."""
    return {p.name: digest(p) for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.endswith(("-shm", "-wal"))}


def merge(*argv) -> int:
    return cli_main(["store", "merge", *map(str, argv)])


def by_key(path) -> dict:
    with ReplayStore(path, readonly=True) as s:
        return {(r.robot, r.seq): r for r in s.get_many(s.ids().tolist())}


def raw(path, sql: str, params=()) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def check_ok(path, capsys) -> None:
    capsys.readouterr()
    assert cli_main(["store", "check", str(path)]) == 0, capsys.readouterr().out
    assert capsys.readouterr().out.startswith("OK ")


@pytest.fixture
def two(tmp_path):
    """A: robot0 seq 0..19 (a full record among them); B: robot1 seq 0..14."""
    a = build(tmp_path / "a.db", robot_records("robot0", range(19))
              + [dataclasses.replace(full_record(19), robot="robot0")])
    b = build(tmp_path / "b.db", robot_records("robot1", range(15)))
    return a, b


def test_two_disjoint_stores_merge_into_one_that_passes_check(two, tmp_path, capsys):
    a, b = two
    out = tmp_path / "c.db"
    assert merge(a, b, "--out", out) == 0
    text = capsys.readouterr().out
    assert "merged 2 stores" in text and "35 interactions" in text and "records/s" in text
    check_ok(out, capsys)
    merged, want = by_key(out), {**by_key(a), **by_key(b)}
    assert sorted(merged) == sorted(want) and len(merged) == 35
    for key, rec in want.items():
        assert_same(merged[key], rec)
    # images are copied as stored: the same compressed bytes and CRC
    blobs = {}
    for src in (a, b):
        blobs.update({k: v for k, v in _blobs(src).items()})
    assert _blobs(out) == blobs
    with ReplayStore(out, readonly=True) as s:
        robots = s.robots()
    assert robots["robot0"]["n_missing"] == robots["robot1"]["n_missing"] == 0


def _blobs(path) -> dict:
    return {(r, q, role): (crc, data) for r, q, role, crc, data in raw(
        path, "SELECT i.robot, i.seq, m.role, m.crc32, m.data FROM images m "
              "JOIN interactions i ON i.id = m.interaction_id")}


def test_overlap_identical_duplicates_are_dropped_and_counted(tmp_path, capsys):
    a = build(tmp_path / "a.db", robot_records("robot0", range(20)))
    # B was collected while robot0 resent seq 15..19 to it as well: the same records
    b = build(tmp_path / "b.db", robot_records("robot0", range(15, 30))
              + robot_records("robot1", range(10)))
    out = tmp_path / "c.db"
    assert merge(a, b, "--out", out, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["records"], report["stored"], report["duplicate"]) == (45, 40, 5)
    assert [(i["stored"], i["duplicate"]) for i in report["inputs"]] == [(20, 0), (20, 5)]
    check_ok(out, capsys)
    with ReplayStore(out, readonly=True) as s:
        robots = s.robots()
    assert robots["robot0"] == {"count": 30, "min_seq": 0, "max_seq": 29, "n_missing": 0,
                                "gaps": []}
    assert merge(a, b, "--out", tmp_path / "d.db") == 0
    assert "5 identical duplicates dropped" in capsys.readouterr().out


@pytest.mark.parametrize("change", ["outcome", "image"])
def test_same_robot_and_seq_with_other_content_is_a_conflict_and_refused(tmp_path, capsys,
                                                                         change):
    a = build(tmp_path / "a.db", robot_records("robot0", range(10)))
    other = (make("push", "robot0", 5, outcome=[0.5, 0.5, 0.5]) if change == "outcome"
             else make("push", "robot0", 5, before=rgb(99)))
    b = build(tmp_path / "b.db", robot_records("robot0", range(3, 5)) + [other]
              + robot_records("robot1", range(4)))
    before = snapshot(tmp_path)
    out = tmp_path / "c.db"
    assert merge(a, b, "--out", out) == 1
    err = capsys.readouterr().err
    assert f"CONFLICT: robot 'robot0' seq 5: {b} differs from {a}" in err
    assert "1 conflicting record(s)" in err and "nothing written" in err
    assert snapshot(tmp_path) == before  # no output, no temporary file, inputs unchanged
    # an existing output is kept as it was when a --force merge is refused
    keep = build(out, robot_records("robot9", range(2)))
    kept = digest(keep)
    assert merge(a, b, "--out", out, "--force") == 1
    assert digest(out) == kept
    assert snapshot(tmp_path) == {**before, "c.db": kept}


def test_provenance_names_each_record_s_source_file_also_through_merges(two, tmp_path,
                                                                       capsys):
    a, b = two
    c = build(tmp_path / "c.db", robot_records("robot2", range(5)))
    ab = tmp_path / "ab.db"
    assert merge(a, b, "--out", ab) == 0
    abc = tmp_path / "abc.db"
    assert merge(ab, c, "--out", abc) == 0
    capsys.readouterr()
    rows = raw(abc, "SELECT i.robot, s.path, s.origin FROM interactions i "
                    "JOIN sources s ON s.id = i.source")
    assert len(rows) == 40
    origin = {"robot0": (str(ab), str(a)), "robot1": (str(ab), str(b)),
              "robot2": (str(c), "")}
    for robot, path, via in rows:
        assert (path, via) == origin[robot], robot
    check_ok(abc, capsys)
    with ReplayStore(abc, readonly=True) as s:
        sources = s.stats()["sources"]
    assert [(x["path"], x["origin"], x["interactions"]) for x in sources] == [
        (str(ab), str(a), 20), (str(ab), str(b), 15), (str(c), "", 5)]
    assert cli_main(["store", "stats", str(abc)]) == 0
    assert f"15 interactions merged from {ab} (which had them from {b})" in \
        capsys.readouterr().out


def test_a_version_2_store_migrates_to_provenance_and_merges(tmp_path, capsys):
    """Schema 2 -> 3 adds the sources table and the source column (0: collected here)."""
    old = build(tmp_path / "old.db", robot_records("robot0", range(6)))
    con = sqlite3.connect(old)
    con.executescript("DROP TABLE sources; ALTER TABLE interactions DROP COLUMN source;"
                      "UPDATE meta SET value = '2' WHERE key = 'schema_version';")
    con.close()
    with ReplayStore(old, readonly=True) as s:  # read as it is
        assert s.stats()["schema_version"] == 2 and s.sources() == []
    out = tmp_path / "m.db"
    assert merge(old, "--out", out) == 0  # an older input merges; it stays untouched
    assert "(schema 2): 6 records, 6 merged" in capsys.readouterr().out
    assert raw(old, "SELECT value FROM meta WHERE key = 'schema_version'") == [("2",)]
    check_ok(out, capsys)
    with ReplayStore(old) as s:  # a writer migrates
        assert s.stats()["schema_version"] == 3
        assert s.sources() == [{"id": 0, "path": "", "origin": "", "created": "",
                                "merged": None, "interactions": 6}]
        assert s.add(make("grasp", "robot0", 6)).stored
        assert s.check() == []


def test_a_version_1_store_merges_with_the_defaults_of_newer_columns(two, tmp_path, capsys):
    a, _ = two
    v1 = build(tmp_path / "v1.db", robot_records("robot5", range(4)))
    con = sqlite3.connect(v1)
    con.executescript("DROP TABLE sources; ALTER TABLE interactions DROP COLUMN source;"
                      "ALTER TABLE interactions DROP COLUMN policy;"
                      "UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    con.close()
    out = tmp_path / "m.db"
    assert merge(a, v1, "--out", out) == 0
    check_ok(out, capsys)
    assert {r.policy for k, r in by_key(out).items() if k[0] == "robot5"} == {""}


def _bad_inputs(tmp_path: pathlib.Path, a: pathlib.Path, b: pathlib.Path):
    """(name, argv, message) of every bad input the merge must refuse."""
    newer = build(tmp_path / "newer.db", robot_records("robot7", range(3)))
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    lacking = build(tmp_path / "lacking.db", robot_records("robot8", range(3)))
    con = sqlite3.connect(lacking)
    con.execute("ALTER TABLE interactions DROP COLUMN policy")
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("not a store\n" * 20)
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    existing = build(tmp_path / "existing.db", robot_records("robot9", range(2)))
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(a)
    out = tmp_path / "out.db"
    return [
        ("schema newer", [a, newer, "--out", out], "schema version '99'"),
        ("schema mismatch", [lacking, b, "--out", out],
         f"schema mismatch: {lacking} says schema version 3 but its tables differ from "
         "that version's (interactions lacks policy)"),
        ("text file", [a, text, "--out", out], "not an SQLite database"),
        ("foreign sqlite", [foreign, b, "--out", out], "an SQLite database but not a replay"),
        ("missing input", [a, tmp_path / "absent.db", "--out", out], "absent.db: no such file"),
        ("out is an input", [a, b, "--out", b], f"--out {b} is the input {b}"),
        ("out is an input, other spelling", [a, b, "--out", tmp_path / "sub" / ".." / "a.db"],
         "is the input"),
        ("out links to an input", [b, a, "--out", link, "--force"], f"is the input {a}"),
        ("out exists", [a, b, "--out", existing], "exists (--force replaces it"),
        ("out folder missing", [a, b, "--out", tmp_path / "nope" / "c.db"], "does not exist"),
        ("out is a folder", [a, b, "--out", tmp_path / "sub"], "is a folder"),
        ("input twice", [a, b, link, "--out", out], "are the same file (given twice)"),
    ]


def test_bad_inputs_exit_2_name_the_problem_and_touch_nothing(two, tmp_path, capsys):
    a, b = two
    cases = _bad_inputs(tmp_path, a, b)
    before = snapshot(tmp_path)
    for name, argv, message in cases:
        capsys.readouterr()
        assert merge(*argv) == 2, name
        err = capsys.readouterr().err
        assert message in err and "nothing written" in err, (name, err)
        assert snapshot(tmp_path) == before, name  # inputs unchanged, no output, no temp
        assert not (tmp_path / "out.db").exists()
    with pytest.raises(SystemExit) as exc:  # no input at all: argparse's usage error
        merge("--out", tmp_path / "out.db")
    assert exc.value.code == 2


def test_force_replaces_an_existing_output(two, tmp_path, capsys):
    a, b = two
    out = build(tmp_path / "c.db", robot_records("robot9", range(2)))
    assert merge(a, b, "--out", out, "--force") == 0
    check_ok(out, capsys)
    assert {k[0] for k in by_key(out)} == {"robot0", "robot1"}


def test_progress_reports_records_per_second(two, tmp_path, capsys, monkeypatch):
    a, b = two
    monkeypatch.setattr(merge_mod, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(merge_mod, "BATCH", 4)
    assert merge(a, b, "--out", tmp_path / "c.db") == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("merge: ")]
    assert len(lines) == 5 + 4  # 20 records of A and 15 of B in batches of 4
    assert lines[-1].startswith(f"merge: {b}: 15/15 records; 35 in all, ")
    assert all(x.endswith("records/s") for x in lines)


KILLED_MERGE = textwrap.dedent("""
    import os, signal, sys
    from curious_robot.store import merge as m
    m.BATCH, m.PROGRESS_EVERY_S = 5, 0.0
    seen = []
    def progress(line):
        seen.append(line)
        if len(seen) == 3:  # part of the way through: die without any cleanup
            os.kill(os.getpid(), signal.SIGKILL)
    m.merge(sys.argv[1:-1], sys.argv[-1], progress=progress)
    """)


def test_a_merge_killed_midway_leaves_no_output(two, tmp_path, capsys):
    a, b = two
    out = tmp_path / "c.db"
    before = snapshot(tmp_path)
    proc = subprocess.run([sys.executable, "-c", KILLED_MERGE, str(a), str(b), str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists()
    left = set(snapshot(tmp_path)) - set(before)
    assert all(n.startswith(".c.db.merge-") for n in left), left  # only its temporary file
    assert {n: before[n] for n in before} == {n: digest(tmp_path / n) for n in before}
    # the real command, as a process, then merges to the same output
    proc = subprocess.run([sys.executable, "-m", "curious_robot.cli", "store", "merge",
                           str(a), str(b), "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    check_ok(out, capsys)
    assert len(by_key(out)) == 35
    os.unlink(out)
