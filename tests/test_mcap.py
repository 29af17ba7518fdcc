"""Replay store <-> MCAP: real stores, real MCAP files read back with the ``mcap`` reader and
``mcap_ros2`` decoder, CDR bytes checked against rclpy's own serializer."""

from __future__ import annotations

import hashlib
import json
import pathlib
import sqlite3

import numpy as np
import pytest
import yaml

from curious_robot.cli import main as cli_main
from curious_robot.record import Interaction
from curious_robot.store import ReplayStore
from curious_robot.store import mcap_io

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[1]
T0 = 1_760_000_000.0  # an epoch-scale stamp, like the ROS clock gives


def scene(seed: int, h: int = 128, w: int = 128) -> np.ndarray:
    """A rendered-looking rgb8 image: a table-coloured gradient, a few objects, a bit of
    sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([150 + 40 * x / w, 120 + 30 * y / h, 90 + 0 * x], -1)
    for _ in range(3):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), rng.integers(6, 20)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
    img += rng.normal(0, 2, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def depth(seed: int, h: int = 128, w: int = 128) -> np.ndarray:
    d = np.random.default_rng(seed).uniform(0.6, 0.75, (h, w)).astype(np.float32)
    d[0, :3] = [0.0, -0.0, np.float32(1e-40)]  # edge values survive bit-exactly
    return d


def record(task: str, robot: str, seq: int) -> Interaction:
    """A record of ``task`` as the robots make them (images, tactile, truth, stamps)."""
    action = {"grasp": [0.05, -0.02, 1.1], "push": [0.0, 0.1, 0.1, -0.05],
              "poke": [0.01, 0.02], "inspect": [0.0, 0.1, 0.5], "crash": [0.4, 1.5]}[task]
    outcome = {"grasp": [0.031], "push": [0.01, -0.02, 0.3],
               "poke": [812.5, -0.25, 0.004, 3.5], "inspect": [3.0], "crash": [1.25]}[task]
    start = T0 + 10.0 * seq + (0.5 if robot == "robot1" else 0.0) + 0.123456789
    rec = Interaction(task=task, robot=robot, seq=seq, object_id=f"obj{seq % 3}",
                      object_model="mug.urdf", held_out=seq % 4 == 0, action=action,
                      success=seq % 2 == 0, outcome=outcome, before=scene(seq),
                      truth={"stiffness": 812.0 + seq, "mass": 0.25},
                      stamp_start=start, stamp_end=start + 3.5, sim_step=1000 * seq + 7)
    if task == "push":
        rec.after, rec.depth_before = scene(100 + seq), depth(seq)
    elif task == "poke":
        rec.tactile_depth = [0.001 * i for i in range(40)]
        rec.tactile_force = [max(0.0, 812.5 * (0.001 * i - 0.004)) for i in range(40)]
    elif task == "inspect":
        rec.views = [scene(200 + seq + k, 96, 112) for k in range(4)]
    elif task == "crash":
        rec.truth = {"collided": 0.0}
    return rec


TASKS = ("grasp", "push", "poke", "inspect", "crash")


def records() -> list[Interaction]:
    """Two of every task, over two robots."""
    out = []
    for i in range(2 * len(TASKS)):
        robot = "robot0" if i % 2 == 0 else "robot1"
        out.append(record(TASKS[i % len(TASKS)], robot, i // 2))
    return out


def key(rec: Interaction) -> tuple[str, int]:
    return rec.robot, rec.seq


def assert_same(a: Interaction, b: Interaction) -> None:
    for name in Interaction.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if name == "views":
            assert len(x) == len(y)
            for u, v in zip(x, y):
                assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert x.tobytes() == y.tobytes(), name
        else:
            assert x == y and type(x) is type(y), (name, x, y)


def image_hashes(path) -> dict[tuple[str, int], dict[str, str]]:
    """(robot, seq) -> role -> sha256 of the decoded image (dtype, shape and bytes)."""
    out = {}
    with ReplayStore(path, readonly=True) as s:
        for rec in s.get_many(s.ids().tolist()):
            out[key(rec)] = {role: hashlib.sha256(
                f"{img.dtype}{img.shape}".encode() + img.tobytes()).hexdigest()
                for role, img in rec.images().items()}
    return out


def all_records(path) -> dict[tuple[str, int], Interaction]:
    with ReplayStore(path, readonly=True) as s:
        return {key(r): r for r in s.get_many(s.ids().tolist())}


@pytest.fixture
def src(tmp_path) -> pathlib.Path:
    path = tmp_path / "src.db"
    with ReplayStore(path) as s:
        for rec in records():
            assert s.add(rec).stored
    return path


@pytest.fixture
def bag(src, tmp_path) -> pathlib.Path:
    out = tmp_path / "run.mcap"
    assert cli_main(["store", "export", str(src), "--format", "mcap", "--out", str(out)]) == 0
    return out


def write_bag(path, messages, chunk_size=mcap_io.CHUNK_SIZE) -> None:
    """An MCAP file of (topic, type, log_time, dict) laid out as export writes them."""
    with open(path, "wb") as f:
        w = mcap_io._BagWriter(f, chunk_size=chunk_size)
        for m in messages:
            w.write(*m)
        w.finish(pathlib.Path(path).name)


# -- schemas ------------------------------------------------------------------------------


def test_schema_text_is_rosbag2s_concatenation_of_the_installed_msg_files():
    share = pathlib.Path(mcap_io.sys.prefix) / "share"
    image = (share / "sensor_msgs/msg/Image.msg").read_text()
    header = (share / "std_msgs/msg/Header.msg").read_text()
    time = (share / "builtin_interfaces/msg/Time.msg").read_text()
    sep = "=" * 80 + "\n"
    assert mcap_io.schema_text("sensor_msgs/msg/Image") == (
        image + "\n" + sep + "MSG: std_msgs/Header\n" + header
        + "\n" + sep + "MSG: builtin_interfaces/Time\n" + time)

    text = mcap_io.schema_text(mcap_io.INTERACTION_TYPE)
    sections = [line[5:] for line in text.splitlines() if line.startswith("MSG: ")]
    # every dependency once, depth first in sorted order, as rosbag2 writes them
    assert sections == ["builtin_interfaces/Time", "curious_robot_interfaces/TactileResponse",
                        "std_msgs/Header", "sensor_msgs/Image"]
    assert text.startswith((ROOT / "interfaces/msg/Interaction.msg").read_text())
    assert mcap_io.schema_difference(text, mcap_io.INTERACTION_TYPE) is None
    for name in (mcap_io.INTERACTION_TYPE, mcap_io.IMAGE_TYPE, mcap_io.TACTILE_TYPE):
        assert mcap_io.type_hash(name).startswith("RIHS01_")


def test_schema_difference_names_the_field():
    text = mcap_io.schema_text(mcap_io.INTERACTION_TYPE)
    older = text.replace("uint64 sim_step\n", "")
    assert "lacks 'uint64 sim_step'" in mcap_io.schema_difference(older, mcap_io.INTERACTION_TYPE)
    renamed = text.replace("uint32 width", "uint32 cols")
    why = mcap_io.schema_difference(renamed, mcap_io.INTERACTION_TYPE)
    assert "sensor_msgs/Image" in why and "cols" in why
    # comments and spacing are not part of the definition
    assert mcap_io.schema_difference(text.replace("# ", "#  changed "),
                                     mcap_io.INTERACTION_TYPE) is None


def _same_cdr(ours: bytes, theirs: bytes) -> None:
    """Our CDR equals rclpy's but for alignment padding (rclpy leaves it uninitialised, we
    write zeros) and the few trailing pad bytes rclpy's buffer may carry."""
    assert 0 <= len(theirs) - len(ours) <= 8
    assert all(a == 0 for a, b in zip(ours, theirs) if a != b)


def test_cdr_bytes_are_what_rclpy_serializes():
    """A subscriber of ``ros2 bag play`` gets the arm's own message; rclpy reads ours and we
    read rclpy's (a ``ros2 bag record`` of a real arm)."""
    from mcap_ros2._dynamic import generate_dynamic, serialize_dynamic
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image

    from curious_robot.convert import image_to_msg, msg_to_record, record_to_msg
    from curious_robot_interfaces.msg import Interaction as InteractionMsg

    types = (mcap_io.INTERACTION_TYPE, mcap_io.IMAGE_TYPE)
    encode = {t: serialize_dynamic(t, mcap_io.schema_text(t))[t] for t in types}
    decode = generate_dynamic(mcap_io.INTERACTION_TYPE,
                              mcap_io.schema_text(mcap_io.INTERACTION_TYPE))
    for rec in records():
        ours = encode[mcap_io.INTERACTION_TYPE](mcap_io.interaction_msg(rec))
        ros_msg = record_to_msg(rec)
        theirs = serialize_message(ros_msg)
        _same_cdr(ours, theirs)
        assert deserialize_message(ours, InteractionMsg) == ros_msg, rec.task
        assert_same(msg_to_record(deserialize_message(ours, InteractionMsg)), rec)
        assert_same(msg_to_record(decode[mcap_io.INTERACTION_TYPE](theirs)), rec)

        topic, type_name, log_time, msg = mcap_io.record_messages(rec)[0]
        assert topic.endswith("/interaction/before") and type_name == mcap_io.IMAGE_TYPE
        ros_image = image_to_msg(rec.before, "rgb8")
        ros_image.header.stamp, ros_image.header.frame_id = ros_msg.started, "camera"
        ours = encode[mcap_io.IMAGE_TYPE](msg)
        _same_cdr(ours, serialize_message(ros_image))
        assert deserialize_message(ours, Image) == ros_image
        assert log_time == ros_msg.started.sec * 10**9 + ros_msg.started.nanosec


def test_mcap_io_is_pure(src, tmp_path):
    """Exporting and importing never loads rclpy or ROS message classes (pure store code)."""
    import subprocess
    import sys

    code = ("import sys; from curious_robot.store import ReplayStore, mcap_io; "
            f"s = ReplayStore({str(src)!r}, readonly=True); "
            f"mcap_io.export_mcap(s, {str(tmp_path / 'a.mcap')!r}); "
            f"mcap_io.import_mcap({str(tmp_path / 'a.mcap')!r}, "
            f"ReplayStore({str(tmp_path / 'b.db')!r})); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('rclpy', 'sensor_msgs', 'std_msgs', 'curious_robot_interfaces')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_stamps_round_to_the_nanosecond():
    assert mcap_io.split_stamp(T0 + 0.5) == (int(T0), 500_000_000)
    assert mcap_io.split_stamp(5.9999999999) == (6, 0)  # carries into the seconds
    assert mcap_io.split_stamp(-0.25) == (-1, 750_000_000)
    assert mcap_io.robot_namespace("robot0") == "robot0"
    assert mcap_io.robot_namespace("arm-1 left") == "arm_1_left"
    assert mcap_io.robot_namespace("7") == "robot_7"


# -- export -------------------------------------------------------------------------------


def test_export_is_a_rosbag2_mcap_whose_every_message_decodes(src, bag):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    recs = {key(r): r for r in records()}
    with open(bag, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        header = reader.get_header()
        assert header.profile == "ros2"
        summary = reader.get_summary()
        assert {s.name: s.encoding for s in summary.schemas.values()} == {
            mcap_io.IMAGE_TYPE: "ros2msg", mcap_io.TACTILE_TYPE: "ros2msg",
            mcap_io.INTERACTION_TYPE: "ros2msg"}
        for s in summary.schemas.values():
            assert s.data.decode() == mcap_io.schema_text(s.name)
        topics = {}
        for c in summary.channels.values():
            assert c.message_encoding == "cdr"
            qos = yaml.safe_load(c.metadata["offered_qos_profiles"])
            assert qos[0]["reliability"] == "reliable" and qos[0]["history"] == "keep_last"
            assert c.metadata["topic_type_hash"].startswith("RIHS01_")
            topics[c.topic] = summary.schemas[c.schema_id].name
        per_robot = {"before": mcap_io.IMAGE_TYPE, "after": mcap_io.IMAGE_TYPE,
                     "depth": mcap_io.IMAGE_TYPE, "views": mcap_io.IMAGE_TYPE,
                     "tactile": mcap_io.TACTILE_TYPE}
        assert topics == {"/interactions": mcap_io.INTERACTION_TYPE,
                          **{f"/{r}/interaction/{t}": ty for r in ("robot0", "robot1")
                             for t, ty in per_robot.items()}}
        stats = summary.statistics
        counts = {summary.channels[c].topic: n
                  for c, n in stats.channel_message_counts.items()}
        assert counts["/interactions"] == 10
        assert counts["/robot0/interaction/views"] + counts["/robot1/interaction/views"] == 8
        assert sum(counts.values()) == stats.message_count

        # rosbag2's own metadata record: what `ros2 bag info` prints
        (meta,) = [m for m in reader.iter_metadata() if m.name == "rosbag2"]
        bag_meta = yaml.safe_load(meta.metadata["serialized_metadata"])
        assert bag_meta["version"] == 9 and bag_meta["storage_identifier"] == "mcap"
        assert bag_meta["message_count"] == stats.message_count
        assert bag_meta["starting_time"]["nanoseconds_since_epoch"] \
            == stats.message_start_time
        assert bag_meta["duration"]["nanoseconds"] \
            == stats.message_end_time - stats.message_start_time
        assert {t["topic_metadata"]["name"]: t["message_count"]
                for t in bag_meta["topics_with_message_count"]} == counts
        assert bag_meta["relative_file_paths"] == [bag.name]

        n = 0
        last = 0
        for _schema, channel, message, msg in reader.iter_decoded_messages(
                log_time_order=True):  # as Foxglove reads it, across chunks
            assert message.log_time >= last
            last = message.log_time
            n += 1
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            assert message.log_time == stamp == message.publish_time
            if channel.topic == "/interactions":
                rec = recs[(msg.robot, msg.seq)]
                assert msg.task == rec.task and msg.header.frame_id == "table"
                assert len(msg.views) == len(rec.views)
            elif channel.topic.endswith("/before"):
                assert msg.encoding == "rgb8" and (msg.height, msg.width) == (128, 128)
                assert msg.step == 3 * 128 and len(msg.data) == 3 * 128 * 128
            elif channel.topic.endswith("/depth"):
                assert msg.encoding == "32FC1" and msg.step == 4 * 128
            elif channel.topic.endswith("/tactile"):
                assert msg.valid and len(msg.force) == 40 and msg.slope == 812.5
        assert n == stats.message_count
        # log times in the file are ordered by interaction (the end stamps)
        ends = [m.log_time for _, c, m in reader.iter_messages(topics=["/interactions"],
                                                                log_time_order=False)]
        assert ends == sorted(ends)


def test_export_filters_and_bad_output_paths(src, tmp_path, capsys):
    out = tmp_path / "poke.mcap"
    assert cli_main(["store", "export", str(src), "--format", "mcap", "--out", str(out),
                     "--task", "poke", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["interactions"] == 2 and report["topics"]["/interactions"] == 2
    assert set(report["topics"]) == {"/interactions", "/robot0/interaction/before",
                                     "/robot0/interaction/tactile",
                                     "/robot1/interaction/before",
                                     "/robot1/interaction/tactile"}
    assert cli_main(["store", "export", str(src), "--format", "mcap", "--out", str(out),
                     "--limit", "3"]) == 0
    assert "wrote 3 interactions" in capsys.readouterr().out
    # the store itself, a folder, a missing folder: exit 2, nothing written, store intact
    before = src.read_bytes()
    for bad, why in ((src, "is the replay store itself"), (tmp_path, "is a folder"),
                     (tmp_path / "nope" / "x.mcap", "does not exist")):
        assert cli_main(["store", "export", str(src), "--format", "mcap", "--out",
                         str(bad)]) == 2
        assert why in capsys.readouterr().err
    assert src.read_bytes() == before
    assert not list(tmp_path.glob(".*.part"))
    assert cli_main(["store", "export", str(src), "--format", "mcap", "--out", str(out),
                     "--task", "fly"]) == 2


# -- round trip ---------------------------------------------------------------------------


def test_round_trip_store_mcap_store_is_identical(src, bag, tmp_path, capsys):
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(bag), "--store", str(dst), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["stored"], report["duplicate"], report["rejected"]) == (10, 0, 0)
    assert report["error"] is None and report["skipped_other_topics"] > 0
    a, b = all_records(src), all_records(dst)
    assert a.keys() == b.keys() and len(b) == 10
    for k in a:
        assert_same(a[k], b[k])
    assert image_hashes(src) == image_hashes(dst)
    with ReplayStore(dst, readonly=True) as s:
        assert s.check() == []
    # the stored blobs too: same pixels, same lossless encoding
    blobs = {}
    for path in (src, dst):
        con = sqlite3.connect(path)
        blobs[path] = sorted(con.execute(
            "SELECT i.robot, i.seq, m.role, m.crc32, m.data FROM images m JOIN interactions "
            "i ON i.id = m.interaction_id").fetchall())
        con.close()
    assert blobs[src] == blobs[dst]

    # importing again: every record is a duplicate, nothing changes
    assert cli_main(["store", "import", str(bag), "--store", str(dst)]) == 0
    assert "stored 0, duplicate 10, rejected 0" in capsys.readouterr().out
    assert image_hashes(dst) == image_hashes(src)


@pytest.mark.parametrize("chunked", [True, False])
def test_import_of_a_recording_like_ros2_bag_record_writes(tmp_path, capsys, chunked):
    """What ``ros2 bag record`` writes: rclpy's wire bytes, lz4 or unchunked, other topics
    beside, the Interaction topic under another name (``--topic``)."""
    from mcap.writer import CompressionType, Writer
    from rclpy.serialization import serialize_message
    from std_msgs.msg import String

    from curious_robot.convert import record_to_msg

    path = tmp_path / "recorded.mcap"
    with open(path, "wb") as f:
        w = Writer(f, compression=CompressionType.LZ4, use_chunking=chunked)
        w.start(profile="ros2", library="rosbag2 stand-in")
        ids = {}
        for name, text in ((mcap_io.INTERACTION_TYPE,
                            mcap_io.schema_text(mcap_io.INTERACTION_TYPE)),
                           ("std_msgs/msg/String", "string data\n")):
            ids[name] = w.register_schema(name, "ros2msg", text.encode())
        interactions = w.register_channel("/arm/interactions", "cdr",
                                          ids[mcap_io.INTERACTION_TYPE])
        rosout = w.register_channel("/chatter", "cdr", ids["std_msgs/msg/String"])
        for i, rec in enumerate(records()):
            t = int(rec.stamp_end * 1e9)
            w.add_message(interactions, t, serialize_message(record_to_msg(rec)), t, i)
            w.add_message(rosout, t, serialize_message(String(data=f"hello {i}")), t, i)
        w.finish()
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(path), "--store", str(dst), "--json"]) == 2
    assert "has no /interactions topic (topics: /arm/interactions, /chatter)" \
        in capsys.readouterr().err
    assert not dst.exists()
    assert cli_main(["store", "import", str(path), "--store", str(dst), "--json",
                     "--topic", "/arm/interactions"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["stored"], report["skipped_other_topics"]) == (10, 10)
    kept = all_records(dst)
    for rec in records():
        assert_same(kept[key(rec)], rec)


# -- bad input ----------------------------------------------------------------------------


def test_not_an_mcap_file_exits_2_and_creates_no_store(src, bag, tmp_path, capsys):
    text = tmp_path / "notes.mcap"
    text.write_text("hello\n")
    dst = tmp_path / "dst.db"
    for bad in (text, src, tmp_path / "missing.mcap", tmp_path):
        assert cli_main(["store", "import", str(bad), "--store", str(dst)]) == 2
        err = capsys.readouterr().err
        assert "not an MCAP file" in err or "no such file" in err or "not a file" in err
    assert not dst.exists()
    # a good file into something that is not a replay store: exit 1, the file untouched
    assert cli_main(["store", "import", str(bag), "--store", str(text)]) == 1
    assert "not an SQLite database" in capsys.readouterr().err
    assert text.read_text() == "hello\n"


def _foreign_bags(tmp_path):
    """(name, MCAP path, expected message) of files whose /interactions is not ours."""
    rec = records()[0]
    string_bag = tmp_path / "string.mcap"
    with open(string_bag, "wb") as f:
        from mcap_ros2.writer import Writer

        w = Writer(f)
        schema = w.register_msgdef("std_msgs/msg/String", "string data\n")
        w.write_message("/interactions", schema, {"data": "hi"}, log_time=1)
        w.finish()
    older_bag = tmp_path / "older.mcap"
    older = mcap_io.schema_text(mcap_io.INTERACTION_TYPE).replace("uint64 sim_step\n", "")
    with open(older_bag, "wb") as f:
        from mcap_ros2.writer import Writer

        w = Writer(f)
        schema = w.register_msgdef(mcap_io.INTERACTION_TYPE, older)
        w.write_message("/interactions", schema, mcap_io.interaction_msg(rec), log_time=1)
        w.finish()
    no_topic = tmp_path / "images.mcap"
    write_bag(no_topic, [m for m in mcap_io.record_messages(rec)
                         if m[0] != "/interactions"])
    return [("string", string_bag, "carries 'std_msgs/msg/String'"),
            ("older", older_bag, "lacks 'uint64 sim_step'"),
            ("no topic", no_topic, "has no /interactions topic")]


def test_wrong_schema_on_interactions_exits_2_and_stores_nothing(tmp_path, capsys):
    dst = tmp_path / "dst.db"
    for name, path, why in _foreign_bags(tmp_path):
        assert cli_main(["store", "import", str(path), "--store", str(dst)]) == 2, name
        assert why in capsys.readouterr().err, name
        if name == "no topic":
            continue
        # without its summary (cut where the summary starts) the stream check catches it
        data = path.read_bytes()
        summary_start = int.from_bytes(data[-28:-20], "little")  # the footer's first field
        cut = tmp_path / f"cut-{path.name}"
        cut.write_bytes(data[:summary_start])
        with ReplayStore(dst) as s:
            with pytest.raises(mcap_io.McapInputError, match=why):
                mcap_io.import_mcap(cut, s)
            assert s.count() == 0


def test_a_recording_from_before_the_fleet_fields_imports(tmp_path, capsys):
    """Interaction gained ``fleet`` and ``auth`` (curious_robot/fleet.py); a recording whose
    definition lacks exactly those still imports (signatures are not checked on import)."""
    recs = records()[:3]
    ours = mcap_io.schema_text(mcap_io.INTERACTION_TYPE)
    head, sep, rest = ours.partition("string fleet\nuint8[] auth\n")
    assert sep, "the fleet fields are the last lines of Interaction.msg"
    rest = rest.split("string policy\n", 1)[1]  # and the later policy field
    older = head.rstrip().rsplit("\n# Fleet identity", 1)[0] + "\n" + rest
    assert mcap_io.schema_difference(older, mcap_io.INTERACTION_TYPE) is None
    bag = tmp_path / "before-fleet.mcap"
    with open(bag, "wb") as f:
        from mcap_ros2.writer import Writer

        w = Writer(f)
        schema = w.register_msgdef(mcap_io.INTERACTION_TYPE, older)
        for i, rec in enumerate(recs):
            fields = {k: v for k, v in mcap_io.interaction_msg(rec).items()
                      if k not in ("fleet", "auth", "policy")}
            w.write_message("/interactions", schema, fields, log_time=i + 1)
        w.finish()
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(bag), "--store", str(dst), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stored"] == 3
    with ReplayStore(dst, readonly=True) as s:
        for got, rec in zip(s.get_many(s.ids()), recs):
            assert_same(got, rec)
    # only those fields may be missing: without the auth line alone it is another type
    half = ours.replace("uint8[] auth\n", "")
    assert "lacks 'uint8[] auth'" in mcap_io.schema_difference(half, mcap_io.INTERACTION_TYPE)


def test_truncated_file_keeps_complete_chunks_and_never_corrupts_the_store(src, tmp_path,
                                                                           capsys):
    bag = tmp_path / "small-chunks.mcap"
    with ReplayStore(src, readonly=True) as s:
        mcap_io.export_mcap(s, bag, chunk_size=64 * 1024)  # about a record per chunk
    data = bag.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:int(len(data) * 0.6)])
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(cut), "--store", str(dst), "--json"]) == 2
    captured = capsys.readouterr()
    assert "truncated" in captured.err
    report = json.loads(captured.out)
    assert 0 < report["stored"] < 10 and report["rejected"] == 0
    original = all_records(src)
    kept = all_records(dst)
    assert len(kept) == report["stored"]
    for k, rec in kept.items():  # only whole records, each identical to its original
        assert_same(rec, original[k])
    with ReplayStore(dst, readonly=True) as s:
        assert s.check() == []
    # the complete file then brings the rest; the kept ones are duplicates
    assert cli_main(["store", "import", str(bag), "--store", str(dst), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["stored"] == 10 - report["stored"] and again["duplicate"] == report["stored"]
    assert image_hashes(dst) == image_hashes(src)


def test_damaged_chunk_exits_2_and_keeps_the_store_healthy(src, tmp_path, capsys):
    bag = tmp_path / "run.mcap"
    with ReplayStore(src, readonly=True) as s:
        mcap_io.export_mcap(s, bag, chunk_size=64 * 1024)
    data = bytearray(bag.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # zero a stretch inside a compressed chunk
    bad = tmp_path / "damaged.mcap"
    bad.write_bytes(bytes(data))
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(bad), "--store", str(dst)]) == 2
    assert "damaged" in capsys.readouterr().err
    with ReplayStore(dst, readonly=True) as s:
        assert s.check() == [] and s.count() < 10


def test_malformed_records_are_rejected_one_by_one(tmp_path, capsys):
    good = records()[:3]
    bad_task = mcap_io.interaction_msg(records()[3])
    bad_task["task"] = "fly"
    short_action = mcap_io.interaction_msg(records()[4])
    short_action["action"] = [0.1]
    bad_image = mcap_io.interaction_msg(records()[5])
    bad_image["image_before"]["step"] += 1
    messages = [(mcap_io.INTERACTIONS_TOPIC, mcap_io.INTERACTION_TYPE, i, msg) for i, msg in
                enumerate([mcap_io.interaction_msg(r) for r in good]
                          + [bad_task, short_action, bad_image])]
    path = tmp_path / "mixed.mcap"
    write_bag(path, messages)
    dst = tmp_path / "dst.db"
    assert cli_main(["store", "import", str(path), "--store", str(dst), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["stored"], report["duplicate"], report["rejected"]) == (3, 0, 3)
    reasons = [r["reason"] for r in report["rejections"]]
    assert "unknown task 'fly'" in reasons[0]
    assert "action needs" in reasons[1]
    assert "image_before: step" in reasons[2]
    kept = all_records(dst)
    for rec in good:
        assert_same(kept[key(rec)], rec)


def test_bench_mcap_runs_and_prints_its_figures(tmp_path, capfd):
    assert cli_main(["bench", "mcap", "--interactions", "8", "--dir", str(tmp_path),
                     "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    assert result["interactions"] == 8 and result["images"] == 20  # 2 + 3 + 1 + 5 per 4
    assert result["export_s"] > 0 and result["import_s"] > 0 and result["mcap_mb"] > 0
    assert result["export_within_budget"] is True
    assert cli_main(["bench", "mcap", "--interactions", "0"]) == 2


# -- Foxglove layout ----------------------------------------------------------------------


def test_foxglove_layout_shows_exported_topics():
    layout_path = ROOT / "config/foxglove/curious_robot_layout.json"
    layout = json.loads(layout_path.read_text())
    assert {"configById", "layout"} <= set(layout)

    def strings(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from strings(v)
        elif isinstance(node, list):
            for v in node:
                yield from strings(v)
        elif isinstance(node, str):
            yield node

    def leaves(node):
        if isinstance(node, str):
            return [node]
        assert node["direction"] in ("row", "column")
        return leaves(node["first"]) + leaves(node["second"])

    placed = leaves(layout["layout"])  # every panel placed once, none missing
    assert sorted(placed) == sorted(layout["configById"])
    exported = {"/interactions"} | {f"/robot0/interaction/{t}" for t in
                                    ("before", "after", "depth", "views", "tactile")}
    used = {s.split("{")[0].split(".")[0] for s in strings(layout["configById"])
            if s.startswith("/")}
    assert used == exported
    assert "config/foxglove" in (ROOT / "setup.py").read_text()  # installed with the package


def test_to_time_carries_rounded_nanoseconds_and_floors_negative_stamps():
    from curious_robot.convert import from_time, to_time

    assert (to_time(5.9999999999).sec, to_time(5.9999999999).nanosec) == (6, 0)
    t = to_time(-0.25)
    assert (t.sec, t.nanosec) == (-1, 750_000_000) and from_time(t) == -0.25
    t = to_time(1796236522.6529033)
    assert t.sec == 1796236522 and abs(from_time(t) - 1796236522.6529033) < 1e-6
