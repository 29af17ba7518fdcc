"""Model-guided action selection: the ``model`` and ``curious`` policies of the selectors.

``load_policy(task, path, policy)`` wraps a :class:`~curious_robot.learning.predict.
Predictor` (the learner's checkpoint) in a :class:`Policy`; ``Policy.select(target, patch,
patch_size, rng, workspace)`` returns a :class:`~curious_robot.selection.Selection` in the
task's action layout (:data:`curious_robot.record.ACTION_FIELDS`), clipped to the workspace.
Before every selection the predictor reloads the checkpoint file if the trainer rewrote it
(``Predictor.maybe_reload``: one ``os.stat`` when nothing changed).

The patch is the selector request's: RGB, top-down, centred on the object's centroid,
image columns along table +x, rows along table -y, ``patch_size`` metres across. A grasp
at a point shifted by (dx, dy) from the centre is scored on the patch *translated* by
(-dx, +dy) * pixels-per-metre (columns, rows), so that the shifted point becomes the
centre, as in the training patches, which are centred on the grasp point (borders
reflected, as the rotation augmentation does).

What each task does (``score`` is what the selector reports with the action):

grasp, ``model``   18 angle bins x candidate points (the centroid and four points
                   ``grasp_shift`` metres away along table +-x, +-y, one batch); the pair
                   with the highest predicted success (ties: the centroid). Score: that
                   success probability. Bin k is the angle k * 10 degrees.
grasp, ``curious`` the same candidates; the pair maximising ``H(p) + success_weight * p``
                   (H: binary entropy in bits). With the default weight 0.25 the optimum is
                   at p ~ 0.54: the most uncertain grasps, tilted slightly toward the ones
                   likely to succeed (which carry most information at a ~10-40 % base
                   rate). Score: H(p) of the chosen grasp.
inspect            (served by the grasp selector) the object must end up in the hand, so
                   both policies pick the highest predicted success, as grasp ``model``.
poke, ``model``    the centroid (the paper pokes objects, not points; nothing to optimise).
                   Score: the predicted slope (N/m).
poke, ``curious``  the centroid and four points on the object (``poke_offset`` of the
                   footprint's length / width along its long / short axis, at most
                   ``poke_max_shift`` m); the one whose MC-dropout spread of the poke head
                   (``mc_samples`` passes, the log slope in normalised units)
                   is largest. Score: that spread.
push, ``model``    ``push_candidates`` random pushes through the centroid (the task's own
                   ``random_action``); the one whose predicted planar displacement (the
                   push head's *forward* model, on a stand-in scene built from the patch:
                   ``Push.scene_from_patch``) is largest. Score: that displacement (m).
push, ``curious``  the same candidates; the one whose MC-dropout spread of the forward
                   model (``mc_samples`` passes; the sum of the standard deviations of the
                   normalised dx, dy) is largest: the push whose outcome the model is
                   least sure of. Score: that spread. See :mod:`curious_robot.tasks.push`.

A checkpoint without poke data (no poke normalisation yet) makes poke fall back to random,
one without push forward statistics (no push data, or written before the forward model
existed) push; the first fallback of each kind is logged.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from curious_robot.learning import data
from curious_robot.learning.checkpoint import CheckpointError
from curious_robot.learning.predict import Predictor, binary_entropy
from curious_robot import tasks as registry
from curious_robot.selection import Selection, Target, Workspace, select_random

log = logging.getLogger(__name__)

#: The policies a model-guided selector knows (it serves every arm task of the registry;
#: each task's ``model_action`` hook decides what the model does for it).
MODEL_POLICIES = ("model", "curious")


def _check_task(task: str) -> None:
    if task not in registry.names("arm"):
        raise ValueError(f"no model-guided selector for task {task!r}; known: "
                         f"{', '.join(registry.names('arm'))}")


def translate(img: np.ndarray, cols: float, rows: float) -> np.ndarray:
    """``img`` moved by ``cols`` pixels right and ``rows`` pixels down; borders reflected."""
    if cols == 0 and rows == 0:
        return img
    m = np.float32([[1, 0, cols], [0, 1, rows]])
    h, w = img.shape[:2]
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def shifted_patches(patch: np.ndarray, patch_size: float, offsets, size: int,
                    view: str = "resize") -> list:
    """The patch re-centred on each table offset (dx, dy) in metres: at ``size`` px for
    a network that takes the patch resized, at the patch's own resolution for one that
    crops its centre (``view`` "crop" or "contrast"; the predictor crops)."""
    img = data.resize(patch, size) if view == "resize" else patch
    ppm = img.shape[0] / patch_size  # pixels per metre of the image shifted
    return [translate(img, -dx * ppm, dy * ppm) for dx, dy in offsets]


class Policy:
    """One task's model-guided selector; see the module docstring for what it does."""

    def __init__(self, task: str, predictor: Predictor, policy: str = "model", *,
                 grasp_shift: float = 0.008, success_weight: float = 0.25,
                 poke_offset: float = 0.25, poke_max_shift: float = 0.015,
                 mc_samples: int = 16, push_candidates: int | None = None,
                 reload: bool = True):
        _check_task(task)
        if policy not in MODEL_POLICIES:
            raise ValueError(f"policy must be one of {', '.join(MODEL_POLICIES)}, got "
                             f"{policy!r}")
        if grasp_shift < 0 or poke_offset < 0 or poke_max_shift < 0 or mc_samples < 2:
            raise ValueError("grasp_shift, poke_offset, poke_max_shift must be >= 0 and "
                             "mc_samples >= 2")
        if push_candidates is not None and push_candidates < 1:
            raise ValueError(f"push_candidates must be >= 1, got {push_candidates}")
        self.task, self.predictor, self.policy = task, predictor, policy
        self.grasp_shift = float(grasp_shift)
        self.success_weight = float(success_weight)
        self.poke_offset = float(poke_offset)
        self.poke_max_shift = float(poke_max_shift)
        self.mc_samples = int(mc_samples)
        #: random pushes scored per selection (``None``: the push task's ``candidates``)
        self.push_candidates = push_candidates
        self.reload = reload
        self._warned: set[str] = set()

    @property
    def step(self) -> int:
        """Training step of the checkpoint in use."""
        return self.predictor.step

    def fallback(self, task: str, target: Target, rng, ws: Workspace, why: str) -> Selection:
        """Random exploration for ``task``, saying ``why`` once."""
        if why not in self._warned:
            self._warned.add(why)
            log.warning("%s selector, policy %s: random %s (%s)", self.task, self.policy,
                        task, why)
        return select_random(task, target, rng, ws)

    def select(self, target: Target, patch: np.ndarray, patch_size: float,
               rng: np.random.Generator, workspace: Workspace | None = None,
               task: str | None = None) -> Selection:
        """The next action on ``target``; ``task`` overrides the policy's own (the grasp
        selector also serves ``inspect``)."""
        task = task or self.task
        ws = workspace or Workspace()
        if not (isinstance(patch, np.ndarray) and patch.dtype == np.uint8
                and patch.ndim == 3 and patch.shape[2] == 3 and min(patch.shape[:2]) > 0):
            raise ValueError(f"patch must be a uint8 (H, W, 3) RGB image, got "
                             f"{getattr(patch, 'dtype', type(patch))} "
                             f"{getattr(patch, 'shape', '')}")
        if not patch_size > 0:
            raise ValueError(f"patch_size must be > 0 m, got {patch_size}")
        if self.reload:
            self.predictor.maybe_reload()
        _check_task(task)
        return registry.get(task).model_action(self, target, patch, patch_size, rng, ws)

    # -- grasp ----------------------------------------------------------------------------

    def grasp_candidates(self, target: Target, ws: Workspace) -> list[tuple[float, float]]:
        """Offsets (m, table frame) from the centroid: (0, 0) first, then the four
        neighbours that stay inside the workspace."""
        out = [(0.0, 0.0)]
        s = self.grasp_shift
        if s > 0:
            for dx, dy in ((s, 0.0), (-s, 0.0), (0.0, s), (0.0, -s)):
                x, y = target.x + dx, target.y + dy
                if ws.clip(x, y) == (x, y):
                    out.append((dx, dy))
        return out

    def grasp_action(self, target: Target, patch, patch_size, ws, greedy: bool) -> Selection:
        """The best grasp of the candidates: greedy (highest success probability) or
        curious (binary entropy + ``success_weight`` x probability)."""
        offsets = self.grasp_candidates(target, ws)
        p = self.predictor.grasp_scores_batch(
            shifted_patches(patch, patch_size, offsets, self.predictor.input_size))
        if greedy:
            score = p
        else:
            score = binary_entropy(p) + self.success_weight * p
        i, b = np.unravel_index(int(np.argmax(score)), score.shape)
        x, y = ws.clip(target.x + offsets[i][0], target.y + offsets[i][1])
        chosen = float(p[i, b]) if greedy else float(binary_entropy(p[i, b]))
        return Selection([x, y, data.bin_to_angle(int(b))], chosen, self.policy)

    # -- poke -----------------------------------------------------------------------------

    def poke_candidates(self, target: Target, ws: Workspace) -> list[tuple[float, float]]:
        """Offsets (m, table frame): the centroid, then +-along the long and short axes."""
        out = [(0.0, 0.0)]
        c, s = math.cos(target.yaw), math.sin(target.yaw)
        a = min(self.poke_offset * target.length, self.poke_max_shift)
        b = min(self.poke_offset * target.width, self.poke_max_shift)
        for d, (ux, uy) in ((a, (c, s)), (b, (-s, c))):
            if d <= 1e-4:
                continue
            for sign in (1.0, -1.0):
                dx, dy = sign * d * ux, sign * d * uy
                if ws.clip(target.x + dx, target.y + dy) == (target.x + dx, target.y + dy):
                    out.append((dx, dy))
        return out

    def poke_action(self, target: Target, patch, patch_size, rng, ws) -> Selection:
        """"model": poke the centroid; "curious": the candidate with the largest MC-dropout
        spread of the predicted tactile fit."""
        if self.policy == "model":
            slope = self.predictor.poke_predict(patch)
            x, y = ws.clip(target.x, target.y)
            return Selection([x, y], float(slope), self.policy)
        offsets = self.poke_candidates(target, ws)
        sd = self.predictor.poke_uncertainty_batch(
            shifted_patches(patch, patch_size, offsets, self.predictor.input_size,
                            self.predictor.poke_view),
            self.mc_samples, seed=int(rng.integers(2**62)))
        spread = sd.sum(axis=1)
        i = int(np.argmax(spread))
        x, y = ws.clip(target.x + offsets[i][0], target.y + offsets[i][1])
        return Selection([x, y], float(spread[i]), self.policy)


    # -- push -----------------------------------------------------------------------------

    def push_action(self, spec, target: Target, patch, patch_size, rng, ws) -> Selection:
        """Score random pushes (``spec``: the push task) with its forward model: "model"
        takes the largest predicted displacement, "curious" the largest MC-dropout spread."""
        k = self.push_candidates or spec.candidates
        cands = [spec.random_action(target, rng, ws).action for _ in range(k)]
        scene = spec.scene_from_patch(patch, patch_size, target, self.predictor.input_size)
        points = spec.points(cands)
        if self.policy == "model":
            d = self.predictor.push_outcome(scene, points)
            score = np.hypot(d[:, 0], d[:, 1])
        else:
            z = self.predictor.push_outcome_samples(scene, points, self.mc_samples,
                                                    seed=int(rng.integers(2**62)))
            score = z.std(axis=0).sum(axis=1)
        i = int(np.argmax(score))
        return Selection([float(v) for v in cands[i]], float(score[i]), self.policy)


def load_policy(task: str, path, policy: str, device="cpu", **options) -> Policy:
    """A :class:`Policy` for ``task`` ('grasp', 'inspect', 'push', 'poke') from a checkpoint
    file (or a training folder holding checkpoint.pt, or ``default``: the shipped model);
    ``policy`` is 'model' or 'curious'. The predictor is the process's shared one of that
    file (:meth:`Predictor.shared`): the selectors of a container read a checkpoint once.
    Raises ``ValueError`` for an unknown task / policy and
    :class:`~curious_robot.learning.checkpoint.CheckpointError` for an unusable file."""
    _check_task(task)
    if policy not in MODEL_POLICIES:
        raise ValueError(f"policy must be one of {', '.join(MODEL_POLICIES)}, got {policy!r}")
    from curious_robot.paths import resolve_checkpoint

    try:
        path = resolve_checkpoint(path)
    except FileNotFoundError as exc:
        raise CheckpointError(str(exc)) from exc
    return Policy(task, Predictor.shared(path, device), policy, **options)


__all__ = ["MODEL_POLICIES", "Policy", "load_policy", "shifted_patches", "translate"]
