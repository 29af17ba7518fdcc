"""Replay store <-> MCAP (rosbag2's storage format): export for Foxglove / ``ros2 bag``, and
import of recorded ``/interactions`` into a store.

Export writes a file that ``ros2 bag info`` / ``ros2 bag play`` and Foxglove open as a
rosbag2 recording: profile ``ros2``, CDR messages, one ``ros2msg`` schema per type holding
the type's ``.msg`` text followed by every dependency (``====...`` / ``MSG: pkg/Name``
sections, depth first, in the order rosbag2 itself writes them), channels with rosbag2's
``offered_qos_profiles`` / ``topic_type_hash`` metadata, and a ``rosbag2`` metadata record
(``serialized_metadata``: the bag's metadata.yaml content, version 9). Topics:

- ``/interactions`` (curious_robot_interfaces/msg/Interaction): every record, exactly as the
  arm publishes it (header.stamp = stamp_end, ``started`` = stamp_start), logged at
  stamp_end. This topic alone carries everything a record holds; import reads only it.
- ``/<robot>/interaction/before`` | ``after`` | ``depth`` | ``views`` (sensor_msgs/msg/Image,
  rgb8 / 32FC1, frame ``camera``): the record's images for viewing; ``before`` and ``depth``
  at stamp_start, ``after`` at stamp_end, the inspect views spread evenly between the two
  (their capture times are not recorded).
- ``/<robot>/interaction/tactile`` (curious_robot_interfaces/msg/TactileResponse, frame
  ``probe``): a poke's force / depth samples and fitted line, at stamp_end.

Stamps are carried at ROS's nanosecond resolution. Messages are encoded with the pure-Python
CDR encoder of ``mcap-ros2-support``, so this module (like the rest of the store) never
imports rclpy; the message definitions are read from the ``.msg`` files of the installed
interface packages (and the source tree's ``interfaces/``).

Import (:func:`import_mcap`) reads the file front to back, decodes each ``/interactions``
message with the file's own schema (checked against this code's definition first), converts
it with :func:`curious_robot.convert.msg_to_record` and stores it through
:meth:`ReplayStore.add`, so it meets the learner's checks (``record.validate``, duplicate
``(robot, seq)`` -> ``duplicate``). Every record is its own transaction: a file that turns
out to be damaged part way (truncated, failing a CRC) keeps the records of its complete
chunks that came before the damage, stores nothing of the damaged part, and is reported as
an error (:class:`McapInputError`).

Fleet identity (curious_robot/fleet.py): an export leaves ``fleet`` and ``auth`` empty (the
store keeps records, not signatures), and import does not check signatures: whoever runs
it chose the file, as they could write the store directly. A recording made before those
fields existed (its Interaction definition lacks exactly them) imports too.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from curious_robot.decode import msg_to_record
from curious_robot.record import Interaction, InvalidInteraction, validate
from curious_robot.store.store import StoreError

INTERACTIONS_TOPIC = "/interactions"
INTERACTION_TYPE = "curious_robot_interfaces/msg/Interaction"
IMAGE_TYPE = "sensor_msgs/msg/Image"
TACTILE_TYPE = "curious_robot_interfaces/msg/TactileResponse"
#: ROS distribution of the pinned wheels (rosbag2 metadata field ``ros_distro``).
ROS_DISTRO = "kilted"
#: rosbag2 metadata (metadata.yaml) version written.
BAG_METADATA_VERSION = 9
PROFILE = "ros2"
SCHEMA_ENCODING = "ros2msg"
MESSAGE_ENCODING = "cdr"
#: Uncompressed bytes per chunk (zstd-compressed); a few records per chunk.
CHUNK_SIZE = 4 * 1024 * 1024
#: Longest list of rejected records kept in an :class:`ImportReport`.
REJECT_CAP = 100

_PRIMITIVES = frozenset(("bool", "byte", "char", "float32", "float64", "int8", "uint8",
                         "int16", "uint16", "int32", "uint32", "int64", "uint64", "string",
                         "wstring"))
# rosbag2's pattern for the field types of a .msg text (a line's first word).
_FIELD_TYPE = re.compile(r"(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+")
_SEPARATOR = "=" * 80 + "\n"
MCAP_MAGIC = b"\x89MCAP0\r\n"
_INFINITE = {"sec": 9223372036, "nsec": 854775807}  # RMW_DURATION_INFINITE


class McapError(ValueError):
    """Base class of this module's errors; the message names the file and the problem."""


class McapInputError(McapError):
    """The MCAP file cannot be read as a recording of interactions (not an MCAP file, a
    truncated or damaged file, a wrong schema on the interactions topic)."""


class DefinitionNotFound(McapError):
    """A ``.msg`` definition needed for a schema is not installed."""


# -- message definitions -----------------------------------------------------------------


def _share_dirs(package: str) -> list[Path]:
    """Folders that may hold ``package``'s ``msg/`` folder, most specific first."""
    out = []
    if package == "curious_robot_interfaces":
        source = Path(__file__).resolve().parents[2] / "interfaces"
        if (source / "package.xml").is_file():
            out.append(source)
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            out.append(Path(prefix) / "share" / package)
    out.append(Path(sys.prefix) / "share" / package)
    return out


def _split_type(type_name: str) -> tuple[str, str]:
    """'pkg/msg/Name' or 'pkg/Name' -> ('pkg', 'Name')."""
    parts = type_name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        return parts[0], parts[2]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise DefinitionNotFound(f"message type {type_name!r} is not pkg/Name or pkg/msg/Name")


@lru_cache(maxsize=None)
def msg_text(type_name: str) -> str:
    """The ``.msg`` file text of a message type, from its installed package."""
    package, name = _split_type(type_name)
    tried = []
    for share in _share_dirs(package):
        path = share / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text(encoding="utf-8")
        tried.append(str(path))
    raise DefinitionNotFound(f"no .msg definition of {type_name} (looked in "
                             f"{', '.join(tried)})")


def _dependencies(text: str, package: str) -> list[str]:
    """Message types a .msg text uses, as rosbag2 finds them (sorted, 'pkg/Name')."""
    deps = set()
    for m in _FIELD_TYPE.finditer(text):
        t = m.group(1)
        if t in _PRIMITIVES:
            continue
        deps.add(t if "/" in t else f"{package}/{t}")
    return sorted(deps)


@lru_cache(maxsize=None)
def schema_text(type_name: str) -> str:
    """The full ``ros2msg`` schema of a type, as rosbag2 writes it: the type's own text,
    then each dependency not seen yet (depth first, sorted) after a line of 80 ``=`` and
    ``MSG: pkg/Name``."""
    seen: set[str] = set()

    def append(name: str, depth: int) -> str:
        if depth <= 0:
            raise DefinitionNotFound(f"message definitions of {type_name} nest too deeply")
        package, _ = _split_type(name)
        text = msg_text(name)
        for dep in _dependencies(text, package):
            if dep not in seen:
                seen.add(dep)
                text += "\n" + _SEPARATOR + f"MSG: {dep}\n" + append(dep, depth - 1)
        return text

    return append(type_name, 50)


def type_hash(type_name: str) -> str:
    """REP-2011 type hash (``RIHS01_...``) from the package's generated ``.json`` type
    description, or "" when it is not installed."""
    import json

    package, name = _split_type(type_name)
    for share in _share_dirs(package):
        path = share / "msg" / f"{name}.json"
        if path.is_file():
            try:
                hashes = json.loads(path.read_text(encoding="utf-8")).get("type_hashes", [])
            except (ValueError, OSError):
                return ""
            for entry in hashes:
                if entry.get("type_name") == f"{package}/msg/{name}":
                    return str(entry.get("hash_string", ""))
    return ""


def _sections(text: str, root: str) -> dict[str, list[str]]:
    """'pkg/Name' -> the definition's field and constant lines (comments and blank lines
    dropped, spaces normalised) of every section of a ros2msg schema."""
    out: dict[str, list[str]] = {}
    name = "/".join(_split_type(root))
    for i, part in enumerate(re.split(r"^={3,}\s*$", text, flags=re.MULTILINE)):
        lines = []
        for line in part.splitlines():
            m = re.match(r"^MSG:\s+(\S+)\s*$", line)
            if m:
                name = "/".join(_split_type(m.group(1)))
                continue
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(" ".join(line.split()))
        if i == 0 or lines:
            out[name] = lines
    return out


#: Fields added to a type after recordings of it were made (its last lines, oldest first): a
#: file whose definition lacks the last k of these (any k) still imports; a missing
#: ``policy`` reads as "".
ADDED_FIELDS = {"curious_robot_interfaces/Interaction": ["string fleet", "uint8[] auth",
                                                         "string policy"]}


def schema_difference(file_schema: str, type_name: str) -> str | None:
    """Why a schema text from a file does not define ``type_name`` as this code does (the
    first differing type and line), or None when every definition matches (a definition
    from before :data:`ADDED_FIELDS` matches too)."""
    ours = _sections(schema_text(type_name), type_name)
    theirs = _sections(file_schema, type_name)
    for name, lines in ours.items():
        if name not in theirs:
            return f"it has no definition of {name}"
        added = ADDED_FIELDS.get(name, [])
        if any(lines[-k:] == added[-k:] and theirs[name] == lines[:-k]
               for k in range(1, len(added) + 1)):
            continue
        if theirs[name] != lines:
            other = theirs[name]
            for i, (a, b) in enumerate(zip(lines, other)):
                if a != b:
                    if other[i:] == lines[i + 1:]:
                        return f"{name} lacks {a!r}"
                    if other[i + 1:] == lines[i:]:
                        return f"{name} has an extra line {b!r}"
                    return f"{name} has {b!r} where this code has {a!r}"
            if len(lines) > len(theirs[name]):
                return f"{name} lacks {lines[len(theirs[name])]!r}"
            return f"{name} has an extra line {theirs[name][len(lines)]!r}"
    return None


# -- records -> messages (plain dicts for the CDR encoder) --------------------------------


def split_stamp(seconds: float) -> tuple[int, int]:
    """Seconds since the epoch -> (sec, nanosec), rounded to the nearest nanosecond."""
    seconds = float(seconds)
    sec = math.floor(seconds)
    nanosec = int(round((seconds - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return int(sec), nanosec


def _time(seconds: float) -> dict:
    sec, nanosec = split_stamp(seconds)
    return {"sec": sec, "nanosec": nanosec}


def _ns(seconds: float) -> int:
    """log_time of a stamp: nanoseconds since the epoch (0 for stamps before it)."""
    sec, nanosec = split_stamp(seconds)
    return max(0, sec * 1_000_000_000 + nanosec)


def _header(stamp: dict | None = None, frame_id: str = "") -> dict:
    return {"stamp": stamp or {"sec": 0, "nanosec": 0}, "frame_id": frame_id}


def image_msg(img: np.ndarray | None, encoding: str, header: dict | None = None) -> dict:
    """numpy image -> sensor_msgs/Image fields (as convert.image_to_msg; None: empty)."""
    msg = {"header": header or _header(), "height": 0, "width": 0, "encoding": "",
           "is_bigendian": 0, "step": 0, "data": b""}
    if img is None:
        return msg
    if encoding == "32FC1":
        arr = np.ascontiguousarray(img, dtype="<f4")
        channels = 1
    else:
        arr = np.ascontiguousarray(img, dtype=np.uint8)
        channels = 3
    msg.update(height=int(arr.shape[0]), width=int(arr.shape[1]), encoding=encoding,
               step=int(arr.shape[1]) * channels * arr.itemsize, data=arr.tobytes())
    return msg


def _tactile(rec: Interaction, header: dict | None = None, poke_id: str = "") -> dict:
    from curious_robot import tasks as registry

    fit = registry.get(rec.task).tactile_fields(rec) if registry.known(rec.task) else None
    poke = fit is not None
    slope, intercept, onset, max_force = fit if poke else (0.0, 0.0, 0.0, 0.0)
    return {"header": header or _header(), "poke_id": poke_id,
            "depth": [float(v) for v in rec.tactile_depth],
            "force": [float(v) for v in rec.tactile_force],
            "slope": slope, "intercept": intercept, "onset_depth": onset,
            "max_force": max_force, "n_contact": 0, "valid": poke}


def interaction_msg(rec: Interaction) -> dict:
    """Interaction record -> curious_robot_interfaces/Interaction fields, the same message
    :func:`curious_robot.convert.record_to_msg` builds (tests check that rclpy reads our CDR
    as that message, and that it equals rclpy's own serialization but for padding)."""
    return {
        "header": _header(_time(rec.stamp_end), "table"),
        "robot": rec.robot, "seq": int(rec.seq), "task": rec.task,
        "object_id": rec.object_id, "object_model": rec.object_model,
        "held_out": bool(rec.held_out),
        "action": [float(v) for v in rec.action],
        "success": bool(rec.success),
        "outcome": [float(v) for v in rec.outcome],
        "image_before": image_msg(rec.before, "rgb8"),
        "image_after": image_msg(rec.after, "rgb8"),
        "depth_before": image_msg(rec.depth_before, "32FC1"),
        "views": [image_msg(v, "rgb8") for v in rec.views],
        "tactile": _tactile(rec),
        "truth_keys": [str(k) for k in rec.truth],
        "truth_values": [float(v) for v in rec.truth.values()],
        "started": _time(rec.stamp_start),
        "sim_step": int(rec.sim_step),
        # the store keeps records, not signatures: an export is unsigned (a fleet key
        # authenticates senders on a live graph; the file is the store's own data)
        "fleet": "",
        "auth": b"",
        "policy": rec.policy,
    }


def robot_namespace(robot: str) -> str:
    """A robot name as a valid ROS topic token ('robot0' stays; 'arm-1' -> 'arm_1')."""
    token = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", robot)).strip("_") or "robot"
    return f"robot_{token}" if token[0].isdigit() else token


def record_messages(rec: Interaction) -> list[tuple[str, str, int, dict]]:
    """(topic, type, log_time ns, message) of everything one record is exported as, in
    writing order."""
    ns = f"/{robot_namespace(rec.robot)}/interaction"
    t0, t1 = _ns(rec.stamp_start), _ns(rec.stamp_end)
    t1 = max(t0, t1)
    out = []
    if rec.before is not None:
        out.append((f"{ns}/before", IMAGE_TYPE, t0,
                    image_msg(rec.before, "rgb8", _header(_time(rec.stamp_start), "camera"))))
    if rec.depth_before is not None:
        out.append((f"{ns}/depth", IMAGE_TYPE, t0,
                    image_msg(rec.depth_before, "32FC1",
                              _header(_time(rec.stamp_start), "camera"))))
    n = len(rec.views)
    for k, view in enumerate(rec.views):
        t = t0 + (t1 - t0) * (k + 1) // (n + 1)
        stamp = {"sec": t // 1_000_000_000, "nanosec": t % 1_000_000_000}
        out.append((f"{ns}/views", IMAGE_TYPE, t, image_msg(view, "rgb8",
                                                             _header(stamp, "camera"))))
    if rec.tactile_depth:
        out.append((f"{ns}/tactile", TACTILE_TYPE, t1,
                    _tactile(rec, _header(_time(rec.stamp_end), "probe"),
                             f"{rec.robot}/{rec.seq}")))
    if rec.after is not None:
        out.append((f"{ns}/after", IMAGE_TYPE, t1,
                    image_msg(rec.after, "rgb8", _header(_time(rec.stamp_end), "camera"))))
    out.append((INTERACTIONS_TOPIC, INTERACTION_TYPE, _ns(rec.stamp_end),
                interaction_msg(rec)))
    return out


# -- export -------------------------------------------------------------------------------


def _qos_yaml(depth: int = 10) -> str:
    """rosbag2's offered_qos_profiles string (metadata version 9) for one reliable,
    volatile, keep-last publisher."""
    import yaml

    return yaml.safe_dump([_qos(depth)], sort_keys=False)


def _qos(depth: int) -> dict:
    return {"history": "keep_last", "depth": depth, "reliability": "reliable",
            "durability": "volatile", "deadline": dict(_INFINITE),
            "lifespan": dict(_INFINITE), "liveliness": "automatic",
            "liveliness_lease_duration": dict(_INFINITE),
            "avoid_ros_namespace_conventions": False}


@dataclass
class ExportReport:
    path: str
    interactions: int = 0
    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    start_ns: int = 0
    end_ns: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"path": self.path, "interactions": self.interactions,
                "messages": self.messages, "topics": dict(self.topics), "bytes": self.bytes,
                "start_ns": self.start_ns, "end_ns": self.end_ns,
                "seconds": round(self.seconds, 3)}


class _BagWriter:
    """An MCAP file laid out like rosbag2's MCAP storage plugin writes it."""

    def __init__(self, stream, chunk_size: int = CHUNK_SIZE):
        from mcap.writer import CompressionType, Writer
        from mcap_ros2 import __version__ as ros2_version
        from mcap_ros2._dynamic import serialize_dynamic

        self._serialize_dynamic = serialize_dynamic
        self.writer = Writer(stream, chunk_size=chunk_size, compression=CompressionType.ZSTD)
        self.writer.start(profile=PROFILE, library=f"curious_robot mcap-ros2-support/"
                                                   f"{ros2_version}")
        self.schemas: dict[str, tuple[int, Callable]] = {}
        self.channels: dict[str, tuple[int, str]] = {}
        self.counts: dict[str, int] = {}
        self.start_ns: int | None = None
        self.end_ns = 0

    def _schema(self, type_name: str) -> tuple[int, Callable]:
        if type_name not in self.schemas:
            text = schema_text(type_name)
            schema_id = self.writer.register_schema(type_name, SCHEMA_ENCODING, text.encode())
            encoder = self._serialize_dynamic(type_name, text)[type_name]
            self.schemas[type_name] = (schema_id, encoder)
        return self.schemas[type_name]

    def write(self, topic: str, type_name: str, log_time: int, message: dict) -> None:
        schema_id, encoder = self._schema(type_name)
        if topic not in self.channels:
            channel_id = self.writer.register_channel(
                topic, MESSAGE_ENCODING, schema_id,
                {"offered_qos_profiles": _qos_yaml(), "topic_type_hash": type_hash(type_name)})
            self.channels[topic] = (channel_id, type_name)
            self.counts[topic] = 0
        channel_id, _ = self.channels[topic]
        self.writer.add_message(channel_id=channel_id, log_time=log_time,
                                publish_time=log_time, sequence=self.counts[topic],
                                data=encoder(message))
        self.counts[topic] += 1
        self.start_ns = log_time if self.start_ns is None else min(self.start_ns, log_time)
        self.end_ns = max(self.end_ns, log_time)

    def finish(self, file_name: str) -> None:
        import yaml

        start = self.start_ns or 0
        duration = max(0, self.end_ns - start)
        total = sum(self.counts.values())
        metadata = {
            "version": BAG_METADATA_VERSION,
            "storage_identifier": "mcap",
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": total,
            "topics_with_message_count": [
                {"topic_metadata": {"name": topic, "type": type_name,
                                    "serialization_format": MESSAGE_ENCODING,
                                    "offered_qos_profiles": [_qos(10)],
                                    "type_description_hash": type_hash(type_name)},
                 "message_count": self.counts[topic]}
                for topic, (_, type_name) in self.channels.items()],
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [file_name],
            "files": [{"path": file_name, "starting_time": {"nanoseconds_since_epoch": start},
                       "duration": {"nanoseconds": duration}, "message_count": total}],
            "custom_data": {"exported_by": "curious_robot store export"},
            "ros_distro": ROS_DISTRO,
        }
        self.writer.add_metadata("rosbag2", {
            "serialized_metadata": yaml.safe_dump(metadata, sort_keys=False)})
        self.writer.finish()


def export_mcap(store, out: str | os.PathLike, ids: Iterable[int] | None = None,
                batch: int = 64, chunk_size: int = CHUNK_SIZE,
                progress: Callable[[int, int], None] | None = None) -> ExportReport:
    """Write the records ``ids`` (default: all) of an open :class:`ReplayStore` to an MCAP
    file at ``out``, in order of their end stamps.

    The file is written beside ``out`` under a temporary name and renamed when complete,
    so ``out`` is never left half written. Raises :class:`McapError` for an unwritable
    path or a record that cannot be encoded.
    """
    t0 = time.perf_counter()
    out = Path(out)
    if out.is_dir():
        raise McapError(f"{out} is a folder; give the path of the .mcap file to write")
    if out.resolve() == Path(store.path).resolve():
        raise McapError(f"{out} is the replay store itself; choose another output path")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise McapError(f"cannot write {out}: folder {parent} does not exist")
    if ids is None:
        ids = store.ids()
    ids = [int(i) for i in ids]
    # order by end stamp (the /interactions log time), ties by row id
    heads = store.get_many(ids, images=False) if ids else []
    order = sorted(range(len(ids)), key=lambda k: (heads[k].stamp_end, ids[k]))
    ids = [ids[k] for k in order]

    report = ExportReport(str(out))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            bag = _BagWriter(stream, chunk_size=chunk_size)
            for start in range(0, len(ids), batch):
                for rec in store.get_many(ids[start:start + batch]):
                    for topic, type_name, log_time, msg in record_messages(rec):
                        try:
                            bag.write(topic, type_name, log_time, msg)
                        except (ValueError, TypeError, OverflowError, struct.error) as exc:
                            raise McapError(f"cannot encode {rec.robot}/{rec.seq} on "
                                            f"{topic}: {exc}") from exc
                    report.interactions += 1
                if progress is not None:
                    progress(report.interactions, len(ids))
            bag.finish(out.name)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    report.topics = dict(bag.counts)
    report.messages = sum(bag.counts.values())
    report.start_ns, report.end_ns = bag.start_ns or 0, bag.end_ns
    report.bytes = out.stat().st_size
    report.seconds = time.perf_counter() - t0
    return report


# -- import -------------------------------------------------------------------------------


@dataclass
class ImportReport:
    path: str
    store: str
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    #: (robot, seq, reason) of the first :data:`REJECT_CAP` rejected messages.
    rejections: list[tuple[str, int | None, str]] = field(default_factory=list)
    #: messages of other topics, skipped
    skipped: int = 0
    #: why reading stopped early (None: the whole file was read)
    error: str | None = None
    seconds: float = 0.0

    @property
    def messages(self) -> int:
        return self.stored + self.duplicate + self.rejected

    def as_dict(self) -> dict:
        return {"path": self.path, "store": self.store, "stored": self.stored,
                "duplicate": self.duplicate, "rejected": self.rejected,
                "rejections": [{"robot": r, "seq": s, "reason": why}
                               for r, s, why in self.rejections],
                "skipped_other_topics": self.skipped, "error": self.error,
                "seconds": round(self.seconds, 3)}


def _check_channel(path, channel, schema, topic: str) -> None:
    """Raise McapInputError unless a channel of ``topic`` carries this code's Interaction."""
    where = f"{path}: topic {topic}"
    if schema is None:
        raise McapInputError(f"{where} has no schema (schema id {channel.schema_id})")
    if channel.message_encoding != MESSAGE_ENCODING:
        raise McapInputError(f"{where} is encoded as {channel.message_encoding!r}, not "
                             f"{MESSAGE_ENCODING!r}")
    try:
        same_type = _split_type(schema.name) == _split_type(INTERACTION_TYPE)
    except DefinitionNotFound:
        same_type = False
    if not same_type:
        raise McapInputError(f"{where} carries {schema.name!r}, not {INTERACTION_TYPE}")
    if schema.encoding != SCHEMA_ENCODING:
        raise McapInputError(f"{where}: schema encoding {schema.encoding!r} is not supported "
                             f"(needs {SCHEMA_ENCODING!r})")
    try:
        text = schema.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise McapInputError(f"{where}: schema text is not UTF-8 ({exc})") from exc
    why = schema_difference(text, INTERACTION_TYPE)
    if why:
        raise McapInputError(f"{where}: its {INTERACTION_TYPE} definition differs from this "
                             f"curious_robot's: {why}")


def _summary_channels(path: Path):
    """Channels and schemas from the file's summary (None when it has none / is damaged)."""
    from mcap.reader import make_reader

    try:
        with open(path, "rb") as f:
            summary = make_reader(f).get_summary()
    except Exception:  # noqa: BLE001 - any failure: fall back to reading front to back
        return None
    if summary is None:
        return None
    return summary.channels, summary.schemas


def import_mcap(path: str | os.PathLike, store, topic: str = INTERACTIONS_TOPIC,
                progress: Callable[[ImportReport], None] | None = None) -> ImportReport:
    """Add the ``topic`` messages of an MCAP file to an open, writable :class:`ReplayStore`.

    Returns the counts (stored / duplicate / rejected with reasons / skipped). Raises
    :class:`McapInputError`, with the report so far as ``exc.report``, when the file is
    not an MCAP file, has no ``topic`` or carries another schema on it (checked against the
    summary before anything is stored; for a file without a summary, when the channel
    record is reached), or turns out truncated / damaged part way: then the records read
    before the damage stay stored and nothing of the damaged part is.
    """
    t0 = time.perf_counter()
    report = ImportReport(str(path), str(store.path))
    try:
        _import(Path(path), store, topic, report, progress)
    except McapInputError as exc:
        report.error = str(exc)
        report.seconds = time.perf_counter() - t0
        exc.report = report
        raise
    report.seconds = time.perf_counter() - t0
    return report


def check_file(path: str | os.PathLike, topic: str = INTERACTIONS_TOPIC) -> None:
    """Cheap checks before anything is stored: raise :class:`McapInputError` unless
    ``path`` is an MCAP file and (when it has a summary) every channel of ``topic``
    carries this code's Interaction definition."""
    path = Path(path)
    if not path.is_file():
        raise McapInputError(f"{path}: no such file" if not path.exists()
                             else f"{path} is not a file")
    with open(path, "rb") as f:
        magic = f.read(len(MCAP_MAGIC))
    if magic != MCAP_MAGIC:
        raise McapInputError(f"{path} is not an MCAP file (it does not start with the MCAP "
                             "magic bytes)")
    summary = _summary_channels(path)
    if summary is not None:
        channels, schemas = summary
        found = [c for c in channels.values() if c.topic == topic]
        if not found:
            names = sorted({c.topic for c in channels.values()})
            raise McapInputError(f"{path} has no {topic} topic (topics: "
                                 f"{', '.join(names) or 'none'})")
        for c in found:
            _check_channel(path, c, schemas.get(c.schema_id), topic)


def _import(path: Path, store, topic: str, report: ImportReport, progress) -> None:
    from mcap.stream_reader import StreamReader
    from mcap_ros2.decoder import DecoderFactory

    check_file(path, topic)
    factory = DecoderFactory()
    schemas: dict[int, object] = {}
    decoders: dict[int, Callable] = {}  # channel id -> decoder, for channels of `topic`
    others: set[int] = set()
    try:
        with open(path, "rb") as f:
            for record in StreamReader(f, validate_crcs=True).records:
                kind = type(record).__name__
                if kind == "Schema":
                    schemas[record.id] = record
                elif kind == "Channel":
                    if record.topic != topic:
                        others.add(record.id)
                    elif record.id not in decoders:
                        schema = schemas.get(record.schema_id)
                        _check_channel(path, record, schema, topic)
                        decoders[record.id] = factory.decoder_for(record.message_encoding,
                                                                  schema)
                elif kind == "Message":
                    decoder = decoders.get(record.channel_id)
                    if decoder is not None:
                        _import_one(record.data, decoder, store, report)
                        if progress is not None:
                            progress(report)
                    elif record.channel_id in others:
                        report.skipped += 1
                    else:
                        raise McapInputError(f"{path}: a message on channel "
                                             f"{record.channel_id} comes before its channel "
                                             "record")
    except (McapInputError, StoreError):
        raise
    except Exception as exc:  # noqa: BLE001 - the reader parsing damaged bytes (struct, zstd,
        # lz4, CRC, end of file, ...): the file is bad from here on
        raise McapInputError(_damage_message(path, exc, report)) from exc
    if not decoders:
        raise McapInputError(f"{path} has no {topic} topic")


def _damage_message(path: Path, exc: BaseException, report: ImportReport) -> str:
    from mcap.exceptions import EndOfFile
    from mcap.stream_reader import CRCValidationError

    kept = (f"{report.stored} record(s) read before it were stored" if report.messages
            else "nothing was stored")
    if isinstance(exc, EndOfFile):
        what = "is truncated (it ends inside a record)"
    elif isinstance(exc, CRCValidationError):
        what = f"is damaged ({exc})"
    else:
        what = f"is damaged or not a valid MCAP file ({type(exc).__name__}: {exc})"
    return f"{path} {what}; {kept}, the damaged part was not"


def _import_one(data: bytes, decoder, store, report: ImportReport) -> None:
    """Decode, convert, validate and store one message, as the learner does."""
    robot, seq = "?", None
    try:
        msg = decoder(data)
        robot, seq = str(getattr(msg, "robot", "?")), getattr(msg, "seq", None)
        rec = validate(msg_to_record(msg))
        res = store.add(rec)
    except InvalidInteraction as exc:
        _reject(report, robot, seq, str(exc))
        return
    except StoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - undecodable CDR: reject this message only
        _reject(report, robot, seq, f"message does not decode: {type(exc).__name__}: {exc}")
        return
    if res.stored:
        report.stored += 1
    else:
        report.duplicate += 1


def _reject(report: ImportReport, robot: str, seq, reason: str) -> None:
    report.rejected += 1
    if len(report.rejections) < REJECT_CAP:
        report.rejections.append((robot, None if seq is None else int(seq), reason))
