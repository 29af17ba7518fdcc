"""The replay store: real SQLite files, real records with numpy images, real processes."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import threading

import numpy as np
import pytest

from curious_robot.cli import main as cli_main
from curious_robot.record import Interaction, InvalidInteraction
from curious_robot.store import AddResult, ReplayStore, StoreError

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[1]
H, W = 32, 40


def rgb(seed: int, h: int = H, w: int = W) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def depth(seed: int, h: int = H, w: int = W) -> np.ndarray:
    d = np.random.default_rng(seed).uniform(0.3, 1.5, (h, w)).astype(np.float32)
    d[0, :4] = [0.0, -0.0, np.float32(1e-40), np.finfo(np.float32).max]  # edge values
    return d


def make(task: str = "grasp", robot: str = "r0", seq: int = 0, **kw) -> Interaction:
    action = {"grasp": [0.1, -0.2, 1.3], "push": [0.1, 0.2, 0.3, 0.4], "poke": [0.01, 0.02],
              "inspect": [0.0, 0.1, 0.5], "crash": [0.3, 1.0]}[task]
    outcome = {"grasp": [0.031], "push": [0.01, -0.02, 0.3],
               "poke": [812.5, -0.25, 0.004, 3.5], "inspect": [3.0],
               "crash": [1.25]}[task]
    fields = dict(task=task, robot=robot, seq=seq, object_id=f"obj{seq % 3}",
                  object_model="cube.urdf", action=action, outcome=outcome,
                  success=seq % 2 == 0, before=rgb(seq))
    fields.update(kw)
    return Interaction(**fields)


def full_record(seq: int = 7) -> Interaction:
    return make("poke", "robot_a", seq, object_id="mug_3", object_model="mug.urdf",
                held_out=True, action=[0.123456789012345, -1e-9], success=True,
                outcome=[812.5, -0.25, 0.004, 3.5], before=rgb(1), after=rgb(2, 17, 23),
                depth_before=depth(3), views=[rgb(4), rgb(5, 8, 9)],
                tactile_depth=[0.0, 0.001, 0.002], tactile_force=[0.0, 0.8, 1.7],
                truth={"stiffness": 812.0, "mass": 0.25}, stamp_start=1700000000.123456,
                stamp_end=1700000001.5, sim_step=123456789)


def assert_same(a: Interaction, b: Interaction) -> None:
    for f in dataclasses.fields(Interaction):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "views":
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            assert x.tobytes() == y.tobytes(), f.name  # bit-exact, -0.0 included
        else:
            assert x == y and type(x) is type(y), (f.name, x, y)


def raw_count(path, table: str) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def path(tmp_path) -> pathlib.Path:
    return tmp_path / "replay.db"


@pytest.fixture
def store(path):
    with ReplayStore(path) as s:
        yield s


# -- round trip -------------------------------------------------------------------------


def test_round_trip_every_field_and_image(store, path):
    rec = full_record()
    res = store.add(rec)
    assert res == AddResult("stored", 1) and res.stored
    assert_same(store.get(res.row_id), rec)
    store.close()
    with ReplayStore(path, readonly=True) as again:  # from the file, read-only
        back = again.get(1)
        assert_same(back, rec)
        assert back.depth_before.flags.writeable and back.before.flags.c_contiguous
        light = again.get(1, images=False)
        assert light.before is None and light.views == [] and light.depth_before is None
        assert_same(light, dataclasses.replace(rec, before=None, after=None,
                                               depth_before=None, views=[]))


@pytest.mark.parametrize("task", ["grasp", "push", "poke", "inspect", "crash"])
def test_round_trip_each_task(store, task):
    rec = make(task, seq=3, views=[rgb(9)] * (3 if task == "inspect" else 0))
    assert_same(store.get(store.add(rec).row_id), rec)


def test_rgb_stays_rgb_in_png(store, path):
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 0] = 255  # pure red
    store.add(make(before=img))
    con = sqlite3.connect(path)
    blob, encoding = con.execute("SELECT data, encoding FROM images").fetchone()
    con.close()
    import cv2  # a PNG viewer must see red too: OpenCV decodes to BGR

    assert encoding == "png"
    assert cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_UNCHANGED)[0, 0].tolist() \
        == [0, 0, 255]


def test_get_many_order_repeats_and_unknown(store):
    ids = [store.add(make(seq=s)).row_id for s in range(4)]
    got = store.get_many([ids[2], ids[0], ids[2]])
    assert [r.seq for r in got] == [2, 0, 2]
    with pytest.raises(KeyError, match="row id 99"):
        store.get(99)


# -- duplicates and malformed input ------------------------------------------------------


def test_duplicate_is_reported_and_store_untouched(store, path):
    first = make(seq=5)
    assert store.add(first).status == "stored"
    before = (store.count(), store.position(), raw_count(path, "images"))
    other = make(seq=5, task="push", before=rgb(77), after=rgb(78))
    assert store.add(other) == AddResult("duplicate", None)
    assert (store.count(), store.position(), raw_count(path, "images")) == before
    assert_same(store.get(1), first)
    assert store.add(make(seq=5, robot="r1")).status == "stored"  # seq is per robot


def _bad(**kw):
    return lambda rec: dataclasses.replace(rec, **kw)


MALFORMED = {
    "rgb with 4 channels": _bad(before=np.zeros((H, W, 4), np.uint8)),
    "rgb as float": _bad(before=np.zeros((H, W, 3), np.float32)),
    "rgb without channels": _bad(after=np.zeros((H, W), np.uint8)),
    "depth as uint8": _bad(depth_before=np.zeros((H, W), np.uint8)),
    "depth with channels": _bad(depth_before=np.zeros((H, W, 3), np.float32)),
    "depth with NaN": _bad(depth_before=np.full((H, W), np.nan, np.float32)),
    "empty view": _bad(views=[rgb(1), np.zeros((0, W, 3), np.uint8)]),
    "view not an array": _bad(views=[b"\x00" * (H * W * 3)]),
    "no before image": _bad(before=None),
    "NaN in action": _bad(action=[0.1, float("nan"), 0.0]),
    "inf in action": _bad(action=[0.1, float("inf"), 0.0]),
    "NaN in outcome": _bad(outcome=[float("nan")]),
    "short action": _bad(action=[0.1, 0.2]),
    "unknown task": _bad(task="juggle"),
    "empty robot": _bad(robot=""),
    "negative seq": _bad(seq=-1),
    "NaN in truth": _bad(truth={"mass": float("nan")}),
    "tactile lengths": _bad(tactile_depth=[0.1], tactile_force=[]),
    "NaN stamp": _bad(stamp_end=float("nan")),
    "huge sim_step": _bad(sim_step=2**64),
    # bounds (record.LIMITS): what an image codec or the learner's memory would choke on
    "side over the limit": _bad(before=np.zeros((1, 1_100_000, 3), np.uint8)),
    "too many views": _bad(views=[rgb(1)] * 33),
    "too many tactile samples": _bad(tactile_depth=[0.0] * 10_001,
                                     tactile_force=[0.0] * 10_001),
    "robot name too long": _bad(robot="r" * 257),
    "object id too long": _bad(object_id="o" * 257),
    "action too large": _bad(action=[0.1, 1e9, 0.0]),
    "too many truth entries": _bad(truth={f"k{i}": 0.0 for i in range(65)}),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_rejected_before_any_write(store, path, kind):
    store.add(make(seq=0))
    snapshot = (store.count(), store.position(), raw_count(path, "images"))
    with pytest.raises(InvalidInteraction):
        store.add(MALFORMED[kind](make(seq=1)))
    assert (store.count(), store.position(), raw_count(path, "images")) == snapshot
    assert store.last_seq("r0") == 0 and store.check() == []


# -- indexes, sampling, summaries -------------------------------------------------------


def test_seq_gaps_and_last_seq(store):
    for s in (0, 1, 2, 5, 6, 9):
        store.add(make(seq=s))
    for s in (10, 11):
        store.add(make(robot="r1", seq=s))
    store.add(make(robot="r2", seq=0))
    store.add(make(robot="r2", seq=1000))
    robots = store.robots()
    assert robots["r0"] == {"count": 6, "min_seq": 0, "max_seq": 9, "n_missing": 4,
                            "gaps": [3, 4, 7, 8]}
    assert robots["r1"]["gaps"] == [] and robots["r1"]["n_missing"] == 0
    assert robots["r2"]["n_missing"] == 999 and robots["r2"]["gaps"] == list(range(1, 101))
    assert store.last_seq("r0") == 9 and store.last_seq("nobody") is None


def test_sample_count_ids_by_task_held_out_success(store):
    for s in range(30):
        store.add(make("grasp", seq=s, held_out=s % 3 == 0))
    for s in range(30, 40):
        store.add(make("push", seq=s, after=rgb(s)))
    assert store.count() == 40 and store.count("push") == 10
    assert store.count("grasp", held_out=True) == 10
    assert store.count("grasp", held_out=False, success=True) == 10
    ids = store.ids("grasp", held_out=True)
    assert ids.dtype == np.int64 and np.all(np.diff(ids) > 0) and len(ids) == 10
    assert store.ids(after_id=35).tolist() == [36, 37, 38, 39, 40]
    rng = np.random.default_rng(0)
    batch = store.sample("grasp", 8, rng)
    assert len(batch) == 8 and len({r.seq for r in batch}) == 8  # without replacement
    assert all(r.task == "grasp" and not r.held_out for r in batch)
    assert all(r.held_out for r in store.sample("grasp", 5, rng, held_out=True))
    ok = store.sample("grasp", 5, rng, success=True)
    assert all(r.success and not r.held_out for r in ok)
    assert len(store.sample("push", 25, rng)) == 25  # more than stored: with replacement
    assert store.sample("poke", 4, rng) == []
    with pytest.raises(ValueError, match="unknown task"):
        store.sample("juggle", 4, rng)
    store.add(make("poke", seq=100))  # the cached index sees rows added later
    assert [r.seq for r in store.sample("poke", 2, rng)] == [100, 100]
    assert store.position() == 41


def test_sampling_is_the_same_for_the_same_seed(store):
    for s in range(20):
        store.add(make(seq=s))
    a = [r.seq for r in store.sample("grasp", 6, np.random.default_rng(3))]
    b = [r.seq for r in store.sample("grasp", 6, np.random.default_rng(3))]
    assert a == b


def test_objects_stats_and_check_on_a_healthy_store(store, path, capsys):
    for s in range(6):  # the cube spawned twice (ids o0, o2), the mug once (o1)
        store.add(make("grasp", seq=s, object_id=f"o{s % 3}", held_out=s % 3 == 1,
                       object_model="mug.urdf" if s % 3 == 1 else "cube.urdf"))
    store.add(make("inspect", seq=6, object_id="o4", object_model="", views=[rgb(1), rgb(2)]))
    store.add(make("poke", seq=7, object_id="o4", object_model="", depth_before=depth(1)))
    assert store.objects() == [("cube.urdf", 2, False, 4), ("mug.urdf", 1, True, 2),
                               ("o4", 1, False, 2)]
    stats = store.stats()
    assert stats["tasks"] == {"grasp": 6, "push": 0, "poke": 1, "inspect": 1, "crash": 0}
    assert stats["success_rate"]["grasp"] == 0.5 and stats["success_rate"]["push"] is None
    assert stats["objects"] == 3 and stats["held_out_share"] == 2 / 8
    assert stats["robots"]["r0"]["count"] == 8 and stats["file_bytes"] > 0
    assert store.check() == []

    assert cli_main(["store", "stats", str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tasks"]["grasp"] == 6 and printed["interactions"] == 8
    assert cli_main(["store", "stats", str(path)]) == 0
    assert "grasp" in capsys.readouterr().out
    assert cli_main(["store", "check", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("OK")


def test_export_writes_pngs(store, path, tmp_path, capsys):
    store.add(make("poke", seq=0, depth_before=depth(1), views=[]))
    store.add(make("grasp", seq=1))
    out = tmp_path / "png"
    assert cli_main(["store", "export", str(path), "--out", str(out), "--limit", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000001_poke_r0_0_before.png",
                                                    "000001_poke_r0_0_depth_before.png"]


# -- damage and bad files ----------------------------------------------------------------


def _corrupt(path, sql: str, params=()) -> None:
    con = sqlite3.connect(path)
    con.execute(sql, params)
    con.commit()
    con.close()


@pytest.mark.parametrize("fix_crc", [False, True])
def test_check_detects_a_corrupt_image_blob(store, path, capsys, fix_crc):
    store.add(make(seq=0))
    store.add(make(seq=1, depth_before=depth(2)))
    store.close()
    garbage = os.urandom(500)
    import zlib

    for role in ("before", "depth_before"):
        crc = zlib.crc32(garbage) if fix_crc else 12345
        _corrupt(path, "UPDATE images SET data = ?, crc32 = ? WHERE interaction_id = 2 AND "
                 "role = ?", (garbage, crc, role))
    with ReplayStore(path, readonly=True) as s:
        problems = s.check()
        assert len(problems) == 2 and all(p.startswith("row 2 (r0/1): image ") for p in problems)
        assert s.get(1).seq == 0
        with pytest.raises(StoreError, match="row 2"):
            s.get(2)
    assert cli_main(["store", "check", str(path)]) == 1
    assert "PROBLEM: row 2" in capsys.readouterr().out


def test_check_detects_an_invalid_record_and_shape_mismatch(store, path):
    store.add(make(seq=0))
    store.add(make(seq=1))
    store.close()
    _corrupt(path, "UPDATE interactions SET action = '[1.0]' WHERE id = 1")
    _corrupt(path, "UPDATE images SET shape = '[8, 8, 3]' WHERE interaction_id = 2")
    with ReplayStore(path) as s:
        problems = s.check()
    assert len(problems) == 2
    assert "invalid record" in problems[0] and "grasp action needs 3" in problems[0]
    assert "row 2" in problems[1] and "declared" in problems[1]


def test_schema_version_mismatch_is_a_clear_error(store, path, capsys):
    store.add(make())
    store.close()
    _corrupt(path, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"schema version '99'.*newer"):
            ReplayStore(path, readonly=readonly)
    assert cli_main(["store", "check", str(path)]) == 1
    assert "schema version" in capsys.readouterr().err


def test_non_sqlite_and_foreign_files_are_clear_errors(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 10)
    with pytest.raises(StoreError, match="notes.txt is not an SQLite database"):
        ReplayStore(text)
    assert text.read_text().startswith("this is not")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.close()
    with pytest.raises(StoreError, match="other.db is an SQLite database but not a replay"):
        ReplayStore(other)
    with pytest.raises(StoreError, match="is a folder"):
        ReplayStore(tmp_path)
    assert cli_main(["store", "stats", str(text)]) == 1
    assert "not an SQLite database" in capsys.readouterr().err


def test_bad_folder_is_a_clear_error_and_creates_nothing(tmp_path, capsys):
    target = tmp_path / "missing" / "replay.db"
    with pytest.raises(StoreError, match=r"folder .*missing does not exist"):
        ReplayStore(target)
    with pytest.raises(StoreError, match="does not exist"):
        ReplayStore(tmp_path / "absent.db", readonly=True)
    assert list(tmp_path.iterdir()) == []
    for action in ("stats", "check"):
        assert cli_main(["store", action, str(target)]) == 2
        assert "no such file" in capsys.readouterr().err


def test_readonly_store_refuses_to_write(store, path):
    store.add(make())
    with ReplayStore(path, readonly=True) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.add(make(seq=1))
        assert ro.count() == 1


# -- concurrency and crashes -------------------------------------------------------------


def test_one_writer_thread_and_readers_at_once(store, path):
    """The learner's ingestion thread writes while a training thread and another store
    (as the command line would open it) read."""
    errors: list[BaseException] = []

    def write():
        try:
            for s in range(60):
                assert store.add(make(seq=s)).stored
        except BaseException as exc:  # noqa: B036 - reported below
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    rng = np.random.default_rng(0)
    with ReplayStore(path, readonly=True) as other:
        while writer.is_alive():
            seen = other.count()
            batch = store.sample("grasp", 4, rng)  # same store object, this thread
            assert all(r.before.shape == (H, W, 3) for r in batch)
            assert other.position() >= seen
        writer.join()
    assert not errors and store.count() == 60 and store.check() == []


CHILD = """
import sys
import numpy as np
from curious_robot.record import Interaction
from curious_robot.store import ReplayStore

store = ReplayStore(sys.argv[1])
last = store.last_seq("r0")
seq = 0 if last is None else last + 1
rng = np.random.default_rng(seq)
while True:
    imgs = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    rec = Interaction("inspect", "r0", seq, action=[0.0, 0.1, 0.2], outcome=[2.0],
                      before=imgs[0], views=imgs[1:], success=True)
    assert store.add(rec).stored
    print(seq, flush=True)
    seq += 1
"""


def _run_until_killed(path, n_acks: int) -> list[int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    acked: list[int] = []
    try:
        while len(acked) < n_acks:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"writer died: {proc.stderr.read()}")
            acked.append(int(line))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return acked + [int(s) for s in rest.split()]  # printed after a commit: acked too


def test_commits_are_fsynced_by_default(path):
    with ReplayStore(path) as s:
        assert s._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with ReplayStore(path, synchronous="normal") as s:
        assert s._conn().execute("PRAGMA synchronous").fetchone()[0] == 1


def test_a_second_exclusive_writer_is_refused_across_processes(path):
    code = ("import sys; from curious_robot.store import ReplayStore, StoreError\n"
            "try:\n    ReplayStore(sys.argv[1], exclusive=True)\n"
            "except StoreError as e:\n    print(e); sys.exit(2)\nprint('opened')")
    first = ReplayStore(path, exclusive=True)
    first.add(make(seq=0))
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out.stdout + out.stderr
    assert f"another learner (pid {os.getpid()})" in out.stdout
    with ReplayStore(path, readonly=True) as reader:  # readers are never refused
        assert reader.count() == 1
    first.close()  # released: the next learner opens it
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "opened" in out.stdout, out.stderr


def test_acknowledged_interactions_survive_kill_9(path):
    acked = _run_until_killed(path, 25)
    with ReplayStore(path) as s:
        assert s.check() == []
        stored = {r.seq for r in s.get_many(s.ids(), images=False)}
        assert set(acked) <= stored and stored == set(range(len(stored)))
    acked2 = _run_until_killed(path, 15)  # the writer resumes after its last seq
    assert acked2[0] == max(stored) + 1
    with ReplayStore(path, readonly=True) as s:
        assert s.check() == []
        stored = {r.seq for r in s.get_many(s.ids(), images=False)}
        assert set(acked) | set(acked2) <= stored and stored == set(range(len(stored)))
        assert s.robots()["r0"]["n_missing"] == 0


def test_command_line_module_is_light():
    code = ("import sys, curious_robot.store.cli; "
            "print(sorted({'cv2', 'numpy', 'sqlite3'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
