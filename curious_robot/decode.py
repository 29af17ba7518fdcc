"""Messages -> the project's types, without message classes: these read any object shaped
like the message (an rclpy message, or one decoded from an MCAP file), so pure code (the
store's MCAP import) can use them. The other direction needs the classes:
:mod:`curious_robot.convert`, which re-exports these.
"""

from __future__ import annotations

import numpy as np

from curious_robot.record import Interaction, InvalidInteraction, check_counts, check_image_size

#: encoding -> (dtype, channels)
ENCODINGS = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "mono8": (np.uint8, 1),
    "32FC1": (np.float32, 1),
    "16UC1": (np.uint16, 1),
}


def msg_to_image(msg, name: str = "image") -> np.ndarray | None:
    """sensor_msgs/Image -> numpy (``None`` for an empty image); checks size vs. encoding."""
    if msg.width == 0 or msg.height == 0:
        return None
    if msg.encoding not in ENCODINGS:
        raise InvalidInteraction(f"{name}: unsupported encoding {msg.encoding!r}")
    dtype, channels = ENCODINGS[msg.encoding]
    check_image_size(name, msg.height, msg.width, np.dtype(dtype).itemsize, channels)
    row = msg.width * channels * np.dtype(dtype).itemsize
    if msg.step != row:
        raise InvalidInteraction(
            f"{name}: step {msg.step} does not match width {msg.width} x {msg.encoding} "
            f"({row} bytes)")
    expected = row * msg.height
    data = bytes(msg.data) if not isinstance(msg.data, (bytes, bytearray)) else msg.data
    if len(data) != expected:
        raise InvalidInteraction(
            f"{name}: {len(data)} bytes of data for {msg.width}x{msg.height} {msg.encoding} "
            f"(expected {expected})")
    arr = np.frombuffer(data, dtype=dtype).reshape(
        (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels))
    if msg.encoding == "bgr8":
        arr = arr[:, :, ::-1]
    return arr.copy()


def from_time(t) -> float:
    return float(t.sec) + float(t.nanosec) * 1e-9


def msg_to_record(msg) -> Interaction:
    """Interaction message -> record. Raises InvalidInteraction for malformed images or
    truth arrays; call :func:`curious_robot.record.validate` for the full check."""
    check_counts(len(msg.views), max(len(msg.tactile.depth), len(msg.tactile.force)),
                 max(len(msg.truth_keys), len(msg.truth_values)),
                 {"task": msg.task, "robot": msg.robot, "object_id": msg.object_id,
                  "object_model": msg.object_model,
                  "policy": getattr(msg, "policy", "")})
    if len(msg.truth_keys) != len(msg.truth_values):
        raise InvalidInteraction(
            f"truth_keys has {len(msg.truth_keys)} entries but truth_values "
            f"{len(msg.truth_values)}")
    return Interaction(
        task=msg.task,
        robot=msg.robot,
        seq=int(msg.seq),
        object_id=msg.object_id,
        object_model=msg.object_model,
        held_out=bool(msg.held_out),
        action=[float(v) for v in msg.action],
        success=bool(msg.success),
        outcome=[float(v) for v in msg.outcome],
        before=msg_to_image(msg.image_before, "image_before"),
        after=msg_to_image(msg.image_after, "image_after"),
        depth_before=msg_to_image(msg.depth_before, "depth_before"),
        views=[msg_to_image(v, f"views[{i}]") for i, v in enumerate(msg.views)],
        tactile_depth=[float(v) for v in msg.tactile.depth],
        tactile_force=[float(v) for v in msg.tactile.force],
        truth=dict(zip(msg.truth_keys, (float(v) for v in msg.truth_values))),
        stamp_start=from_time(msg.started),
        stamp_end=from_time(msg.header.stamp),
        sim_step=int(msg.sim_step),
        # a recording from before the field has none
        policy=str(getattr(msg, "policy", "")),
    )
