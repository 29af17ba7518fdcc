"""The outer loop of every training in the project, written once.

``curious-robot train`` (:mod:`.cli`), online training in the learner node (:mod:`.online`),
the auto-encoder baseline (:mod:`curious_robot.evaluation.baselines`) and the pretext
signals (:mod:`curious_robot.pretext.train`) each supply a :class:`Job` (one training step
and its loss, the checkpoint writer, optionally held-out metrics and image panels);
:class:`TrainLoop` does the rest:

- **resume**: :func:`resume_or_start` resumes from ``checkpoint.pt`` when it exists (a
  damaged one raises, or with ``damaged="move"`` is moved to ``checkpoint.pt.damaged`` and a
  new run starts);
- **checkpoint**: atomically (the job's ``save`` uses
  :func:`~curious_robot.learning.checkpoint.save_checkpoint`) at every multiple of
  ``save_every`` steps, and when the loop ends (budget, stop, no data, Ctrl-C or a failure)
  if steps were made since the last one; ``on_save(step)`` follows each write;
- **log**: ``progress(step, losses)`` after every step (stdout / log lines are the caller's),
  and TensorBoard event files in ``tb_dir`` (``<run folder>/tb``): ``loss/<name>`` every
  step, ``train/samples_per_s`` (training time only) at every checkpoint, ``heldout/<key>``
  whenever held-out metrics are computed (every ``eval_every`` steps and whatever the caller
  passes to :meth:`TrainLoop.log_metrics`), the job's image panels (``panels/<name>``) every
  ``panel_every`` steps and at the end, and anything :meth:`TrainLoop.log_scalar` is given
  from another thread (the learner node's ingest rate). A resumed run hides what an earlier
  run logged after its checkpoint (``purge_step``), so the curves do not fold back;
- **stop**: when the step budget ``until`` is reached, the ``stop`` event is set (checked
  between two steps), or no step can be made (no task has enough data): then it ends, or,
  with ``idle_wait``, waits and looks again (online training). ``steps_per_round`` and
  ``duty`` pace online training: after each round it pauses so that training takes about
  ``duty`` of the wall time.

No rclpy; torch only through the job and the TensorBoard writer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Sub-folder of a run folder (beside checkpoint.pt) that holds the TensorBoard event files.
TB_DIR = "tb"

#: Why :meth:`TrainLoop.run` ended.
DONE, STOPPED, NO_DATA = "done", "stopped", "no data"


@dataclass
class Job:
    """What one training variant gives :class:`TrainLoop`."""

    #: the variant's trainer; the loop reads only its integer ``step``
    trainer: Any
    #: one training step; its losses by name (``{}``: nothing could be trained, no step made)
    train_step: Callable[[], dict[str, float]]
    #: write the checkpoint (atomically) to the given path
    save: Callable[[Path], None]
    #: held-out metrics (name -> number or None), or None when the variant has none
    evaluate: Callable[[], dict] | None = None
    #: image panels (name -> (H, W, 3) uint8) showing the model's predictions, or None
    panels: Callable[[], dict] | None = None
    #: training samples one step used, given its losses (for ``train/samples_per_s``)
    samples_per_step: Callable[[dict], int] | None = None

    @property
    def step(self) -> int:
        return int(self.trainer.step)


def resume_or_start(path: str | os.PathLike, resume: Callable[[Path], Any],
                    start: Callable[[], Any], *, damaged: str = "raise",
                    errors: tuple[type[BaseException], ...] = (),
                    warn: Callable[[str], None] | None = None) -> tuple[Any, bool]:
    """``(resume(path), True)`` when the checkpoint ``path`` exists, else ``(start(), False)``.

    A checkpoint that ``resume`` refuses with one of ``errors`` is re-raised
    (``damaged="raise"``), or (``damaged="move"``) renamed to ``<name>.damaged``, reported
    through ``warn`` and replaced by a new run."""
    if damaged not in ("raise", "move"):
        raise ValueError(f"damaged must be 'raise' or 'move', got {damaged!r}")
    path = Path(path)
    if path.exists():
        try:
            return resume(path), True
        except errors as exc:
            if damaged == "raise":
                raise
            bad = path.with_name(path.name + ".damaged")
            os.replace(path, bad)
            (warn or log.error)(f"cannot resume from {path} ({exc}); moved it to {bad.name} "
                                "and starting a new run")
    return start(), False


def summary_writer(folder: str | os.PathLike, purge_step: int | None = None):
    """A TensorBoard ``SummaryWriter`` into ``folder``, or None when tensorboard is absent."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("tensorboard is not installed: no TensorBoard event files")
        return None
    return SummaryWriter(str(folder), purge_step=purge_step)


#: seconds a paced loop (``allowance``) waits before it asks again
PACED_WAIT_S = 0.2


class TrainLoop:
    """Resume has happened (see :func:`resume_or_start`); :meth:`run` trains, checkpoints,
    logs and stops as the module docstring says. ``state`` is ``"starting"``, ``"training"``,
    ``"waiting for data"``, ``"paced"`` or ``"stopped"``; ``on_state(state)`` is called on
    each change."""

    def __init__(self, job: Job, checkpoint: str | os.PathLike, *, save_every: int,
                 until: int | None = None, stop: threading.Event | None = None,
                 resumed: bool = False, tb_dir: str | os.PathLike | None = None,
                 eval_every: int = 0, panel_every: int | None = None,
                 progress: Callable[[int, dict], None] | None = None,
                 on_save: Callable[[int], None] | None = None,
                 on_state: Callable[[str], None] | None = None,
                 idle_wait: float | None = None, steps_per_round: int = 1,
                 duty: float = 1.0, save_untrained: bool = True,
                 allowance: Callable[[], int | None] | None = None):
        """``allowance()``: the step training may reach for now (None: no limit), asked
        before each step; at it the loop waits :data:`PACED_WAIT_S` s (at most
        ``idle_wait``; state ``"paced"``) and asks again (online training paced by the
        interactions stored)."""
        if save_every < 1 or steps_per_round < 1:
            raise ValueError("save_every and steps_per_round must be >= 1")
        if not 0.0 < duty <= 1.0:
            raise ValueError(f"duty must be in (0, 1], got {duty}")
        if eval_every < 0 or (panel_every is not None and panel_every < 0):
            raise ValueError("eval_every and panel_every must be >= 0")
        self.job = job
        self.checkpoint = Path(checkpoint)
        self.save_every = int(save_every)
        self.until = until
        self.stop = stop or threading.Event()
        self.tb_dir = None if tb_dir is None else Path(tb_dir)
        self.eval_every = int(eval_every)
        self.panel_every = self.save_every if panel_every is None else int(panel_every)
        self.progress, self.on_save, self.on_state = progress, on_save, on_state
        self.idle_wait = idle_wait
        self.steps_per_round = int(steps_per_round)
        self.duty = float(duty)
        self.save_untrained = save_untrained
        self.allowance = allowance
        self.resumed = resumed
        #: step of the newest checkpoint written or resumed from (None: none yet)
        self.saved_step: int | None = job.step if resumed else None
        self.state = "starting"
        self.rate = 0.0  # training samples per second of training time, last round
        self.metrics: dict = {}
        self.writer = None
        self._writer_lock = threading.Lock()
        self._samples = 0  # since the last samples_per_s scalar
        self._busy = 0.0
        self._panel_step: int | None = None

    # -- logging ---------------------------------------------------------------------------

    def open_writer(self):
        """Open the TensorBoard writer (``run`` does; callers may log before it)."""
        with self._writer_lock:
            if self.writer is None and self.tb_dir is not None:
                # a resumed run hides events an earlier run wrote after its checkpoint
                purge = self.job.step + 1 if self.resumed else None
                self.writer = summary_writer(self.tb_dir, purge)
            return self.writer

    def log_scalar(self, tag: str, value: float, step: int | None = None) -> None:
        """One scalar at ``step`` (default: the current step); thread-safe, ignored while
        no writer is open."""
        with self._writer_lock:
            if self.writer is not None and value is not None:
                self.writer.add_scalar(tag, float(value),
                                       self.job.step if step is None else int(step))

    def log_metrics(self, metrics: dict, prefix: str = "heldout") -> None:
        """Held-out metrics as ``heldout/<key>`` scalars (None values skipped)."""
        self.metrics = dict(metrics)
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.log_scalar(f"{prefix}/{key}", value)
        self.flush()

    def log_panels(self) -> None:
        """The job's image panels as ``panels/<name>`` (once per step)."""
        if self.job.panels is None or self.writer is None or self._panel_step == self.job.step:
            return
        self._panel_step = self.job.step
        try:
            panels = self.job.panels()
        except Exception as exc:  # noqa: BLE001 - a picture must not end a training run
            log.warning("image panels at step %d failed: %s", self.job.step, exc)
            return
        with self._writer_lock:
            for name, image in panels.items():
                self.writer.add_image(f"panels/{name}", image, self.job.step,
                                      dataformats="HWC")
        self.flush()

    def flush(self) -> None:
        with self._writer_lock:
            if self.writer is not None:
                self.writer.flush()

    def close(self) -> None:
        with self._writer_lock:
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(state)

    # -- checkpoints -----------------------------------------------------------------------

    def save(self) -> None:
        """Write the checkpoint now (if the step changed since the last one)."""
        step = self.job.step
        if step == self.saved_step:
            return
        self.job.save(self.checkpoint)
        self.saved_step = step
        if self._busy > 0:
            self.log_scalar("train/samples_per_s", self._samples / self._busy)
            self._samples, self._busy = 0, 0.0
        self.flush()
        if self.on_save is not None:
            self.on_save(step)

    def _final_save(self, reason: str) -> None:
        step = self.job.step
        if step == 0 and (not self.save_untrained or reason == NO_DATA):
            return
        self.save()

    # -- the loop --------------------------------------------------------------------------

    def _after_step(self, losses: dict) -> None:
        step = self.job.step
        if self.progress is not None:
            self.progress(step, losses)
        for name, value in losses.items():
            self.log_scalar(f"loss/{name}", value, step)
        if step % self.save_every == 0:
            self.save()
        if self.eval_every and step % self.eval_every == 0 and self.job.evaluate is not None:
            self.log_metrics(self.job.evaluate())
        if self.panel_every and step % self.panel_every == 0:
            self.log_panels()

    def _budget_left(self) -> bool:
        return self.until is None or self.job.step < self.until

    def run(self) -> str:
        """Train until the budget, the stop event or (without ``idle_wait``) a step that
        cannot be made; returns why (:data:`DONE`, :data:`STOPPED`, :data:`NO_DATA`). The
        final checkpoint is written on the way out, also on Ctrl-C or a failure. The
        TensorBoard writer stays open for the caller's last metrics: :meth:`close` it."""
        self.open_writer()
        reason = STOPPED
        failed = True
        try:
            while True:
                if not self._budget_left():
                    reason = DONE
                    break
                if self.stop.is_set():
                    break
                t0, step0, samples = time.monotonic(), self.job.step, 0
                paced = False
                for _ in range(self.steps_per_round):
                    if self.stop.is_set() or not self._budget_left():
                        break
                    if self.allowance is not None:
                        allowed = self.allowance()
                        if allowed is not None and self.job.step >= allowed:
                            paced = True
                            break
                    t_step = time.monotonic()
                    losses = self.job.train_step()
                    if not losses:
                        break
                    n = self.job.samples_per_step(losses) if self.job.samples_per_step else 0
                    samples += n
                    self._samples += n
                    self._busy += time.monotonic() - t_step
                    self._set_state("training")
                    self._after_step(losses)
                busy = time.monotonic() - t0
                if self.job.step == step0:
                    if self.stop.is_set():
                        break
                    if self.idle_wait is None:
                        reason = NO_DATA
                        break
                    self._set_state("paced" if paced else "waiting for data")
                    self.stop.wait(min(self.idle_wait, PACED_WAIT_S) if paced
                                   else self.idle_wait)
                    continue
                self.rate = samples / busy if busy > 0 else 0.0
                if self.duty < 1.0:
                    self.stop.wait(busy * (1.0 - self.duty) / self.duty)
            failed = False
        finally:
            try:
                self._final_save(reason)
                if not failed and reason != NO_DATA and self.job.step > 0:
                    self.log_panels()
            except Exception:
                if not failed:
                    raise
                log.exception("final checkpoint at step %d not saved", self.job.step)
            self._set_state("stopped")
            self.flush()
        return reason
