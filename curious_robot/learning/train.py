"""Multi-task training of the shared root network from a replay store.

The paper's schedule: one *cycle* zeroes the gradients, then for each task draws one batch,
computes that task's loss and calls ``backward()`` (so the root's gradient accumulates
over all tasks while each head gets its own task's gradient), and ends with ONE optimizer
step for everything. ``Trainer.step`` counts cycles.

Two ways to use it:

- offline (``curious-robot train``): ``Trainer(...)`` or ``Trainer.from_checkpoint(...)``,
  then ``train_steps(n)`` in a loop, ``save(path)``, ``evaluate()``;
- online, inside the learner node beside ingestion: the node gives the trainer its own
  :class:`~curious_robot.store.ReplayStore` connection (the ingestion thread keeps another)
  and calls ``train_steps(n)`` repeatedly; every cycle re-reads ``store.position()`` and
  samples from everything stored so far. No module-level state; the trainer's own methods
  are serialised by a lock, so ``save`` / ``status`` may be called from another thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

import numpy as np
import torch

from curious_robot import tasks as registry
from curious_robot.learning import data
from curious_robot.learning.checkpoint import load_checkpoint, save_checkpoint
from curious_robot.learning.config import (BEFORE_FIELD, TrainConfig,  # noqa: F401
                                          default_loss_weights, trainable)
from curious_robot.learning.networks import CuriousNet, ModelConfig

log = logging.getLogger(__name__)

#: training records per task that :meth:`Trainer.calibrate` reads
CALIBRATE_RECORDS = 256


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=0.9, eps=1e-6,
                                   weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def task_loss(model: CuriousNet, task: str, b: dict[str, torch.Tensor],
              cfg: TrainConfig) -> torch.Tensor:
    """The loss of one task on one batch (tensors from :func:`data.to_tensors`)."""
    return registry.get(task).loss(model, b, cfg)


class Trainer:
    """The network, its optimizer and the sampling state; see the module docstring."""

    def __init__(self, store, model_cfg: ModelConfig | None = None,
                 train_cfg: TrainConfig | None = None, device="cpu"):
        self.store = store
        self.model_cfg = model_cfg or ModelConfig()
        self.cfg = train_cfg or TrainConfig()
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):  # seeded init without touching global RNG
            torch.manual_seed(self.cfg.seed)
            self.model = CuriousNet(self.model_cfg)
        self.model.to(self.device).train()
        self.optimizer = make_optimizer(self.model.parameters(), self.cfg)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.step = 0
        self.position = 0
        self.stats: dict[str, data.NormStats] = {}
        self.last_losses: dict[str, float] = {}
        self.metrics: dict = {}
        self._active: dict[str, bool] = {}
        self._lock = threading.RLock()

    # -- sampling -------------------------------------------------------------------------

    def _task_ready(self, task: str) -> bool:
        n = self.store.count(task, held_out=False, success=registry.success_filter(task))
        ready = n >= self.cfg.min_records
        if self._active.get(task) != ready:
            if ready:
                log.info("task %s joins the training cycle (%d training records)", task, n)
            else:
                log.info("skipping task %s: %d training records, need %d", task, n,
                         self.cfg.min_records)
            self._active[task] = ready
        return ready

    def _refresh_stats(self, task: str) -> data.NormStats | None:
        """Fit (or keep) the normalisation of the task's :attr:`~curious_robot.tasks.base.
        Task.target` and of each of its ``extra_targets``, each under its own key; a key's
        statistics are refitted while they are not frozen and the training split has
        doubled since. Returns the target's statistics."""
        spec = registry.get(task)
        only = registry.success_filter(task)
        n = self.store.count(task, held_out=False, success=only)
        wanted = ([(task, spec.target)] if spec.target is not None else []) + \
            list(spec.extra_targets.items())
        stale = [(key, fn) for key, fn in wanted
                 if (cur := self.stats.get(key)) is None
                 or (cur.count < self.cfg.stats_freeze and n >= 2 * cur.count)]
        if not stale:
            return self.stats.get(task)
        ids = self.store.ids(task, held_out=False, success=only)
        if len(ids) > data.STATS_MAX_RECORDS:
            ids = self.rng.choice(ids, size=data.STATS_MAX_RECORDS, replace=False)
        if not len(ids):
            return self.stats.get(task)
        records = self.store.get_many(ids.tolist(), images=False)
        for key, fn in stale:
            stats = data.NormStats.fit(np.array([fn(r) for r in records], np.float64))
            self.stats[key] = stats
            log.info("%s normalisation from %d training records: mean %s, std %s", key,
                     stats.count, np.round(stats.mean, 4).tolist(),
                     np.round(stats.std, 4).tolist())
        return self.stats.get(task)

    def sample_batch(self, task: str) -> dict[str, np.ndarray] | None:
        """One training batch of ``task`` (numpy, CPU), or ``None`` when it has too little
        data."""
        if not self._task_ready(task):
            return None
        size, bs = self.model_cfg.input_size, self.cfg.batch_size
        spec = registry.get(task)
        stats = self._refresh_stats(task) if spec.target is not None or spec.extra_targets \
            else None
        records = self.store.sample(task, bs, self.rng, held_out=False,
                                    success=spec.train_success)
        b = spec.make_batch(records, size, self.rng, stats, self.cfg,
                            self.model_cfg.view(task))
        b.update(data.extra_targets(spec, records, self.stats))
        return spec.augment(b, self.rng, self.cfg.color_jitter, self.cfg.color_scramble)

    # -- training -------------------------------------------------------------------------

    def cycle(self, batches: dict[str, dict]) -> dict[str, float]:
        """One optimizer step on one batch per task (numpy or tensor batches); returns each
        task's loss. A non-finite loss skips the step (logged) and returns ``{}``."""
        with self._lock:
            self.model.train()
            self.optimizer.zero_grad(set_to_none=True)
            losses = {}
            for task, b in batches.items():
                if any(isinstance(v, np.ndarray) for v in b.values()):
                    b = data.to_tensors(b, self.device)
                loss = task_loss(self.model, task, b, self.cfg)
                if not torch.isfinite(loss):
                    log.error("non-finite %s loss at step %d; skipping this step", task,
                              self.step)
                    self.optimizer.zero_grad(set_to_none=True)
                    return {}
                share = self.cfg.root_grads.get(task, 1.0)
                kept = self._root_grads() if share != 1.0 else None
                (self.cfg.loss_weights.get(task, 1.0) * loss).backward()
                if kept is not None:
                    self._scale_root_grads(kept, share)
                losses[task] = float(loss.detach())
            if losses:
                self.optimizer.step()
                self.step += 1
                self.last_losses = losses
            return losses

    def _root_grads(self) -> list[torch.Tensor | None]:
        """Copies of the root's gradients so far in this step."""
        return [None if p.grad is None else p.grad.clone()
                for p in self.model.root.parameters()]

    def _scale_root_grads(self, kept: list, share: float) -> None:
        """Scale what the last backward added to the root's gradients by ``share``."""
        with torch.no_grad():
            for p, g0 in zip(self.model.root.parameters(), kept):
                if p.grad is None:
                    continue
                if g0 is None:
                    p.grad.mul_(share)
                else:
                    p.grad.sub_(g0).mul_(share).add_(g0)

    def train_steps(self, n: int) -> dict[str, float]:
        """Up to ``n`` cycles on freshly sampled data; returns the mean loss per task (``{}``
        when no task has enough data yet; nothing is trained then)."""
        with self._lock:
            sums: dict[str, float] = defaultdict(float)
            counts: dict[str, int] = defaultdict(int)
            for _ in range(n):
                self.position = self.store.position()
                batches = {}
                for task in self.cfg.tasks:
                    b = self.sample_batch(task)
                    if b is not None:
                        batches[task] = b
                if not batches:
                    break
                for task, value in self.cycle(batches).items():
                    sums[task] += value
                    counts[task] += 1
            return {t: sums[t] / counts[t] for t in sums}

    def calibrate(self) -> int:
        """Re-estimate the second BatchNorm statistics (``ModelConfig.crop_stats``: those
        of the tasks with :attr:`~curious_robot.tasks.base.Task.crop_view`) as the plain
        average over up to :data:`CALIBRATE_RECORDS` clean training patches (not turned,
        not jittered) under the current weights ("precise BatchNorm"). The running
        averages kept while training follow augmented inputs and weights that have moved
        since; inference reads these statistics, so they are taken from what it sees. Only
        buffers change: the weights, the optimizer and the sampling state do not, and a
        training step normalises by its batch's own statistics, so training continues as it
        would have. :meth:`save` and :meth:`evaluate` call it. Returns the number of patches
        read (0 when the model keeps no second statistics or has no such data yet)."""
        if not self.model_cfg.crop_stats or self.store is None:
            return 0
        from curious_robot.learning.networks import SplitStatsBatchNorm2d

        bns = [m for m in self.model.modules() if isinstance(m, SplitStatsBatchNorm2d)]
        size, bs = self.model_cfg.input_size, self.cfg.batch_size
        with self._lock:
            batches = []
            for name in self.cfg.tasks:
                spec = registry.get(name)
                if not spec.crop_view or self.stats.get(name) is None:
                    continue
                ids = self.store.ids(name, held_out=False,
                                     success=registry.success_filter(name))
                if len(ids) > CALIBRATE_RECORDS:  # the same draw for the same step
                    ids = np.random.default_rng(self.step).choice(
                        ids, CALIBRATE_RECORDS, replace=False)
                records = self.store.get_many([int(i) for i in ids])
                for i in range(0, len(records), bs):
                    batches.append((spec, spec.make_batch(
                        records[i:i + bs], size, None, self.stats[name], None,
                        self.model_cfg.view(name))))
            batches = [(spec, b) for spec, b in batches if len(b["target"]) > 1]
            if not batches:
                return 0
            was_training, momentum = self.model.training, [m.momentum for m in bns]
            self.model.train()
            try:
                with torch.no_grad():
                    for k, (spec, b) in enumerate(batches):
                        for m in bns:  # the k-th batch weighs 1/(k+1): a plain average
                            m.momentum = 1.0 / (k + 1)
                        spec.predict(self.model, data.to_tensors(b, self.device))
            finally:
                for m, value in zip(bns, momentum):
                    m.momentum = value
                self.model.train(was_training)
            return int(sum(len(b["target"]) for _, b in batches))

    def evaluate(self) -> dict:
        """Held-out metrics (:data:`metrics.METRIC_KEYS`)."""
        from curious_robot.learning import metrics

        self.calibrate()
        with self._lock:
            self.metrics = metrics.evaluate(
                self.model, self.store, self.stats, self.device, self.model_cfg.input_size,
                self.cfg.tasks, self.cfg.eval_max_records,
                crash_horizon_s=self.cfg.crash_horizon_s)
            return dict(self.metrics)

    def status(self) -> str:
        losses = ", ".join(f"{t} {v:.3f}" for t, v in self.last_losses.items())
        return f"step {self.step}, store position {self.position}, losses [{losses}]"

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything needed to resume, as plain containers (see :mod:`.checkpoint`)."""
        with self._lock:
            return {
                "step": int(self.step),
                "store_position": int(self.position),
                "config": {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()},
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "stats": {k: s.to_dict() for k, s in self.stats.items()},
                "rng": {"numpy": self.rng.bit_generator.state},
                "losses": {k: float(v) for k, v in self.last_losses.items()},
                "metrics": {k: v for k, v in self.metrics.items()
                            if v is None or isinstance(v, (int, float))},
                "saved": time.time(),
            }

    def save(self, path) -> None:
        t0 = time.monotonic()
        self.calibrate()
        save_checkpoint(path, self.state_dict())
        log.debug("checkpoint %s at step %d (%.2f s)", path, self.step, time.monotonic() - t0)

    def load_state_dict(self, state: dict) -> None:
        with self._lock:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:  # the current config's rates win
                group["lr"] = self.cfg.lr
                group["weight_decay"] = self.cfg.weight_decay
            self.step = int(state["step"])
            self.position = int(state.get("store_position", 0))
            self.stats = {k: data.NormStats.from_dict(v)
                          for k, v in state.get("stats", {}).items()}
            self.last_losses = dict(state.get("losses", {}))
            self.metrics = dict(state.get("metrics", {}))
            rng = state.get("rng", {})
            if "numpy" in rng:
                self.rng.bit_generator.state = rng["numpy"]

    @classmethod
    def from_checkpoint(cls, path, store, device="cpu", **train_overrides) -> Trainer:
        """Resume: the checkpoint's model config, its train config updated with
        ``train_overrides`` (e.g. ``lr``, ``tasks``, ``batch_size``), step, optimizer, stats."""
        state = load_checkpoint(path, map_location=torch.device(device))
        model_cfg = ModelConfig.from_dict(state["config"]["model"])
        train_dict = dict(state["config"]["train"])
        train_dict.update({k: v for k, v in train_overrides.items() if v is not None})
        trainer = cls(store, model_cfg, TrainConfig.from_dict(train_dict), device)
        trainer.load_state_dict(state)
        log.info("resumed from %s at step %d (store position %d)", path, trainer.step,
                 trainer.position)
        return trainer


def parameter_count(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
