"""The reachability filter the manager chooses objects with (selection.reachable)."""

import numpy as np
import pytest

from curious_robot.perception import Detection
from curious_robot.selection import Workspace, centroid_xy, reachable

pytestmark = pytest.mark.unit

AREA = Workspace(-0.2, 0.2, -0.2, 0.2)


def _det(x: float, y: float) -> Detection:
    return Detection(np.array([x, y, 0.02]), np.array([0.05, 0.03, 0.04]), 0.0, 100,
                     (0, 0, 10, 10))


def _msg(x: float, y: float):
    from curious_robot_interfaces.msg import DetectedObject

    m = DetectedObject()
    m.centroid.x, m.centroid.y = x, y
    return m


@pytest.mark.parametrize("make", [_det, _msg], ids=["detection", "message"])
def test_only_objects_margin_inside_the_area_are_kept(make):
    inside, edge, out_x, out_y = make(0.05, -0.1), make(0.195, 0.0), make(0.087, -0.214), \
        make(-0.23, 0.0)
    objs = [inside, edge, out_x, out_y]
    assert reachable(objs, AREA, 0.01) == [inside]
    assert reachable(objs, AREA, 0.0) == [inside, edge]
    assert centroid_xy(out_x) == pytest.approx((0.087, -0.214))


def test_no_area_yet_keeps_everything_and_bad_margins_are_refused():
    objs = [_det(0.5, 0.5), _det(0.0, 0.0)]
    assert reachable(objs, None, 0.01) == objs
    assert reachable(iter(objs), AREA, 0.0) == [objs[1]]
    for bad in (-0.01, float("nan")):
        with pytest.raises(ValueError, match="reach margin"):
            reachable(objs, AREA, bad)


def test_a_custom_position_is_used():
    pts = [(0.0, 0.0), (0.3, 0.0)]
    assert reachable(pts, AREA, 0.01, position=lambda p: p) == [(0.0, 0.0)]
