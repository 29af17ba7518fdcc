"""The self-supervised pilot, pure logic (no ROS, no simulator): fly straight until a
collision, back off, turn to a new heading, repeat; label the frames of each straight
flight by the time left before its collision ("Learning to Fly by Crashing", Gandhi,
Pinto and Gupta, IROS 2017).

The same :class:`Pilot` runs in the pilot node (fed by /imu, /pose and the camera topic)
and in-process (``curious-robot drone-data``, the tests). Inputs are timestamped samples;
time is whatever clock the samples carry (simulation time in simulation).

Labels: a frame taken ``ttc`` seconds before the collision gets ``time_to_collision =
ttc`` (the ``crash`` task's outcome). The learner calls a frame "safe to fly straight"
when ``ttc > crash_horizon_s`` (1 s by default, :class:`~curious_robot.learning.train.
TrainConfig`); frames with ``unsafe_s < ttc < safe_s`` are ambiguous and not published, so
the classes are separated by a gap. A straight flight that ends without a collision
(``max_straight_s``) gives lower bounds: only its frames at least ``safe_s`` before the end
are published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class PilotConfig:
    speed: float = 1.0  # m/s forward while flying straight
    backoff_speed: float = 0.5  # m/s backward after a collision
    backoff_s: float = 0.8
    turn_rate: float = 1.5  # rad/s
    min_turn: float = math.radians(60.0)  # new heading: a random turn in [min, max], either way
    max_turn: float = math.radians(180.0)
    max_straight_s: float = 30.0  # a straight flight without a collision ends here
    accel_threshold: float = 4.0  # m/s^2 horizontal specific force (body axes): a collision
    stall_speed: float = 0.25  # m/s: forward speed below this while commanded ...
    stall_s: float = 0.6  # ... for this long, after the first second: pressed on something
    unsafe_s: float = 1.0  # frames at most this long before a collision: unsafe
    safe_s: float = 1.5  # frames at least this long before: safe (between: not published)

    def __post_init__(self):
        if self.speed <= 0 or self.turn_rate <= 0:
            raise ValueError("speed and turn_rate must be > 0")
        if not 0 < self.unsafe_s <= self.safe_s:
            raise ValueError(f"need 0 < unsafe_s ({self.unsafe_s}) <= safe_s ({self.safe_s})")
        if not 0 <= self.min_turn <= self.max_turn:
            raise ValueError("need 0 <= min_turn <= max_turn")


class CollisionDetector:
    """A collision is an IMU spike (horizontal specific force in body axes; in level or
    tilted flight the rotors only push along body z, so anything sideways is a contact), a
    reported contact, or a stall: commanded forward but not moving."""

    def __init__(self, cfg: PilotConfig | None = None):
        self.cfg = cfg or PilotConfig()
        self.reset(0.0)

    def reset(self, t: float) -> None:
        self.since = t
        self.stalled_since: float | None = None
        self.peak = 0.0

    def update(self, t: float, accel, contact: bool | None = None,
               forward_speed: float | None = None, commanded: float = 0.0) -> bool:
        a = np.asarray(accel, float)
        horizontal = math.hypot(a[0], a[1])
        self.peak = max(self.peak, horizontal)
        if horizontal > self.cfg.accel_threshold or contact:
            return True
        if forward_speed is not None and commanded > 0 and t - self.since > 1.0:
            if forward_speed < self.cfg.stall_speed * min(1.0, commanded):
                if self.stalled_since is None:
                    self.stalled_since = t
                elif t - self.stalled_since >= self.cfg.stall_s:
                    return True
            else:
                self.stalled_since = None
        return False


@dataclass
class LabelledFrame:
    t: float
    image: np.ndarray
    time_to_collision: float
    forward_speed: float
    yaw_rate: float
    collided: bool  # False: the flight ended without a collision (ttc is a lower bound)
    safe: bool  # ttc >= safe_s (else ttc <= unsafe_s)


def label_frames(frames: list[tuple[float, np.ndarray]], end: float, collided: bool,
                 cfg: PilotConfig, forward_speed: float) -> list[LabelledFrame]:
    """Label the frames of one straight flight that ended at ``end`` (see the module
    docstring); ambiguous frames are dropped."""
    out = []
    for t, img in frames:
        ttc = end - t
        if ttc < 0:
            continue
        if collided and (ttc <= cfg.unsafe_s or ttc >= cfg.safe_s):
            out.append(LabelledFrame(t, img, ttc, forward_speed, 0.0, True, ttc >= cfg.safe_s))
        elif not collided and ttc >= cfg.safe_s:
            out.append(LabelledFrame(t, img, ttc, forward_speed, 0.0, False, True))
    return out


class Pilot:
    """The crash-collecting state machine: ``straight`` -> (collision) -> ``backoff`` ->
    ``turn`` -> ``straight``. Call :meth:`tick` once per control period with the newest
    IMU sample (it returns the velocity command), :meth:`on_frame` with each camera frame,
    and :meth:`take` to collect the labelled frames of finished flights."""

    def __init__(self, cfg: PilotConfig | None = None, seed: int = 0):
        self.cfg = cfg or PilotConfig()
        self.rng = np.random.default_rng([int(seed), 3301])
        self.detector = CollisionDetector(self.cfg)
        self.state = "straight"
        self.state_since: float | None = None
        self.turn_for = 0.0
        self.turn_sign = 1.0
        self.frames: list[tuple[float, np.ndarray]] = []
        self.ready: list[LabelledFrame] = []
        self.collisions = 0
        self.flights = 0
        self.last_collision: float | None = None
        self.last_peak = 0.0

    def _enter(self, state: str, t: float) -> None:
        self.state, self.state_since = state, t
        if state == "straight":
            self.detector.reset(t)
            self.frames = []
        elif state == "turn":
            c = self.cfg
            self.turn_for = float(self.rng.uniform(c.min_turn, c.max_turn)) / c.turn_rate
            self.turn_sign = float(self.rng.choice([-1.0, 1.0]))

    def _end_flight(self, t: float, collided: bool) -> None:
        self.ready += label_frames(self.frames, t, collided, self.cfg, self.cfg.speed)
        self.frames = []
        self.flights += 1
        if collided:
            self.collisions += 1
            self.last_collision = t
            self.last_peak = self.detector.peak

    def restart(self, t: float) -> None:
        """The drone was put somewhere else (reset): drop the unfinished flight."""
        self.frames = []
        self._enter("straight", t)

    def tick(self, t: float, accel, contact: bool | None = None,
             forward_speed: float | None = None) -> tuple[float, float]:
        """One control period: the newest IMU sample (body specific force), an optional
        contact flag and measured forward speed -> (forward m/s, yaw rate rad/s)."""
        c = self.cfg
        if self.state_since is None:
            self._enter("straight", t)
        if self.state == "straight":
            if self.detector.update(t, accel, contact, forward_speed, c.speed):
                self._end_flight(t, collided=True)
                self._enter("backoff", t)
            elif t - self.state_since >= c.max_straight_s:
                self._end_flight(t, collided=False)
                self._enter("turn", t)
        elif self.state == "backoff" and t - self.state_since >= c.backoff_s:
            self._enter("turn", t)
        elif self.state == "turn" and t - self.state_since >= self.turn_for:
            self._enter("straight", t)
        if self.state == "straight":
            return c.speed, 0.0
        if self.state == "backoff":
            return -c.backoff_speed, 0.0
        return 0.0, self.turn_sign * c.turn_rate

    def on_frame(self, t: float, image: np.ndarray) -> None:
        if self.state == "straight" and self.state_since is not None and t >= self.state_since:
            self.frames.append((t, image))

    def take(self) -> list[LabelledFrame]:
        out, self.ready = self.ready, []
        return out


def to_interaction(frame: LabelledFrame, robot: str, seq: int, layout_seed: int | None,
                   held_out: bool, sim_step: int = 0, stamp: float = 0.0):
    """A labelled frame as a ``crash`` :class:`~curious_robot.record.Interaction`: action
    (yaw rate, forward speed) of the straight flight, outcome (time to collision,),
    ``before`` the centre crop of the camera frame, success = safe."""
    from curious_robot.drone.policy import centre_crop
    from curious_robot.record import Interaction

    room = "room" if layout_seed is None else f"room{int(layout_seed)}"
    return Interaction(
        task="crash", robot=robot, seq=int(seq), object_id=room, object_model="drone_room",
        held_out=bool(held_out), action=[float(frame.yaw_rate), float(frame.forward_speed)],
        success=bool(frame.safe), outcome=[float(frame.time_to_collision)],
        before=centre_crop(frame.image),
        truth={"collided": float(frame.collided),
               **({"layout_seed": float(layout_seed)} if layout_seed is not None else {})},
        stamp_start=float(stamp + frame.t), stamp_end=float(stamp + frame.t),
        sim_step=int(sim_step))
