"""Held-out metrics: pure functions on arrays, and :func:`evaluate` that runs the network on
the held-out interactions of a replay store.

Units: push and poke errors are mean per-sample Euclidean (L2) distances in *normalised*
units (each target coordinate divided by its training-split standard deviation after
subtracting the training mean), so the "predict the training mean" baseline predicts the
zero vector and both tasks' numbers are comparable. Push has 4 coordinates (start, end),
poke 2 (slope, intercept).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from curious_robot import tasks as registry
from curious_robot.learning import data

log = logging.getLogger(__name__)

#: Keys of :func:`evaluate`'s result (``train --json`` prints these): the metrics of the
#: tasks trained by default, each task's ``metric_keys`` in registration order.
METRIC_KEYS = tuple(k for t in registry.all_tasks() if t.default_train for k in t.metric_keys)


def metric_keys(tasks=None) -> tuple[str, ...]:
    """Keys :func:`evaluate` reports for ``tasks``: :data:`METRIC_KEYS`, then the keys of
    the other tasks among ``tasks`` (the drone's crash metrics)."""
    extra = tuple(k for name in (tasks or ()) for k in registry.get(name).metric_keys
                  if k not in METRIC_KEYS)
    return METRIC_KEYS + extra


# -- pure metrics -------------------------------------------------------------------------


def binary_accuracy(prob, label, threshold: float = 0.5) -> float:
    """Share of samples where ``prob > threshold`` equals the boolean ``label``."""
    prob, label = np.asarray(prob, np.float64), np.asarray(label).astype(bool)
    return float(np.mean((prob > threshold) == label)) if len(prob) else float("nan")


def majority_accuracy(label, train_positive_rate: float | None = None) -> float:
    """Accuracy of always predicting the majority class: of the training split when its
    positive rate is given, else of ``label`` itself."""
    label = np.asarray(label).astype(bool)
    if not len(label):
        return float("nan")
    rate = float(np.mean(label)) if train_positive_rate is None else train_positive_rate
    return float(np.mean(label == (rate > 0.5)))


def mean_l2_error(pred, target) -> float:
    """Mean over samples of the Euclidean distance between prediction and target rows."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    diff = (pred - target).reshape(len(pred), -1)
    return float(np.mean(np.linalg.norm(diff, axis=1))) if len(pred) else float("nan")


def best_threshold(scores, same) -> float:
    """The threshold t maximising the accuracy of ``score > t`` as "same object" (ties:
    the smallest t); 0.0 without scores."""
    scores, same = np.asarray(scores, np.float64), np.asarray(same).astype(bool)
    if not len(scores):
        return 0.0
    s = np.unique(scores)
    candidates = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2.0, [s[-1] + 1e-6]])
    acc = ((scores[None, :] > candidates[:, None]) == same[None, :]).mean(axis=1)
    return float(candidates[int(np.argmax(acc))])


def pair_accuracy(scores, same, threshold: float = 0.0) -> float:
    return binary_accuracy(scores, same, threshold)


# -- the network on held-out data ---------------------------------------------------------


def subset(ids: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


def chunks(records, size):
    for i in range(0, len(records), size):
        yield records[i:i + size]


def none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@torch.no_grad()
def embed_pairs(model, records, size, device, seed, chunk):
    batch = data.identity_batch(records, size, np.random.default_rng(seed))
    if batch is None:
        return np.zeros(0), np.zeros(0)
    scores = []
    for i in range(0, len(batch["same"]), chunk):
        part = data.to_tensors({k: batch[k][i:i + chunk] for k in ("a", "b")}, device)
        scores.append(F.cosine_similarity(model.embed(part["a"]), model.embed(part["b"]))
                      .cpu().numpy())
    return np.concatenate(scores), batch["same"]


@dataclass
class EvalContext:
    """What a task's ``evaluate`` hook gets: its held-out records (read on first use), the
    store and the settings of the evaluation."""

    task: str
    store: Any
    stats: dict
    device: Any
    size: int
    chunk: int
    max_records: int
    crash_horizon_s: float
    _read: Callable[[], list] | None = None
    _records: list | None = None

    def held_out(self) -> list:
        if self._records is None:
            self._records = self._read() if self._read is not None else []
        return self._records


def regression_metrics(task, model, ctx: EvalContext) -> dict:
    """Mean L2 error of a regression head (``task.predict``) on normalised held-out targets,
    and the predict-the-training-mean baseline (needs the task's training stats)."""
    if task.name not in ctx.stats or not (recs := ctx.held_out()):
        return {}
    preds, targets = [], []
    for part in chunks(recs, ctx.chunk):
        b = task.batch(part, ctx.size, None, ctx.stats[task.name], None)
        preds.append(task.predict(model, data.to_tensors(b, ctx.device)).cpu().numpy())
        targets.append(b["target"])
    preds, targets = np.concatenate(preds), np.concatenate(targets)
    return {f"{task.name}_error": none_if_nan(mean_l2_error(preds, targets)),
            f"{task.name}_mean_baseline_error": none_if_nan(
                mean_l2_error(np.zeros_like(targets), targets))}


@torch.no_grad()
def evaluate(model, store, stats: dict, device, input_size: int, tasks=None,
             max_records: int = 512, chunk: int = 64, crash_horizon_s: float = 1.0) -> dict:
    """Metrics of :func:`metric_keys` on the store's held-out interactions (``None`` where a
    task has no held-out data or no training statistics), each task's ``evaluate`` hook.
    Runs in eval mode."""
    names = list(tasks or registry.trained_by_default())
    out: dict = {k: None for k in metric_keys(names)}
    was_training = model.training
    model.eval()
    try:
        for name in names:
            task = registry.get(name)

            def read(task=task):
                ids = subset(store.ids(task.name, held_out=True,
                                       success=task.train_success), max_records)
                return store.get_many(ids.tolist()) if len(ids) else []

            ctx = EvalContext(name, store, stats, device, input_size, chunk, max_records,
                              crash_horizon_s, read)
            out.update({k: v for k, v in task.evaluate(model, ctx).items() if k in out})
    finally:
        model.train(was_training)
    return out
