"""The hardware backend and its safety layer on the fake arm, in one process (LocalIO: one
control period per joint-state reading, simulated time, no DDS)."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from curious_robot.arm.backend import DryRunDone, SafetyStop, StartupRefused
from curious_robot.arm.config import HardwareConfig
from curious_robot.arm.fake import FakeArm, LocalIO
from curious_robot.arm.hardware import HardwareBackend
from curious_robot.arm.kinematics import Kinematics
from curious_robot.world import Aborted, World, WorldConfig

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[1]
PANDA = ROOT / "config" / "hardware" / "panda_sim.yaml"


@pytest.fixture(scope="module")
def kin():
    k = Kinematics(HardwareConfig.from_yaml(PANDA).arm)
    yield k
    k.close()


def rig(kin, n_objects=4, seed=3, prefix="", **safety):
    cfg = HardwareConfig.from_yaml(PANDA)
    for k, v in safety.items():
        setattr(cfg.safety, k, v)
    world = World(WorldConfig(num_objects=n_objects, object_split="all"), seed=seed)
    fake = FakeArm(world, cfg.safety.control_rate, joint_prefix=prefix)
    io = LocalIO(fake, cfg)
    return HardwareBackend(cfg, io, kinematics=kin), fake, io, world


@pytest.fixture
def arm(kin):
    backend, fake, io, world = rig(kin)
    backend.start()
    yield backend, fake, io, world
    world.close()


def test_panda_and_template_configs_load_and_typos_are_errors(tmp_path):
    cfg = HardwareConfig.from_yaml(PANDA)
    assert cfg.joint_names[0] == "panda_joint1" and cfg.gripper.open_width == 0.08
    pose = cfg.camera_in_table()
    world_pose = World(WorldConfig(num_objects=0)).camera.pose
    assert np.allclose(pose, world_pose, atol=1e-9)  # the calibration is the sim camera's
    ur = HardwareConfig.from_yaml(ROOT / "config" / "hardware" / "template_ur5e.yaml")
    assert "shoulder_pan_joint" in ur.joint_names and ur.gripper.command == "single"
    bad = tmp_path / "bad.yaml"
    bad.write_text(PANDA.read_text().replace("max_force:", "max_forse:"))
    with pytest.raises(ValueError, match="max_forse"):
        HardwareConfig.from_yaml(bad)


def test_target_outside_the_workspace_is_refused_before_any_command(arm):
    backend, fake, _io, _world = arm
    for call in (lambda: backend.grasp(0.35, 0.0, 0.0), lambda: backend.poke(0.0, -0.4),
                 lambda: backend.push((0.0, 0.0), (0.0, 0.3)),
                 lambda: backend.inspect("", 0.5, 0.5, 0.0)):
        with pytest.raises(ValueError, match="outside the workspace"):
            call()
    assert backend.sent == 0 and fake.trajectories == 0


def test_a_plan_leaving_the_safety_box_is_refused_before_any_command(kin):
    # the box's top below the approach height: the grasp's own approach would leave it
    backend, fake, _io, world = rig(kin, n_objects=0,
                                    workspace=((-0.3, 0.3), (-0.3, 0.3), (-0.005, 0.5)))
    backend.start()
    backend.safety.config.workspace = ((-0.3, 0.3), (-0.3, 0.3), (-0.005, 0.08))
    with pytest.raises(ValueError, match="safety box"):
        backend.grasp(0.05, 0.05, 0.3)
    assert backend.sent == 0 and fake.trajectories == 0
    world.close()


def test_grasp_push_poke_inspect_run_through_trajectories(arm):
    backend, fake, _io, world = arm
    objs = sorted(world.objects(), key=lambda o: o.object_id)
    o = objs[0]
    g = backend.grasp(o.position[0], o.position[1], world.best_grasp_angle(o.object_id))
    assert g.success and g.gripper_width > 0.004 and g.patch.shape == (128, 128, 3)
    assert g.object_id == "" and g.truth == {}  # unknown on hardware
    p = backend.poke(objs[1].position[0], objs[1].position[1])
    assert p.reached_force_limit and p.fit is not None and p.fit.slope > 0
    s = backend.push((objs[2].position[0] - 0.07, objs[2].position[1]),
                     (objs[2].position[0] + 0.03, objs[2].position[1]))
    assert s.success and s.dx > 0.005  # pushed along +x, measured from the depth images
    assert fake.trajectories > 10


def test_a_force_above_the_limit_stops_the_poke(arm):
    backend, fake, _io, world = arm
    o = sorted(world.objects(), key=lambda o: o.object_id)[1]
    r = backend.poke(o.position[0], o.position[1], max_force=3.0)
    assert r.reached_force_limit
    assert r.force[-1] >= 3.0 and max(r.force) < 3.0 * 1.5  # stopped at the first reading
    onset = next(i for i, f in enumerate(r.force) if f > 0.05)
    assert r.depth[-1] - r.depth[onset] < 0.02  # well short of the depth limit


def test_the_safety_force_limit_halts_a_press_harder_than_it(kin):
    backend, fake, _io, world = rig(kin, contact_force=1.0, max_force=4.0)
    backend.start()
    o = sorted(world.objects(), key=lambda o: o.object_id)[1]
    with pytest.raises(SafetyStop, match="contact force"):
        backend.poke(o.position[0], o.position[1], max_force=10.0)
    assert fake.holds >= 1 and not fake.moving
    world.close()


def test_emergency_stop_halts_the_motion_within_one_control_period(arm):
    backend, fake, io, _world = arm
    seen = []

    moving_ticks = []
    stopped = []

    def on_tick(_io):
        seen.append(fake._cmd.copy())
        if stopped:
            return
        if len(seen) >= 2 and np.max(np.abs(seen[-1] - seen[-2])) > 1e-3:
            moving_ticks.append(len(seen))
        if len(moving_ticks) >= 5:  # well into a motion
            backend.emergency_stop()
            stopped.append(True)
            seen.append("stop")
    io.on_tick = on_tick
    with pytest.raises(Aborted):
        backend.grasp(0.1, 0.1, 0.5)
    k = next(i for i, v in enumerate(seen) if isinstance(v, str))
    q_stop = seen[k - 1]
    moving = float(np.max(np.abs(seen[k - 1] - seen[k - 2])))
    assert moving > 1e-3  # it was moving
    # the next control period already commands no further motion: at most the hold's
    # small step back to the measured position, never onward along the trajectory
    assert not fake.moving and fake.holds >= 1
    fake.tick()
    direction = np.sign(seen[k - 1] - seen[k - 2])
    onward = float(np.max(direction * (fake._cmd - q_stop)))
    assert onward <= 1e-9, f"the command went on by {onward} rad after the stop"
    for _ in range(6):  # and the arm itself comes to rest
        fake.tick()
    assert float(np.max(np.abs(fake.joint_state()[2][:7]))) < 0.05
    with pytest.raises(Aborted):  # stays stopped until released
        backend.grasp(0.1, 0.1, 0.5)
    backend.release_stop()
    io.on_tick = None
    assert backend.grasp(0.1, 0.1, 0.5) is not None


def test_mismatched_joint_names_refuse_to_start(kin):
    backend, _fake, _io, world = rig(kin, n_objects=0, prefix="ur_")
    with pytest.raises(StartupRefused, match="missing"):
        backend.start()
    world.close()


def test_calibration_that_does_not_match_the_camera_refuses_to_start(kin):
    backend, _fake, _io, world = rig(kin, n_objects=0)
    backend.cfg.calibration.fx *= 1.1
    with pytest.raises(StartupRefused, match="calibration"):
        backend.start()
    world.close()


def test_dry_run_publishes_plans_and_never_moves(kin):
    backend, fake, io, world = rig(kin, n_objects=2, dry_run=True)
    backend.start()
    q0 = world.arm_q()
    with pytest.raises(DryRunDone):
        backend.grasp(0.05, -0.05, 1.0)
    assert fake.trajectories == 0 and len(io.plans) >= 4
    assert np.allclose(world.arm_q(), q0)
    world.close()


def test_fake_arm_follows_trajectories_within_velocity_limits(kin):
    world = World(WorldConfig(num_objects=0))
    fake = FakeArm(world, 60.0)
    q0 = world.arm_q()
    goal = q0 + np.array([1.0, 0, 0, 0, 0, 0, 0])
    assert fake.command(list(fake.arm_joints), [0.1], [goal]) == ""  # asks for 10 rad/s
    prev = fake._cmd.copy()
    for _ in range(10):
        fake.tick()
        assert np.all(np.abs(fake._cmd - prev) <= fake.vmax * fake.period + 1e-9)
        prev = fake._cmd.copy()
    assert "do not match" in fake.command(["a", "b"], [1.0], [[0.0, 0.0]])
    world.close()
    assert math.isfinite(kin.tip_below_ee)


def test_deploy_graph_agrees_with_the_nodes():
    from curious_robot.arm.deploy import deploy_graph
    from curious_robot.node_config import check_overrides, params_of
    from tests.helpers.setup_nodes import node_targets

    installed = node_targets(ROOT)
    specs = deploy_graph(str(PANDA), fake_hardware=True, robots=2, store="/tmp/x.db")
    assert [s.namespace for s in specs if s.executable == "fake_hardware"] == \
        ["/robot0", "/robot1"]
    for spec in specs:
        assert spec.executable in installed, spec.executable
        assert check_overrides(params_of(spec.executable), spec.parameters, spec.fqn) == []
    arm = next(s for s in specs if s.name == "arm")
    assert arm.parameters["backend"] == "hardware"
    # the launch file itself: tests/test_launch_files.py


class StaleIO(LocalIO):
    """The fake arm's IO whose joint readings stop coming at ``freeze_at`` (simulated s):
    from then on ``state()`` repeats the last reading, as a silent joint-state topic
    leaves it, while the arm itself keeps moving."""

    def __init__(self, fake, cfg):
        super().__init__(fake, cfg)
        self.freeze_at = math.inf
        self.frozen = None
        self.freeze_after_first_trajectory: float | None = None

    def send_trajectory(self, times, positions) -> None:
        super().send_trajectory(times, positions)
        if self.freeze_after_first_trajectory is not None:  # readings stop mid-motion
            self.freeze_at = self.fake.time + self.freeze_after_first_trajectory
            self.freeze_after_first_trajectory = None

    def _read(self):
        s = super()._read()
        if self.fake.time < self.freeze_at:
            return s
        if self.frozen is None:
            self.frozen = s
        return self.frozen

    def wait_state(self, after, timeout):
        end = self.fake.time + timeout
        while self.fake.time < end:
            self.fake.tick()
            s = self.state()
            if s is not None and s.t > after:
                return s
        return None


def test_a_stale_state_stop_does_not_pull_the_arm_back_to_the_stale_reading(kin):
    cfg = HardwareConfig.from_yaml(PANDA)
    world = World(WorldConfig(num_objects=3, object_split="all"), seed=3)
    fake = FakeArm(world, cfg.safety.control_rate)
    io = StaleIO(fake, cfg)
    backend = HardwareBackend(cfg, io, kinematics=kin)
    backend.start()
    try:
        o = sorted(world.objects(), key=lambda o: o.object_id)[0]
        io.freeze_after_first_trajectory = 0.3  # readings stop while the arm moves
        with pytest.raises(SafetyStop, match="no joint states"):
            backend.grasp(o.position[0], o.position[1], 0.0)
        at_stop, stale = world.arm_q(), io.frozen.q
        assert float(np.max(np.abs(at_stop - stale))) > 0.02  # it moved on after the freeze
        assert fake.stops >= 1  # the controller's stop
        pulls = [float(np.max(np.abs(cmd - actual))) for cmd, actual in fake.hold_log]
        assert max(pulls, default=0.0) < 0.01, pulls  # never a hold at the stale reading
        for _ in range(int(cfg.safety.control_rate)):  # one more second
            fake.tick()
        after = world.arm_q()
        assert float(np.max(np.abs(after - at_stop))) < 0.02  # it stays where it stopped
        assert not fake.moving
    finally:
        world.close()


def test_the_fake_arm_holds_where_it_is_told(kin):
    """hold(q) is a trajectory to q (a controller takes it literally); stop() holds the
    present position: the two differ, so tests can tell a stop from a hold."""
    cfg = HardwareConfig.from_yaml(PANDA)
    world = World(WorldConfig(num_objects=0), seed=1)
    fake = FakeArm(world, cfg.safety.control_rate)
    try:
        q0 = world.arm_q()
        target = q0 + 0.1
        fake.hold(target)
        for _ in range(int(2 * cfg.safety.control_rate)):
            fake.tick()
        assert float(np.max(np.abs(world.arm_q() - target))) < 0.02
        here = world.arm_q()
        fake.stop()
        for _ in range(int(cfg.safety.control_rate)):
            fake.tick()
        assert float(np.max(np.abs(world.arm_q() - here))) < 0.01 and fake.stops == 1
    finally:
        world.close()


class NoWrenchIO(LocalIO):
    """The fake arm's IO with a force/torque sensor that never started."""

    def _read(self):
        s = super()._read()
        return type(s)(s.t, s.q, s.dq, s.gripper_width, None, None)


def test_no_motion_without_a_force_reading_or_from_a_stale_state(kin):
    cfg = HardwareConfig.from_yaml(PANDA)
    cfg.startup_timeout = 1.0
    world = World(WorldConfig(num_objects=2, object_split="all"), seed=3)
    try:
        fake = FakeArm(world, cfg.safety.control_rate)
        backend = HardwareBackend(cfg, NoWrenchIO(fake, cfg), kinematics=kin)
        with pytest.raises(StartupRefused, match="no finite force reading"):
            backend.start()
        assert fake.trajectories == 0
        io = StaleIO(fake, cfg)
        backend = HardwareBackend(cfg, io, kinematics=kin)
        backend.start()
        io.freeze_at = fake.time  # the joint readings stop now
        io.state()  # (the last one is this)
        for _ in range(int(cfg.safety.control_rate)):  # a second passes
            fake.tick()
        sent = fake.trajectories
        with pytest.raises(SafetyStop, match="starts only from a fresh"):
            backend.plan([world.arm_q() + 0.05])  # planned from a reading 1 s old: refused
        o = sorted(world.objects(), key=lambda o: o.object_id)[0]
        with pytest.raises(SafetyStop, match="no joint states|starts only from a fresh"):
            backend.grasp(o.position[0], o.position[1], 0.0)
        assert fake.trajectories == sent  # nothing was sent on the old reading
    finally:
        world.close()


@pytest.mark.parametrize("answers", [True, False], ids=["action", "topic"])
def test_a_rejected_trajectory_is_reported_as_an_error_and_nothing_moves(kin, answers):
    """A controller that refuses every trajectory: where it answers (the action path) the
    refusal is the error at once; on the topic path, where a rejection is silent, the
    follow check finds it command_lag + follow_timeout into the motion. Either way the
    primitive fails with TrajectoryRejected, the controller is told to stop, the arm has
    not moved, and no later reading pulls it anywhere."""
    from curious_robot.motion.results import TrajectoryRejected

    backend, fake, io, world = rig(kin)
    io.answers = answers
    backend.start()
    try:
        o = sorted(world.objects(), key=lambda o: o.object_id)[0]
        before, t0, stops = world.arm_q(), fake.time, fake.stops
        fake.refuse = "joint 'panda_joint4' is in an error state"
        match = "refused the trajectory: joint 'panda_joint4'" if answers else \
            "not following the trajectory"
        with pytest.raises(TrajectoryRejected, match=match):
            backend.grasp(o.position[0], o.position[1], 0.0)
        took = fake.time - t0
        s = backend.cfg.safety
        assert took <= s.command_lag + s.follow_timeout + 2 * fake.period + 1e-9, took
        assert fake.stops == stops + 1
        assert float(np.max(np.abs(world.arm_q() - before))) < 0.005
        fake.refuse = ""  # the fault is cleared: the arm works again
        g = backend.grasp(o.position[0], o.position[1], world.best_grasp_angle(o.object_id))
        assert g.gripper_width >= 0.0 and fake.trajectories > 0
    finally:
        world.close()


def test_the_follow_check_passes_a_following_arm_and_catches_a_stalled_one():
    from curious_robot.arm.hardware import _not_following

    tq = np.array([0.0, 1.0])
    path = np.array([[0.0, 0.0], [0.5, -0.2]])
    q0 = path[0]
    assert _not_following(q0, [0.20, -0.08], tq, path, 0.45) == ""  # on its way (0.225)
    assert _not_following(q0, [0.06, -0.02], tq, path, 0.45) == ""  # lagging, still moving
    assert "moved 0.040 rad of the 0.225" in _not_following(q0, [0.04, 0.0], tq, path, 0.45)
    assert _not_following(q0, q0, tq, path, 0.02) == ""  # too little commanded to judge
