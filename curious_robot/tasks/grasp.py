"""Grasp: a top-down grasp at (x, y) with the fingers closing along ``angle``; success when
the object rises with the gripper. Trains the grasp head (18 angle bins on conv4)."""

from __future__ import annotations

import math

import numpy as np

from curious_robot.motion.grasp import GRASP

from .base import Task


class Grasp(Task):
    name = "grasp"
    action_fields = ("x", "y", "angle")
    outcome_fields = ("gripper_width",)  # m, final opening after the lift
    action_type = "Grasp"
    selector = "grasp_selector"
    default_weight = 2.0  # the paper's data was mostly grasps
    head, head_input = "grasp", "conv4"
    scramble = True
    script = GRASP
    metric_keys = ("grasp_bin_accuracy", "grasp_majority_accuracy")

    # -- robot ----------------------------------------------------------------------------
    def goal(self, goal_cls, action):
        return goal_cls(x=action[0], y=action[1], angle=action[2])

    def from_goal(self, goal):
        return [goal.x, goal.y, goal.angle], {}

    def execute(self, backend, action, options=None, progress=None, should_stop=None):
        x, y, angle = action
        return self.script.run(backend.robot, x, y, angle, progress, should_stop)

    def fill_result(self, out, res, image):
        out.success = bool(res.success)
        out.gripper_width = float(res.gripper_width)
        out.patch_before = image(res.patch, "rgb8")

    def outcome(self, r, tactile, image):
        return {"success": bool(r.success), "outcome": [r.gripper_width],
                "before": image(r.patch_before, "patch_before")}

    # -- selection ------------------------------------------------------------------------
    def random_action(self, t, rng, ws, jitter: float = 0.01):
        """The paper's exploration: a random angle at (about) the object's centre."""
        from .base import Selection

        x, y = ws.clip(t.x + rng.uniform(-jitter, jitter), t.y + rng.uniform(-jitter, jitter))
        return Selection([x, y, float(rng.uniform(0.0, math.pi))])

    def model_action(self, policy, target, patch, patch_size, rng, ws):
        # "curious": the most uncertain grasp (entropy + a little success); "model": greedy
        return policy.grasp_action(target, patch, patch_size, ws,
                                   greedy=policy.policy == "model")

    # -- learning -------------------------------------------------------------------------
    def make_head(self, cfg, dims):
        from curious_robot.learning.layers import N_ANGLE_BINS, ConvHead

        ch = dims["channels"]
        return ConvHead(ch[3], ch[4], dims["hidden"], N_ANGLE_BINS, dims["dropout"])

    def batch(self, records, size, rng, stats, cfg):
        from curious_robot.learning import data

        return data.grasp_batch(records, size, rng, rotate=cfg.rotate_grasp)

    def loss(self, model, b, cfg):
        from curious_robot.learning.layers import grasp_loss

        return grasp_loss(model.grasp(b["patch"]), b["bin"], b["success"])

    def evaluate(self, model, ctx):
        import torch

        from curious_robot.learning import data, scores

        recs = ctx.held_out()
        if not recs:
            return {}
        probs, labels = [], []
        for part in scores.chunks(recs, ctx.chunk):
            b = data.grasp_batch(part, ctx.size, rotate=False)
            t = data.to_tensors(b, ctx.device)
            p = torch.sigmoid(model.grasp(t["patch"])).gather(1, t["bin"].view(-1, 1))
            probs.append(p.squeeze(1).cpu().numpy())
            labels.append(b["success"])
        probs, labels = np.concatenate(probs), np.concatenate(labels)
        n_train = ctx.store.count(self.name, held_out=False)
        rate = ctx.store.count(self.name, held_out=False, success=True) / n_train \
            if n_train else None
        return {"grasp_bin_accuracy": scores.none_if_nan(scores.binary_accuracy(probs, labels)),
                "grasp_majority_accuracy": scores.none_if_nan(
                    scores.majority_accuracy(labels, rate))}

    audit_metric = "accuracy"
    audit_truth = ("mass", "friction", "stiffness", "damping", "min_width",
                   "width_along_angle", "local_width", "enclosed_width",
                   "finger_clearance_high", "finger_clearance_low", "pinch_width",
                   "offset_along", "offset_across", "top_height", "best_angle")

    def audit_features(self, rec):
        """Object properties, and the gripper angle relative to the object's best closing
        angle (as cos / sin of twice the difference: a gripper is symmetric under 180 deg)
        instead of the raw angle and the best angle."""
        if any(k not in rec.truth for k in self.audit_truth):
            return None
        d = 2.0 * (float(rec.action[2]) - float(rec.truth["best_angle"]))
        return [float(rec.truth[k]) for k in self.audit_truth[:-1]] + [
            float(np.cos(d)), float(np.sin(d))]

    def audit_predict(self, model, records, size, stats, device):
        """The grasp head's P(success) at the tried angle bin (also for inspect: an inspect
        is a grasp that must hold through the turns)."""
        import torch

        from curious_robot.learning import data, scores

        out = []
        with torch.no_grad():
            for part in scores.chunks(records, 64):
                t = data.to_tensors(data.grasp_batch(part, size, rotate=False), device)
                p = torch.sigmoid(model.grasp(t["patch"])).gather(1, t["bin"].view(-1, 1))
                out.append(p.squeeze(1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def panel(self, model, store, stats, size, device):
        from curious_robot.learning import scores

        return scores.grasp_panel(self, model, store, size, device)

    def synthetic(self, color, rng, size):
        """A bar at a random angle; success when closing across it (within 30 degrees)."""
        from curious_robot.learning.data import bar_image

        bar = float(rng.uniform(0, math.pi))
        angle = float(rng.uniform(0, math.pi))
        d = (angle - bar - math.pi / 2) % math.pi  # from "across the bar"
        diff = min(d, math.pi - d)
        return {"before": bar_image(size, bar, color=color), "action": [0.0, 0.0, angle],
                "success": bool(diff < math.radians(30)), "outcome": [0.02]}


GRASP = Grasp()
