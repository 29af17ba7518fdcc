"""``curious-robot audit-signals``: is a task's signal weak, or its learner?

For each audited task (its ``audit_metric`` in :mod:`curious_robot.tasks`), on the store's
held-out records, three numbers in one metric (accuracy of ``success`` for grasp and
inspect, mean L2 error of the normalised head target for push and poke):

- ``baseline``: the trivial predictor fitted on the training records (the majority class;
  the training median, which is 0 after normalisation);
- ``ceiling``: a small off-the-shelf model on the simulator's ground truth about the object
  and the action relative to it (each task's ``audit_features``): quadratic features,
  standardised, L2-regularised logistic regression (accuracy) or ridge-penalised least
  absolute error regression (error: the metric's own loss; least squares is pulled by
  heavy tails and can score below the median), the strength chosen by 5-fold
  cross-validation on the training records only. How much of
  the outcome the world determines at all;
- ``head``: the trained model (``--checkpoint``) on the records' images (each task's
  ``audit_predict``); ``None`` without a checkpoint.

A ceiling near the baseline means the signal carries little (no learner can do better);
a head far below a high ceiling means the learner, not the signal, is the problem. Every
number comes with a 95 % bootstrap interval over the held-out records. Normalisation of
regression targets: the checkpoint's statistics when one is given (so the head is scored as
it was trained), else fitted on the training records.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from itertools import combinations_with_replacement

import numpy as np

from curious_robot import tasks as registry

log = logging.getLogger(__name__)

#: regularisation strengths the cross-validation chooses from
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
FOLDS = 5
BOOTSTRAP = 1000


# -- the ceiling model ---------------------------------------------------------------------


def quadratic(x: np.ndarray) -> np.ndarray:
    """Columns of ``x``, then every product x_i * x_j (i <= j)."""
    pairs = list(combinations_with_replacement(range(x.shape[1]), 2))
    return np.hstack([x] + [x[:, [i]] * x[:, [j]] for i, j in pairs]) if pairs else x


class Standardiser:
    def __init__(self, x: np.ndarray):
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        self.std = np.where(std > 1e-12, std, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def _design(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s1 = Standardiser(x_train)
    q_train, q_test = quadratic(s1(x_train)), quadratic(s1(x_test))
    s2 = Standardiser(q_train)
    ones = lambda a: np.hstack([np.ones((len(a), 1)), a])  # noqa: E731
    return ones(s2(q_train)), ones(s2(q_test))


def fit_ridge(a: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    reg = lam * np.eye(a.shape[1])
    reg[0, 0] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(a.T @ a + reg, a.T @ y)


def fit_robust(a: np.ndarray, y: np.ndarray, lam: float, iters: int = 30) -> np.ndarray:
    """Ridge-penalised least *absolute* error (per record, the L2 norm of the residual:
    the error metric itself) by iteratively reweighted least squares, starting from
    ridge. A squared-loss fit is pulled by heavy tails (pokes whose probe slid feel a
    fraction of the stiffness) and can score worse than the median on this metric."""
    w = fit_ridge(a, y, lam)
    reg = lam * np.eye(a.shape[1])
    reg[0, 0] = 0.0
    for _ in range(iters):
        r = (y - a @ w).reshape(len(y), -1)
        c = 1.0 / np.maximum(np.linalg.norm(r, axis=1), 0.05)
        w = np.linalg.solve(a.T @ (a * c[:, None]) + reg, a.T @ (y * (c if y.ndim == 1
                                                                  else c[:, None])))
    return w


def fit_logistic(a: np.ndarray, y: np.ndarray, lam: float, iters: int = 50) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS)."""
    w = np.zeros(a.shape[1])
    reg = lam * np.eye(a.shape[1])
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - y) + reg @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + reg + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w


def _predict(kind: str, a: np.ndarray, w: np.ndarray) -> np.ndarray:
    z = a @ w
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))) if kind == "accuracy" else z


def per_record(kind: str, pred: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Correct (1 / 0) or L2 error, one value per record: the metric is their mean."""
    if kind == "accuracy":
        return ((np.asarray(pred) > 0.5) == np.asarray(y).astype(bool)).astype(np.float64)
    diff = (np.asarray(pred, np.float64) - np.asarray(y, np.float64)).reshape(len(y), -1)
    return np.linalg.norm(diff, axis=1)


def ceiling_model(kind: str, x_train, y_train, x_test, seed: int = 0) -> tuple[np.ndarray,
                                                                               float]:
    """Predictions for ``x_test`` of the model whose strength won the cross-validation on
    the training records; also returns that strength."""
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    y_train = np.asarray(y_train, np.float64)
    fit = fit_logistic if kind == "accuracy" else fit_robust
    folds = np.random.default_rng(seed).permutation(len(x_train)) % FOLDS
    best, best_lam = math.inf, LAMBDAS[0]
    for lam in LAMBDAS:
        losses = []
        for k in range(FOLDS):
            tr, va = folds != k, folds == k
            if not va.any() or tr.sum() < 2 or (kind == "accuracy"
                                               and len(np.unique(y_train[tr])) < 2):
                continue
            a_tr, a_va = _design(x_train[tr], x_train[va])
            pred = _predict(kind, a_va, fit(a_tr, y_train[tr], lam))
            if kind == "accuracy":  # log loss: smoother than accuracy for choosing
                p = np.clip(pred, 1e-6, 1 - 1e-6)
                yv = y_train[va]
                losses.append(float(-np.mean(yv * np.log(p) + (1 - yv) * np.log(1 - p))))
            else:
                losses.append(float(per_record(kind, pred, y_train[va]).mean()))
        if losses and np.mean(losses) < best:
            best, best_lam = float(np.mean(losses)), lam
    if kind == "accuracy" and len(np.unique(y_train)) < 2:  # one class: predict it
        return np.full(len(x_test), float(y_train[0]) if len(y_train) else 0.0), best_lam
    a_tr, a_te = _design(x_train, x_test)
    return _predict(kind, a_te, fit(a_tr, y_train, best_lam)), best_lam


def interval(values: np.ndarray, rng: np.random.Generator) -> list[float] | None:
    """95 % percentile-bootstrap interval of the mean of ``values``."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return None
    idx = rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))
    means = values[idx].mean(axis=1)
    return [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)),
                                                             4)]


# -- the audit -----------------------------------------------------------------------------


def _records(store, task, held_out: bool, max_records: int, seed: int) -> list:
    from curious_robot.learning.scores import subset

    ids = subset(store.ids(task.name, held_out=held_out, success=task.train_success),
                 max_records, seed)
    return store.get_many(ids.tolist()) if len(ids) else []


def audit_task(task, store, predictor=None, max_records: int = 2000, seed: int = 0) -> dict:
    from curious_robot.learning.data import NormStats

    kind = task.audit_metric
    train = _records(store, task, False, max_records, seed)
    held = _records(store, task, True, max_records, seed + 1)
    out: dict = {"metric": kind, "baseline": None, "ceiling": None, "head": None,
                 "n_train": len(train), "n_held_out": len(held),
                 "features": list(task.audit_truth)}
    if not train or not held:
        out["note"] = "needs training and held-out records"
        return out
    rng = np.random.default_rng(seed)
    stats = None
    if kind == "accuracy":
        y_train = np.array([float(r.success) for r in train])
        y_held = np.array([float(r.success) for r in held])
        majority = float(y_train.mean() > 0.5)
        base = per_record(kind, np.full(len(held), majority), y_held)
    else:
        if predictor is not None and task.name in predictor.stats:
            stats = predictor.stats[task.name]
        else:
            stats = NormStats.fit(task.targets(train))
        y_train = stats.normalize(task.targets(train)).astype(np.float64)
        y_held = stats.normalize(task.targets(held)).astype(np.float64)
        base = per_record(kind, np.zeros_like(y_held), y_held)
    out["baseline"], out["baseline_interval"] = round(float(base.mean()), 4), interval(base, rng)

    feats_train = [task.audit_features(r) for r in train]
    feats_held = [task.audit_features(r) for r in held]
    keep_tr = [i for i, f in enumerate(feats_train) if f is not None]
    keep_he = [i for i, f in enumerate(feats_held) if f is not None]
    if len(keep_tr) >= 2 * FOLDS and keep_he:
        pred, lam = ceiling_model(kind, [feats_train[i] for i in keep_tr], y_train[keep_tr],
                                  [feats_held[i] for i in keep_he], seed)
        ceil = per_record(kind, pred, y_held[keep_he])
        out["ceiling"], out["ceiling_interval"] = round(float(ceil.mean()), 4), \
            interval(ceil, rng)
        out["ceiling_lambda"] = lam
        if len(keep_he) < len(held):
            out["ceiling_records"] = len(keep_he)
    else:
        out["note"] = "too few records with simulator ground truth for the ceiling model"

    if predictor is not None:
        pred = task.audit_predict(predictor.model, held, predictor.input_size, stats,
                                  predictor.device)
        head = per_record(kind, pred, y_held)
        out["head"], out["head_interval"] = round(float(head.mean()), 4), interval(head, rng)
    return out


def audit(store, predictor=None, tasks=None, max_records: int = 2000, seed: int = 0) -> dict:
    names = tasks or [t.name for t in registry.all_tasks() if t.audit_metric]
    return {name: audit_task(registry.get(name), store, predictor, max_records, seed)
            for name in names}


# -- command line --------------------------------------------------------------------------


def register(sub) -> None:
    p = sub.add_parser(
        "audit-signals", help="per task: how much of the outcome ground truth predicts "
        "(ceiling), the trained head predicts, and the trivial baseline")
    p.add_argument("--store", required=True, help="replay store (read only)")
    p.add_argument("--checkpoint", default=None,
                   help="trained model (file, training folder, or 'default': the shipped "
                        "model) for the head column")
    p.add_argument("--tasks", default=None,
                   help="comma-separated tasks (default: every audited task)")
    p.add_argument("--max-records", type=int, default=2000,
                   help="records per task and split (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _fail(msg: str) -> int:
    print(f"curious-robot audit-signals: {msg}", file=sys.stderr)
    return 2


def run(args) -> int:
    from curious_robot.store import ReplayStore, StoreError

    audited = [t.name for t in registry.all_tasks() if t.audit_metric]
    tasks = None
    if args.tasks:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
        bad = [t for t in tasks if t not in audited]
        if bad or not tasks:
            return _fail(f"unknown or unaudited task(s) {bad or args.tasks!r}; choose from "
                         f"{', '.join(audited)}")
    if args.max_records < 2 * FOLDS:
        return _fail(f"--max-records must be at least {2 * FOLDS}")
    predictor = None
    if args.checkpoint:
        from curious_robot.learning.checkpoint import CheckpointError
        from curious_robot.learning.predict import Predictor

        from curious_robot.paths import resolve_checkpoint

        try:
            predictor = Predictor.from_checkpoint(resolve_checkpoint(args.checkpoint))
        except (CheckpointError, OSError, KeyError, RuntimeError) as exc:
            return _fail(f"cannot load --checkpoint {args.checkpoint}: {exc}")
    try:
        with ReplayStore(args.store, readonly=True) as store:
            result = audit(store, predictor, tasks, args.max_records, args.seed)
    except StoreError as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"signal audit of {args.store} (held-out records; 95% bootstrap intervals)")
    print(f"{'task':8s} {'metric':9s} {'n':>5s}  {'baseline':>20s}  {'ceiling (truth)':>20s}"
          f"  {'head (images)':>20s}")

    def cell(r, key):
        v, ci = r.get(key), r.get(f"{key}_interval")
        if v is None:
            return f"{'-':>20s}"
        return f"{v:7.3f} [{ci[0]:.3f},{ci[1]:.3f}]" if ci else f"{v:20.3f}"

    for name, r in result.items():
        print(f"{name:8s} {r['metric']:9s} {r['n_held_out']:5d}  {cell(r, 'baseline')}  "
              f"{cell(r, 'ceiling')}  {cell(r, 'head')}" + (f"  ({r['note']})"
                                                             if r.get("note") else ""))
    print("accuracy: higher is better; error: mean L2 of the normalised target, lower is "
          "better")
    return 0
