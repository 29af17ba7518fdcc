"""The simulated world with real PyBullet (DIRECT): primitives, determinism, scene upkeep."""

import math

import numpy as np
import pytest

pytest.importorskip("pybullet")

from curious_robot.world import (  # noqa: E402
    ArmConfig, GraspResult, InspectResult, PokeResult, PushResult, World, WorldConfig)
from curious_robot.world.objects import load_manifest  # noqa: E402

pytestmark = pytest.mark.sim


def _centre(world, oid):
    v = world.object_vertices(oid)
    c = 0.5 * (v.max(0) + v.min(0))
    return float(c[0]), float(c[1])


@pytest.fixture(scope="module")
def world():
    with World(WorldConfig(num_objects=4), seed=3) as w:
        yield w


@pytest.fixture
def lone():
    """A world with one object at the table centre."""
    with World(WorldConfig(num_objects=0), seed=5) as w:
        info = w.spawn_object(model_id=w._models[1].id)
        w.p.resetBasePositionAndOrientation(info.body, [0.0, 0.0, 0.04], [0, 0, 0, 1])
        w.settle(240)
        yield w, info.object_id


def test_capture_and_camera(world):
    rgb, depth = world.capture()
    cam = world.camera
    assert rgb.dtype == np.uint8 and rgb.shape == (cam.height, cam.width, 3) == (128, 128, 3)
    assert depth.dtype == np.float32 and depth.shape == (128, 128)
    pts = world.camera.point_cloud(depth)
    # most of the image is table: its points lie at z ~ 0 in the table frame
    assert np.median(pts[:, 2]) == pytest.approx(0.0, abs=0.003)
    assert cam.pose.shape == (4, 4) and cam.fx > 0 and cam.cx == pytest.approx(63.5)


def test_objects_have_properties_and_split(world):
    objs = world.objects()
    assert len(objs) == 4
    ids = {o.object_id for o in objs}
    assert len(ids) == 4
    for o in objs:
        assert not o.held_out  # default split is "train"
        assert o.stiffness > 0 and o.damping > 0 and o.mass > 0 and o.friction > 0
        assert len(o.position) == 3 and len(o.size) == 3
        (x0, x1), (y0, y1), _ = world.workspace
        assert x0 <= o.position[0] <= x1 and y0 <= o.position[1] <= y1
    models = load_manifest(world.config.objects_manifest)
    assert all(m.held_out == (m.id % 5 == 0) for m in models)
    assert 168 not in {m.id for m in models}  # broken mesh (NaN vertices) excluded


def test_patch_is_centred_and_axis_aligned(lone):
    w, oid = lone
    x, y = _centre(w, oid)
    table = w.patch(0.12, 0.12)[0].astype(int)  # empty table
    for dx, dy in ((0.04, 0.0), (0.0, 0.04)):
        rgb = w.patch(x - dx, y - dy)[0].astype(int)
        mask = np.abs(rgb - table[64, 64]).sum(axis=2) > 40
        rows, cols = np.nonzero(mask)
        # the object sits at +dx (more columns) or +dy (fewer rows) from the patch centre
        px_per_m = w.config.patch_size / w.config.patch_extent
        if dx:
            assert cols.mean() - 63.5 == pytest.approx(dx * px_per_m, abs=6)
        else:
            assert 63.5 - rows.mean() == pytest.approx(dy * px_per_m, abs=6)


def test_grasp_best_angle_lifts(lone):
    w, oid = lone
    x, y = _centre(w, oid)
    fractions = []
    r = w.grasp(x, y, w.best_grasp_angle(oid), progress=fractions.append)
    assert isinstance(r, GraspResult)
    assert r.success and r.object_id == oid
    assert r.gripper_width > w.config.closed_width
    assert r.patch.shape == (128, 128, 3) and r.patch.dtype == np.uint8
    assert r.truth["lift"] > 0.05
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # across the long side the object does not fit between the fingers: a finger lands
    # on it (the clearance under it is positive), where across the narrow side both
    # came down beside it
    r2 = w.grasp(*_centre(w, oid), w.best_grasp_angle(oid) + math.pi / 2)
    assert not r2.success
    assert r2.truth["finger_clearance_high"] > 0.005 > r.truth["finger_clearance_high"]
    assert r.truth["finger_clearance_low"] <= r.truth["finger_clearance_high"]
    # at the object's centre: no offset; the fingers that landed on it can pinch less of
    # it than the whole width between them
    assert r.truth["offset_along"] < 0.002 and r.truth["offset_across"] < 0.002
    assert r2.truth["pinch_width"] < r2.truth["enclosed_width"]
    assert 0.01 < r.truth["top_height"] < 0.2


def test_push_moves_object_along(lone):
    w, oid = lone
    x, y = _centre(w, oid)
    r = w.push((x - 0.08, y), (x + 0.08, y))
    assert isinstance(r, PushResult) and r.object_id == oid
    assert r.dx > 0.03 and r.dx > 3 * abs(r.dy)
    assert r.before.shape == r.after.shape == (128, 128, 3)
    assert not np.array_equal(r.before, r.after)


def test_poke_reads_stiffness(world):
    o = world.objects()[0]
    v = world.object_vertices(o.object_id)
    top = v[np.argmax(v[:, 2])]
    r = world.poke(float(top[0]), float(top[1]))
    assert isinstance(r, PokeResult)
    assert r.object_id == o.object_id and r.stiffness == pytest.approx(o.stiffness)
    assert len(r.depth) == len(r.force) > 10
    assert r.reached_force_limit and max(r.force) >= world.config.poke_force_limit
    assert r.fit is not None and r.fit.slope == pytest.approx(o.stiffness, rel=0.5)
    # the free travel to the surface is fast: few readings before the contact
    assert int(np.argmax(np.asarray(r.force) > 0.05)) < 80


def test_inspect_views(lone):
    w, oid = lone
    r = w.inspect(oid)
    assert isinstance(r, InspectResult)
    assert r.success and r.held_through_all
    assert len(r.views) == w.config.inspect_views
    assert all(v.shape == (128, 128, 3) and v.dtype == np.uint8 for v in r.views)


def test_an_inspect_holds_the_objects_away_from_its_own_still_and_lets_them_go():
    """While an inspect shows its object, the other objects are static (mass 0), except
    one within HOLD_CLEARANCE of it, which stays free; afterwards every mass is back and
    the held objects did not move."""
    from curious_robot.world.sim_robot import HOLD_CLEARANCE

    with World(WorldConfig(num_objects=4), seed=3) as w:
        p = w.p
        target, neighbour, *far = w.objects()
        # slide the neighbour to 3 mm from the target, as clutter leaves objects
        for _ in range(3):
            c = min(p.getClosestPoints(target.body, neighbour.body, 1.0), key=lambda c: c[8])
            gap = np.subtract(c[5], c[6])[:2]
            shift = gap * (1 - 0.003 / max(np.linalg.norm(gap), 1e-6))
            pos, orn = p.getBasePositionAndOrientation(neighbour.body)
            p.resetBasePositionAndOrientation(
                neighbour.body, [pos[0] + shift[0], pos[1] + shift[1], pos[2]], orn)
            w.settle(240)
        assert p.getClosestPoints(target.body, neighbour.body, HOLD_CLEARANCE)
        far = [o for o in far if not p.getClosestPoints(target.body, o.body, HOLD_CLEARANCE)]
        assert far
        mass = {o.body: p.getDynamicsInfo(o.body, -1)[0] for o in w.objects()}
        where = {o.body: p.getBasePositionAndOrientation(o.body)[0] for o in far}
        with w.robot.hold_others(target.object_id):
            inside = {o.body: p.getDynamicsInfo(o.body, -1)[0] for o in w.objects()}
            w.step(60)
        assert all(inside[o.body] == 0.0 for o in far)
        assert inside[target.body] == mass[target.body] > 0
        assert inside[neighbour.body] == mass[neighbour.body] > 0
        assert {o.body: p.getDynamicsInfo(o.body, -1)[0] for o in w.objects()} == mass
        assert {o.body: p.getBasePositionAndOrientation(o.body)[0] for o in far} == where
        w.step(120)  # free again: a held object falls when its support goes
        b = far[0].body
        pos, orn = p.getBasePositionAndOrientation(b)
        p.resetBasePositionAndOrientation(b, [pos[0], pos[1], pos[2] + 0.05], orn)
        w.step(120)
        assert p.getBasePositionAndOrientation(b)[0][2] == pytest.approx(pos[2], abs=0.01)
    with World(WorldConfig(num_objects=3, hold_during_views=False), seed=3) as w:
        with w.robot.hold_others(w.objects()[0].object_id):
            assert all(w.p.getDynamicsInfo(o.body, -1)[0] > 0 for o in w.objects())


def test_same_seed_same_outcomes():
    outs = []
    for _ in range(2):
        with World(WorldConfig(num_objects=3), seed=11) as w:
            o = w.objects()[0]
            g = w.grasp(*_centre(w, o.object_id), 0.3)
            outs.append(([ob.position for ob in w.objects()], o.stiffness, g.success,
                          g.gripper_width, w.step_count, g.patch.tobytes()))
    assert outs[0] == outs[1]


def test_two_worlds_in_one_process_are_independent():
    with World(WorldConfig(num_objects=2), seed=1) as a, \
            World(WorldConfig(num_objects=2), seed=2) as b:
        pa = [o.position for o in a.objects()]
        b.push((-0.1, 0.0), (0.1, 0.0))
        assert [o.position for o in a.objects()] == pa
        assert a.step_count != b.step_count


def test_respawn_after_falling_off(world):
    o = world.objects()[1]
    world.p.resetBasePositionAndOrientation(o.body, [0.9, 0.0, -0.5], [0, 0, 0, 1])
    assert world.out_of_workspace() == [o.object_id]
    report = world.maintain()
    assert report["respawned"] == 1
    assert len(world.objects()) == 4 and o.object_id not in {x.object_id for x in world.objects()}
    assert world.out_of_workspace() == []


def test_an_object_that_drifted_out_of_reach_is_put_back(world):
    """Still on the table but too near the edge for the arm to act on it: maintain puts
    the same object back inside, where a grasp at its centre is not refused."""
    o = world.objects()[2]
    (x0, x1), _, _ = world.workspace
    world.p.resetBasePositionAndOrientation(o.body, [x1 - 0.005, 0.0, o.position[2] + 0.005],
                                            o.orientation)
    world.settle()
    assert world.out_of_workspace() == [] and world.out_of_reach() == [o.object_id]
    report = world.maintain()
    assert report["put_back"] == 1 and report["respawned"] == 0
    assert world.out_of_reach() == []
    moved = world.object(o.object_id)  # the same object, its properties kept
    assert moved.stiffness == o.stiffness and moved.model_id == o.model_id
    m = world.config.reach_margin
    assert x0 + m <= moved.position[0] <= x1 - m
    r = world.grasp(*_centre(world, o.object_id), 0.0)
    assert r.object_id == o.object_id and not r.aborted


def test_a_push_out_of_reach_keeps_its_outcome_and_is_put_back_afterwards():
    with World(WorldConfig(num_objects=0), seed=5) as w:
        info = w.spawn_object(model_id=w._models[1].id)
        w.p.resetBasePositionAndOrientation(info.body, [0.13, 0.0, 0.04], [0, 0, 0, 1])
        w.settle(240)
        x, y = _centre(w, info.object_id)
        r = w.push((x - 0.07, y), (0.2, y))
        assert r.object_id == info.object_id and r.dx > 0.02 and abs(r.dy) < r.dx
        # measured where the push left it, beyond the reach margin; put back only now
        assert w.object(info.object_id).position[0] == pytest.approx(x + r.dx, abs=0.01)
        assert w.out_of_reach() == [info.object_id]
        assert w.maintain()["put_back"] == 1 and w.out_of_reach() == []


def test_blow_up_is_detected_and_reset(world):
    o = world.objects()[0]
    world.p.resetBaseVelocity(o.body, [100.0, 0.0, 0.0])
    assert world.blown_up()
    before = world.recoveries
    assert world.maintain()["reset"] == 1
    assert world.recoveries == before + 1 and not world.blown_up()
    assert len(world.objects()) == 4


def test_clear_errors(world):
    with pytest.raises(ValueError, match="outside the workspace"):
        world.grasp(0.9, 0.0, 0.0)
    with pytest.raises(ValueError, match="outside the workspace"):
        world.push((0.0, 0.0), (0.0, 0.7))
    with pytest.raises(ValueError, match="outside the workspace"):
        world.poke(-0.5, 0.0)
    with pytest.raises(ValueError, match="unknown object id 'nope'"):
        world.inspect("nope")
    with pytest.raises(ValueError, match="too short"):
        world.push((0.0, 0.0), (0.001, 0.0))


def test_should_stop_aborts_cleanly(world):
    calls = iter(range(1000))
    r = world.grasp(0.0, 0.0, 0.0, should_stop=lambda: next(calls) >= 1)
    assert r.aborted and not r.success
    names, q, _, _ = world.joint_state()
    assert len(names) == len(q) == 9
    assert np.allclose(q[:7], world.config.arm.home, atol=1e-6)


def test_configs_load_from_yaml(tmp_path):
    arm = ArmConfig.from_yaml("arms/panda.yaml")
    assert arm == ArmConfig()
    path = tmp_path / "world.yaml"
    path.write_text("num_objects: 2\nobject_split: held_out\narm: arms/panda.yaml\n")
    cfg = WorldConfig.from_yaml(path)
    assert cfg.num_objects == 2 and cfg.arm == arm
    with pytest.raises(ValueError, match="unknown keys"):
        path.write_text("num_objcts: 2\n")
        WorldConfig.from_yaml(path)
    with pytest.raises(ValueError, match="object_split"):
        WorldConfig(object_split="test")


def test_scenes_split_draws_each_scene_from_one_side():
    """object_split "scenes": every scene (reset) is all training or all held-out
    objects, a held_out_scenes share of them held out, and an object put back within a
    scene comes from the scene's side, so a held-out object never shares an image with a
    training one."""
    cfg = WorldConfig(num_objects=3, object_split="scenes", held_out_scenes=0.5)
    held_scenes = 0
    with World(cfg, seed=11) as w:
        for _ in range(16):
            w.reset()
            sides = {o.held_out for o in w.objects()}
            assert sides == {w.scene_split == "held_out"}
            held_scenes += w.scene_split == "held_out"
            if w.scene_split == "held_out":
                w.remove_object(w.objects()[0].object_id)
                assert w.spawn_object().held_out  # put back from the same side
    assert 3 <= held_scenes <= 13  # 16 draws at 0.5
    with World(WorldConfig(num_objects=3, object_split="scenes", held_out_scenes=0.0),
               seed=11) as w:
        for _ in range(4):
            w.reset()
            assert w.scene_split == "train" and not any(o.held_out for o in w.objects())
    with pytest.raises(ValueError, match="held_out_scenes"):
        WorldConfig(held_out_scenes=1.5)


def test_material_shows_in_the_texture_not_in_the_colour_and_sets_the_feel():
    """Every object feels like its material (stiffness in its range); its colour is drawn
    at random (any hue for every material), its surface texture follows the material. So
    a 1-nearest-neighbour guess of the material from two texture statistics of the object's
    pixels beats the same guess from their mean colour, which stays near chance (0.25).
    120 objects: with 40 (4 worlds) the 1-NN accuracies moved by 0.25 when the physics
    changed how objects come to rest (0.525 -> 0.275 by texture), with 120 by 0.10
    (0.592 / 0.242 multibody objects, 0.492 / 0.283 rigid ones, by texture / colour)."""
    import cv2

    from curious_robot.world.objects import MATERIALS

    ranges = {m.name: m for m in MATERIALS}
    tex, col, names, hues = [], [], [], {}
    for seed in range(12):
        with World(WorldConfig(num_objects=10, object_split="train"), seed=seed) as w:
            for o in w.objects():
                m = ranges[o.material]
                assert m.stiffness[0] <= o.stiffness <= m.stiffness[1]
                rgb, depth = w.patch(o.position[0], o.position[1])
                on = cv2.erode(((w.config.camera_height - depth) > 0.004).astype(np.uint8),
                               np.ones((5, 5), np.uint8)) > 0
                grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(float)
                lap = np.abs(cv2.Laplacian(grey, cv2.CV_64F))
                mean = grey[on].mean()
                tex.append([lap[on].mean() / mean, grey[on].std() / mean])
                col.append(rgb[on].mean(0))
                names.append(o.material)
                hsv = cv2.cvtColor(rgb[on][None].astype(np.uint8), cv2.COLOR_RGB2HSV)[0]
                hues.setdefault(o.material, []).append(float(np.median(hsv[:, 0])))
    names = np.array(names)

    def nn_accuracy(f):
        f = np.asarray(f, float)
        f = (f - f.mean(0)) / f.std(0)
        d = ((f[:, None] - f[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return float((names[d.argmin(1)] == names).mean())

    by_texture, by_colour = nn_accuracy(tex), nn_accuracy(col)
    assert len(set(names)) == 4 and len(names) == 120
    assert by_colour <= 0.4 and by_texture >= by_colour + 0.2, (by_texture, by_colour)
    for material, h in hues.items():  # OpenCV hue: 0-180
        assert max(h) - min(h) > 60, (material, h)


def test_a_pinned_object_stays_put_and_gets_its_mass_back_in_both_physics():
    """World.pin holds an object through physics (rigid objects: made static; multibody
    ones: a fixed constraint) and World.unpin gives back what it had: the default rigid
    physics and sim/worlds/multibody-physics.yaml (the physics before issue 15)."""
    from curious_robot.motion.config import sim_dir

    legacy = WorldConfig.from_yaml(sim_dir() / "worlds" / "multibody-physics.yaml")
    assert (legacy.rigid_objects, legacy.solver_iterations) == (False, 50)
    for config in (WorldConfig(num_objects=3), legacy):
        config.num_objects = 3
        with World(config, seed=2) as w:
            o = w.objects()[0]
            info = w.p.getDynamicsInfo(o.body, -1)
            pos0 = np.array(w.p.getBasePositionAndOrientation(o.body)[0])
            w.p.resetBaseVelocity(o.body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
            held = w.pin(o.body)
            w.p.applyExternalForce(o.body, -1, [5.0, 0.0, 0.0], pos0.tolist(),
                                   w.p.WORLD_FRAME)
            w.step(20)
            moved = np.linalg.norm(np.array(w.p.getBasePositionAndOrientation(o.body)[0]) - pos0)
            w.unpin(held)
            assert moved < 1e-3, (config.rigid_objects, moved)
            # mass, friction, inertia (PyBullet reports no inertial frame of a rigid body)
            assert w.p.getDynamicsInfo(o.body, -1)[:3] == info[:3]
            w.p.applyExternalForce(o.body, -1, [5.0, 0.0, 0.0], pos0.tolist(),
                                   w.p.WORLD_FRAME)
            w.step(20)  # free again: the same push moves it
            moved = np.linalg.norm(np.array(w.p.getBasePositionAndOrientation(o.body)[0]) - pos0)
            assert moved > 1e-3, (config.rigid_objects, moved)
