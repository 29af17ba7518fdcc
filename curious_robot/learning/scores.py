"""Held-out scores without the task registry: pure metric functions on arrays, the
helpers the tasks' ``evaluate`` hooks use, and TensorBoard image panels. The tasks of
:mod:`curious_robot.tasks` call these; :mod:`curious_robot.learning.metrics` runs them
over the registry.

Units: push and poke errors are mean per-sample Euclidean (L2) distances in *normalised*
units (each target coordinate divided by its training-split scale after subtracting the
training centre), so the "predict the training mean" baseline predicts the zero vector.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from curious_robot.learning import data


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


def regression_metrics(task, model, ctx) -> dict:
    """Mean L2 error of a regression head (``task.predict``) on normalised held-out targets,
    and the predict-the-training-mean baseline (needs the task's training stats)."""
    if task.name not in ctx.stats or not (recs := ctx.held_out()):
        return {}
    preds, targets = [], []
    for part in chunks(recs, ctx.chunk):
        b = task.make_batch(part, ctx.size, None, ctx.stats[task.name], None,
                            model.cfg.view(task.name))
        preds.append(task.predict(model, data.to_tensors(b, ctx.device)).cpu().numpy())
        targets.append(b["target"])
    preds, targets = np.concatenate(preds), np.concatenate(targets)
    return {f"{task.name}_error": none_if_nan(mean_l2_error(preds, targets)),
            f"{task.name}_mean_baseline_error": none_if_nan(
                mean_l2_error(np.zeros_like(targets), targets))}


#: Records drawn per panel, and the side of one tile in px.
PANEL_RECORDS, PANEL_TILE = 8, 128


def _panel_records(store, task, n: int) -> list:
    """The same ``n`` records of ``task`` every time: held-out ones (training ones when
    there are none), spread evenly over the store."""
    for held_out in (True, False):
        ids = store.ids(task.name, held_out=held_out, success=task.train_success)
        if len(ids):
            pick = ids[np.unique(np.linspace(0, len(ids) - 1, min(n, len(ids))).astype(int))]
            return store.get_many(pick.tolist())
    return []


def _tile(image: np.ndarray) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.resize(image, (PANEL_TILE, PANEL_TILE),
                                           interpolation=cv2.INTER_LINEAR))


def _text(img: np.ndarray, text: str, row: int, color=(255, 255, 255)) -> None:
    import cv2

    for c, t in (((0, 0, 0), 3), (color, 1)):  # outlined, readable on any background
        cv2.putText(img, text, (3, row), cv2.FONT_HERSHEY_SIMPLEX, 0.4, c, t, cv2.LINE_AA)


def _bar(img: np.ndarray, angle: float, color, thickness: int, length: float = 0.8) -> None:
    """A line through the centre at table angle ``angle`` (the grasp-patch convention of
    :func:`data.bar_image`: column = +x, row = -y)."""
    import math

    import cv2

    c, half = (img.shape[0] - 1) / 2.0, length * img.shape[0] / 2.0
    dx, dy = math.cos(angle) * half, math.sin(angle) * half
    cv2.line(img, (int(round(c - dx)), int(round(c + dy))),
             (int(round(c + dx)), int(round(c - dy))), color, thickness, cv2.LINE_AA)


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    gap = np.full((PANEL_TILE, 2, 3), 255, np.uint8)
    out = [tiles[0]]
    for t in tiles[1:]:
        out += [gap, t]
    return np.concatenate(out, axis=1)


@torch.no_grad()
def grasp_panel(task, model, store, input_size: int, device, n: int = PANEL_RECORDS
                ) -> np.ndarray | None:
    """A row of grasp patches (held-out when there are any), each with the tried angle (green
    bar: it succeeded, red: it failed) and the model's success probability for it
    (``p``), and the model's best angle (thin yellow bar) with its probability (``best``).
    None without grasp records."""
    records = _panel_records(store, task, n)
    if not records:
        return None
    b = data.grasp_batch(records, input_size, rotate=False)
    was_training = model.training
    model.eval()
    try:
        probs = torch.sigmoid(model.grasp(data.to_tensors(b, device)["patch"])).cpu().numpy()
    finally:
        model.train(was_training)
    tiles = []
    for rec, p, tried, ok in zip(records, probs, b["bin"], b["success"]):
        img = _tile(rec.before)
        best = int(np.argmax(p))
        _bar(img, data.bin_to_angle(best), (255, 220, 0), 1)
        _bar(img, data.bin_to_angle(int(tried)), (0, 200, 0) if ok else (230, 0, 0), 2)
        _text(img, f"p {p[int(tried)]:.2f} {'ok' if ok else 'fail'}", 12)
        _text(img, f"best {p[best]:.2f}", PANEL_TILE - 5, (255, 220, 0))
        tiles.append(img)
    return _row(tiles)


@torch.no_grad()
def poke_panel(task, model, store, stats, input_size: int, device, n: int = PANEL_RECORDS // 2
               ) -> np.ndarray | None:
    """A row of poke patches with the measured and the predicted felt stiffness (slope,
    N/m); None without poke records or statistics."""
    records = _panel_records(store, task, n)
    if not records or stats is None:
        return None
    b = task.make_batch(records, input_size, None, stats, None, model.cfg.view(task.name))
    was_training = model.training
    model.eval()
    try:
        z = model.poke(data.to_tensors(b, device)["patch"]).cpu().numpy()
    finally:
        model.train(was_training)
    tiles = []
    for rec, pred in zip(records, stats.denormalize(z)):
        img = _tile(rec.before)
        _text(img, f"true {rec.outcome[0]:.0f} N/m", 12, (0, 230, 0))
        _text(img, f"pred {np.exp(pred[0]):.0f} N/m", PANEL_TILE - 5, (255, 220, 0))
        tiles.append(img)
    return _row(tiles)
