"""Push: the closed gripper pushes from a start point through an object to an end point;
the before / after scene images train the push head as an inverse model (conv3, siamese)."""

from __future__ import annotations

import math

import numpy as np

from curious_robot.motion.push import PUSH

from .base import Task


def _table_to_pixel(x: float, y: float, size: int, half: float = 0.3) -> tuple[int, int]:
    """Table (x, y) in metres -> (col, row) of a top-down scene image of the table."""
    return (int(round((x + half) / (2 * half) * (size - 1))),
            int(round((half - y) / (2 * half) * (size - 1))))


class Push(Task):
    name = "push"
    action_fields = ("start_x", "start_y", "end_x", "end_y")
    outcome_fields = ("dx", "dy", "dyaw")  # object displacement, m, m, rad
    action_type = "Push"
    selector = "push_selector"
    head, head_input = "push", "conv3"
    scramble = True
    shared_augment = True  # the push moves the object, not the lamp
    script = PUSH
    metric_keys = ("push_error", "push_mean_baseline_error")

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
        return policy.fallback(self.name, target, rng, ws, "the push head is an inverse model "
                               "and cannot score a push in advance")

    # -- learning -------------------------------------------------------------------------
    def make_head(self, cfg, dims):
        from curious_robot.learning.layers import ConvHead

        ch = dims["channels"]
        return ConvHead(2 * ch[2], ch[3], dims["hidden"], 4, dims["dropout"])

    def batch(self, records, size, rng, stats, cfg):
        from curious_robot.learning import data

        return {"before": data.stack([r.before for r in records], size),
                "after": data.stack([r.after if r.after is not None else r.before
                                     for r in records], size),
                "target": stats.normalize(self.targets(records))}

    def predict(self, model, t):
        return model.push(t["before"], t["after"])

    def loss(self, model, b, cfg):
        from curious_robot.learning.layers import regression_loss

        return regression_loss(self.predict(model, b), b["target"])

    audit_metric = "error"

    def audit_features(self, rec):
        """The inverse model's ground-truth twin: the object's true displacement (the
        outcome: dx, dy, dyaw) and its properties predict where the push went."""
        if any(k not in rec.truth for k in self.audit_truth):
            return None
        return [float(rec.truth[k]) for k in self.audit_truth] + [float(v) for v in
                                                                  rec.outcome]

    def evaluate(self, model, ctx):
        from curious_robot.learning import scores

        return scores.regression_metrics(self, model, ctx)

    def synthetic(self, color, rng, size):
        """A disc moved by the push's displacement."""
        import cv2

        x, y = rng.uniform(-0.2, 0.2, size=2)
        d = rng.uniform(-0.08, 0.08, size=2)
        imgs = []
        for px, py in ((x, y), (x + d[0], y + d[1])):
            img = np.full((size, size, 3), 40, np.uint8)
            cv2.circle(img, _table_to_pixel(px, py, size), max(2, size // 12), color, -1)
            imgs.append(img)
        return {"before": imgs[0], "after": imgs[1],
                "action": [x - d[0], y - d[1], x + d[0], y + d[1]],
                "outcome": [float(d[0]), float(d[1]), 0.0], "success": True}


PUSH = Push()
