"""The drone's ROS path end to end: drone node -> pilot node -> /interactions -> learner ->
replay store, as separate processes over DDS."""

from __future__ import annotations

import time

import pytest

from curious_robot.store import ReplayStore, StoreError
from tests.helpers.procs import Proc

pytestmark = pytest.mark.ros


def node(module: str, *params: str, ns: str = "/drone0") -> Proc:
    args = ["--ros-args", "-r", f"__ns:={ns}"]
    for p in params:
        args += ["-p", p]
    return Proc(code=f"import sys; from curious_robot.nodes.{module} import main; "
                     "sys.exit(main())", args=args)


def crash_records(store: str):
    try:
        with ReplayStore(store, readonly=True) as s:
            return s.get_many(s.ids("crash").tolist())
    except StoreError:
        return []


@pytest.mark.slow
def test_pilot_flies_the_drone_into_walls_and_the_learner_stores_labelled_frames(tmp_path):
    store = str(tmp_path / "replay.db")
    key = str(tmp_path / "fleet.key")  # the pilot signs its frames, the learner checks
    procs = [
        Proc(code="import sys; from curious_robot.nodes.learner import main; sys.exit(main())",
             args=["--ros-args", "-p", f"store:={store}", "-p", "report_every:=2.0",
                   "-p", f"fleet_key:={key}"]),
        node("drone", "seed:=2", "room_index:=3", "real_time_factor:=1.5",
             "cmd_timeout:=1.0"),
        node("pilot", "seed:=2", "robot:=drone0", "max_interactions:=25",
             f"fleet_key:={key}", f"outbox_dir:={tmp_path / 'outbox'}"),
    ]
    try:
        deadline = time.monotonic() + 150
        recs = []
        while time.monotonic() < deadline:
            for p in procs:
                assert p.popen.poll() is None, "a node died:\n" + "\n".join(p.lines[-30:])
            recs = crash_records(store)
            if len(recs) >= 25:
                break
            time.sleep(1.0)
        assert len(recs) >= 25, "too few crash records; pilot log:\n" + \
            "\n".join(procs[2].lines[-30:])
        assert [r.seq for r in recs] == list(range(len(recs)))
        assert {r.robot for r in recs} == {"drone0"}
        assert all(r.object_id == "room3" and not r.held_out for r in recs)
        ttc = [r.outcome[0] for r in recs]
        assert all(t <= 1.0 or t >= 1.5 for t in ttc)
        assert any(t <= 1.0 for t in ttc) and any(t >= 1.5 for t in ttc)
        assert all(r.success == (r.outcome[0] > 1.0) for r in recs)
        side = recs[0].before.shape[0]
        assert recs[0].before.shape == (side, side, 3)
    finally:
        for p in reversed(procs):
            p.stop()
    pilot = "\n".join(procs[2].lines)
    assert "refused" not in pilot and "stopped cleanly" in pilot, pilot[-3000:]
