"""Curiosity above the action: which object and which task the robot spends its time on.

Pure (numpy only); the interaction manager wires it (``object_policy``, ``task_policy``).

object level, ``curious``
    :func:`object_shares`: each candidate object's share of the next interaction is
    proportional to the model's uncertainty about it, with ``floor`` of the probability
    spread evenly, so every object keeps at least ``floor / n``. The uncertainty the manager
    uses is :func:`grasp_uncertainty`: the binary entropy (bits) of the grasp head's
    success probability at its best angle on the object's patch, "can the model tell
    whether this object can be grasped". The grasp head is the one head every arm
    checkpoint trains on object patches, so one score serves whichever task was drawn.
    :class:`ScoreCache` keeps the scores of objects that nothing disturbed since they were
    scored, so each choice fetches and scores only what moved.

task level, ``progress``
    :class:`LearningProgress`: learning progress per robot-second. For every task it keeps
    the (robot seconds spent on the task, loss) pairs the learner reports with its
    checkpoints, smoothed (EMA); a task's rate is the smoothed loss's decrease over the
    last ``window`` reports divided by the robot seconds spent on the task between them.
    Shares of robot time: ``floor`` per task, the rest in proportion to the rates; a task
    with fewer than two reports (nothing to compare yet) counts as the fastest, so it is
    tried; when no task improves, the rest follows the fixed weights. The next task is
    drawn with its time share divided by its mean interaction's seconds, so the shares
    hold in robot time, not in interactions (until 2026-12-06 they were drawn as they
    are, which gave slow tasks more time than their progress earned).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

#: Object-level policies of the manager, and task-level ones.
OBJECT_POLICIES = ("random", "curious")
TASK_POLICIES = ("fixed", "progress")


def _check_floor(floor: float, n: int, what: str) -> None:
    if not 0.0 <= floor <= 1.0:
        raise ValueError(f"{what} floor must be in [0, 1], got {floor!r}")
    if n < 1:
        raise ValueError(f"no {what}s to choose from")


def binary_entropy(p) -> np.ndarray:
    """H(p) in bits (0 at p = 0 or 1, 1 at p = 0.5)."""
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


def grasp_uncertainty(probabilities) -> np.ndarray:
    """Per object: H of the grasp head's success probability at its best angle.

    ``probabilities`` is (objects, angles) as ``Predictor.grasp_scores_batch`` returns."""
    p = np.asarray(probabilities, float)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"expected (objects, angles) probabilities, got shape {p.shape}")
    return binary_entropy(p.max(axis=1))


def object_shares(scores, floor: float) -> np.ndarray:
    """Probability of choosing each object: ``floor`` spread evenly, the rest in proportion
    to ``scores`` (>= 0; all zero or non-finite ones count as equal)."""
    s = np.asarray(scores, float).ravel()
    _check_floor(floor, len(s), "object")
    s = np.where(np.isfinite(s) & (s > 0), s, 0.0)
    even = np.full(len(s), 1.0 / len(s))
    prop = s / s.sum() if s.sum() > 0 else even
    p = floor * even + (1.0 - floor) * prop
    return p / p.sum()


class ScoreCache:
    """Object curiosity's scores of the objects on the table, kept while nothing changes
    what their patches show, so an interaction re-scores (and fetches the patch of) only
    what it disturbed: usually the object it touched (and, with ``neighbours``, the ones
    it now shows up beside).

    Each call to :meth:`scores` passes the objects now detected, as (x, y, yaw, sx, sy, sz)
    rows (centroid, box yaw and size; m, rad). A detection matches a cached one when every
    coordinate is within ``tol`` (yaw modulo pi); its score is kept. A detection that
    matches nothing (a new or moved object) also voids every cached score whose patch its
    footprint reaches, as does a cached object that is gone (where it was). A patch is the
    axis-aligned square of side ``extent`` m of table centred on its object, seen from
    straight above: a box whose footprint, widened by ``margin`` m (detection error, edge
    pixels), lies outside that square cannot show in it, as a camera above the square's
    centre shows anything above the table only farther out than its footprint. With
    ``neighbours`` False only the objects that moved themselves are scored again (fewer
    patches; a neighbour's score may then describe a patch it has since changed). A new
    model (another ``step``) voids them all."""

    def __init__(self, tol: float = 0.002, extent: float = 0.16, margin: float = 0.02,
                 neighbours: bool = True):
        if tol < 0 or extent < 0 or margin < 0:
            raise ValueError(f"tol, extent and margin must be >= 0, got {tol}, {extent}, "
                             f"{margin}")
        self.tol, self.extent, self.margin = float(tol), float(extent), float(margin)
        self.neighbours = bool(neighbours)
        self.step: int | None = None
        self.rows = np.zeros((0, 6))
        self.values = np.zeros(0)

    def _close(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = np.abs(a[:, None, :] - b[None, :, :])
        d[..., 2] = np.minimum(d[..., 2] % np.pi, np.pi - d[..., 2] % np.pi)
        return (d <= self.tol).all(axis=2)

    @staticmethod
    def footprint(rows: np.ndarray) -> np.ndarray:
        """(N, 2) half-sides along table x and y of each box's axis-aligned footprint."""
        c, s = np.abs(np.cos(rows[:, 2])), np.abs(np.sin(rows[:, 2]))
        return 0.5 * np.stack([c * rows[:, 3] + s * rows[:, 4],
                               s * rows[:, 3] + c * rows[:, 4]], axis=1)

    def scores(self, rows, step: int) -> list[float | None]:
        """The cached score of each detection, None where it must be scored again."""
        rows = np.asarray(rows, float).reshape(-1, 6)
        if step != self.step or not len(self.rows):
            self.step = step
            self.rows, self.values = np.zeros((0, 6)), np.zeros(0)
            return [None] * len(rows)
        match = self._close(rows, self.rows)  # (now, cached)
        found = match.any(axis=1)
        changed = np.concatenate([rows[~found], self.rows[~match.any(axis=0)]])
        near = np.zeros(len(self.rows), bool)
        if len(changed) and self.neighbours:
            reach = 0.5 * self.extent + self.margin + self.footprint(changed)  # (C, 2)
            gap = np.abs(self.rows[:, None, :2] - changed[None, :, :2])  # (cached, C, 2)
            near = (gap <= reach[None]).all(axis=2).any(axis=1)
        out: list[float | None] = []
        for i in range(len(rows)):
            hit = np.flatnonzero(match[i] & ~near)
            out.append(float(self.values[hit[0]]) if len(hit) else None)
        return out

    def keep(self, rows, values, step: int) -> None:
        """Remember the scores of the objects now on the table (all of them: the cached
        ones :meth:`scores` returned and the new ones)."""
        self.step = step
        self.rows = np.asarray(rows, float).reshape(-1, 6)
        self.values = np.asarray(values, float).ravel()
        if len(self.values) != len(self.rows):
            raise ValueError(f"{len(self.rows)} objects but {len(self.values)} scores")


@dataclass
class LearningProgress:
    """Task shares from learning progress per robot-second (see the module text)."""

    tasks: list[str]
    weights: list[float]          # the fixed shares: used when no task improves
    floor: float = 0.1            # each task's least share
    window: int = 4               # reports the rate is measured over
    smoothing: float = 0.5        # EMA factor of the reported losses (1: no smoothing)
    seconds: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)
    history: dict[str, deque] = field(default_factory=dict)
    _ema: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.tasks) != len(self.weights) or not self.tasks:
            raise ValueError("tasks and weights must be non-empty and of equal length")
        _check_floor(self.floor, len(self.tasks), "task")
        if self.floor * len(self.tasks) > 1.0 + 1e-9:
            raise ValueError(f"a floor of {self.floor} per task leaves no room for "
                             f"{len(self.tasks)} tasks (at most {1 / len(self.tasks):.3g})")
        if self.window < 1 or not 0.0 < self.smoothing <= 1.0:
            raise ValueError("window must be >= 1 and smoothing in (0, 1]")
        w = np.asarray(self.weights, float)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {self.weights}")
        for t in self.tasks:
            self.seconds.setdefault(t, 0.0)
            self.count.setdefault(t, 0)
            self.history.setdefault(t, deque(maxlen=self.window + 1))

    def spent(self, task: str, seconds: float) -> None:
        """Robot time spent on ``task`` (one interaction's duration)."""
        if task in self.seconds and np.isfinite(seconds) and seconds > 0:
            self.seconds[task] += float(seconds)
            self.count[task] += 1

    def report(self, losses: dict[str, float]) -> None:
        """The learner's losses with a new checkpoint (tasks it did not train are absent)."""
        for task, loss in losses.items():
            if task not in self.history or not np.isfinite(loss):
                continue
            prev = self._ema.get(task)
            ema = loss if prev is None else prev + self.smoothing * (loss - prev)
            self._ema[task] = ema
            self.history[task].append((self.seconds[task], ema))

    def rates(self) -> dict[str, float | None]:
        """Loss decrease per robot-second of each task over the window (>= 0); ``None``
        where there is nothing to compare yet."""
        out: dict[str, float | None] = {}
        for task, h in self.history.items():
            if len(h) < 2:
                out[task] = None
                continue
            (s0, l0), (s1, l1) = h[0], h[-1]
            out[task] = max(0.0, l0 - l1) / max(s1 - s0, 1e-3)
        return out

    def durations(self) -> np.ndarray:
        """Mean robot seconds of one interaction of each task of :attr:`tasks`; a task not
        tried yet counts as the mean of the others (all alike before anything is done)."""
        known = [self.seconds[t] / self.count[t] for t in self.tasks if self.count[t]]
        default = float(np.mean(known)) if known else 1.0
        return np.array([self.seconds[t] / self.count[t] if self.count[t] else default
                         for t in self.tasks], float)

    def time_shares(self) -> np.ndarray:
        """The share of robot time each task of :attr:`tasks` should get: ``floor`` each,
        the rest in proportion to the rates (an unknown rate counts as the fastest; when
        no task improves, as the fixed weights spend time)."""
        n = len(self.tasks)
        rates = self.rates()
        known = [r for r in rates.values() if r is not None]
        top = max(known) if known and max(known) > 0 else 1.0
        r = np.array([top if rates[t] is None else rates[t] for t in self.tasks], float)
        base = np.asarray(self.weights, float) * self.durations()  # weights are draws
        prop = r / r.sum() if r.sum() > 0 else base / base.sum()
        rest = 1.0 - self.floor * n
        p = self.floor + rest * prop
        return p / p.sum()

    def shares(self) -> np.ndarray:
        """Probability of each task of :attr:`tasks` for the next interaction: its share
        of robot time divided by what one of its interactions costs, so that a task
        three times as slow is drawn a third as often for the same share of time."""
        q = self.time_shares() / self.durations()
        return q / q.sum()
