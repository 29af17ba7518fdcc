"""Push: the closed gripper pushes from a start point through an object to an end point.

The push head is two models on conv3 (:class:`~curious_robot.learning.layers.PushHead`):

- the *inverse* model (the paper's): the before / after scene images (siamese) -> the push
  (start_x, start_y, end_x, end_y), normalised (:attr:`Push.target`, checkpoint stats
  ``push``); ``push_error`` is its held-out error;
- a *forward* model, added for curiosity: the before scene and the push -> the object's
  displacement on the table (the record's outcome dx, dy), normalised with the training
  split's statistics like every target (:data:`FORWARD_KEY`, checkpoint stats
  ``push_forward``);
  ``push_forward_error`` is its held-out error, ``push_forward_mean_baseline_error`` that
  of predicting the training median. The push is given *relative to the image*: its start,
  midpoint and end in the scene image's normalised coordinates (:meth:`Push.points`; -1..1
  across, columns +x, rows -y), so the head reads the features under the stroke
  (``grid_sample``) besides a 3x3 grid of the whole scene. Why a forward model: an inverse
  model needs the after image, so it cannot score a push before it happens; a forward
  model can, and its MC-dropout spread says where it is unsure.

The push loss is the inverse loss + :attr:`Push.forward_weight` (1.0: both are MSE on
normalised targets) x the forward loss.

Selection (:meth:`Push.model_action`): ``curious`` draws :attr:`Push.candidates` random
pushes (:meth:`Push.random_action`: through the object's centre, random directions) and
takes the one whose predicted displacement has the largest MC-dropout spread (the sum
over dx, dy of the standard deviations, normalised units): the push whose outcome
the model is least sure of, as poke does with its points. ``model`` takes the candidate
with the largest predicted planar displacement (m): the push expected to move the object
most (a push's own goal; nothing else is worth maximising). The selector has no scene
image, only the object's patch, so the forward model scores a stand-in scene
(:meth:`Push.scene_from_patch`): the patch pasted at the object's place on a canvas of
the table's colour, at the scene image's geometry (:attr:`Push.scene_extent`). Other
objects are missing from it. A checkpoint without forward statistics (no push data yet,
or one written before the forward model; its forward part is untrained, see
:func:`curious_robot.learning.checkpoint._upgrade`) explores at random and says so.
"""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np

from curious_robot.motion.push import PUSH

from .base import Task

#: the key of the forward model's target statistics and of its batch entry
FORWARD_KEY = "push_forward"
#: what the forward model predicts: the first outcome fields. Not dyaw: over half of the
#: simulated pushes turn the object by under 0.2 degrees, so its robust scale (1.4826 x
#: MAD) is ~0.004 rad and any real turn normalises to the +-8 clip; on 321 / 79 random
#: simulated pushes dyaw made the forward error worse than the median baseline (5.3 vs
#: 4.7) and would rule the spread, while the yaw of a round object is not in the image
FORWARD_FIELDS = ("dx", "dy")


def _table_to_pixel(x: float, y: float, size: int, half: float = 0.3) -> tuple[int, int]:
    """Table (x, y) in metres -> (col, row) of a top-down scene image of the table."""
    return (int(round((x + half) / (2 * half) * (size - 1))),
            int(round((half - y) / (2 * half) * (size - 1))))


def _outcome(rec) -> list[float]:
    return [float(v) for v in rec.outcome[:len(FORWARD_FIELDS)]]


class Push(Task):
    name = "push"
    action_fields = ("start_x", "start_y", "end_x", "end_y")
    outcome_fields = ("dx", "dy", "dyaw")  # object displacement, m, m, rad
    action_type = "Push"
    selector = "push_selector"
    head, head_input = "push", "conv3"
    scramble = True
    shared_augment = True  # the push moves the object, not the lamp
    step_images = 2.0  # before and after
    script = PUSH
    metric_keys = ("push_error", "push_mean_baseline_error", "push_forward_error",
                   "push_forward_mean_baseline_error")
    extra_targets = MappingProxyType({FORWARD_KEY: _outcome})
    #: weight of the forward model's loss beside the inverse model's
    forward_weight = 1.0
    #: m of table across the before / after scene image, centred on the table origin (the
    #: simulated overhead camera: ``WorldConfig.scene_extent``)
    scene_extent = 0.46
    #: random pushes the curious / model selection scores
    candidates = 12

    @staticmethod
    def target(rec) -> list[float]:
        return rec.action[:4]  # start_x, start_y, end_x, end_y (m): the inverse model

    # -- robot ----------------------------------------------------------------------------
    def goal(self, goal_cls, action):
        goal = goal_cls()
        goal.start.x, goal.start.y, goal.end.x, goal.end.y = (float(v) for v in action)
        return goal

    def from_goal(self, goal):
        return [goal.start.x, goal.start.y, goal.end.x, goal.end.y], {}

    def execute(self, backend, action, options=None, progress=None, should_stop=None):
        sx, sy, ex, ey = action
        return self.script.run(backend.robot, (sx, sy), (ex, ey), progress, should_stop)

    def fill_result(self, out, res, image):
        out.success = bool(getattr(res, "success", True))
        out.image_before = image(res.before, "rgb8")
        out.image_after = image(res.after, "rgb8")
        out.dx, out.dy, out.dyaw = float(res.dx), float(res.dy), float(res.dyaw)

    def outcome(self, r, tactile, image):
        return {"success": bool(r.success), "outcome": [r.dx, r.dy, r.dyaw],
                "before": image(r.image_before, "image_before"),
                "after": image(r.image_after, "image_after")}

    # -- selection ------------------------------------------------------------------------
    def random_action(self, t, rng, ws, length: tuple[float, float] = (0.08, 0.14)):
        """Start beside the object from a random direction and push through its centre."""
        from .base import Selection

        direction = rng.uniform(0.0, 2.0 * math.pi)
        ux, uy = math.cos(direction), math.sin(direction)
        back = 0.5 * max(t.length, t.width) + 0.035
        stroke = rng.uniform(*length)
        sx, sy = ws.clip(t.x - ux * back, t.y - uy * back)
        ex, ey = ws.clip(sx + ux * (back + stroke), sy + uy * (back + stroke))
        return Selection([sx, sy, ex, ey])

    def model_action(self, policy, target, patch, patch_size, rng, ws):
        if FORWARD_KEY not in policy.predictor.stats:
            return policy.fallback(self.name, target, rng, ws, "the checkpoint's push forward "
                                   "model is untrained (no push data yet, or a checkpoint from "
                                   "before the forward model)")
        return policy.push_action(self, target, patch, patch_size, rng, ws)

    def points(self, actions) -> np.ndarray:
        """(N, 3, 2) float32: start, midpoint and end of each push (start_x, start_y, end_x,
        end_y in m) in the scene image's normalised coordinates (x: -1 at the left column,
        +1 at the right; y: -1 at the top row; ``grid_sample``'s convention)."""
        a = np.asarray(actions, np.float64).reshape(-1, 4)
        half = 0.5 * self.scene_extent
        start, end = a[:, 0:2], a[:, 2:4]
        pts = np.stack([start, 0.5 * (start + end), end], axis=1)
        return np.stack([pts[..., 0] / half, -pts[..., 1] / half], axis=-1).astype(np.float32)

    def scene_from_patch(self, patch: np.ndarray, patch_size: float, target,
                         size: int) -> np.ndarray:
        """A (size, size, 3) stand-in for the before scene image: the object's top-down
        ``patch`` (``patch_size`` m across, centred on ``target``) pasted at its place on a
        canvas of :attr:`scene_extent` m filled with the patch border's median colour."""
        import cv2

        ppm = (size - 1) / self.scene_extent
        side = max(1, int(round(patch_size * ppm)))
        small = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
        border = np.concatenate([patch[0], patch[-1], patch[:, 0], patch[:, -1]])
        canvas = np.empty((size, size, 3), np.uint8)
        canvas[:] = np.median(border, axis=0).astype(np.uint8)
        half = 0.5 * self.scene_extent
        c0 = int(round((target.x + half) * ppm)) - side // 2
        r0 = int(round((half - target.y) * ppm)) - side // 2
        cs, rs = max(c0, 0), max(r0, 0)
        ce, re = min(c0 + side, size), min(r0 + side, size)
        if ce > cs and re > rs:
            canvas[rs:re, cs:ce] = small[rs - r0:re - r0, cs - c0:ce - c0]
        return canvas

    # -- learning -------------------------------------------------------------------------
    def make_head(self, cfg, dims):
        from curious_robot.learning.layers import PushHead

        ch = dims["channels"]
        return PushHead(ch[2], ch[3], dims["hidden"], 4, dims["dropout"], forward_points=3,
                        forward_out=len(FORWARD_FIELDS))

    def batch(self, records, size, rng, stats, cfg):
        from curious_robot.learning import data

        return {"before": data.stack([r.before for r in records], size),
                "after": data.stack([r.after if r.after is not None else r.before
                                     for r in records], size),
                "points": self.points([r.action[:4] for r in records]),
                "target": stats.normalize(self.targets(records))}

    def predict(self, model, t):
        return model.push(t["before"], t["after"])

    def loss(self, model, b, cfg):
        from curious_robot.learning.layers import regression_loss

        if FORWARD_KEY not in b:  # no forward statistics (cannot happen in the trainer)
            return regression_loss(self.predict(model, b), b["target"])
        inverse, outcome = model.push_both(b["before"], b["after"], b["points"])
        return regression_loss(inverse, b["target"]) + \
            self.forward_weight * regression_loss(outcome, b[FORWARD_KEY])

    audit_metric = "error"

    def audit_features(self, rec):
        """The inverse model's ground-truth twin: the object's true displacement (the
        outcome: dx, dy, dyaw) and its properties predict where the push went."""
        if any(k not in rec.truth for k in self.audit_truth):
            return None
        return [float(rec.truth[k]) for k in self.audit_truth] + [float(v) for v in
                                                                  rec.outcome]

    def evaluate(self, model, ctx):
        """The inverse model's ``push_error`` and baseline, and the forward model's
        ``push_forward_error`` (mean L2, normalised dx, dy) and its baseline."""
        from curious_robot.learning import data, scores

        out = scores.regression_metrics(self, model, ctx)
        if FORWARD_KEY not in ctx.stats or not (recs := ctx.held_out()):
            return out
        preds, targets = [], []
        for part in scores.chunks(recs, ctx.chunk):
            t = data.to_tensors({"before": data.stack([r.before for r in part], ctx.size),
                                 "points": self.points([r.action[:4] for r in part])},
                                ctx.device)
            preds.append(model.push_outcome(t["before"], t["points"]).cpu().numpy())
            targets.append(data.extra_targets(self, part, ctx.stats)[FORWARD_KEY])
        preds, targets = np.concatenate(preds), np.concatenate(targets)
        out["push_forward_error"] = scores.none_if_nan(scores.mean_l2_error(preds, targets))
        out["push_forward_mean_baseline_error"] = scores.none_if_nan(
            scores.mean_l2_error(np.zeros_like(targets), targets))
        return out

    def synthetic(self, color, rng, size):
        """A disc moved by the push's displacement, in a scene of :attr:`scene_extent`."""
        import cv2

        x, y = rng.uniform(-0.12, 0.12, size=2)
        d = rng.uniform(-0.08, 0.08, size=2)
        imgs = []
        for px, py in ((x, y), (x + d[0], y + d[1])):
            img = np.full((size, size, 3), 40, np.uint8)
            cv2.circle(img, _table_to_pixel(px, py, size, 0.5 * self.scene_extent),
                       max(2, size // 12), color, -1)
            imgs.append(img)
        return {"before": imgs[0], "after": imgs[1],
                "action": [x - d[0], y - d[1], x + d[0], y + d[1]],
                "outcome": [float(d[0]), float(d[1]), 0.0], "success": True}


PUSH = Push()
