"""Geometry of the motions, shared by the simulated world and the hardware backend:
rotation matrices <-> quaternions (x, y, z, w), the top-down grasp orientation of an arm
and angle wrapping. Pure numpy."""

from __future__ import annotations

import math

import numpy as np


def quat_from_matrix(r: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation matrix -> quaternion (x, y, z, w)."""
    t = np.trace(r)
    if t > 0:
        s = math.sqrt(t + 1.0) * 2
        w, x = 0.25 * s, (r[2, 1] - r[1, 2]) / s
        y, z = (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        w, x = (r[2, 1] - r[1, 2]) / s, 0.25 * s
        y, z = (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
    elif r[1, 1] > r[2, 2]:
        s = math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        w, x = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s
        y, z = 0.25 * s, (r[1, 2] + r[2, 1]) / s
    else:
        s = math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        w, x = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s
        y, z = (r[1, 2] + r[2, 1]) / s, 0.25 * s
    return (x, y, z, w)


def matrix_from_quat(q) -> np.ndarray:
    """Quaternion (x, y, z, w) -> rotation matrix (3, 3) (normalises ``q``)."""
    x, y, z, w = (float(v) for v in q)
    n = math.sqrt(x * x + y * y + z * z + w * w)
    if not n > 0:
        raise ValueError(f"quaternion {tuple(q)} has no length")
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rot_about(axis, angle: float) -> np.ndarray:
    """Rotation matrix of ``angle`` rad about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, float)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def grasp_orientation(arm, angle: float, tilt: tuple[float, float] = (0.0, 0.0)):
    """Quaternion (x, y, z, w) of an ``ArmConfig``'s ee frame pointing down with the fingers
    closing along ``angle`` (table frame). ``tilt`` = (about the finger axis, about the
    other horizontal axis), radians."""
    f_e, z_e = np.array(arm.finger_axis), np.array(arm.approach_axis)
    f_t = np.array([math.cos(angle), math.sin(angle), 0.0])
    z_t = np.array([0.0, 0.0, -1.0])
    b_e = np.stack([f_e, z_e, np.cross(f_e, z_e)], axis=1)
    b_t = np.stack([f_t, z_t, np.cross(f_t, z_t)], axis=1)
    r = b_t @ b_e.T
    if tilt[0]:
        r = rot_about(f_t, tilt[0]) @ r
    if tilt[1]:
        r = rot_about(np.cross(f_t, z_t), tilt[1]) @ r
    return quat_from_matrix(r)


def wrist_angle(home_finger_yaw: float, angle: float) -> float:
    """The grasp angle equivalent to ``angle`` (mod pi) that turns the wrist least from the
    finger axis' yaw at home."""
    d = (angle - home_finger_yaw + math.pi / 2) % math.pi - math.pi / 2
    return home_finger_yaw + d


def wrap_angle(a: float) -> float:
    """``a`` in [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi
