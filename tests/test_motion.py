"""The motion layer: one script object per primitive drives both the simulated world and the
hardware backend (over the fake arm, in one process), the guards that stop a motion, and
the shared geometry and arm model. Real PyBullet, the real fake-hardware backend."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from curious_robot import tasks
from curious_robot.arm.backend import ArmBackend
from curious_robot.arm.config import HardwareConfig
from curious_robot.arm.fake import FakeArm, LocalIO
from curious_robot.arm.hardware import HardwareBackend, State
from curious_robot.arm.kinematics import Kinematics
from curious_robot.arm.sim import SimBackend
from curious_robot.motion import SCRIPTS
from curious_robot.motion.arm_model import ArmModel
from curious_robot.motion.geometry import (grasp_orientation, matrix_from_quat,
                                           quat_from_matrix, rot_about, wrap_angle,
                                           wrist_angle)
from curious_robot.motion.guard import PressGuard, force_fault
from curious_robot.motion.results import GraspResult, PokeResult, SafetyStop
from curious_robot.motion.robot import Robot
from curious_robot.world import World, WorldConfig

pytestmark = pytest.mark.unit
ROOT = pathlib.Path(__file__).resolve().parents[1]
PANDA = ROOT / "config" / "hardware" / "panda_sim.yaml"


@pytest.fixture(scope="module")
def kin():
    k = Kinematics(HardwareConfig.from_yaml(PANDA).arm)
    yield k
    k.close()


class FaultyWrenchIO(LocalIO):
    """The fake arm's IO with a force sensor that fails at ``fault_at`` (simulated s):
    ``"nan"`` reports NaN from then on, ``"silent"`` keeps repeating its last reading (the
    joint states go on)."""

    def __init__(self, fake, cfg, fault: str):
        super().__init__(fake, cfg)
        self.fault = fault
        self.fault_at = math.inf
        self.last: State | None = None

    def _read(self) -> State:
        s = super()._read()
        if s.t < self.fault_at:
            self.last = s
            return s
        if self.fault == "nan":
            return State(s.t, s.q, s.dq, s.gripper_width, np.full(3, np.nan), s.t)
        return State(s.t, s.q, s.dq, s.gripper_width, self.last.force, self.last.force_t)


def hardware(kin, n_objects=3, seed=3, io_cls=LocalIO, **io_kw):
    cfg = HardwareConfig.from_yaml(PANDA)
    world = World(WorldConfig(num_objects=n_objects, object_split="all"), seed=seed)
    fake = FakeArm(world, cfg.safety.control_rate)
    io = io_cls(fake, cfg, **io_kw)
    backend = HardwareBackend(cfg, io, kinematics=kin)
    backend.start()
    return backend, fake, io, world


def _first(world):
    return sorted(world.objects(), key=lambda o: o.object_id)


# ------------------------------------------------------------------ one script, two robots
def test_both_backends_dispatch_to_the_same_script_objects(kin):
    sim = SimBackend(World(WorldConfig(num_objects=0), seed=1))
    hw, _fake, _io, world = hardware(kin, n_objects=0)
    try:
        assert isinstance(sim.robot, Robot) and isinstance(hw.robot, Robot)
        assert sim.robot is sim.world.robot  # the world's primitives use the same adapter
        arm_tasks = tasks.all_tasks("arm")
        assert {t.name for t in arm_tasks} == set(SCRIPTS)
        for task in arm_tasks:
            script = task.script
            assert script is SCRIPTS[task.name]
            assert sim.script(task.name) is script and hw.script(task.name) is script
        # the primitives are one dispatch, inherited by both backends, not two copies
        for name in SCRIPTS:
            assert getattr(SimBackend, name) is getattr(ArmBackend, name)
            assert getattr(HardwareBackend, name) is getattr(ArmBackend, name)
        with pytest.raises(ValueError, match="no motion script"):
            sim.script("juggle")
    finally:
        sim.close()
        world.close()


def test_the_grasp_script_runs_on_the_simulated_and_the_real_robot(kin):
    task = tasks.get("grasp")
    sim = SimBackend(World(WorldConfig(num_objects=3, object_split="all"), seed=3))
    hw, fake, _io, world = hardware(kin, n_objects=3, seed=3)
    try:
        results = {}
        for name, backend in (("sim", sim), ("hw", hw)):
            o = _first(backend.world if name == "sim" else world)[0]
            angle = (backend.world if name == "sim" else world).best_grasp_angle(o.object_id)
            results[name] = task.execute(backend, [o.position[0], o.position[1], angle])
        s, h = results["sim"], results["hw"]
        assert isinstance(s, GraspResult) and isinstance(h, GraspResult)
        assert s.success and h.success  # the same grasp succeeds on both
        assert s.truth["lift"] > 0.05 and s.object_id  # the simulation knows what rose
        assert h.truth == {} and h.object_id == "" and fake.trajectories > 3
        assert s.angle == pytest.approx(h.angle)  # the script computed both the same way
    finally:
        sim.close()
        world.close()


def test_the_arm_model_is_shared_and_agrees_between_world_and_hardware(kin):
    world = World(WorldConfig(num_objects=0))
    try:
        assert isinstance(world.model, ArmModel) and isinstance(kin, ArmModel)
        assert world.robot.arm is world.model
        assert world.tip_below_ee == pytest.approx(kin.tip_below_ee, abs=1e-12)
        assert world.model.home_finger_yaw == pytest.approx(kin.home_finger_yaw, abs=1e-12)
        for a in (0.0, 1.0, 2.5, -3.0):
            assert world.wrist_angle(a) == pytest.approx(kin.wrist_angle(a), abs=1e-12)
        orn = kin.grasp_orientation(kin.wrist_angle(0.4))
        q_w = world.ik((0.05, -0.03, 0.2), orn, q_seed=kin.home)
        q_k = kin.ik((0.05, -0.03, 0.2), orn)
        assert np.allclose(q_w, q_k, atol=1e-9)
        assert np.allclose(kin.ee_pose(q_k)[0], (0.05, -0.03, 0.2), atol=5e-4)
        q_before = world.arm_q()
        world.ik((0.1, 0.1, 0.2), orn)
        assert np.array_equal(world.arm_q(), q_before)  # IK leaves the simulated arm be
        with pytest.raises(ValueError, match="out of the arm's reach"):
            kin.ik((2.0, 0.0, 0.2), orn)
    finally:
        world.close()


# ------------------------------------------------------------------ guards
def test_press_guard_stops_at_the_force_limit_and_the_depth_limit():
    g = PressGuard(limit=5.0, max_depth=0.01)
    assert not g(0.0, 0.0) and not g(0.001, 0.2)  # contact at 1 mm
    assert not g(0.002, 4.9)
    assert g(0.003, 5.0) and g.reached_force_limit
    assert g.depths == [0.0, 0.001, 0.002, 0.003] and g.forces[-1] == 5.0
    soft = PressGuard(limit=5.0, max_depth=0.01)
    assert not soft(0.001, 0.1) and not soft(0.011, 1.0)
    assert soft(0.0111, 1.1) and not soft.reached_force_limit  # 10.1 mm beyond contact
    with pytest.raises(ValueError, match="positive"):
        PressGuard(0.0, 0.01)


def test_a_nonsense_press_reading_stops_the_press():
    g = PressGuard(limit=5.0, max_depth=0.01)
    with pytest.raises(SafetyStop, match="not finite"):
        g(0.001, float("nan"))
    with pytest.raises(SafetyStop, match="not finite"):
        g(float("inf"), 1.0)


def test_force_fault_names_nan_and_silent_sensors():
    assert force_fault(None, None, 1.0, 0.5) == ""  # no sensor: nothing to check
    assert force_fault(np.zeros(3), 0.9, 1.0, 0.5) == ""
    assert "not finite" in force_fault(np.array([0.0, np.nan, 0.0]), 1.0, 1.0, 0.5)
    assert "no force reading for 0.60 s" in force_fault(np.zeros(3), 0.4, 1.0, 0.5)


def test_a_force_over_the_limit_stops_a_poke_on_both_robots(kin):
    task = tasks.get("poke")
    sim_world = World(WorldConfig(num_objects=1, object_split="all"), seed=5)
    hw, _fake, _io, world = hardware(kin, n_objects=3, seed=3)
    try:
        o = sim_world.objects()[0]
        top = sim_world.object_vertices(o.object_id)
        top = top[np.argmax(top[:, 2])]
        s = task.execute(SimBackend(sim_world), [float(top[0]), float(top[1])])
        o = _first(world)[1]
        h = task.execute(hw, [o.position[0], o.position[1]], {"max_force": 3.0})
        for r, limit in ((s, sim_world.config.poke_force_limit), (h, 3.0)):
            assert isinstance(r, PokeResult) and r.reached_force_limit
            assert r.force[-1] >= limit and max(r.force[:-1]) < limit  # the first reading over
            assert r.fit is not None and r.fit.slope > 0
    finally:
        sim_world.close()
        world.close()


@pytest.mark.parametrize("fault", ["nan", "silent"])
def test_a_nan_or_silent_force_sensor_stops_the_arm(kin, fault):
    hw, fake, io, world = hardware(kin, io_cls=FaultyWrenchIO, fault=fault)
    try:
        o = _first(world)[1]
        io.fault_at = fake.time + 0.3  # during the approach
        with pytest.raises(SafetyStop, match="not finite" if fault == "nan"
                           else "no force reading"):
            hw.poke(o.position[0], o.position[1])
        assert fake.holds >= 1 and not fake.moving  # halted, holding where it was
        t_fault = io.fault_at
        assert fake.time - t_fault < (0.1 if fault == "nan" else 0.7)
    finally:
        world.close()


# ------------------------------------------------------------------ geometry
def test_quaternions_round_trip_through_every_branch():
    rng = np.random.default_rng(0)
    mats = [np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]),
            np.diag([-1.0, -1.0, 1.0])]  # trace > 0 and each of the three diagonal cases
    mats += [rot_about(rng.normal(size=3), rng.uniform(-math.pi, math.pi)) for _ in range(50)]
    for r in mats:
        q = np.array(quat_from_matrix(r))
        assert abs(np.linalg.norm(q) - 1.0) < 1e-12
        assert np.allclose(matrix_from_quat(q), r, atol=1e-12)
    with pytest.raises(ValueError, match="no length"):
        matrix_from_quat((0.0, 0.0, 0.0, 0.0))


def test_grasp_orientation_points_down_with_the_fingers_along_the_angle(kin):
    arm = kin.config
    for angle in (0.0, 0.7, 2.0):
        r = matrix_from_quat(grasp_orientation(arm, angle))
        assert np.allclose(r @ np.array(arm.approach_axis), [0, 0, -1], atol=1e-12)
        assert np.allclose(r @ np.array(arm.finger_axis),
                           [math.cos(angle), math.sin(angle), 0.0], atol=1e-12)
    # a tilt about the finger axis keeps the finger axis and tips the approach axis
    r = matrix_from_quat(grasp_orientation(arm, 0.0, (0.6, 0.0)))
    assert np.allclose(r @ np.array(arm.finger_axis), [1.0, 0.0, 0.0], atol=1e-12)
    assert r @ np.array(arm.approach_axis) @ np.array([0, 0, -1.0]) == \
        pytest.approx(math.cos(0.6))


def test_wrist_angle_is_the_equivalent_grasp_nearest_home_and_wrap_angle():
    home = 0.3
    for a in np.linspace(-7.0, 7.0, 57):
        w = wrist_angle(home, a)
        assert abs(w - home) <= math.pi / 2 + 1e-12
        k = (w - a) / math.pi
        assert abs(k - round(k)) < 1e-9  # the same grasp: a multiple of pi away
        assert -math.pi <= wrap_angle(a) < math.pi
        assert math.cos(wrap_angle(a)) == pytest.approx(math.cos(a))
