"""Online training inside the learner node, beside ingestion.

``OnlineTrainer.from_node_parameters(node)`` declares its parameters on the learner node
(``param`` of :mod:`curious_robot.parameters`; the node is passed in, nothing else of
rclpy is used here) and ``start()`` runs a daemon thread that

1. opens ITS OWN read-only :class:`~curious_robot.store.ReplayStore` connection (the node
   ingests through another one; SQLite WAL lets both work at once);
2. resumes from ``checkpoint_dir/checkpoint.pt`` (``Trainer.from_checkpoint``: model,
   optimizer, step, normalisation, sampler state) or starts a new :class:`Trainer`; a
   damaged checkpoint is moved aside (``checkpoint.pt.damaged``) and a new run starts;
3. runs the shared training loop (:class:`~curious_robot.learning.loop.TrainLoop`) in
   rounds of ``steps_per_round`` training cycles, each round followed by a pause so
   that training takes about ``duty`` of the wall time (the rest stays free for ingestion
   and the other nodes' CPU); while no task has ``min_records`` training records it waits
   (logged once, and again when training starts); with ``steps_per_interaction`` k it
   also waits at k steps per interaction in the store;
4. at every multiple of ``save_every`` steps writes the checkpoint atomically, writes
   ``status.json`` and calls ``node.announce(path, step, store_position, losses)`` (the
   node publishes a ModelUpdate on /model_updates, which the selectors load);
5. writes TensorBoard event files into ``checkpoint_dir/tb`` (``tensorboard: false`` turns
   them off): per-task losses every step, samples/s and the store position at every
   checkpoint, held-out metrics every ``eval_every`` steps (0: never), grasp / poke image
   panels with the model's predictions at every checkpoint, and what the node adds through
   :meth:`OnlineTrainer.log_scalar` (its ingest rate).

``stop()`` ends the loop between two cycles, saves a final checkpoint (when steps were
made since the last one), announces it and joins. ``status()`` is one line for the node's
progress report. A failure in the training thread is logged and ends training only;
ingestion goes on.
"""

from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path

from curious_robot.learning.checkpoint import CHECKPOINT_NAME, CheckpointError
from curious_robot.learning.loop import TB_DIR, Job, TrainLoop, resume_or_start
from curious_robot.learning.status import write_status
from curious_robot.parameters import ParameterError

#: Seconds between looks at a store that has too little data.
IDLE_WAIT_S = 2.0
#: Seconds between two "waits for interactions" lines of a paced run.
PACED_LOG_S = 60.0


class OnlineTrainer:
    """A training thread over the learner's store; see the module docstring."""

    def __init__(self, store_path, checkpoint_dir, *, announce=None, logger=None,
                 seed: int = 0, **options):
        """``options``: the learner's online-training parameters
        (:func:`curious_robot.node_config.online_params`: steps_per_round, save_every,
        input_size, width, batch_size, lr, tasks, min_records, device, threads, duty,
        steps_per_interaction, eval_every, tensorboard), each defaulting to that
        definition's default."""
        from curious_robot.learning.networks import ModelConfig
        from curious_robot.learning.train import TrainConfig
        from curious_robot.node_config import check_overrides, online_params, settings

        cls = online_params()
        defaults = {n: d for n, d, _ in settings(cls) if n != "checkpoint_dir"}
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise TypeError(f"unknown online-training option(s) {', '.join(unknown)}")
        o = {**defaults, **{k: v for k, v in options.items() if v is not None}}
        problems = check_overrides(cls, {k: o[k] for k in options if k in o}, "online training")
        if problems:
            raise ValueError("; ".join(problems))
        steps_per_round, save_every, threads = o["steps_per_round"], o["save_every"], o["threads"]
        duty, eval_every, tensorboard = o["duty"], o["eval_every"], o["tensorboard"]
        self.steps_per_interaction = float(o["steps_per_interaction"])
        device = o["device"]
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
        self.eval_every = int(eval_every)
        self.tensorboard = bool(tensorboard)
        if self.tensorboard:  # the slow import here, at node start, not in the thread
            try:
                import torch.utils.tensorboard  # noqa: F401
            except ImportError:
                pass
        # validated now, so a bad parameter fails the node at start, not the thread later
        self.model_cfg = ModelConfig(input_size=o["input_size"], width=o["width"])
        self.overrides = {"batch_size": o["batch_size"], "lr": o["lr"], "tasks": o["tasks"],
                          "min_records": o["min_records"]}
        self.train_cfg = TrainConfig(seed=seed, **self.overrides)
        self.trainer = None
        self.loop: TrainLoop | None = None
        self.error: str | None = None
        self.state = "not started"
        self._paced_said: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- construction from the node ---------------------------------------------------------

    @classmethod
    def from_node_parameters(cls, node) -> OnlineTrainer:
        """Declare and read the online-training parameters of the learner ``node`` (which
        has ``store_path`` and ``announce``): :func:`curious_robot.node_config.online_params`
        (``curious-robot params learner`` lists them)."""
        from dataclasses import asdict

        from curious_robot.node_config import declare, online_params

        kwargs = asdict(declare(node, online_params()))
        from curious_robot.paths import beside_store

        folder = kwargs.pop("checkpoint_dir") or str(beside_store(node.store_path,
                                                                  "checkpoints"))
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

    @property
    def saved_step(self) -> int:
        """Step of the newest checkpoint written or resumed from (-1: none)."""
        loop = self.loop
        return -1 if loop is None or loop.saved_step is None else loop.saved_step

    @property
    def rate(self) -> float:
        """Training samples per second of training time, last round."""
        return self.loop.rate if self.loop is not None else 0.0

    @property
    def tb_dir(self) -> Path:
        """Where the TensorBoard event files go."""
        return self.checkpoint_dir / TB_DIR

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

    def log_scalar(self, tag: str, value: float) -> None:
        """A scalar into this run's TensorBoard files at the current step, from any thread
        (the learner node's ingest rate); ignored while training is not running."""
        loop = self.loop
        if loop is not None:
            loop.log_scalar(tag, value)

    def _make_trainer(self, store):
        from curious_robot.learning.train import Trainer

        def resume(path):
            trainer = Trainer.from_checkpoint(path, store, self.device, **self.overrides)
            for name in ("input_size", "width"):
                mine, theirs = getattr(self.model_cfg, name), getattr(trainer.model_cfg, name)
                if mine != theirs:
                    self._log("warning", f"{name} {mine} ignored: resuming a run with "
                                         f"{name} = {theirs}")
            self._log("info", f"online training resumes from {path} at step {trainer.step}")
            return trainer

        def start():
            self._log("info", f"online training starts a new run into {self.checkpoint_dir} "
                              f"(input {self.model_cfg.input_size} px, width "
                              f"{self.model_cfg.width}, tasks {','.join(self.train_cfg.tasks)})")
            return Trainer(store, self.model_cfg, self.train_cfg, self.device)

        return resume_or_start(self.path, resume, start, damaged="move",
                               errors=(CheckpointError, KeyError, ValueError),
                               warn=lambda text: self._log("error", text))

    def _on_save(self, step: int) -> None:
        t = self.trainer
        self.loop.log_scalar("store/position", t.position)
        write_status(self.checkpoint_dir, t.step, t.position, dict(t.last_losses))
        if self.announce is not None:
            try:
                self.announce(str(self.path), t.step, t.position, dict(t.last_losses))
            except Exception as exc:  # noqa: BLE001 - e.g. the ROS context already shut down
                self._log("warning", f"checkpoint of step {t.step} saved but not announced: "
                                     f"{exc}")

    def _on_state(self, state: str) -> None:
        t = self.trainer
        if state == "training":
            if self.state != "paced":  # a paced run goes back and forth: said once a minute
                self._log("info", f"online training runs from step {t.step - 1} on "
                                  f"{t.device} ({','.join(t.last_losses)})")
        elif state == "paced":
            now = time.monotonic()
            if self._paced_said is None or now - self._paced_said >= PACED_LOG_S:
                self._paced_said = now
                self._log("info", f"online training waits for interactions at step "
                                  f"{t.step} ({self.steps_per_interaction:g} steps per "
                                  f"interaction; said at most once a minute)")
        elif state == "waiting for data":
            store = t.store
            counts = {k: store.count(k, held_out=False) for k in t.cfg.tasks}
            self._log("info", f"online training waits for data: no task has "
                              f"{t.cfg.min_records} training records yet ({counts})")
        if state != "stopped":
            self.state = state

    def _allowance(self, store):
        """With ``steps_per_interaction`` k: the step training may reach, k per interaction
        in the store (a paced run trains as much per interaction however fast its robots
        are: the curiosity experiment compares policies that way)."""
        k = self.steps_per_interaction
        if k <= 0:
            return None
        return lambda: int(k * store.count())

    def _run(self) -> None:
        import torch

        from curious_robot.learning.metrics import trainer_panels
        from curious_robot.store import ReplayStore

        if self.threads > 0:
            torch.set_num_threads(self.threads)
        store = None
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            store = ReplayStore(self.store_path, readonly=True)
            t, resumed = self._make_trainer(store)
            self.trainer = t
            self.state = "waiting for data"  # until the first step is made
            job = Job(t, lambda: t.train_steps(1), t.save, evaluate=t.evaluate,
                      panels=lambda: trainer_panels(t),
                      samples_per_step=lambda losses: len(losses) * t.cfg.batch_size)
            self.loop = TrainLoop(
                job, self.path, save_every=self.save_every, stop=self._stop, resumed=resumed,
                tb_dir=self.tb_dir if self.tensorboard else None,
                eval_every=self.eval_every, on_save=self._on_save, on_state=self._on_state,
                idle_wait=IDLE_WAIT_S, steps_per_round=self.steps_per_round, duty=self.duty,
                save_untrained=False, allowance=self._allowance(store))
            self.loop.run()
        except Exception as exc:  # noqa: BLE001 - training fails alone; ingestion goes on
            self.error = f"{type(exc).__name__}: {exc}"
            self._log("error", f"online training failed: {self.error}\n"
                               f"{traceback.format_exc()}")
        finally:
            if self.loop is not None:
                self.loop.close()
            if self.error is None:
                self.state = "stopped"
            if store is not None:
                store.close()
