"""Poke: press a probe down on an object until a force limit; the tactile node fits force
against press depth, and the patch before the poke trains the poke head to predict the
felt stiffness (fc6 -> log slope).

The learning target is the log of the fitted slope (N/m), the informative part of the
fit: the stiffness the probe feels, set by the material. Not the intercept (the line's
force at the press's start, which is -slope x onset and so mostly restates the slope
with the onset's noise) and not the onset depth (where contact began below the surface
the depth camera saw: camera and mesh error, rank correlation with the true stiffness
about 0 in the simulation). Log, because stiffness spans an order of magnitude
(3,000-40,000 N/m) and its materials are log-uniform within their ranges."""

from __future__ import annotations

import numpy as np

from curious_robot.motion.poke import POKE

from .base import Task


class Poke(Task):
    name = "poke"
    action_fields = ("x", "y")
    outcome_fields = ("slope", "intercept", "onset_depth", "max_force")  # N/m, N, m, N
    action_type = "Poke"
    selector = "poke_selector"
    tactile = True
    head, head_input = "poke", "fc6"
    #: a poke whose tactile fit failed (too few contact samples) has nothing to regress
    train_success = True
    scramble = False  # colour is random per object; the material shows in the texture
    crop_view = True  # the texture is lost when the whole patch is scaled to the input
    script = POKE
    metric_keys = ("poke_error", "poke_mean_baseline_error")

    @staticmethod
    def target(rec) -> list[float]:
        return [float(np.log(max(float(rec.outcome[0]), 1.0)))]  # log slope (N/m)

    # -- robot ----------------------------------------------------------------------------
    def goal(self, goal_cls, action):
        return goal_cls(x=action[0], y=action[1])

    def from_goal(self, goal):
        return [goal.x, goal.y], {"max_force": goal.max_force}

    def execute(self, backend, action, options=None, progress=None, should_stop=None):
        x, y = action
        return self.script.run(backend.robot, x, y, (options or {}).get("max_force", 0.0),
                               progress, should_stop)

    def fill_result(self, out, res, image):
        depth = [float(v) for v in res.depth]
        force = [float(v) for v in res.force]
        out.success = len(depth) > 0
        out.depth, out.force = depth, force
        out.reached_force_limit = bool(getattr(res, "reached_force_limit", False))
        out.patch_before = image(res.patch, "rgb8")

    def outcome(self, r, tactile, image):
        if tactile is None:
            return None
        return {"success": bool(tactile.valid),
                "outcome": [tactile.slope, tactile.intercept, tactile.onset_depth,
                            tactile.max_force],
                "tactile_depth": list(tactile.depth), "tactile_force": list(tactile.force),
                "before": image(r.patch_before, "patch_before")}

    def tactile_fields(self, rec):
        return tuple(float(v) for v in rec.outcome[:4]) if len(rec.outcome) >= 4 else None

    # -- selection ------------------------------------------------------------------------
    def random_action(self, t, rng, ws, jitter: float = 0.004):
        from .base import Selection

        x, y = ws.clip(t.x + rng.uniform(-jitter, jitter), t.y + rng.uniform(-jitter, jitter))
        return Selection([x, y])

    def model_action(self, policy, target, patch, patch_size, rng, ws):
        if self.name not in policy.predictor.stats:
            return policy.fallback(self.name, target, rng, ws,
                                   "the checkpoint has no poke data yet")
        return policy.poke_action(target, patch, patch_size, rng, ws)

    # -- learning -------------------------------------------------------------------------
    def make_head(self, cfg, dims):
        from curious_robot.learning.layers import MLPHead

        return MLPHead(dims["fc6"], dims["hidden"], 1, dims["dropout"])

    def batch(self, records, size, rng, stats, cfg, *, view="resize"):
        """The patches before the poke (``view``: cropped, resized or local contrast, see
        ``ModelConfig.patch_view``; in training also turned and mirrored at random, where
        ``cfg.poke_turn``, and photometrically jittered by ``cfg.color_jitter`` before the
        view's contrast is taken) and the normalised log felt stiffness."""
        from curious_robot.learning import data

        contrast = view == "contrast"
        patches = data.stack([r.before for r in records], size, "crop" if contrast else view)
        if rng is not None and cfg is not None:
            if cfg.poke_turn:
                patches = data.turn_all(patches, rng)
            if cfg.color_jitter > 0:
                patches = data.jitter_colors(
                    patches, data.jitter_params(len(patches), rng, cfg.color_jitter))
        if contrast:
            patches = data.contrast_all(patches)
        return {"patch": patches, "target": stats.normalize(self.targets(records))}

    def augment(self, batch, rng, strength, scramble=0.0):
        """Nothing more: :meth:`batch` applied the photometric jitter already, to the patch
        as the camera saw it, before a "contrast" view takes away what a change of light
        does (jitter applied to the contrast image itself would move it by more than the
        texture's depth, and the BatchNorm statistics with it)."""
        return batch

    def predict(self, model, t):
        return model.poke(t["patch"])

    def loss(self, model, b, cfg):
        from curious_robot.learning.layers import regression_loss

        return regression_loss(self.predict(model, b), b["target"])

    audit_metric = "error"  # log slope from object properties and the spot

    def audit_features(self, rec):
        """Mass, friction, log stiffness and log damping of the object (the felt slope is
        log-linear in them), and the point."""
        t = rec.truth
        if any(k not in t for k in self.audit_truth):
            return None
        return [float(t["mass"]), float(t["friction"]),
                float(np.log(max(float(t["stiffness"]), 1.0))),
                float(np.log(max(float(t["damping"]), 1e-6))),
                *(float(v) for v in rec.action)]

    def evaluate(self, model, ctx):
        from curious_robot.learning import scores

        return scores.regression_metrics(self, model, ctx)

    def panel(self, model, store, stats, size, device):
        from curious_robot.learning import scores

        return scores.poke_panel(self, model, store, stats, size, device)

    def synthetic(self, color, rng, size):
        """A disc whose brightness sets the stiffness."""
        import cv2

        bright = float(np.mean(color)) / 255.0
        patch = np.full((size, size, 3), 40, np.uint8)
        cv2.circle(patch, (size // 2, size // 2), size // 3, color, -1)
        return {"before": patch, "action": [0.0, 0.0],
                "outcome": [200.0 + 800.0 * bright, 0.5 * bright, 0.001, 5.0], "success": True}


POKE = Poke()
