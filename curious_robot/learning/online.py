"""Online training inside the learner node, beside ingestion.

``OnlineTrainer.from_node_parameters(node)`` declares its parameters on the learner node
(``param`` of :mod:`curious_robot.parameters`; the node is passed in, nothing else of
rclpy is used here) and ``start()`` runs a daemon thread that

1. opens ITS OWN read-only :class:`~curious_robot.store.ReplayStore` connection (the node
   ingests through another one; SQLite WAL lets both work at once);
2. resumes from ``checkpoint_dir/checkpoint.pt`` (``Trainer.from_checkpoint``: model,
   optimizer, step, normalisation, sampler state) or starts a new :class:`Trainer`; a
   damaged checkpoint is moved aside (``checkpoint.pt.damaged``) and a new run starts;
3. loops rounds of ``steps_per_round`` training cycles, each round followed by a pause so
   that training takes about ``duty`` of the wall time (the rest stays free for ingestion
   and the other nodes' CPU); while no task has ``min_records`` training records it waits
   (logged once, and again when training starts);
4. every ``save_every`` steps writes the checkpoint atomically and calls
   ``node.announce(path, step, store_position, losses)`` (the node publishes a
   ModelUpdate on /model_updates, which the selectors load).

``stop()`` ends the loop between two cycles, saves a final checkpoint (when steps were
made since the last one), announces it and joins. ``status()`` is one line for the node's
progress report. A failure in the training thread is logged and ends training only;
ingestion goes on.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from pathlib import Path

from curious_robot.learning.checkpoint import CHECKPOINT_NAME, CheckpointError
from curious_robot.learning.status import write_status
from curious_robot.parameters import ParameterError, param

#: Seconds between looks at a store that has too little data.
IDLE_WAIT_S = 2.0


def _is_device(value: str) -> bool:
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        return False
    return device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_available())


class OnlineTrainer:
    """A training thread over the learner's store; see the module docstring."""

    def __init__(self, store_path, checkpoint_dir, *, announce=None, logger=None,
                 steps_per_round: int = 10, save_every: int = 100, input_size: int = 96,
                 width: float = 0.5, batch_size: int = 32, lr: float = 3e-4,
                 tasks: str = "grasp,push,poke,inspect", min_records: int = 8,
                 device: str = "cpu", threads: int = 1, duty: float = 0.5, seed: int = 0):
        from curious_robot.learning.networks import ModelConfig
        from curious_robot.learning.train import TrainConfig

        if not 0.0 < duty <= 1.0:
            raise ValueError(f"duty must be in (0, 1], got {duty}")
        if steps_per_round < 1 or save_every < 1 or threads < 0:
            raise ValueError("steps_per_round and save_every must be >= 1, threads >= 0")
        self.store_path = str(store_path)
        self.checkpoint_dir = Path(checkpoint_dir)
        self.path = self.checkpoint_dir / CHECKPOINT_NAME
        self.announce = announce
        self.logger = logger
        self.steps_per_round = int(steps_per_round)
        self.save_every = int(save_every)
        self.device = device
        self.threads = int(threads)
        self.duty = float(duty)
        # validated now, so a bad parameter fails the node at start, not the thread later
        self.model_cfg = ModelConfig(input_size=input_size, width=width)
        self.overrides = {"batch_size": batch_size, "lr": lr, "tasks": tasks,
                          "min_records": min_records}
        self.train_cfg = TrainConfig(seed=seed, **self.overrides)
        self.trainer = None
        self.saved_step = -1
        self.error: str | None = None
        self.state = "not started"
        self.rate = 0.0  # training samples per second of training time, last round
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- construction from the node ---------------------------------------------------------

    @classmethod
    def from_node_parameters(cls, node) -> OnlineTrainer:
        """Declare and read the online-training parameters of the learner ``node`` (which
        has ``store_path`` and ``announce``); see config/collect.yaml for their meaning."""
        folder = param(node, "checkpoint_dir", "")
        if not folder:
            folder = os.path.join(os.path.dirname(os.path.abspath(node.store_path)),
                                  "checkpoints")
        positive = (lambda v: v >= 1, "must be >= 1")
        kwargs = dict(
            steps_per_round=param(node, "steps_per_round", 10, *positive),
            save_every=param(node, "save_every", 100, *positive),
            input_size=param(node, "input_size", 96, lambda v: v >= 63, "must be >= 63 px"),
            width=param(node, "width", 0.5, lambda v: 0.0 < v <= 4.0, "must be in (0, 4]"),
            batch_size=param(node, "batch_size", 32, lambda v: v >= 2, "must be >= 2"),
            lr=param(node, "lr", 3e-4, lambda v: v > 0, "must be > 0"),
            tasks=param(node, "tasks", "grasp,push,poke,inspect", bool, "must not be empty"),
            min_records=param(node, "min_records", 8, *positive),
            device=param(node, "device", "cpu", _is_device,
                         "must be a torch device available here (cpu, cuda, cuda:1, ...)"),
            threads=param(node, "threads", 1, lambda v: v >= 0,
                          "must be >= 0 (0: torch's own choice)"),
            duty=param(node, "duty", 0.5, lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"),
        )
        try:
            return cls(node.store_path, folder, announce=node.announce,
                       logger=node.get_logger(), **kwargs)
        except ValueError as exc:  # e.g. an unknown task name
            raise ParameterError(f"online training: {exc}") from exc

    # -- logging ----------------------------------------------------------------------------

    def _log(self, level: str, text: str) -> None:
        # one call site per severity: rclpy's logger refuses two severities from one line
        if self.logger is not None:
            lg = self.logger
        else:
            import logging

            lg = logging.getLogger(__name__)
        if level == "info":
            lg.info(text)
        elif level == "warning":
            lg.warning(text)
        else:
            lg.error(text)

    # -- thread control ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("online training already started")
        self._stop.clear()
        self.state = "starting"
        self._thread = threading.Thread(target=self._run, name="online-training", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 120.0) -> None:
        """Finish the current cycle, save (and announce) a final checkpoint, join."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._log("error", f"online training did not stop within {timeout:.0f} s")
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def step(self) -> int:
        return self.trainer.step if self.trainer is not None else 0

    def status(self) -> str:
        """One line for the node's progress report."""
        if self.error:
            return f"training stopped: {self.error}"
        t = self.trainer
        if t is None or self.state != "training":
            return f"training {self.state}" + (f" (step {t.step})" if t is not None else "")
        losses = ", ".join(f"{k} {v:.3f}" for k, v in t.last_losses.items())
        saved = f", saved step {self.saved_step}" if self.saved_step >= 0 else ""
        return (f"training step {t.step}, losses [{losses}], {self.rate:.0f} samples/s"
                f"{saved}")

    # -- the thread -------------------------------------------------------------------------

    def _make_trainer(self, store):
        from curious_robot.learning.train import Trainer

        if self.path.exists():
            try:
                trainer = Trainer.from_checkpoint(self.path, store, self.device,
                                                  **self.overrides)
            except (CheckpointError, KeyError, ValueError) as exc:
                bad = self.path.with_name(self.path.name + ".damaged")
                os.replace(self.path, bad)
                self._log("error", f"cannot resume from {self.path} ({exc}); moved it to "
                                   f"{bad.name} and starting a new run")
            else:
                for name in ("input_size", "width"):
                    mine, theirs = getattr(self.model_cfg, name), getattr(trainer.model_cfg,
                                                                          name)
                    if mine != theirs:
                        self._log("warning", f"{name} {mine} ignored: resuming a run with "
                                             f"{name} = {theirs}")
                self._log("info", f"online training resumes from {self.path} at step "
                                  f"{trainer.step}")
                self.saved_step = trainer.step
                return trainer
        self._log("info", f"online training starts a new run into {self.checkpoint_dir} "
                          f"(input {self.model_cfg.input_size} px, width "
                          f"{self.model_cfg.width}, tasks {','.join(self.train_cfg.tasks)})")
        return Trainer(store, self.model_cfg, self.train_cfg, self.device)

    def _save(self) -> None:
        t = self.trainer
        if t is None or t.step == self.saved_step or t.step == 0:
            return
        t.save(self.path)
        self.saved_step = t.step
        write_status(self.checkpoint_dir, t.step, t.position, dict(t.last_losses))
        if self.announce is not None:
            try:
                self.announce(str(self.path), t.step, t.position, dict(t.last_losses))
            except Exception as exc:  # noqa: BLE001 - e.g. the ROS context already shut down
                self._log("warning", f"checkpoint of step {t.step} saved but not announced: "
                                     f"{exc}")

    def _run(self) -> None:
        import torch

        from curious_robot.store import ReplayStore

        if self.threads > 0:
            torch.set_num_threads(self.threads)
        store = None
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            store = ReplayStore(self.store_path, readonly=True)
            self.trainer = t = self._make_trainer(store)
            self.state = "waiting for data"
            waiting_logged = False
            while not self._stop.is_set():
                t0, step0 = time.monotonic(), t.step
                samples = 0
                for _ in range(self.steps_per_round):
                    if self._stop.is_set():
                        break
                    losses = t.train_steps(1)
                    if not losses:
                        break
                    if self.state != "training":
                        self._log("info", f"online training runs from step {t.step - 1} on "
                                          f"{t.device} ({','.join(losses)})")
                        self.state = "training"
                        waiting_logged = False
                    samples += len(losses) * t.cfg.batch_size
                    if t.step - max(self.saved_step, 0) >= self.save_every:
                        self._save()
                busy = time.monotonic() - t0
                if t.step == step0:
                    if self._stop.is_set():
                        break
                    if not waiting_logged:
                        counts = {k: store.count(k, held_out=False) for k in t.cfg.tasks}
                        self._log("info", f"online training waits for data: no task has "
                                          f"{t.cfg.min_records} training records yet "
                                          f"({counts})")
                        waiting_logged = True
                    self.state = "waiting for data"
                    self._stop.wait(IDLE_WAIT_S)
                    continue
                self.rate = samples / busy if busy > 0 else 0.0
                if self.duty < 1.0:
                    self._stop.wait(busy * (1.0 - self.duty) / self.duty)
        except Exception as exc:  # noqa: BLE001 - training fails alone; ingestion goes on
            self.error = f"{type(exc).__name__}: {exc}"
            self._log("error", f"online training failed: {self.error}\n"
                               f"{traceback.format_exc()}")
        finally:
            try:
                self._save()
            except Exception as exc:  # noqa: BLE001
                self._log("error", f"final checkpoint not saved: {exc}")
            if self.error is None:
                self.state = "stopped"
            if store is not None:
                store.close()

