"""Conversions between ROS messages and the project's plain-Python types.

Only this module (and the nodes) know message classes; they are imported lazily so the
pure code never needs rclpy. Malformed images raise
:class:`curious_robot.record.InvalidInteraction` naming the image and the mismatch.
"""

from __future__ import annotations

import math

import numpy as np

from curious_robot import tasks as registry
from curious_robot.decode import (ENCODINGS, from_time, msg_to_image,  # noqa: F401 (public)
                                  msg_to_record)
from curious_robot.record import Interaction, InvalidInteraction

def image_to_msg(img: np.ndarray | None, encoding: str | None = None, header=None):
    """numpy image -> sensor_msgs/Image (``None`` gives an empty image, width 0)."""
    from sensor_msgs.msg import Image

    msg = Image()
    if header is not None:
        msg.header = header
    if img is None:
        return msg
    img = np.ascontiguousarray(img)
    if encoding is None:
        encoding = "32FC1" if img.dtype == np.float32 else "rgb8"
    dtype, channels = ENCODINGS[encoding]
    if img.dtype != dtype or (img.ndim == 3 and img.shape[2] != channels) or \
            (img.ndim == 2 and channels != 1):
        raise InvalidInteraction(f"array {img.dtype} {img.shape} does not match {encoding}")
    msg.height, msg.width = int(img.shape[0]), int(img.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(msg.width * channels * np.dtype(dtype).itemsize)
    msg.data = img.tobytes()
    return msg


def to_time(seconds: float):
    from builtin_interfaces.msg import Time

    # floor, so a negative stamp keeps nanosec in [0, 1e9) as builtin_interfaces/Time
    # requires; a fraction that rounds up to 1e9 ns carries into the seconds (5.9999999999 s
    # is 6 s, not 5 s + a wrapped 0 ns)
    sec = math.floor(seconds)
    nanosec = int(round((seconds - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=int(sec), nanosec=nanosec)


def record_to_msg(rec: Interaction):
    """Interaction record -> curious_robot_interfaces/Interaction message."""
    from curious_robot_interfaces.msg import Interaction as InteractionMsg
    from curious_robot_interfaces.msg import TactileResponse

    msg = InteractionMsg()
    msg.header.stamp = to_time(rec.stamp_end)
    msg.header.frame_id = "table"
    msg.robot = rec.robot
    msg.seq = int(rec.seq)
    msg.task = rec.task
    msg.object_id = rec.object_id
    msg.object_model = rec.object_model
    msg.held_out = bool(rec.held_out)
    msg.action = [float(v) for v in rec.action]
    msg.success = bool(rec.success)
    msg.outcome = [float(v) for v in rec.outcome]
    msg.image_before = image_to_msg(rec.before, "rgb8")
    msg.image_after = image_to_msg(rec.after, "rgb8")
    msg.depth_before = image_to_msg(rec.depth_before, "32FC1")
    msg.views = [image_to_msg(v, "rgb8") for v in rec.views]
    tac = TactileResponse()
    tac.depth = [float(v) for v in rec.tactile_depth]
    tac.force = [float(v) for v in rec.tactile_force]
    fit = registry.get(rec.task).tactile_fields(rec) if registry.known(rec.task) else None
    if fit is not None:
        tac.slope, tac.intercept, tac.onset_depth, tac.max_force = fit
        tac.valid = True
    msg.tactile = tac
    msg.truth_keys = list(rec.truth.keys())
    msg.truth_values = [float(v) for v in rec.truth.values()]
    msg.started = to_time(rec.stamp_start)
    msg.sim_step = int(rec.sim_step)
    msg.policy = rec.policy
    return msg
