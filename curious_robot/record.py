"""The interaction record: the pure-Python twin of ``curious_robot_interfaces/msg/Interaction``.

Everything downstream of the robot (replay store, learner, evaluation) speaks this
dataclass; the ROS layer converts messages to and from it (``curious_robot.convert``).
``validate()`` is the single place that decides whether an interaction is well formed, so
the learner node, the store and the tests agree on what "malformed" means.

Conventions
- Images are ``numpy.ndarray`` of dtype ``uint8`` with shape (H, W, 3) in RGB order, or
  depth images of dtype ``float32`` with shape (H, W) in metres. Every image of a record
  has a name in :data:`IMAGE_ROLES` or is one of ``views``.
- ``action`` and ``outcome`` are flat float vectors whose meaning depends on the task
  (``action_fields`` / ``outcome_fields`` of the task in :mod:`curious_robot.tasks`).
  Positions are in metres in the table frame (origin at the table centre, z up); angles
  in radians.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from curious_robot import tasks as registry

#: Roles of single images in a record (``views`` holds the inspect / multi-view images).
IMAGE_ROLES = ("before", "after", "depth_before")

#: Levels at which a policy chooses, in the order :func:`policy_text` writes them: the
#: manager picks the task, then the object, then the task's selector the action.
POLICY_LEVELS = ("task", "object", "action")


def policy_text(**levels: str) -> str:
    """The ``policy`` field of a record: ``"task=fixed,object=random,action=model"``.

    Keyword per level of :data:`POLICY_LEVELS` (unknown levels, empty names and names
    holding ``,`` or ``=`` raise ``ValueError``); levels left out are not written."""
    unknown = set(levels) - set(POLICY_LEVELS)
    if unknown:
        raise ValueError(f"unknown policy level(s) {sorted(unknown)}; known: "
                         f"{', '.join(POLICY_LEVELS)}")
    parts = []
    for level in POLICY_LEVELS:
        if level in levels:
            name = levels[level]
            if not name or "," in name or "=" in name:
                raise ValueError(f"policy name {name!r} of level {level!r} must be "
                                 "non-empty without ',' or '='")
            parts.append(f"{level}={name}")
    return ",".join(parts)


def parse_policy(text: str) -> dict[str, str]:
    """``policy`` field -> {level: name} ({} for ""); raises ``ValueError`` if malformed."""
    out: dict[str, str] = {}
    for part in filter(None, text.split(",")):
        level, sep, name = part.partition("=")
        if not sep or level not in POLICY_LEVELS or not name or level in out:
            raise ValueError(f"malformed policy {text!r}: expected 'level=name' pairs with "
                             f"levels from {', '.join(POLICY_LEVELS)}")
        out[level] = name
    return out


class InvalidInteraction(ValueError):
    """Raised by :func:`validate` with a message that names the offending field."""


@dataclass(frozen=True)
class Limits:
    """Bounds on one record, checked before anything is copied or encoded (the learner
    decodes messages from anyone on the network). Generous for real cameras (a 4K frame
    fits), far below what hurts the learner or the image codecs."""

    image_side: int = 4096           # pixels, width and height
    image_bytes: int = 48 * 2**20    # raw bytes of one image (4096 x 4096 rgb8)
    views: int = 32                  # inspect views per record
    tactile_samples: int = 10_000
    text: int = 256                  # characters of robot, task, object id / model
    truth_entries: int = 64
    magnitude: float = 1e6           # |value| of an action, outcome or truth entry


LIMITS = Limits()


def check_image_size(name: str, height: int, width: int, itemsize: int,
                     channels: int) -> None:
    """Refuse an image whose sides or raw size exceed :data:`LIMITS` (before decoding)."""
    if height > LIMITS.image_side or width > LIMITS.image_side:
        raise InvalidInteraction(f"image {name} is {width} x {height} px; a side may be at "
                                 f"most {LIMITS.image_side} px")
    n = int(height) * int(width) * int(itemsize) * int(channels)
    if n > LIMITS.image_bytes:
        raise InvalidInteraction(f"image {name} has {n} bytes; at most "
                                 f"{LIMITS.image_bytes} are accepted")


def check_counts(views: int, tactile: int, truth: int, texts: dict[str, str]) -> None:
    """Refuse too many views / tactile samples / truth entries, or over-long strings."""
    if views > LIMITS.views:
        raise InvalidInteraction(f"{views} views; at most {LIMITS.views} are accepted")
    if tactile > LIMITS.tactile_samples:
        raise InvalidInteraction(f"{tactile} tactile samples; at most "
                                 f"{LIMITS.tactile_samples} are accepted")
    if truth > LIMITS.truth_entries:
        raise InvalidInteraction(f"{truth} truth entries; at most {LIMITS.truth_entries} "
                                 f"are accepted")
    for name, text in texts.items():
        if isinstance(text, str) and len(text) > LIMITS.text:
            raise InvalidInteraction(f"{name} has {len(text)} characters; at most "
                                     f"{LIMITS.text} are accepted")


@dataclass
class Interaction:
    """One robot interaction and its outcome."""

    task: str
    robot: str
    seq: int
    object_id: str = ""
    object_model: str = ""
    held_out: bool = False
    action: list[float] = field(default_factory=list)
    success: bool = False
    outcome: list[float] = field(default_factory=list)
    before: np.ndarray | None = None
    after: np.ndarray | None = None
    depth_before: np.ndarray | None = None
    views: list[np.ndarray] = field(default_factory=list)
    #: Tactile force samples of a poke: press depth (m) and normal force (N), same length.
    tactile_depth: list[float] = field(default_factory=list)
    tactile_force: list[float] = field(default_factory=list)
    #: Simulation ground truth (stiffness, mass, ...) as name -> value; empty on hardware.
    truth: dict[str, float] = field(default_factory=dict)
    #: Seconds since the epoch (ROS time) when the interaction started / finished.
    stamp_start: float = 0.0
    stamp_end: float = 0.0
    #: Simulation step counter of the robot's world when the interaction finished.
    sim_step: int = 0
    #: What chose the task, object and action (:func:`policy_text`); "" when unknown.
    policy: str = ""

    def images(self) -> dict[str, np.ndarray]:
        """All non-empty images by role; views are ``view0``, ``view1``, ..."""
        out = {r: getattr(self, r) for r in IMAGE_ROLES if getattr(self, r) is not None}
        out.update({f"view{i}": v for i, v in enumerate(self.views)})
        return out


def _check_finite(name: str, values, bound: float | None = None) -> None:
    for i, v in enumerate(values):
        if not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
            raise InvalidInteraction(f"{name}[{i}] is not a finite number: {v!r}")
        if bound is not None and abs(v) > bound:
            raise InvalidInteraction(f"{name}[{i}] = {v!r} exceeds the bound {bound:g}")


def _check_image(name: str, img) -> None:
    if not isinstance(img, np.ndarray):
        raise InvalidInteraction(f"image {name} is not an array: {type(img).__name__}")
    if name.startswith("depth"):
        if img.dtype != np.float32 or img.ndim != 2:
            raise InvalidInteraction(
                f"image {name} must be float32 (H, W) depth, got {img.dtype} {img.shape}")
        if not np.isfinite(img).all():
            raise InvalidInteraction(f"image {name} holds NaN or infinite depth")
    elif img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise InvalidInteraction(f"image {name} must be uint8 (H, W, 3) rgb8, got "
                                 f"{img.dtype} {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise InvalidInteraction(f"image {name} is empty: {img.shape}")
    check_image_size(name, img.shape[0], img.shape[1], img.itemsize,
                     img.shape[2] if img.ndim == 3 else 1)


def validate(rec: Interaction) -> Interaction:
    """Check a record and return it; raise :class:`InvalidInteraction` naming the problem."""
    if not isinstance(rec.task, str) or not registry.known(rec.task):
        raise InvalidInteraction(f"unknown task {rec.task!r}; known: "
                                 f"{', '.join(registry.names())}")
    spec = registry.get(rec.task)
    if not isinstance(rec.robot, str) or not rec.robot:
        raise InvalidInteraction("robot name is empty")
    check_counts(len(rec.views), max(len(rec.tactile_depth), len(rec.tactile_force)),
                 len(rec.truth), {"robot": rec.robot, "object_id": rec.object_id,
                                  "object_model": rec.object_model, "policy": rec.policy})
    if not isinstance(rec.policy, str):
        raise InvalidInteraction(f"policy must be a string, got {rec.policy!r}")
    try:
        parse_policy(rec.policy)
    except ValueError as exc:
        raise InvalidInteraction(str(exc)) from None
    if not isinstance(rec.seq, (int, np.integer)) or rec.seq < 0:
        raise InvalidInteraction(f"seq must be a non-negative integer, got {rec.seq!r}")
    n_act = len(spec.action_fields)
    if len(rec.action) != n_act:
        raise InvalidInteraction(
            f"{rec.task} action needs {n_act} values {spec.action_fields}, "
            f"got {len(rec.action)}")
    _check_finite("action", rec.action, LIMITS.magnitude)
    n_out = len(spec.outcome_fields)
    if len(rec.outcome) != n_out:
        raise InvalidInteraction(
            f"{rec.task} outcome needs {n_out} values {spec.outcome_fields}, "
            f"got {len(rec.outcome)}")
    _check_finite("outcome", rec.outcome, LIMITS.magnitude)
    if len(rec.tactile_depth) != len(rec.tactile_force):
        raise InvalidInteraction(
            f"tactile_depth has {len(rec.tactile_depth)} samples but tactile_force has "
            f"{len(rec.tactile_force)}")
    _check_finite("tactile_depth", rec.tactile_depth)
    _check_finite("tactile_force", rec.tactile_force)
    _check_finite("truth", list(rec.truth.values()), LIMITS.magnitude)
    for key in rec.truth:
        if not isinstance(key, str) or len(key) > LIMITS.text:
            raise InvalidInteraction(f"truth key {str(key)[:40]!r}... is not a string of at "
                                     f"most {LIMITS.text} characters")
    for name, img in rec.images().items():
        _check_image(name, img)
    if rec.before is None:
        raise InvalidInteraction(f"{rec.task} interaction has no 'before' image")
    return rec
