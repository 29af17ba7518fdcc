"""Every node's parameters, declared once.

Each node has a dataclass here whose fields are its ROS parameters: name, default, type,
description and allowed values. The same definition

- declares the parameters on the node (:func:`declare`, with a ``ParameterDescriptor``
  carrying the description and, for numbers, the range), validates what the YAML, a launch
  argument or ``--set`` gave, and hands the node one typed object;
- checks ``config/*.yaml`` and ``curious-robot collect --set node.key=value`` before any
  node starts (:func:`check_overrides`): an unknown key, a bad value or (in the YAML) a
  value that only repeats the default is an error;
- prints the help (``curious-robot params``).

``config/*.yaml`` therefore holds only deliberate overrides of these defaults. Pure: no
rclpy; :func:`declare` only calls the node's ``declare_parameter``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields, make_dataclass

from curious_robot import tasks as registry
from curious_robot.parameters import ParameterError

INT64 = 2**63 - 1


@dataclass(frozen=True)
class Rule:
    """What a parameter may be. Bounds are inclusive unless ``*_open``."""

    description: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    nonempty: bool = False
    check: Callable | None = None  # further check on the value
    why: str = ""  # what ``check`` requires, for the error

    def problem(self, value) -> str | None:
        """Why ``value`` is not allowed (``None``: it is)."""
        if self.nonempty and not value:
            return "must not be empty"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}"
        if self.low is not None or self.high is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                return "must be a finite number"
            if self.low is not None and (value <= self.low if self.low_open
                                         else value < self.low):
                return f"must be {'>' if self.low_open else '>='} {self.low:g}"
            if self.high is not None and (value >= self.high if self.high_open
                                          else value > self.high):
                return f"must be {'<' if self.high_open else '<='} {self.high:g}"
        if self.check is not None and not self.check(value):
            return self.why or "is invalid"
        return None

    def allowed(self) -> str:
        """The allowed values in words (help text, descriptor constraints)."""
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        if self.nonempty:
            parts.append("not empty")
        if self.why:
            parts.append(self.why.removeprefix("must be ").removeprefix("must "))
        return ", ".join(parts)


def setting(default, description: str, **rule):
    """A dataclass field that is a node parameter (``rule``: :class:`Rule` keywords)."""
    meta = {"rule": Rule(description, **rule)}
    if isinstance(default, list):
        return field(default_factory=lambda d=tuple(default): list(d), metadata=meta)
    return field(default=default, metadata=meta)


def settings(cls) -> list[tuple[str, object, Rule]]:
    """(name, default, rule) of each parameter of a params class."""
    out = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else f.default_factory()
        out.append((f.name, default, f.metadata["rule"]))
    return out


def _descriptor(name: str, default, rule: Rule):
    from rcl_interfaces.msg import (FloatingPointRange, IntegerRange,
                                    ParameterDescriptor)

    d = ParameterDescriptor(name=name, description=rule.description,
                            additional_constraints=rule.allowed())
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and (rule.low is not None or rule.high is not None) \
            and not (rule.low_open or rule.high_open):
        if isinstance(default, int):
            d.integer_range = [IntegerRange(
                from_value=int(rule.low) if rule.low is not None else -INT64,
                to_value=int(rule.high) if rule.high is not None else INT64, step=0)]
        else:
            d.floating_point_range = [FloatingPointRange(
                from_value=float(rule.low) if rule.low is not None else -math.inf,
                to_value=float(rule.high) if rule.high is not None else math.inf, step=0.0)]
    return d


def declare(node, cls, **defaults):
    """Declare every parameter of ``cls`` on ``node`` (``defaults`` replace the class's,
    e.g. a robot name taken from the namespace), read and validate them; returns a ``cls``.
    Raises :class:`ParameterError` naming the parameter."""
    values = {}
    for name, default, rule in settings(cls):
        default = defaults.get(name, default)
        try:
            value = node.declare_parameter(name, default, _descriptor(name, default, rule)).value
        except Exception as exc:  # rclpy's InvalidParameter{Type,Value}Exception
            if "Parameter" not in type(exc).__name__:
                raise
            raise ParameterError(f"parameter '{name}': {exc}") from exc
        problem = rule.problem(value)
        if problem:
            raise ParameterError(f"parameter '{name}' = {value!r} is invalid: {problem}")
        values[name] = list(value) if isinstance(value, (list, tuple)) else value
    return cls(**values)


def help_text(cls, indent: str = "  ") -> str:
    lines = []
    for name, default, rule in settings(cls):
        allowed = rule.allowed()
        lines.append(f"{indent}{name} (default {default!r}{'; ' + allowed if allowed else ''})"
                     f": {rule.description}")
    return "\n".join(lines)


def _type_ok(default, value) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, float)  # ROS does not read an int as a double
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(
            _type_ok(default[0], v) if default else True for v in value)
    return isinstance(value, type(default))


def check_overrides(cls, values: dict, where: str, repeat_is_error: bool = False) -> list[str]:
    """Problems of ``values`` (parameter -> value) for ``cls``: unknown names, wrong types,
    disallowed values and, with ``repeat_is_error``, values equal to the default."""
    known = {name: (default, rule) for name, default, rule in settings(cls)}
    problems = []
    for name, value in values.items():
        if name not in known:
            problems.append(f"{where}: unknown parameter {name!r} (known: "
                            f"{', '.join(sorted(known))})")
            continue
        default, rule = known[name]
        if not _type_ok(default, value):
            problems.append(f"{where}: {name} = {value!r} must be a {type(default).__name__}"
                            f" like its default {default!r}")
            continue
        problem = rule.problem(value)
        if problem:
            problems.append(f"{where}: {name} = {value!r} {problem}")
        elif repeat_is_error and value == default:
            problems.append(f"{where}: {name} = {value!r} repeats the default; remove it")
    return problems


# -- the nodes -------------------------------------------------------------------------------

_SEED = {"low": 0}
_SPLITS = ("train", "held_out", "all", "scenes")


def _box(v) -> bool:
    return len(v) == 4 and v[0] < v[1] and v[2] < v[3]


_BOX = {"check": _box, "why": "must be [xmin, xmax, ymin, ymax] with min < max"}

_FLEET_KEY = ("fleet key file (curious_robot/fleet.py: 32 random bytes as hex, mode 0600, "
              "created if missing); every node of the fleet signs and checks with it "
              "(collect and the launch files: <store folder>/fleet.key); empty: "
              "unauthenticated, anyone on the ROS domain may speak for the fleet")


def _fleet_key():
    return setting("", _FLEET_KEY)


@dataclass
class ArmParams:
    robot: str = setting("", "robot name in the records (empty: the namespace)")
    backend: str = setting("sim", "sim (a PyBullet world in this process) or hardware "
                           "(a ros2_control arm, docs/deploy.md)", choices=("sim", "hardware"))
    camera_rate: float = setting(2.0, "Hz of RGB-D frames and joint states when idle (also "
                                 "after every motion)", low=0.0, low_open=True)
    max_poke_force: float = setting(20.0, "N, force limit of a poke", low=0.0, low_open=True)
    seed: int = setting(0, "random seed of the simulated world", **_SEED)
    world_config: str = setting("", "world YAML (empty: sim/arms/panda.yaml and sim/objects)")
    n_objects: int = setting(0, "objects dropped on the table at each reset (0: the world "
                             "config's number)", low=0)
    object_split: str = setting("scenes", "which objects the robot meets: each scene all "
                                "training or all held-out objects (scenes; a fifth held out), "
                                "or always one split, or all mixed", choices=_SPLITS)
    hardware_config: str = setting("", "hardware YAML (config/hardware/*.yaml) when backend "
                                   "is hardware")
    dry_run: bool = setting(False, "hardware: publish the plans, move nothing")
    fleet_key: str = _fleet_key()


@dataclass
class SensingParams:
    plane_distance: float = setting(0.004, "m, RANSAC inlier distance of the table plane",
                                    low=0.0, low_open=True)
    min_height: float = setting(0.006, "m above the table to count as object", low=0.0,
                                low_open=True)
    min_points: int = setting(12, "points an object needs", low=1)
    workspace: list = setting([-0.35, 0.35, -0.35, 0.35], "m, table frame: where objects are "
                              "looked for", **_BOX)


@dataclass
class TactileParams:
    max_pending: int = setting(16, "presses whose readings may be gathered at once", low=1)


@dataclass
class SelectorParams:
    policy: str = setting("random", "random (exploration), model (greedy on the learner's "
                          "newest checkpoint) or curious (most informative action)",
                          choices=("random", "model", "curious"))
    seed: int = setting(0, "random seed of the selector", **_SEED)
    workspace: list = setting([-0.30, 0.30, -0.30, 0.30], "m, table frame: actions are "
                              "clipped to it", **_BOX)
    checkpoint: str = setting("", "checkpoint of a model policy: a file, a training "
                              "folder or 'default' (the shipped model, models/README.md); "
                              "empty: wait for /model_updates")
    threads: int = setting(1, "torch CPU threads of scoring with the model (process-wide: "
                           "a robot's nodes composed in one process share them; 0: torch's "
                           "choice)", low=0)


def manager_params():
    """The interaction manager's parameters: one ``weight_<task>`` per arm task of the
    registry, built when asked, so a registered task gets its share parameter."""
    arm = registry.all_tasks("arm")
    names = [t.name for t in arm]
    fields_ = [
        ("robot", str, setting("", "robot name in the records (empty: the namespace)")),
        ("tasks", list, setting(list(names), "tasks this robot performs",
                                check=lambda v, n=tuple(names): len(v) > 0 and all(
                                    t in n for t in v),
                                why=f"must be a non-empty list of {', '.join(names)}")),
        *[(f"weight_{t.name}", float, setting(
            float(t.default_weight), f"relative share of interactions for {t.name}", low=0.0))
          for t in arm],
        ("task_policy", str, setting("fixed", "how the task is chosen: fixed (the "
                                     "weight_<task> shares) or progress (learning progress "
                                     "per robot-second, learning/curiosity.py)",
                                     choices=("fixed", "progress"))),
        ("task_floor", float, setting(0.1, "progress: each task's least share",
                                      low=0.0, high=1.0 / max(len(names), 1))),
        ("object_policy", str, setting("random", "how the object is chosen: random "
                                       "(uniform) or curious (in proportion to the model's "
                                       "grasp uncertainty on its patch, learning/"
                                       "curiosity.py)", choices=("random", "curious"))),
        ("rescore_neighbours", bool, setting(False, "curious: also score again the "
                                             "objects whose patch a moved object may show "
                                             "in (false: only those that moved "
                                             "themselves: fewer renders, a neighbour's "
                                             "score may be stale)")),
        ("object_floor", float, setting(0.3, "curious: share of the choice spread evenly "
                                        "over the objects", low=0.0, high=1.0)),
        ("checkpoint", str, setting("", "curious objects: the model to score them with "
                                    "(a file, a training folder or 'default'); empty: "
                                    "random until /model_updates announces one")),
        ("threads", int, setting(1, "curious objects: torch CPU threads of scoring with "
                                 "the model (process-wide: a robot's nodes composed in one "
                                 "process share them; 0: torch's choice)", low=0)),
        ("seed", int, setting(0, "random seed of task and object choice", **_SEED)),
        ("max_interactions", int, setting(0, "stop after this many (0: run until stopped)",
                                          low=0)),
        ("reset_every", int, setting(40, "interactions between scene resets (0: only when "
                                     "the table is empty)", low=0)),
        ("action_timeout", float, setting(60.0, "s an action may go without progress (its "
                                          "feedback) before it is canceled; a slow action "
                                          "that progresses is never cut off", low=0.0,
                                          low_open=True)),
        ("max_unacked", int, setting(20, "interactions that may wait for the learner's ack "
                                     "before the robot pauses until it catches up "
                                     "(admission; 0: never pause)", low=0)),
        ("resend_after", float, setting(5.0, "s without an ack before an interaction is "
                                        "sent again", low=0.0, low_open=True)),
        ("reach_margin", float, setting(0.01, "m: only objects whose centroid lies this far "
                                        "inside the arm's published workspace are chosen",
                                        low=0.0)),
        ("outbox_dir", str, setting("", "folder of the robot's outbox spool "
                                    "(<robot>.outbox.db): unacknowledged interactions "
                                    "survive a kill -9 (empty: memory only; collect and the "
                                    "launch files put it beside the store)")),
        ("fleet_key", str, _fleet_key()),
    ]
    return make_dataclass("ManagerParams", fields_)


def _is_device(value: str) -> bool:
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        return False
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    return device.type == "cpu"


def _learner_fields() -> list:
    return [
        ("store", str, setting("data/replay.db", "replay store file (its folder must exist)",
                               nonempty=True)),
        ("train", bool, setting(False, "train the root network online beside ingestion")),
        ("report_every", float, setting(10.0, "s between progress lines", low=0.0,
                                        low_open=True)),
        ("queue_size", int, setting(1000, "interactions waiting for ingestion", low=1)),
        ("fleet_key", str, _fleet_key()),
    ]


def _online_fields() -> list:
    # the model and training defaults are those of train (curious_robot.learning.config)
    from curious_robot.learning.config import MIN_INPUT_SIZE, ModelConfig, TrainConfig

    m, t = ModelConfig(), TrainConfig()
    default_tasks = ",".join(t.tasks)
    return [
        ("checkpoint_dir", str, setting("", "online training: checkpoint folder (empty: "
                                        "<store>.checkpoints next to the store, e.g. "
                                        "data/replay.checkpoints)")),
        ("steps_per_round", int, setting(10, "training cycles between pauses", low=1)),
        ("save_every", int, setting(50, "cycles between checkpoints, each announced on "
                                    "/model_updates", low=1)),
        ("input_size", int, setting(m.input_size, "px network input of a new run (a resumed "
                                    "run keeps its own)", low=MIN_INPUT_SIZE)),
        ("width", float, setting(m.width, "channel width multiplier of a new run", low=0.0,
                                 low_open=True, high=4.0)),
        ("batch_size", int, setting(t.batch_size, "records per task per cycle", low=2)),
        ("lr", float, setting(t.lr, "learning rate", low=0.0, low_open=True)),
        ("tasks", str, setting(default_tasks, "comma-separated tasks to train",
                               nonempty=True)),
        ("min_records", int, setting(t.min_records, "training records a task needs to join "
                                     "the cycle", low=1)),
        ("device", str, setting("cpu", "torch device", check=_is_device,
                                why="must be a torch device available here (cpu, cuda, "
                                    "cuda:1, ...)")),
        ("threads", int, setting(1, "torch CPU threads (0: torch's choice)", low=0)),
        ("duty", float, setting(0.5, "fraction of wall time spent training", low=0.0,
                                low_open=True, high=1.0)),
        ("steps_per_interaction", float, setting(
            0.0, "training cycles allowed per interaction in the store: training waits "
                 "at that many (0: no limit; the curiosity experiment gives every policy "
                 "the same training per interaction this way)", low=0.0)),
        ("eval_every", int, setting(100, "training cycles between held-out evaluations "
                                    "(0: never)", low=0)),
        ("tensorboard", bool, setting(True, "write TensorBoard scalars and image panels in "
                                      "<checkpoint_dir>/tb")),
    ]


def online_params():
    """The learner's online-training parameters (declared by
    :meth:`curious_robot.learning.online.OnlineTrainer.from_node_parameters`)."""
    return make_dataclass("OnlineParams", _online_fields())


def learner_params():
    """Every parameter of the learner node: its own and online training's."""
    return make_dataclass("LearnerParams", _learner_fields() + _online_fields())


def learner_node_params():
    """The learner node's own parameters (without online training's)."""
    return make_dataclass("LearnerNodeParams", _learner_fields())


@dataclass
class DroneParams:
    world_config: str = setting("", "drone YAML (empty: sim/drone/drone.yaml)")
    seed: int = setting(0, "random seed of the drone simulation", **_SEED)
    room_index: int = setting(0, "first training room of this drone", low=0)
    room_stride: int = setting(1, "step between this drone's rooms", low=1)
    held_out_share: float = setting(0.0, "share of rooms drawn from the held-out layouts",
                                    low=0.0, high=1.0)
    real_time_factor: float = setting(1.0, "1: real time, 0: as fast as the CPU allows",
                                      low=0.0)
    cmd_timeout: float = setting(0.5, "s without cmd_vel before the drone hovers", low=0.0,
                                 low_open=True)


def pilot_params():
    from curious_robot.drone.pilot import PilotConfig

    d = PilotConfig()
    flight = [("speed", "m/s straight flight"),
              ("backoff_speed", "m/s backward after a collision"),
              ("backoff_s", "s of backing off, then a random turn"),
              ("turn_rate", "rad/s"),
              ("max_straight_s", "s: a straight flight without a collision ends here"),
              ("accel_threshold", "m/s^2 sideways specific force that is a collision"),
              ("stall_speed", "m/s: slower than this while commanded forward ..."),
              ("stall_s", "... for this long is pressed against something"),
              ("unsafe_s", "s: frames at most this long before a collision are unsafe"),
              ("safe_s", "s: frames at least this long before are safe")]
    return make_dataclass("PilotParams", [
        ("robot", str, setting("", "robot name in the records (empty: the namespace)")),
        ("seed", int, setting(0, "random seed of the turns", **_SEED)),
        *[(name, float, setting(float(getattr(d, name)), text, low=0.0, low_open=True))
          for name, text in flight],
        ("max_interactions", int, setting(0, "stop after this many (0: run until stopped)",
                                          low=0)),
        ("crashes_per_room", int, setting(20, "collisions before the next room (0: stay)",
                                          low=0)),
        ("resend_after", float, setting(5.0, "s without an ack before an interaction is "
                                        "sent again", low=0.0, low_open=True)),
        ("outbox_dir", str, setting("", "folder of the drone's outbox spool "
                                    "(<robot>.outbox.db): unacknowledged frames survive a "
                                    "kill -9 (empty: memory only; collect and the launch "
                                    "file put it beside the store)")),
        ("fleet_key", str, _fleet_key()),
    ])


@dataclass
class FakeHardwareParams:
    hardware_config: str = setting("", "hardware YAML the fake arm plays", nonempty=True)
    world_config: str = setting("", "world YAML of the simulated scene")
    seed: int = setting(0, "random seed of the scene", **_SEED)
    n_objects: int = setting(0, "objects on the table (0: the world config's number)", low=0)
    object_split: str = setting("all", "which objects", choices=_SPLITS)
    control_rate: float = setting(0.0, "Hz (0: the hardware YAML's safety.control_rate)",
                                  low=0.0)
    camera_rate: float = setting(5.0, "Hz of camera frames", low=0.0, low_open=True)
    joint_prefix: str = setting("", "prefix of the joint names")
    refuse_trajectories: str = setting(
        "", "a controller fault: refuse every trajectory with this reason, silently as a "
        "controller on its topic does ('': accept them)")


def effective(executable: str, *layers: dict) -> dict:
    """A node's parameter values: its defaults, then each ``layers`` mapping on top (the
    YAML section, then command-line overrides), as the node will read them."""
    values = {name: default for name, default, _ in settings(params_of(executable))}
    for layer in layers:
        values.update(layer or {})
    return values


def yaml_section(path: str, node: str) -> dict:
    """The ``ros__parameters`` a parameter YAML gives ``node`` (merging every section whose
    key names it, ``/**/node``, ``/ns/node`` or ``node``; later sections win)."""
    import yaml

    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    out: dict = {}
    for key, body in doc.items():
        if str(key).rstrip("/").split("/")[-1] == node and isinstance(body, dict):
            out.update(body.get("ros__parameters") or {})
    return out


def params_of(executable: str):
    """The params class of a node executable (KeyError for an unknown one)."""
    table = {"arm_node": lambda: ArmParams, "sensing_node": lambda: SensingParams,
             "tactile_node": lambda: TactileParams, "interaction_manager": manager_params,
             "learner_node": learner_params, "drone_node": lambda: DroneParams,
             "pilot_node": pilot_params, "fake_hardware": lambda: FakeHardwareParams}
    selectors = {t.selector for t in registry.all_tasks("arm") if t.selector}
    if executable in selectors:
        return SelectorParams
    return table[executable]()
