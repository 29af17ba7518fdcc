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

import numpy as np
import torch
import torch.nn.functional as F

from curious_robot.learning import data

log = logging.getLogger(__name__)

#: Keys of :func:`evaluate`'s result (``train --json`` prints these).
METRIC_KEYS = ("grasp_bin_accuracy", "grasp_majority_accuracy", "push_error",
               "push_mean_baseline_error", "poke_error", "poke_mean_baseline_error",
               "identity_pair_accuracy")
#: Drone mode: reported when ``crash`` is among the tasks.
CRASH_KEYS = ("crash_accuracy", "crash_majority_accuracy")


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


def _subset(ids: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(ids) <= n:
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, size=n, replace=False))


def _chunks(records, size):
    for i in range(0, len(records), size):
        yield records[i:i + size]


def _none_if_nan(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


@torch.no_grad()
def _embed_pairs(model, records, size, device, seed, chunk):
    batch = data.identity_batch(records, size, np.random.default_rng(seed))
    if batch is None:
        return np.zeros(0), np.zeros(0)
    scores = []
    for i in range(0, len(batch["same"]), chunk):
        part = data.to_tensors({k: batch[k][i:i + chunk] for k in ("a", "b")}, device)
        scores.append(F.cosine_similarity(model.embed(part["a"]), model.embed(part["b"]))
                      .cpu().numpy())
    return np.concatenate(scores), batch["same"]


@torch.no_grad()
def evaluate(model, store, stats: dict, device, input_size: int, tasks=None,
             max_records: int = 512, chunk: int = 64, crash_horizon_s: float = 1.0) -> dict:
    """Metrics of :data:`METRIC_KEYS` on the store's held-out interactions (``None`` where a
    task has no held-out data or no training statistics). Runs in eval mode."""
    tasks = set(tasks or ("grasp", "push", "poke", "inspect"))
    out: dict = {k: None for k in METRIC_KEYS}
    was_training = model.training
    model.eval()
    try:
        def held_out(task):
            ids = _subset(store.ids(task, held_out=True, success=data.success_filter(task)),
                          max_records)
            return store.get_many(ids.tolist()) if len(ids) else []

        if "grasp" in tasks and (recs := held_out("grasp")):
            probs, labels = [], []
            for part in _chunks(recs, chunk):
                b = data.grasp_batch(part, input_size, rotate=False)
                t = data.to_tensors(b, device)
                p = torch.sigmoid(model.grasp(t["patch"])).gather(1, t["bin"].view(-1, 1))
                probs.append(p.squeeze(1).cpu().numpy())
                labels.append(b["success"])
            probs, labels = np.concatenate(probs), np.concatenate(labels)
            n_train = store.count("grasp", held_out=False)
            rate = store.count("grasp", held_out=False, success=True) / n_train if n_train \
                else None
            out["grasp_bin_accuracy"] = _none_if_nan(binary_accuracy(probs, labels))
            out["grasp_majority_accuracy"] = _none_if_nan(majority_accuracy(labels, rate))

        if "crash" in tasks:
            out.update({k: None for k in CRASH_KEYS})
            if recs := held_out("crash"):
                probs, labels = [], []
                for part in _chunks(recs, chunk):
                    b = data.crash_batch(part, input_size, crash_horizon_s)
                    t = data.to_tensors(b, device)
                    probs.append(torch.sigmoid(model.crash(t["crop"])).view(-1).cpu().numpy())
                    labels.append(b["safe"])
                probs, labels = np.concatenate(probs), np.concatenate(labels)
                train = [r.outcome[0] > crash_horizon_s for r in store.get_many(
                    _subset(store.ids("crash", held_out=False), max_records).tolist(),
                    images=False)]
                rate = float(np.mean(train)) if train else None
                out["crash_accuracy"] = _none_if_nan(binary_accuracy(probs, labels))
                out["crash_majority_accuracy"] = _none_if_nan(majority_accuracy(labels, rate))

        for task in ("push", "poke"):
            if task not in tasks or task not in stats or not (recs := held_out(task)):
                continue
            preds, targets = [], []
            for part in _chunks(recs, chunk):
                if task == "push":
                    b = data.push_batch(part, input_size, stats[task])
                    t = data.to_tensors(b, device)
                    pred = model.push(t["before"], t["after"])
                else:
                    b = data.poke_batch(part, input_size, stats[task])
                    pred = model.poke(data.to_tensors(b, device)["patch"])
                preds.append(pred.cpu().numpy())
                targets.append(b["target"])
            preds, targets = np.concatenate(preds), np.concatenate(targets)
            out[f"{task}_error"] = _none_if_nan(mean_l2_error(preds, targets))
            out[f"{task}_mean_baseline_error"] = _none_if_nan(
                mean_l2_error(np.zeros_like(targets), targets))

        if "inspect" in tasks and (recs := held_out("inspect")):
            scores, same = _embed_pairs(model, recs, input_size, device, 0, chunk)
            if len(scores):
                train_ids = _subset(store.ids("inspect", held_out=False), max_records, 1)
                threshold = 0.0
                if len(train_ids):
                    ts, tsame = _embed_pairs(model, store.get_many(train_ids.tolist()),
                                             input_size, device, 1, chunk)
                    threshold = best_threshold(ts, tsame)
                out["identity_pair_accuracy"] = _none_if_nan(
                    pair_accuracy(scores, same, threshold))
                log.debug("identity threshold %.3f (chosen on training pairs)", threshold)
    finally:
        model.train(was_training)
    return out


# -- image panels for TensorBoard ---------------------------------------------------------

#: Records drawn per panel, and the side of one tile in px.
PANEL_RECORDS, PANEL_TILE = 8, 128


def _panel_records(store, task: str, n: int) -> list:
    """The same ``n`` records every time: held-out ones (training ones when there are
    none), spread evenly over the store."""
    only = data.success_filter(task)
    for held_out in (True, False):
        ids = store.ids(task, held_out=held_out, success=only)
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
def grasp_panel(model, store, input_size: int, device, n: int = PANEL_RECORDS
                ) -> np.ndarray | None:
    """A row of grasp patches (held-out when there are any), each with the tried angle (green
    bar: it succeeded, red: it failed) and the model's success probability for it
    (``p``), and the model's best angle (thin yellow bar) with its probability (``best``).
    None without grasp records."""
    records = _panel_records(store, "grasp", n)
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
def poke_panel(model, store, stats, input_size: int, device, n: int = PANEL_RECORDS // 2
               ) -> np.ndarray | None:
    """A row of poke patches with the measured and the predicted (slope N/m, intercept N);
    None without poke records or statistics."""
    records = _panel_records(store, "poke", n)
    if not records or stats is None:
        return None
    b = data.poke_batch(records, input_size, stats)
    was_training = model.training
    model.eval()
    try:
        z = model.poke(data.to_tensors(b, device)["patch"]).cpu().numpy()
    finally:
        model.train(was_training)
    tiles = []
    for rec, pred in zip(records, stats.denormalize(z)):
        img = _tile(rec.before)
        _text(img, f"true {rec.outcome[0]:.0f} {rec.outcome[1]:.1f}", 12, (0, 230, 0))
        _text(img, f"pred {pred[0]:.0f} {pred[1]:.1f}", PANEL_TILE - 5, (255, 220, 0))
        tiles.append(img)
    return _row(tiles)


def trainer_panels(trainer) -> dict[str, np.ndarray]:
    """The image panels of a multi-task :class:`~curious_robot.learning.train.Trainer`
    (name -> (H, W, 3) uint8), for the tasks it trains and has data for."""
    out = {}
    size, tasks = trainer.model_cfg.input_size, trainer.cfg.tasks
    if "grasp" in tasks and (img := grasp_panel(trainer.model, trainer.store, size,
                                                trainer.device)) is not None:
        out["grasp"] = img
    if "poke" in tasks and (img := poke_panel(trainer.model, trainer.store,
                                              trainer.stats.get("poke"), size,
                                              trainer.device)) is not None:
        out["poke"] = img
    return out
