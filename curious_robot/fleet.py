"""The fleet key: who may speak for the robots and the learner of one installation.

Nothing on a ROS 2 graph built from the PyPI wheels is authenticated (their Fast DDS has
no security plugins), so anyone on the domain could acknowledge a record the learner
never stored, claim future sequence numbers, answer ``/robot_status`` or release an
operator's emergency stop. The nodes of one fleet therefore share a secret key and sign
what matters with HMAC-SHA256: interactions (manager, pilot), acknowledgements and status
answers (learner), stop releases (operator).

- The key file holds 32 random bytes as 64 hex characters; :func:`load_key` creates it
  (mode 0600) on first use and refuses one that group or others may read.
- The fleet id (first 8 hex characters of a SHA-256 of the key) names the fleet in every
  signed message and picks its ROS domain (:meth:`FleetKey.domain_id`); it reveals
  nothing useful about the key.
- What is signed is never the CDR serialization (rclpy leaves padding bytes
  uninitialised, so one message can serialize two ways): :func:`canonical` encodes the
  fields explicitly, under a purpose label, so a signature made for one kind of message
  never verifies as another.

Pure: no rclpy. The message-shaped helpers read any object with the message's fields.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32
#: s a stop release may be old (clocks of operator and robot differ by less; use NTP)
RELEASE_FRESH_S = 5.0


class FleetKeyError(ValueError):
    """The key file cannot be used (the message names the file and the fix)."""


@dataclass(frozen=True)
class FleetKey:
    key: bytes
    path: str = ""

    @property
    def fleet_id(self) -> str:
        return hashlib.sha256(b"curious-robot fleet id\0" + self.key).hexdigest()[:8]

    def domain_id(self) -> int:
        """A ROS_DOMAIN_ID for this fleet: 1..101 (safe on Linux; never the default 0)."""
        return 1 + int(self.fleet_id, 16) % 101

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self.key, data, hashlib.sha256).digest()

    def verify(self, data: bytes, tag) -> bool:
        """Constant-time check of ``tag`` (bytes or a sequence of ints) against ``data``."""
        try:
            tag = bytes(tag)
        except (TypeError, ValueError):
            return False
        return hmac.compare_digest(self.sign(data), tag)


def default_key_path(store: str) -> str:
    """Where a collect run keeps its fleet key: beside the store."""
    return os.path.join(os.path.dirname(os.path.abspath(os.path.expanduser(store))),
                        "fleet.key")


def _read(path: Path) -> FleetKey:
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise FleetKeyError(f"fleet key {path} is not a regular file")
    if st.st_mode & 0o077:
        raise FleetKeyError(
            f"fleet key {path} may be read by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); anyone who reads it can forge the fleet's "
            f"messages. Fix: chmod 600 {path}")
    text = path.read_text(errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise FleetKeyError(f"fleet key {path} does not hold {KEY_BYTES} bytes as "
                            f"{2 * KEY_BYTES} hex characters; remove it to create a new "
                            "one (every node of the fleet needs the same file)")
    return FleetKey(key, str(path))


def load_key(path: str | os.PathLike, create: bool = True) -> FleetKey:
    """The fleet key in ``path``; with ``create``, a new random one is written there first
    when the file does not exist (mode 0600, atomically: concurrent creators agree on one
    key). Raises :class:`FleetKeyError`."""
    path = Path(os.path.expanduser(str(path))).absolute()
    try:
        if not path.exists():
            if not create:
                raise FleetKeyError(f"fleet key {path} does not exist")
            _create(path)
        return _read(path)
    except OSError as exc:
        raise FleetKeyError(f"fleet key {path}: {exc.strerror or exc}") from exc


def _create(path: Path) -> None:
    if not path.parent.is_dir():
        raise FleetKeyError(f"fleet key {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created it first: theirs wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


# -- canonical bytes ------------------------------------------------------------------------


def canonical(purpose: str, *values) -> bytes:
    """An unambiguous encoding of ``values`` (str, bytes, bool, int, float, None, lists /
    tuples of those) under a purpose label."""
    out = bytearray(b"curious-robot/1\0")
    _put(out, purpose)
    for v in values:
        _put(out, v)
    return bytes(out)


def _put(out: bytearray, v) -> None:
    if v is None:
        out += b"n"
    elif isinstance(v, bool):
        out += b"t" if v else b"f"
    elif isinstance(v, int):
        s = str(v).encode()
        out += b"i" + struct.pack(">I", len(s)) + s
    elif isinstance(v, float):
        out += b"d" + struct.pack(">d", v)
    elif isinstance(v, str):
        b = v.encode("utf-8", "surrogatepass")
        out += b"s" + struct.pack(">I", len(b)) + b
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        out += b"y" + struct.pack(">I", len(b)) + b
    elif isinstance(v, (list, tuple)):
        out += b"l" + struct.pack(">I", len(v))
        for x in v:
            _put(out, x)
    else:
        raise TypeError(f"cannot encode {type(v).__name__} canonically")


def _image_digest(img) -> tuple | None:
    if img is None:
        return None
    import numpy as np

    a = np.ascontiguousarray(img)
    return (str(a.dtype), list(a.shape), hashlib.sha256(a.tobytes()).digest())


def record_bytes(fleet: str, rec) -> bytes:
    """What an Interaction's signature covers: the fleet and every field of the pure
    record (:func:`curious_robot.decode.msg_to_record`), images as dtype, shape and
    SHA-256 of their pixels. Anything the learner stores is covered."""
    return canonical(
        "interaction", fleet, rec.task, rec.robot, int(rec.seq), rec.object_id,
        rec.object_model, bool(rec.held_out), [float(v) for v in rec.action],
        bool(rec.success), [float(v) for v in rec.outcome], _image_digest(rec.before),
        _image_digest(rec.after), _image_digest(rec.depth_before),
        [_image_digest(v) for v in rec.views], [float(v) for v in rec.tactile_depth],
        [float(v) for v in rec.tactile_force],
        [(str(k), float(v)) for k, v in rec.truth.items()], float(rec.stamp_start),
        float(rec.stamp_end), int(rec.sim_step),
        # the policy field came later: covered when set, so a robot from before it (policy
        # "") still verifies
        *([str(rec.policy)] if getattr(rec, "policy", "") else []))


def interaction_bytes(msg) -> bytes:
    """:func:`record_bytes` of an Interaction message (raises
    :class:`curious_robot.record.InvalidInteraction` for one too malformed to convert)."""
    from curious_robot.decode import msg_to_record

    return record_bytes(msg.fleet, msg_to_record(msg))


def ack_bytes(ack, interaction_auth) -> bytes:
    """What an IngestAck's signature covers; ``interaction_auth`` (the acknowledged
    Interaction's own signature) binds the ack to that one message, so an ack recorded
    in an earlier run cannot acknowledge a new record that reuses the seq."""
    return canonical("ack", ack.fleet, ack.robot, int(ack.seq), ack.status, ack.reason,
                     bytes(interaction_auth))


def status_bytes(fleet: str, nonce, robot: str, last_seq: int, count: int) -> bytes:
    """What a RobotStatus answer's signature covers: the asker's random nonce (so an old
    answer cannot be replayed), the robot, and the answer."""
    return canonical("status", fleet, bytes(nonce), robot, int(last_seq), int(count))


def release_bytes(fleet: str, robot: str, stamp_ns: int) -> bytes:
    """What a stop release's signature covers."""
    return canonical("release_stop", fleet, robot, int(stamp_ns))


class ReleaseGuard:
    """The arm's check of stop releases: signed by the fleet, for this robot, fresh
    (within :data:`RELEASE_FRESH_S` s of this machine's clock) and newer than the last
    accepted one, so a recorded release cannot be replayed."""

    def __init__(self, key: FleetKey, robot: str, fresh_s: float = RELEASE_FRESH_S):
        self.key, self.robot, self.fresh_s = key, robot, fresh_s
        self.last_ns = 0

    def check(self, fleet: str, stamp_ns: int, auth, now_ns: int) -> str | None:
        """Why the release is refused (``None``: accepted, and remembered)."""
        if fleet != self.key.fleet_id:
            return f"fleet {fleet!r} is not this arm's fleet"
        if not self.key.verify(release_bytes(fleet, self.robot, stamp_ns), auth):
            return "signature does not verify with this fleet's key"
        if abs(now_ns - stamp_ns) > self.fresh_s * 1e9:
            return (f"stamp is {(now_ns - stamp_ns) / 1e9:+.1f} s from this arm's clock "
                    f"(allowed {self.fresh_s:g} s)")
        if stamp_ns <= self.last_ns:
            return "stamp is not newer than the last accepted release (a replay?)"
        self.last_ns = stamp_ns
        return None
