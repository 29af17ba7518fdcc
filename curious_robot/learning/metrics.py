"""Held-out metrics over the task registry: :func:`evaluate` runs each task's ``evaluate``
hook on the held-out interactions of a replay store, :func:`trainer_panels` each task's
TensorBoard panel. The pure metric functions and panels live in
:mod:`curious_robot.learning.scores` (re-exported here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from curious_robot import tasks as registry
from curious_robot.learning.scores import (  # noqa: F401 (the metrics' public names)
    PANEL_RECORDS, best_threshold, binary_accuracy, chunks, embed_pairs, grasp_panel,
    majority_accuracy, mean_l2_error, none_if_nan, pair_accuracy, poke_panel,
    regression_metrics, subset)

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


# -- image panels for TensorBoard ---------------------------------------------------------

def trainer_panels(trainer) -> dict[str, np.ndarray]:
    """The image panels of a multi-task :class:`~curious_robot.learning.train.Trainer`
    (name -> (H, W, 3) uint8), for the tasks it trains and has data for."""
    out = {}
    for name in trainer.cfg.tasks:
        img = registry.get(name).panel(trainer.model, trainer.store, trainer.stats.get(name),
                                       trainer.model_cfg.input_size, trainer.device)
        if img is not None:
            out[name] = img
    return out
