"""What a task of the curious robot is, declared in one place (see :mod:`curious_robot.tasks`).

A :class:`Task` holds everything that differs between grasp, push, poke, inspect and crash:
the layout of its action and outcome vectors, its ROS action and the goal / result <->
record conversions, its motion (the motion script that runs it), its selectors, its head,
batch builder and loss, its held-out metrics, and a generator of synthetic records for
tests and benchmarks. Code outside :mod:`curious_robot.tasks` iterates the registry and
calls these hooks; it never names a task.

Pure: no rclpy and no message classes here. The ROS layer passes its converters in
(``image``: numpy -> sensor_msgs/Image, or sensor_msgs/Image -> numpy), and the learning
hooks import torch lazily, so importing the registry stays cheap for the robot nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np


# -- what a selector works with (re-exported by curious_robot.selection) ------------------

@dataclass
class Target:
    """What a selector knows of the object to act on (from the sensing node)."""

    x: float
    y: float
    yaw: float = 0.0  # long side, rad
    length: float = 0.05  # m, long side
    width: float = 0.05  # m, short side


@dataclass(frozen=True)
class Workspace:
    xmin: float = -0.30
    xmax: float = 0.30
    ymin: float = -0.30
    ymax: float = 0.30

    def clip(self, x: float, y: float) -> tuple[float, float]:
        return (min(max(x, self.xmin), self.xmax), min(max(y, self.ymin), self.ymax))


@dataclass
class Selection:
    action: list[float]
    score: float = 0.0
    policy: str = "random"


#: ``image(value, name)``: the ROS layer's image converter handed to the conversion hooks.
ImageFn = Callable[..., Any]


class Task:
    """One task. Subclasses set the class attributes and override the hooks they need."""

    #: store / message name of the task
    name: str = ""
    #: what the task is called in reports (inspect trains the "identity" head)
    label: str = ""
    #: entries of ``Interaction.action`` (table frame, m / rad) and ``Interaction.outcome``
    action_fields: tuple[str, ...] = ()
    outcome_fields: tuple[str, ...] = ()
    #: which robot performs it: "arm" tasks are chosen by the interaction manager and run by
    #: the arm node; "drone" tasks come from the drone pilot
    robot: str = "arm"
    #: ROS action type in ``curious_robot_interfaces.action`` and its action name (arm tasks)
    action_type: str = ""
    #: the selector node whose ``select`` service proposes this task's actions
    selector: str = ""
    #: default relative share of interactions in the manager (parameter ``weight_<name>``)
    default_weight: float = 1.0
    #: trained by default (``train --tasks`` default, the online learner's default)
    default_train: bool = True
    #: the arm streams the raw tactile readings of this task, and the manager waits for the
    #: tactile node's response before it builds the record
    tactile: bool = False
    #: key of the task's head in ``CuriousNet.heads`` and the root layer feeding it
    head: str = ""
    head_input: str = ""
    #: weight of its loss in the training cycle
    loss_weight: float = 1.0
    #: share of its loss's gradient that reaches the shared root (its head always trains
    #: on all of it): below 1 the task shapes the root less than it learns from it
    root_grad: float = 1.0
    #: training data: only successful (True), only failed (False) or all (None) records
    train_success: bool | None = None
    #: colour scrambling may be applied to its training images (its outcome does not depend
    #: on colour); ``shared_augment``: all images of one record share one augmentation draw
    scramble: bool = False
    shared_augment: bool = False
    #: images one of its training records feeds the root per step (its relative cost:
    #: ``reproduce`` starts the costliest trainings first)
    step_images: float = 1.0
    #: the motion script that runs the task on an arm (:mod:`curious_robot.motion`; the
    #: same object on the simulated and the real arm), ``None`` for tasks without one
    script: Any = None
    #: the regression target that is normalised with the training split's statistics
    #: (``None``: the task has no normalised target)
    target: Callable[[Any], list[float]] | None = None
    #: further regression targets normalised the same way, by the key their statistics are
    #: stored under (checkpoint ``stats``); the trainer fits them beside :attr:`target` and
    #: adds each, normalised, to the task's training batch under that key
    #: (:func:`curious_robot.learning.data.extra_targets`). Push: its forward model's outcome.
    extra_targets: Mapping[str, Callable[[Any], list[float]]] = MappingProxyType({})

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    def targets(self, records) -> np.ndarray:
        """The regression target (:attr:`target`) of ``records``, one row each."""
        if self.target is None:
            raise ValueError(f"task {self.name!r} has no regression target")
        return np.array([self.target(r) for r in records], np.float64)

    # -- robot side: manager -> action goal -> arm -> action result -> record -------------

    def goal(self, goal_cls, action: list[float]):
        """The action goal of the selector's ``action`` (manager side)."""
        raise NotImplementedError(f"task {self.name} has no ROS action")

    def from_goal(self, goal) -> tuple[list[float], dict]:
        """(action, options) of a received goal (arm side); options go to :meth:`execute`."""
        raise NotImplementedError(f"task {self.name} has no ROS action")

    def execute(self, backend, action: list[float], options: dict | None = None,
                progress=None, should_stop=None):
        """Run the task's motion (:attr:`script`) on an arm backend's robot (sim or
        hardware); returns the script's result object. ``ValueError`` refuses the action
        (outside the workspace, ...)."""
        raise NotImplementedError(f"task {self.name} has no motion")

    def fill_result(self, out, res, image: ImageFn) -> None:
        """Copy a backend result into the action's result message (images via ``image``)."""
        raise NotImplementedError(f"task {self.name} has no ROS action")

    def result_object_id(self, res) -> str | None:
        """The object a result is about, if the result says so directly."""
        return None

    def outcome(self, result, tactile, image: ImageFn) -> dict | None:
        """Interaction fields (success, outcome, images, tactile samples) from an action
        result message (and the tactile response for tactile tasks); ``None``: no record."""
        raise NotImplementedError(f"task {self.name} has no ROS action")

    def tactile_fields(self, rec) -> tuple[float, float, float, float] | None:
        """(slope, intercept, onset_depth, max_force) of the record's tactile fit, if any."""
        return None

    # -- selection --------------------------------------------------------------------------

    def random_action(self, target: Target, rng: np.random.Generator,
                      ws: Workspace) -> Selection:
        """Random exploration on ``target`` (the policy every collection starts with)."""
        raise NotImplementedError(f"task {self.name} has no selector")

    def model_action(self, policy, target: Target, patch: np.ndarray, patch_size: float,
                     rng: np.random.Generator, ws: Workspace) -> Selection:
        """A model-guided action (``policy``: :class:`curious_robot.learning.policy.Policy`);
        the default explores at random and says why once."""
        return policy.fallback(self.name, target, rng, ws,
                               f"no model-guided selector for {self.name}")

    # -- learning ---------------------------------------------------------------------------

    def make_head(self, cfg, dims: dict):
        """The task's head module (``dims``: channel counts of the root; see networks)."""
        return None

    def batch(self, records: list, size: int, rng: np.random.Generator, stats, cfg) -> dict:
        """One batch (numpy arrays) of ``records`` at ``size`` px; ``stats`` is the
        target's :class:`~curious_robot.learning.data.NormStats` when :attr:`target` is set;
        ``rng`` and ``cfg`` (the TrainConfig) are ``None`` outside training. A task whose
        patch a model may crop instead of resize (``ModelConfig.view``) also takes a
        keyword ``view``; call it through :meth:`make_batch`."""
        raise NotImplementedError(f"task {self.name} has no training batch")

    #: the model may take this task's patch as its centre at the camera's resolution instead
    #: of the whole patch resized (``ModelConfig.patch_view``); ``batch`` then takes ``view``
    crop_view: bool = False

    def make_batch(self, records: list, size: int, rng, stats, cfg, view: str = "resize"
                   ) -> dict:
        """:meth:`batch`, given ``view`` only where it is not "resize" (a task written
        without views keeps working)."""
        if view == "resize":
            return self.batch(records, size, rng, stats, cfg)
        return self.batch(records, size, rng, stats, cfg, view=view)

    def augment(self, batch: dict, rng: np.random.Generator, strength: float,
                scramble: float = 0.0) -> dict:
        """Photometric jitter and (where :attr:`scramble`) colour scrambling of a batch's
        images (:func:`curious_robot.learning.data.augment_batch`)."""
        from curious_robot.learning import data

        return data.augment_batch(batch, rng, strength, scramble if self.scramble else 0.0,
                                  self.shared_augment)

    def loss(self, model, b: dict, cfg):
        """The loss (a torch scalar) of one batch (tensors)."""
        raise NotImplementedError(f"task {self.name} has no loss")

    #: names of the held-out metrics :meth:`evaluate` fills (``None`` when not computable)
    metric_keys: tuple[str, ...] = ()

    def evaluate(self, model, ctx) -> dict:
        """Held-out metrics of :attr:`metric_keys` (``None`` where not computable). ``ctx``
        (:class:`curious_robot.learning.metrics.EvalContext`) gives the held-out records
        (``ctx.held_out()``), the store, the normalisation stats, device, input size, chunk
        size and record cap."""
        return {}

    # -- signal audit (``curious-robot audit-signals``) --------------------------------------

    #: "accuracy" (the audit predicts ``success``), "error" (it predicts the normalised
    #: :attr:`target`, mean L2 error) or ``None`` (the task is not audited)
    audit_metric: str | None = None
    #: simulator ground truth about the object the audit's ceiling model may read: object
    #: properties only, never what the primitive measured (lift, views_held, ...), which
    #: would leak the outcome
    audit_truth: tuple[str, ...] = ("mass", "friction", "stiffness", "damping")

    def audit_features(self, rec) -> list[float] | None:
        """The ceiling model's input for one record: ground truth about the object and the
        action (``None`` when the record carries no ground truth, as on hardware)."""
        if any(k not in rec.truth for k in self.audit_truth):
            return None
        return [float(rec.truth[k]) for k in self.audit_truth] + [float(v) for v in rec.action]

    def audit_predict(self, model, records: list, size: int, stats, device) -> np.ndarray:
        """The trained model's prediction for ``records``: P(success) per record for
        "accuracy", the normalised target (N, D) for "error"."""
        import torch

        from curious_robot.learning import data

        b = self.make_batch(records, size, None, stats, None, model.cfg.view(self.name))
        with torch.no_grad():
            return self.predict(model, data.to_tensors(b, device)).cpu().numpy()

    def panel(self, model, store, stats, size: int, device):
        """A TensorBoard image panel of the model on this task's records ((H, W, 3) uint8),
        or ``None``."""
        return None

    def synthetic(self, color: tuple[int, int, int], rng: np.random.Generator,
                  size: int) -> dict | None:
        """Interaction fields of one synthetic record with learnable structure (tests and
        benchmarks), or ``None`` when the task has no synthetic data."""
        return None

