"""The fleet key (curious_robot/fleet.py) without a ROS graph: the key file and its
permissions, the fleet id and domain, canonical bytes, signatures and stop releases.
The nodes' use of it over real DDS: tests/test_fleet_ros.py."""

from __future__ import annotations

import multiprocessing
import os
import stat

import numpy as np
import pytest

from curious_robot.fleet import (KEY_BYTES, FleetKey, FleetKeyError, ReleaseGuard,
                                 canonical, default_key_path, load_key, record_bytes,
                                 release_bytes, status_bytes)
from curious_robot.record import Interaction


def test_a_new_key_file_is_private_and_stable(tmp_path):
    path = tmp_path / "fleet.key"
    old = os.umask(0o000)  # even a permissive umask gives a private file
    try:
        key = load_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key.key) == KEY_BYTES and len(path.read_text().strip()) == 2 * KEY_BYTES
    again = load_key(path)
    assert again.key == key.key and again.fleet_id == key.fleet_id
    other = load_key(tmp_path / "other.key")
    assert other.key != key.key and other.fleet_id != key.fleet_id
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp


def _load(path, out):
    out.put(load_key(path).key.hex())


def test_concurrent_creators_agree_on_one_key(tmp_path):
    path = str(tmp_path / "fleet.key")
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(path, out)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    keys = {out.get(timeout=5) for _ in procs}
    assert len(keys) == 1 and keys == {load_key(path).key.hex()}


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_readable_by_others_is_refused_with_the_fix(tmp_path, mode):
    path = tmp_path / "fleet.key"
    load_key(path)
    path.chmod(mode)
    with pytest.raises(FleetKeyError) as err:
        load_key(path)
    assert str(path) in str(err.value) and f"chmod 600 {path}" in str(err.value)
    path.chmod(0o600)
    load_key(path)  # fixed as the message says


def test_bad_key_files_are_refused(tmp_path):
    path = tmp_path / "fleet.key"
    path.write_text("not hex at all\n")
    path.chmod(0o600)
    with pytest.raises(FleetKeyError, match="64 hex characters"):
        load_key(path)
    path.write_text("ab" * 16 + "\n")  # 16 bytes, too short
    with pytest.raises(FleetKeyError, match="32 bytes"):
        load_key(path)
    with pytest.raises(FleetKeyError, match="does not exist"):
        load_key(tmp_path / "missing.key", create=False)
    with pytest.raises(FleetKeyError, match="folder .* does not exist"):
        load_key(tmp_path / "no" / "fleet.key")


def test_fleet_id_and_domain():
    ids, domains = set(), set()
    for i in range(300):
        k = FleetKey(bytes([i % 256, i // 256]) * 16)
        assert len(k.fleet_id) == 8 and int(k.fleet_id, 16) >= 0
        assert 1 <= k.domain_id() <= 101
        ids.add(k.fleet_id)
        domains.add(k.domain_id())
    assert len(ids) == 300 and len(domains) > 90  # spread over the range
    assert default_key_path("/data/run/replay.db") == "/data/run/fleet.key"


def test_signatures_verify_only_with_the_key_and_the_same_bytes():
    a, b = FleetKey(b"a" * 32), FleetKey(b"b" * 32)
    data = canonical("ack", a.fleet_id, "robot0", 3, "stored", "", b"tag")
    tag = a.sign(data)
    assert a.verify(data, tag) and a.verify(data, list(tag))  # a uint8[] field
    assert not b.verify(data, tag)
    assert not a.verify(data + b"x", tag) and not a.verify(data, tag[:-1])
    assert not a.verify(data, b"") and not a.verify(data, None)


def test_canonical_bytes_are_unambiguous():
    assert canonical("x", "ab", "c") != canonical("x", "a", "bc")
    assert canonical("x", 1) != canonical("x", 1.0) != canonical("x", True)
    assert canonical("x", [1, 2], 3) != canonical("x", [1], 2, 3)
    assert canonical("x", None) != canonical("x", "")
    assert canonical("ack", "f") != canonical("status", "f")  # purposes never collide
    assert status_bytes("f", b"n1", "r", 4, 5) != status_bytes("f", b"n2", "r", 4, 5)
    with pytest.raises(TypeError):
        canonical("x", object())


def _record(**kw) -> Interaction:
    rng = np.random.default_rng(0)
    rec = Interaction(task="poke", robot="robot0", seq=7, object_id="o1", action=[0.1, 0.2],
                      success=True, outcome=[100.0, 0.1, 0.002, 5.0],
                      before=rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
                      depth_before=rng.uniform(0.5, 1, (16, 16)).astype(np.float32),
                      tactile_depth=[0.0, 0.001], tactile_force=[0.0, 0.5],
                      truth={"stiffness": 300.0}, stamp_start=1.5, stamp_end=2.25,
                      sim_step=40)
    for k, v in kw.items():
        setattr(rec, k, v)
    return rec


def test_record_bytes_cover_every_stored_field():
    base = record_bytes("f", _record())
    assert record_bytes("f", _record()) == base  # deterministic
    img = _record().before.copy()
    img[3, 4, 1] ^= 1  # one bit of one pixel
    changed = [
        record_bytes("g", _record()), record_bytes("f", _record(seq=8)),
        record_bytes("f", _record(robot="robot1")), record_bytes("f", _record(task="grasp")),
        record_bytes("f", _record(success=False)), record_bytes("f", _record(before=img)),
        record_bytes("f", _record(before=_record().before.reshape(8, 32, 3))),
        record_bytes("f", _record(outcome=[100.0, 0.1, 0.002, 5.5])),
        record_bytes("f", _record(truth={"stiffness": 301.0})),
        record_bytes("f", _record(stamp_end=2.5)), record_bytes("f", _record(held_out=True)),
        record_bytes("f", _record(views=[img])), record_bytes("f", _record(sim_step=41)),
        record_bytes("f", _record(tactile_force=[0.0, 0.6])),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_stop_release_must_be_signed_fresh_for_this_robot_and_new():
    key, other = FleetKey(b"k" * 32), FleetKey(b"o" * 32)
    guard = ReleaseGuard(key, "robot0")
    now = 1_700_000_000 * 10**9

    def sig(k, robot, stamp, fleet=None):
        fleet = k.fleet_id if fleet is None else fleet
        return fleet, stamp, k.sign(release_bytes(fleet, robot, stamp))

    assert "not this arm's fleet" in guard.check(*sig(other, "robot0", now), now)
    assert "does not verify" in guard.check(*sig(other, "robot0", now, key.fleet_id), now)
    assert "does not verify" in guard.check(*sig(key, "robot1", now), now)  # another arm
    assert "from this arm's clock" in guard.check(*sig(key, "robot0", now - 6 * 10**9), now)
    assert "from this arm's clock" in guard.check(*sig(key, "robot0", now + 6 * 10**9), now)
    fleet, stamp, auth = sig(key, "robot0", now - 10**9)
    assert guard.check(fleet, stamp, auth, now) is None
    assert "not newer" in guard.check(fleet, stamp, auth, now)  # replayed
    assert "not newer" in guard.check(*sig(key, "robot0", now - 2 * 10**9), now)
    assert guard.check(*sig(key, "robot0", now), now + 10**8) is None


def test_collect_picks_localhost_and_a_fleet_domain_unless_told_otherwise():
    from curious_robot.commands.collect import ros_environment

    key = FleetKey(b"z" * 32)
    env: dict = {}
    said = ros_environment(env, None, None, key)
    assert env == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                   "ROS_DOMAIN_ID": str(key.domain_id())}
    assert key.fleet_id in " ".join(said) and env["ROS_DOMAIN_ID"] != "0"
    env = {"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    said = ros_environment(env, None, None, key)  # the environment wins over defaults
    assert env == {"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert all("from the environment" in s for s in said)
    ros_environment(env, "localhost", 7, key)  # and flags over the environment
    assert env == {"ROS_DOMAIN_ID": "7", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    env = {}
    assert "ROS_DOMAIN_ID 0" in ros_environment(env, "subnet", None, None)[1]
    assert env == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def test_collect_refuses_a_readable_key_and_a_bad_domain_before_starting(tmp_path, capsys):
    from curious_robot.cli import main

    store = tmp_path / "replay.db"
    key = tmp_path / "fleet.key"
    load_key(key)
    key.chmod(0o644)
    assert main(["collect", "--store", str(store), "--duration", "1"]) == 2
    assert f"chmod 600 {key}" in capsys.readouterr().err
    key.chmod(0o600)
    assert main(["collect", "--store", str(store), "--duration", "1",
                 "--domain-id", "300"]) == 2
    assert "--domain-id 300" in capsys.readouterr().err
    assert not store.exists()


def test_release_stop_command_needs_an_existing_private_key(tmp_path, capsys):
    from curious_robot.cli import main

    missing = tmp_path / "fleet.key"
    assert main(["release-stop", "--fleet-key", str(missing)]) == 2
    assert f"fleet key {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()  # the operator's command never makes a new fleet
    load_key(missing)
    missing.chmod(0o640)
    assert main(["release-stop", "--fleet-key", str(missing)]) == 2
    assert "chmod 600" in capsys.readouterr().err
