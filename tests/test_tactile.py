"""Tactile fit: onset detection and robust slope on synthetic presses."""

import numpy as np
import pytest

from curious_robot.tactile import TactileFit, fit_tactile

pytestmark = pytest.mark.unit


def _press(k=5000.0, onset=0.003, n=200, depth_max=0.006, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    d = np.linspace(0.0, depth_max, n)
    f = np.clip(k * (d - onset), 0.0, None) + noise * rng.standard_normal(n) * (d > onset)
    return d, f


def test_recovers_slope_and_onset():
    d, f = _press(k=5000.0, onset=0.003)
    fit = fit_tactile(d, f)
    assert isinstance(fit, TactileFit)
    assert fit.slope == pytest.approx(5000.0, rel=0.01)
    assert fit.onset_depth == pytest.approx(0.003, abs=5e-5)
    assert fit.max_force == pytest.approx(f.max())
    assert fit.n_contact > 50
    assert fit.intercept == pytest.approx(-5000.0 * 0.003, rel=0.05)
    assert len(fit.as_outcome()) == 4


def test_robust_to_spikes_and_noise():
    d, f = _press(k=20000.0, noise=0.05)
    f[150] += 30.0
    f[170] = 0.0
    fit = fit_tactile(d, f)
    assert fit.slope == pytest.approx(20000.0, rel=0.05)


def test_orders_soft_and_hard():
    slopes = [fit_tactile(*_press(k=k, noise=0.02, seed=i)).slope
              for i, k in enumerate((1000.0, 3000.0, 10000.0, 30000.0))]
    assert slopes == sorted(slopes)


def test_no_contact_gives_zero_slope():
    fit = fit_tactile(np.linspace(0, 0.01, 10), np.zeros(10))
    assert fit.n_contact == 0 and fit.slope == 0.0


@pytest.mark.parametrize("depth, force, match", [
    ([0.0, 0.1, 0.2], [0.0, 1.0], "samples but force has"),
    ([0.0, 0.1], [0.0, 1.0], "at least 3"),
    ([0.0, float("nan"), 0.2], [0.0, 1.0, 2.0], "finite"),
])
def test_rejects_bad_input(depth, force, match):
    with pytest.raises(ValueError, match=match):
        fit_tactile(depth, force)


def test_fit_is_invalid_when_contact_comes_only_at_the_end():
    depth = np.linspace(0.0, 0.025, 400)
    force = np.zeros_like(depth)
    force[-2:] = [3.0, 8.5]  # touched in the last two samples: no usable slope
    fit = fit_tactile(depth, force)
    assert not fit.valid
    depth = np.linspace(0.0, 0.004, 200)
    force = np.clip((depth - 0.001) * 2000.0, 0.0, None)
    fit = fit_tactile(depth, force)
    assert fit.valid and fit.slope == pytest.approx(2000.0, rel=0.05)


def _patch(n=64, res=0.001):
    v, u = np.mgrid[0:n, 0:n]
    x, y = (u - (n - 1) / 2) * res, -(v - (n - 1) / 2) * res  # columns +x, rows -y
    return x, y, res


def test_the_poke_presses_the_most_level_spot_near_the_point():
    """A roof sloping 35 deg on both sides of the requested point, with a level shelf
    4-20 mm to its +x side: the shelf is chosen, its offset in table axes and ~0 tilt."""
    from curious_robot.motion.poke import level_spot

    x, y, res = _patch()
    h = 0.04 - np.tan(np.radians(35)) * np.abs(x)  # a roof along y through the centre
    shelf = (x > 0.004) & (x < 0.02) & (np.abs(y) < 0.02)
    h[shelf] = 0.03
    h = np.clip(h, 0.0, None)
    dx, dy, tilt = level_spot(h, res, radius=0.02)
    assert 0.009 <= dx <= 0.015 and abs(dy) <= 0.012 and tilt < 3.0, (dx, dy, tilt)
    # an even slope has no level spot: the nearest is taken, and says how steep it is
    ramp = 0.03 + np.tan(np.radians(35)) * x
    dx, dy, tilt = level_spot(ramp, res, radius=0.02)
    assert abs(dx) < 0.002 and abs(dy) < 0.002 and 33.0 < tilt < 37.0, (dx, dy, tilt)


def test_no_level_spot_off_the_object_or_too_near_its_edge():
    from curious_robot.motion.poke import level_spot

    x, y, res = _patch()
    assert level_spot(np.zeros_like(x), res) is None  # bare table
    thin = np.where(np.abs(x) < 0.003, 0.03, 0.0)  # a 6 mm rib: no ball-wide spot on it
    assert level_spot(thin, res, ball=0.005) is None
    wide = np.where(np.abs(x) < 0.008, 0.03, 0.0)
    dx, _dy, tilt = level_spot(wide, res, ball=0.005)
    assert abs(dx) <= 0.003 and tilt < 1.0


def test_a_rigid_press_is_clipped_and_not_a_training_target():
    """Force rising over a micrometre of depth (the probe met the table): the slope is
    clipped to what the depth reading resolves, stays inside the record's limits, and the
    fit is not valid, so it is stored but not trained on."""
    from curious_robot.record import LIMITS
    from curious_robot.tactile import MAX_SLOPE

    depth = np.concatenate([np.linspace(0, 0.002, 20), 0.002 + np.linspace(0, 2e-8, 20)])
    force = np.concatenate([np.zeros(20), np.linspace(0.5, 5.0, 20)])
    fit = fit_tactile(depth, force)
    assert fit.slope == MAX_SLOPE and not fit.valid
    assert all(abs(v) <= LIMITS.magnitude for v in fit.as_outcome())
