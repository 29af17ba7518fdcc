"""Object curiosity's score cache against real renders: a neighbour sliding towards an
object leaves the object's patch pixel for pixel the same for as long as the cache keeps
its score, and the cache keeps it where the patch's own square says nothing can show yet
(closer than the old rule, a patch side between centres, allowed)."""

import numpy as np
import pytest

pytest.importorskip("pybullet")

from curious_robot.learning.curiosity import ScoreCache  # noqa: E402
from curious_robot.perception import detect_objects  # noqa: E402
from curious_robot.world import World, WorldConfig  # noqa: E402

pytestmark = pytest.mark.sim


def _rows(world):
    _rgb, depth = world.capture()
    cam = world.camera
    dets, _plane = detect_objects(depth, cam.fx, cam.fy, cam.cx, cam.cy, cam.pose)
    return [(d.centroid[0], d.centroid[1], d.yaw, d.size[0], d.size[1], d.size[2])
            for d in dets]


def test_a_kept_score_means_an_unchanged_patch_as_a_neighbour_slides_in():
    with World(WorldConfig(num_objects=2), seed=9) as world:  # two single-part objects
        p = world.p
        a, b = world.objects()
        (x0, x1), (y0, y1), _ = world.workspace
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
        p.resetBasePositionAndOrientation(a.body, [cx - 0.12, cy, a.position[2]],
                                          a.orientation)
        start = [cx + 0.15, cy, b.position[2]]
        p.resetBasePositionAndOrientation(b.body, start, b.orientation)
        rows = _rows(world)
        assert len(rows) == 2, "seed 9 has two objects seen as one detection each"
        ia = int(np.argmin([r[0] for r in rows]))  # a is the one on the left
        ax, ay = rows[ia][:2]
        extent = world.config.patch_extent
        before = world.patch(ax, ay, depth=False)[0]
        kept_closer_than_old_rule, voided_at, changed_at = False, None, None
        for k, x in enumerate(np.arange(start[0], ax + 0.02, -0.005)):
            p.resetBasePositionAndOrientation(b.body, [x, cy, b.position[2]], b.orientation)
            cache = ScoreCache(extent=extent)
            cache.keep(rows, [0.0, 1.0], step=1)
            now = _rows(world)  # b may come as one detection or as two parts
            mine = int(np.argmin([np.hypot(r[0] - ax, r[1] - ay) for r in now]))
            kept = cache.scores(now, step=1)[mine] is not None
            same = np.array_equal(world.patch(ax, ay, depth=False)[0], before)
            if not same and changed_at is None:
                changed_at = k
            if kept:
                assert same, f"score kept with b at x={x:.3f} but a's patch changed"
                kept_closer_than_old_rule |= min(
                    np.hypot(r[0] - ax, r[1] - ay) for i, r in enumerate(now) if i != mine
                ) <= extent
            elif voided_at is None:
                voided_at = k
        assert changed_at is not None and voided_at is not None
        assert voided_at <= changed_at  # voided no later than b first shows in the patch
        assert kept_closer_than_old_rule
