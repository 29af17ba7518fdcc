"""Scene upkeep and object choice together: the manager's loop run in-process (capture ->
detect -> reachable objects -> random action inside the arm's area -> the task on the
simulated arm -> maintain) refuses nothing, while objects keep drifting to the edge."""

import numpy as np
import pytest

pytest.importorskip("pybullet")

from curious_robot import tasks as registry  # noqa: E402
from curious_robot.arm.sim import SimBackend  # noqa: E402
from curious_robot.node_config import effective  # noqa: E402
from curious_robot.perception import detect_objects  # noqa: E402
from curious_robot.selection import Target, Workspace, reachable, select_random  # noqa: E402
from curious_robot.world import World, WorldConfig  # noqa: E402

pytestmark = pytest.mark.sim


def test_many_interactions_in_process_refuse_nothing():
    manager = effective("interaction_manager")
    tasks = registry.all_tasks("arm")
    weights = np.array([manager[f"weight_{t.name}"] for t in tasks], float)
    rng = np.random.default_rng(4)
    refused, done, put_back = [], 0, 0
    with World(WorldConfig(num_objects=8), seed=21) as world:
        backend = SimBackend(world)
        area = Workspace(*backend.robot.target_area()[0], *backend.robot.target_area()[1])
        (x0, x1), (y0, y1), _ = world.workspace
        while done < 36:
            if done % 4 == 3:  # an object drifts to the edge, as dropped ones do
                o = world.objects()[int(rng.integers(len(world.objects())))]
                x = x1 - 0.004 if rng.random() < 0.5 else x0 + 0.004
                world.p.resetBasePositionAndOrientation(
                    o.body, [x, float(np.clip(o.position[1], y0, y1)), o.position[2] + 0.005],
                    o.orientation)
                world.settle()
                put_back += world.maintain()["put_back"]
            assert world.out_of_reach() == []
            _rgb, depth = world.capture()
            cam = world.camera
            dets, _plane = detect_objects(depth, cam.fx, cam.fy, cam.cx, cam.cy, cam.pose)
            dets = reachable(dets, area, manager["reach_margin"])
            if not dets:
                world.reset()
                continue
            d = dets[int(rng.integers(len(dets)))]
            task = tasks[int(rng.choice(len(tasks), p=weights / weights.sum()))]
            target = Target(float(d.centroid[0]), float(d.centroid[1]), d.yaw,
                            float(d.size[0]), float(d.size[1]))
            action = select_random(task.name, target, rng, area).action
            try:
                task.execute(backend, action)
            except ValueError as exc:
                refused.append(f"{task.name} {action}: {exc}")
            world.maintain()
            done += 1
    assert refused == []
    assert put_back >= 8  # the drifted objects were put back, not left for the filter
