"""The drone: controllers, room layouts, flight, collision detection, labelling, policies.
Pure Python and a small PyBullet world; no ROS."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curious_robot.drone.control import GRAVITY, Mixer, QuadParams
from curious_robot.drone.pilot import (CollisionDetector, Pilot, PilotConfig, label_frames,
                                       to_interaction)
from curious_robot.drone.policy import CrashNetPolicy, RandomTurnPolicy, crops
from curious_robot.drone.sim import (DroneConfig, DroneSim, Item, Layout, generate_layout,
                                     load_config)
from curious_robot.record import validate


def small_config() -> DroneConfig:
    cfg = load_config()
    cfg.flight.camera_width, cfg.flight.camera_height = 64, 32
    return cfg


def corridor(loose: bool = True) -> Layout:
    """A wall 4 m ahead of the origin (+x) and, if ``loose``, a light pole 2 m ahead of
    (0, 1)."""
    items = [Item("wall", "box", (4.1, 0.0, 1.25), (0.1, 4.0, 1.25), rgba=(0.6, 0.3, 0.3, 1))]
    if loose:
        items.append(Item("loose", "cylinder", (2.0, 1.0, 0.75), (0.07, 0.07, 0.75),
                          mass=0.6))
    return Layout(0, 8.0, 8.0, items)


# -- control ----------------------------------------------------------------------------


def test_mixer_inverts_the_wrench_and_scales_yaw_first_when_saturated():
    q = QuadParams()
    mixer = Mixer(q)
    hover = q.mass * GRAVITY
    f = mixer.thrusts(hover, (0.01, -0.02, 0.005))
    np.testing.assert_allclose(mixer.wrench(f), [hover, 0.01, -0.02, 0.005], atol=1e-9)
    # a yaw demand far beyond the motors: thrust, roll and pitch kept, yaw reduced
    f = mixer.thrusts(hover, (0.0, 0.0, 5.0))
    w = mixer.wrench(f)
    assert np.all(f >= 0) and np.all(f <= q.max_rotor_thrust)
    np.testing.assert_allclose(w[:3], [hover, 0.0, 0.0], atol=1e-9)
    assert 0 < w[3] < 5.0


# -- rooms ------------------------------------------------------------------------------


def test_layouts_are_a_function_of_the_seed_and_held_out_seeds_are_split():
    cfg = load_config()
    a, b = generate_layout(5, cfg.room, cfg.layouts), generate_layout(5, cfg.room, cfg.layouts)
    assert a.items == b.items and a.width == b.width
    assert generate_layout(6, cfg.room, cfg.layouts).items != a.items
    kinds = {it.kind for it in a.items}
    assert {"wall", "furniture", "loose"} <= kinds
    held = cfg.layouts.held_out_seeds
    assert len(held) >= 50 and all(generate_layout(s).held_out for s in held[:3])
    assert not a.held_out
    assert all(not cfg.layouts.is_held_out(cfg.layouts.train_seed(i))
               for i in range(held[0] - 5, held[-1] + 5))
    x, y, _ = a.start_pose(np.random.default_rng(0), 1.0, cfg.room.clearance)
    assert a.clearance(x, y, 1.0) >= cfg.room.clearance


# -- flight -----------------------------------------------------------------------------


def fly_straight(sim: DroneSim, seconds: float, speed: float = 1.0):
    out = []
    for _ in range(int(round(seconds / sim.flight.control_dt))):
        out.append(sim.step(speed, 0.0))
    return out


def test_velocity_control_holds_speed_altitude_and_heading_deterministically():
    cfg = small_config()
    runs = []
    for _ in range(2):
        with DroneSim(Layout(0, 20.0, 20.0, []), cfg, seed=3) as sim:
            sim.reset(0.0, 0.0, 0.5)
            fly_straight(sim, 3.0)
            v = sim.velocity()
            assert abs(math.hypot(v[0], v[1]) - 1.0) < 0.05
            assert abs(sim.position()[2] - cfg.flight.altitude) < 0.05
            assert abs(sim.pose()[2] - 0.5) < 0.05
            for _ in range(48):
                sim.step(0.0, 1.0)  # 1 s at 1 rad/s
            assert 0.7 < (sim.pose()[2] - 0.5) < 1.1
            runs.append(sim.position())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_a_collision_knocks_a_loose_object_and_the_imu_shows_the_spike():
    cfg = small_config()
    with DroneSim(corridor(), cfg, seed=0) as sim:
        sim.reset(0.0, 1.0, 0.0)
        before = sim.loose_positions()
        detector = CollisionDetector(PilotConfig())
        detector.reset(sim.time)
        quiet, hit = [], None
        for _ in range(48 * 4):
            imu = sim.step(1.0, 0.0)
            if detector.update(sim.time, imu.linear_acceleration, imu.contact):
                hit = imu
                break
            quiet.append(math.hypot(*imu.linear_acceleration[:2]))
        assert hit is not None, "no collision detected"
        spike = math.hypot(*hit.linear_acceleration[:2])
        assert hit.contact and spike > 2 * max(quiet) and spike > 8.0
        # the pole stands 2 m ahead; the drone's rotors reach 0.16 m forward
        assert 1.5 < sim.position()[0] < 1.95
        for _ in range(96):
            sim.step(-0.5, 0.0)
        moved = {b: np.linalg.norm(p - before[b]) for b, p in sim.loose_positions().items()}
        assert max(moved.values()) > 0.1


def test_scripted_flight_into_a_wall_is_labelled_by_time_to_collision():
    cfg = small_config()
    pc = PilotConfig()
    pilot = Pilot(pc, seed=0)
    with DroneSim(corridor(loose=False), cfg, seed=0) as sim:
        sim.reset(0.0, 0.0, 0.0)
        cmd, tick = (0.0, 0.0), 0
        while pilot.collisions == 0 and sim.time < 10.0:
            if tick % cfg.flight.camera_every == 0:
                pilot.on_frame(sim.time, sim.image())
            imu = sim.step(*cmd)
            tick += 1
            cmd = pilot.tick(sim.time, imu.linear_acceleration, imu.contact)
            assert pilot.collisions or cmd == (pc.speed, 0.0)
        hit_x = sim.position()[0]
        assert pilot.collisions == 1 and pilot.state == "backoff"
        assert 3.75 < hit_x < 3.9  # wall face at 4.0, rotors 0.16 ahead of the centre
        t_hit = pilot.last_collision
        frames = pilot.take()
        # next command backs off
        assert pilot.tick(sim.time, np.array([0, 0, GRAVITY]))[0] < 0
    ttc = np.array([f.time_to_collision for f in frames])
    assert len(frames) >= 15
    assert np.all((ttc <= pc.unsafe_s) | (ttc >= pc.safe_s))
    assert np.all([f.safe == (f.time_to_collision >= pc.safe_s) for f in frames])
    assert 3 <= np.sum(ttc <= pc.unsafe_s) <= 7  # ~6 frames a second
    np.testing.assert_allclose(ttc, [t_hit - f.t for f in frames])
    assert frames[0].safe and not frames[-1].safe
    rec = validate(to_interaction(frames[-1], "drone0", 7, 0, False, 10))
    assert rec.task == "crash" and rec.outcome[0] <= pc.unsafe_s and not rec.success
    assert rec.before.shape == (32, 32, 3) and rec.action == [0.0, pc.speed]


def test_label_frames_drops_the_ambiguous_band_and_keeps_lower_bounds_safe():
    cfg = PilotConfig(unsafe_s=1.0, safe_s=1.5)
    img = np.zeros((4, 8, 3), np.uint8)
    frames = [(t, img) for t in np.arange(0.0, 5.01, 0.25)]
    out = label_frames(frames, 5.0, True, cfg, 1.0)
    ttc = sorted(round(f.time_to_collision, 2) for f in out)
    assert ttc == [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25,
                   3.5, 3.75, 4.0, 4.25, 4.5, 4.75, 5.0]
    timeout = label_frames(frames, 5.0, False, cfg, 1.0)
    assert all(f.safe and not f.collided for f in timeout)
    assert min(f.time_to_collision for f in timeout) >= 1.5


def test_the_detector_stays_quiet_in_free_flight_and_fires_on_a_stall():
    cfg = small_config()
    detector = CollisionDetector(PilotConfig())
    with DroneSim(Layout(0, 20.0, 20.0, []), cfg, seed=1) as sim:
        sim.reset(0.0, 0.0, 0.0)
        detector.reset(sim.time)
        for cmd in [(1.0, 0.0)] * 96 + [(0.0, 1.5)] * 48 + [(-0.5, 0.0)] * 48 + [(1.0, 0.0)] * 48:
            imu = sim.step(*cmd)
            assert not detector.update(sim.time, imu.linear_acceleration, imu.contact)
    level = np.array([0.0, 0.0, GRAVITY])
    assert not any(detector.update(t, level, False, 0.0, 1.0) for t in (0.0, 0.5, 1.2, 1.5))
    assert detector.update(1.9, level, False, 0.0, 1.0)


# -- policies ---------------------------------------------------------------------------


def test_crops_and_the_learned_policy_turn_toward_the_safer_side():
    img = np.zeros((32, 64, 3), np.uint8)
    img[:, :, 0] = np.arange(64)
    left, centre, right = crops(img)
    assert left.shape == centre.shape == right.shape == (32, 32, 3)
    assert (left[0, 0, 0], centre[0, 0, 0], right[0, 0, 0]) == (0, 16, 32)
    scores = iter([[0.2, 0.9, 0.1], [0.2, 0.3, 0.8], [0.9, 0.3, 0.1], [0.1, 0.6, 0.1]])
    policy = CrashNetPolicy(lambda _crops: np.array(next(scores)), speed=1.0, turn_rate=1.5)
    assert policy.act(0.0, img) == (1.0, 0.0)
    assert policy.act(0.2, img) == (0.0, -1.5)  # right is safer: turn right (negative yaw)
    assert policy.act(0.4, img) == (0.0, -1.5)  # keeps turning the same way
    assert policy.act(0.6, img) == (1.0, 0.0)
    rnd = RandomTurnPolicy(turn_prob=1.0)
    rnd.reset(3)
    assert rnd.act(0.0, None)[0] == 0.0


def test_drone_graph_gives_each_drone_a_namespace_and_one_learner():
    from curious_robot.graph import drone_graph

    specs = drone_graph(robots=2, seed=1, store="/tmp/x.db")
    assert [s.fqn for s in specs] == ["/drone0/drone", "/drone0/pilot", "/drone1/drone",
                                      "/drone1/pilot", "/learner"]
    assert specs[1].parameters["robot"] == "drone0"
    assert specs[0].parameters["room_index"] != specs[2].parameters["room_index"]
    with pytest.raises(ValueError):
        drone_graph(robots=-1)


def test_drone_config_matches_the_nodes():  # the launch file: tests/test_launch_files.py
    import pathlib

    import yaml

    from curious_robot.graph import drone_graph
    from curious_robot.node_config import check_overrides, params_of
    from tests.helpers.setup_nodes import node_targets

    root = pathlib.Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "drone.yaml").read_text())
    targets = node_targets(root)
    for spec in drone_graph(robots=1):
        assert spec.executable in targets, spec.executable
        cls = params_of(spec.executable)  # what the node declares (curious_robot/node_config)
        key = "/learner" if spec.name == "learner" else f"/**/{spec.name}"
        section = (config.get(key) or {}).get("ros__parameters") or {}
        assert check_overrides(cls, section, key) == [], spec.name
        assert check_overrides(cls, spec.parameters, spec.fqn) == [], spec.name
