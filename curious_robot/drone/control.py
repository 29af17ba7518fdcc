"""Quadrotor control, pure numpy: the mixer, the attitude controller and the velocity
controller (forward speed and yaw rate at a fixed altitude).

Frames: world z up; body x forward, y left, z up. Angles are ZYX Euler (roll about x,
pitch about y, yaw about z): a positive pitch tilts the nose down and the thrust toward
body +x, a positive roll tilts the thrust toward body -y.

The cascade (as a flight controller runs it):

    VelocityController (48 Hz): (forward speed, yaw rate, altitude) -> (thrust, roll,
        pitch, yaw rate) set points
    AttitudeController (240 Hz): set points + attitude + body rates -> (thrust, torques)
    Mixer: (thrust, torques) -> one thrust per rotor, clipped to [0, max]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRAVITY = 9.81


@dataclass(frozen=True)
class QuadParams:
    """The airframe: an X quadrotor built from rigid shapes (see :mod:`.sim`)."""

    mass: float = 0.5  # kg
    arm: float = 0.15  # m, centre to rotor axis
    inertia: tuple[float, float, float] = (0.004, 0.004, 0.007)  # kg m^2, body axes
    max_rotor_thrust: float = 3.0  # N per rotor (thrust / weight = 2.4)
    yaw_moment: float = 0.02  # m: reaction torque per newton of rotor thrust
    drag: float = 0.15  # N s / m, linear air drag on the body

    def __post_init__(self):
        if self.mass <= 0 or self.arm <= 0 or min(self.inertia) <= 0:
            raise ValueError("mass, arm and inertia must be > 0")
        if 4 * self.max_rotor_thrust <= self.mass * GRAVITY:
            raise ValueError(f"4 x max_rotor_thrust {self.max_rotor_thrust} N cannot lift "
                             f"{self.mass} kg")

    @property
    def rotors(self) -> np.ndarray:
        """(4, 2) rotor positions in the body frame: front-left, front-right, back-right,
        back-left."""
        d = self.arm / math.sqrt(2.0)
        return np.array([[d, d], [d, -d], [-d, -d], [-d, d]])

    @property
    def spin(self) -> np.ndarray:
        """+1 for a rotor spinning counter-clockwise seen from above (its reaction torque
        on the body is clockwise, -z)."""
        return np.array([-1.0, 1.0, -1.0, 1.0])


class Mixer:
    """(collective thrust N, torque x, y, z N m) <-> the four rotor thrusts (N)."""

    def __init__(self, params: QuadParams):
        self.params = params
        r, s = params.rotors, params.spin
        self.matrix = np.vstack([np.ones(4), r[:, 1], -r[:, 0], -s * params.yaw_moment])
        self.inverse = np.linalg.inv(self.matrix)

    def wrench(self, thrusts: np.ndarray) -> np.ndarray:
        """What rotor thrusts do to the body: (thrust, tau_x, tau_y, tau_z)."""
        return self.matrix @ np.asarray(thrusts, float)

    def thrusts(self, thrust: float, torque) -> np.ndarray:
        """Rotor thrusts for a wrench, clipped to the motors' range. Yaw torque gives way
        first (scaled down until it fits): roll and pitch keep the drone upright."""
        u = np.array([thrust, *torque], float)
        fmax = self.params.max_rotor_thrust
        base = self.inverse[:, :3] @ u[:3]
        yaw = self.inverse[:, 3] * u[3]
        # the largest share of the yaw torque that keeps every rotor in [0, fmax]
        scale = 1.0
        for b, y in zip(base, yaw):
            if y > 0 and b + y > fmax:
                scale = min(scale, max(0.0, (fmax - b) / y))
            elif y < 0 and b + y < 0.0:
                scale = min(scale, max(0.0, -b / y))
        return np.clip(base + scale * yaw, 0.0, fmax)


@dataclass
class AttitudeGains:
    angle: float = 225.0  # 1/s^2: (15 rad/s)^2
    rate: float = 24.0  # 1/s: 2 * 0.8 * 15
    yaw_rate: float = 8.0  # 1/s
    max_tilt: float = math.radians(25.0)


class AttitudeController:
    """PD on roll and pitch, P on the yaw rate; torques scaled by the inertia."""

    def __init__(self, params: QuadParams, gains: AttitudeGains | None = None):
        self.params = params
        self.gains = gains or AttitudeGains()
        self.mixer = Mixer(params)

    def torques(self, setpoint: tuple[float, float, float], rpy, body_rates) -> np.ndarray:
        """``setpoint`` = (roll, pitch, yaw rate); ``rpy`` the attitude, ``body_rates``
        the gyro (rad/s, body axes)."""
        g = self.gains
        roll_sp = float(np.clip(setpoint[0], -g.max_tilt, g.max_tilt))
        pitch_sp = float(np.clip(setpoint[1], -g.max_tilt, g.max_tilt))
        w = np.asarray(body_rates, float)
        inertia = np.asarray(self.params.inertia)
        acc = np.array([g.angle * (roll_sp - rpy[0]) - g.rate * w[0],
                        g.angle * (pitch_sp - rpy[1]) - g.rate * w[1],
                        g.yaw_rate * (setpoint[2] - w[2])])
        return inertia * acc

    def rotor_thrusts(self, thrust: float, setpoint, rpy, body_rates) -> np.ndarray:
        return self.mixer.thrusts(thrust, self.torques(setpoint, rpy, body_rates))


@dataclass
class VelocityGains:
    velocity: float = 2.5  # 1/s: horizontal acceleration per m/s of velocity error
    altitude: float = 16.0  # 1/s^2
    climb: float = 8.0  # 1/s
    max_accel: float = GRAVITY * math.tan(math.radians(25.0))


class VelocityController:
    """Forward speed and yaw rate in the body's heading frame, altitude held fixed; the
    sideways velocity is driven to zero."""

    def __init__(self, params: QuadParams, gains: VelocityGains | None = None):
        self.params = params
        self.gains = gains or VelocityGains()

    def setpoint(self, forward: float, yaw_rate: float, altitude: float, position,
                 velocity, yaw: float) -> tuple[float, tuple[float, float, float]]:
        """-> (collective thrust N, (roll, pitch, yaw rate) set point)."""
        g = self.gains
        c, s = math.cos(yaw), math.sin(yaw)
        v = np.asarray(velocity, float)
        # velocity in the heading frame (x along the heading, y to its left)
        vh = np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])
        a = g.velocity * (np.array([forward, 0.0]) - vh)
        a[0] += self.params.drag / self.params.mass * forward  # drag feed-forward
        norm = float(np.linalg.norm(a))
        if norm > g.max_accel:
            a *= g.max_accel / norm
        az = g.altitude * (altitude - float(position[2])) - g.climb * float(v[2])
        az = float(np.clip(az, -0.5 * GRAVITY, GRAVITY))
        lift = GRAVITY + az
        pitch = math.atan2(a[0], lift)
        roll = math.atan2(-a[1] * math.cos(pitch), lift)
        thrust = self.params.mass * lift / max(0.5, math.cos(roll) * math.cos(pitch))
        return thrust, (roll, pitch, float(yaw_rate))
