"""Inspect: grasp an object across its narrow side and image it held in several wrist poses.
The views of one object train the identity head (an embedding on fc6 -> fc7)."""

from __future__ import annotations

import numpy as np

from curious_robot.motion.inspect import INSPECT

from .base import Task


class Inspect(Task):
    name = "inspect"
    label = "identity"
    action_fields = ("x", "y", "angle")
    outcome_fields = ("n_views",)  # views captured while the object stayed held
    action_type = "Inspect"
    selector = "grasp_selector"  # the grasp selector proposes the grasp that holds it
    head, head_input = "identity", "fc6"
    #: InfoNCE's gradients are larger than the other heads', and at full weight it took the
    #: poke head below predict-the-mean
    loss_weight = 0.5
    scramble = True
    step_images = 3.0  # a pair, and its share of the negative pairs
    script = INSPECT
    metric_keys = ("identity_pair_accuracy",)

    # -- robot ----------------------------------------------------------------------------
    def goal(self, goal_cls, action):
        return goal_cls(x=action[0], y=action[1], angle=action[2])

    def from_goal(self, goal):
        return [goal.x, goal.y, goal.angle], {"object_id": goal.object_id}

    def execute(self, backend, action, options=None, progress=None, should_stop=None):
        x, y, angle = action
        return self.script.run(backend.robot, (options or {}).get("object_id", ""), x, y,
                               angle, progress, should_stop)

    def fill_result(self, out, res, image):
        out.success = bool(res.success)
        out.held_through_all = bool(res.held_through_all)
        out.patch_before = image(res.patch, "rgb8")
        out.views = [image(v, "rgb8") for v in res.views]

    def result_object_id(self, res):
        return res.object_id

    def outcome(self, r, tactile, image):
        return {"success": bool(r.success and r.held_through_all),
                "outcome": [float(len(r.views))],
                "before": image(r.patch_before, "patch_before"),
                "views": [image(v, f"views[{i}]") for i, v in enumerate(r.views)]}

    # -- selection ------------------------------------------------------------------------
    def random_action(self, t, rng, ws):
        """Inspect needs the object in hand: close across the narrow side of the footprint."""
        import math

        from .base import Selection

        x, y = ws.clip(t.x, t.y)
        return Selection([x, y, (t.yaw + math.pi / 2.0) % math.pi])

    def model_action(self, policy, target, patch, patch_size, rng, ws):
        return policy.grasp_action(target, patch, patch_size, ws, greedy=True)

    # -- learning -------------------------------------------------------------------------
    def make_head(self, cfg, dims):
        from torch import nn

        return nn.Linear(dims["fc6"], dims["fc7"])  # fc7

    def batch(self, records, size, rng, stats, cfg):
        from curious_robot.learning import data

        return data.identity_batch(records, size, rng, turn=cfg.identity_turn)

    def loss(self, model, b, cfg):
        import torch

        from curious_robot.learning.layers import identity_loss, identity_nce_loss

        n = b["a"].shape[0]
        e = model.embed(torch.cat([b["a"], b["b"]]))  # both towers in one pass of the root
        if cfg.identity_in_batch and "group_a" in b:
            if cfg.identity_loss == "nce":
                return identity_nce_loss(e[:n], e[n:], b["group_a"], b["group_b"],
                                         cfg.identity_temperature)
            return identity_loss(e[:n], e[n:], b["same"], cfg.identity_margin,
                                 b["group_a"], b["group_b"], hard=cfg.identity_loss == "hard")
        return identity_loss(e[:n], e[n:], b["same"], cfg.identity_margin)

    # the audit asks whether the object stays held through the turns: a grasp question
    audit_metric = "accuracy"

    @property
    def audit_truth(self):
        from .grasp import GRASP

        return GRASP.audit_truth

    def audit_features(self, rec):
        from .grasp import GRASP

        return GRASP.audit_features(rec)

    def audit_predict(self, model, records, size, stats, device):
        from .grasp import GRASP

        return GRASP.audit_predict(model, records, size, stats, device)

    def evaluate(self, model, ctx):
        from curious_robot.learning import scores

        recs = ctx.held_out()
        if not recs:
            return {}
        sims, same = scores.embed_pairs(model, recs, ctx.size, ctx.device, 0, ctx.chunk)
        if not len(sims):
            return {}
        train_ids = scores.subset(ctx.store.ids(self.name, held_out=False), ctx.max_records, 1)
        threshold = 0.0
        if len(train_ids):
            ts, tsame = scores.embed_pairs(model, ctx.store.get_many(train_ids.tolist()),
                                            ctx.size, ctx.device, 1, ctx.chunk)
            threshold = scores.best_threshold(ts, tsame)
        return {"identity_pair_accuracy": scores.none_if_nan(
            scores.pair_accuracy(sims, same, threshold))}

    def synthetic(self, color, rng, size):
        """Discs of the object's colour, jittered in place and size."""
        import cv2

        def view(c=color):
            img = np.full((size, size, 3), 40, np.uint8)
            center = (size // 2 + int(rng.integers(-3, 4)), size // 2 + int(rng.integers(-3, 4)))
            cv2.circle(img, center, size // 4 + int(rng.integers(-2, 3)), c, -1)
            return img
        return {"before": view(), "views": [view(), view()], "action": [0.0, 0.0, 0.0],
                "outcome": [2.0], "success": True}


INSPECT = Inspect()
