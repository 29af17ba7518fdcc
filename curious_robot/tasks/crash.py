"""Crash (drone mode): frames of a flight before a collision, labelled by the time left; the
crash head (fc6) predicts whether going straight is safe."""

from __future__ import annotations

import numpy as np

from .base import Task


class Crash(Task):
    name = "crash"
    action_fields = ("yaw_rate", "forward_speed")
    outcome_fields = ("time_to_collision",)  # s of simulated flight left at the frame
    robot = "drone"
    default_train = False
    head, head_input = "crash", "fc6"
    metric_keys = ("crash_accuracy", "crash_majority_accuracy")

    # -- learning -------------------------------------------------------------------------
    def make_head(self, cfg, dims):
        from curious_robot.learning.layers import MLPHead

        return MLPHead(dims["fc6"], dims["hidden"], 1, dims["dropout"])

    def batch(self, records, size, rng, stats, cfg):
        from curious_robot.learning import data

        return data.crash_batch(records, size, cfg.crash_horizon_s)

    def loss(self, model, b, cfg):
        from curious_robot.learning.layers import crash_loss

        return crash_loss(model.crash(b["crop"]), b["safe"])

    def evaluate(self, model, ctx):
        import torch

        from curious_robot.learning import data, scores

        recs = ctx.held_out()
        if not recs:
            return {}
        horizon = ctx.crash_horizon_s
        probs, labels = [], []
        for part in scores.chunks(recs, ctx.chunk):
            b = data.crash_batch(part, ctx.size, horizon)
            t = data.to_tensors(b, ctx.device)
            probs.append(torch.sigmoid(model.crash(t["crop"])).view(-1).cpu().numpy())
            labels.append(b["safe"])
        probs, labels = np.concatenate(probs), np.concatenate(labels)
        train = [r.outcome[0] > horizon for r in ctx.store.get_many(
            scores.subset(ctx.store.ids(self.name, held_out=False), ctx.max_records).tolist(),
            images=False)]
        rate = float(np.mean(train)) if train else None
        return {"crash_accuracy": scores.none_if_nan(scores.binary_accuracy(probs, labels)),
                "crash_majority_accuracy": scores.none_if_nan(
                    scores.majority_accuracy(labels, rate))}


CRASH = Crash()
