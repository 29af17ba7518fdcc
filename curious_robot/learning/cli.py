"""``curious-robot train``: train the root network and its heads from a replay store.

    curious-robot train --store data/replay.db --steps 2000 --out runs/a [--json]

``--steps`` is the step (training cycle) to reach: a run resumes automatically from
``OUT/checkpoint.pt`` and continues counting from the checkpoint's step, so the same
command line finishes an interrupted run. The newest checkpoint is always OUT/checkpoint.pt
(rewritten atomically every ``--save-every`` steps and at the end). TensorBoard event files
go to OUT/tb when tensorboard is installed (:mod:`.loop`: losses, samples/s, held-out
metrics, grasp / poke image panels). Exit codes: 0 done, 1 nothing to train on or a
bad checkpoint, 2 bad arguments / no such store.

Module-level imports stay light (``curious-robot --help`` imports this module).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)


def parse_weights(text: str) -> dict[str, float]:
    """``"inspect=0.5,poke=2"`` -> ``{"inspect": 0.5, "poke": 2.0}`` (argparse type)."""
    import argparse

    out = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        task, sep, value = item.partition("=")
        try:
            w = float(value)
        except ValueError:
            w = float("nan")
        if not sep or not task.strip() or not w >= 0:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not TASK=WEIGHT with a weight >= 0")
        out[task.strip()] = w
    return out


def register(sub) -> None:
    from curious_robot.learning.config import PATCH_VIEWS, ModelConfig, TrainConfig, trainable

    m, t = ModelConfig(), TrainConfig()  # the defaults; help shows them, never restates
    extra = [n for n in trainable() if n not in t.tasks]
    weights = ", ".join(f"{k}={v:g}" for k, v in t.loss_weights.items())
    grads = ", ".join(f"{k}={v:g}" for k, v in t.root_grads.items())
    p = sub.add_parser("train", help="train the root network and task heads from a store")
    p.add_argument("--store", required=True, help="replay store file (opened read-only)")
    p.add_argument("--steps", type=int, required=True,
                   help="train until this step (a resumed run continues from its step)")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt and tb/")
    p.add_argument("--tasks", default=None,
                   help=f"comma-separated tasks (default {','.join(t.tasks)}"
                        + (f"; also {','.join(extra)})" if extra else ")"))
    p.add_argument("--input-size", type=int, default=None,
                   help=f"network input in px (default {m.input_size}; 227 as AlexNet on a "
                        "GPU)")
    p.add_argument("--width", type=float, default=None,
                   help=f"channel width multiplier (default {m.width:g}; 1.0 = AlexNet "
                        "widths)")
    p.add_argument("--patch-view", choices=PATCH_VIEWS, default=None,
                   help="a new run's poke input: the patch's centre at the camera's "
                        "resolution in colour (crop) or as grey local contrast (contrast), "
                        f"or the whole patch scaled down (resize); default {m.patch_view}")
    p.add_argument("--crop-stats", action=argparse.BooleanOptionalAction, default=None,
                   help="a new run's poke inputs keep BatchNorm running statistics of "
                        f"their own (default {'on' if m.crop_stats else 'off'})")
    p.add_argument("--poke-turn", action=argparse.BooleanOptionalAction, default=None,
                   help="turn and mirror poke training patches at random (default "
                        f"{'on' if t.poke_turn else 'off'})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"records per task per step (default {t.batch_size})")
    p.add_argument("--lr", type=float, default=None,
                   help=f"learning rate (default {t.lr:g})")
    p.add_argument("--optimizer", choices=("adam", "rmsprop"), default=None,
                   help=f"default {t.optimizer}")
    p.add_argument("--color-jitter", type=float, default=None,
                   help=f"photometric jitter of training images (default {t.color_jitter:g}; "
                        "0 = off)")
    p.add_argument("--color-scramble", type=float, default=None,
                   help="probability that a grasp / push / identity training image gets "
                        f"its colour channels reordered or turned grey (default "
                        f"{t.color_scramble:g})")
    p.add_argument("--identity-loss", choices=("cosine", "hard", "nce"), default=None,
                   help="identity loss over the batch: nce (InfoNCE), cosine (the margin "
                        "loss) or hard (that over the negatives inside the margin only); "
                        f"default {t.identity_loss}")
    p.add_argument("--loss-weights", type=parse_weights, default=None, metavar="TASK=W,...",
                   help=f"per-task loss weights (default {weights or 'none'}, the rest 1; "
                        "naming any replaces that default)")
    p.add_argument("--root-grads", type=parse_weights, default=None, metavar="TASK=S,...",
                   help=f"per-task share of the gradient that reaches the root, 0-1 "
                        f"(default {grads or 'none'}, the rest 1; the heads train on all "
                        "of it; naming any replaces that default)")
    p.add_argument("--identity-temperature", type=float, default=None,
                   help=f"InfoNCE temperature (default {t.identity_temperature:g})")
    p.add_argument("--min-records", type=int, default=None,
                   help=f"training records a task needs to join the cycle (default "
                        f"{t.min_records})")
    p.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default %(default)s: torch's own choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of a new run (default %(default)s)")
    p.add_argument("--save-every", type=int, default=100,
                   help="steps between checkpoints (default %(default)s)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="steps between held-out evaluations into TensorBoard (0: only at "
                        "the end)")
    p.add_argument("--json", action="store_true",
                   help="end by printing one JSON object of held-out metrics")
    p.set_defaults(func=run_train)

    e = sub.add_parser("export-model", help="write a checkpoint's model file (no optimizer "
                       "state; what models/ ships) and print its sha256")
    e.add_argument("checkpoint", help="checkpoint.pt or training folder")
    e.add_argument("--out", required=True, help="model file to write")
    e.add_argument("--half", action="store_true", help="float16 weights (half the size)")
    e.set_defaults(func=run_export)


def run_export(args) -> int:
    from curious_robot.learning.checkpoint import CheckpointError, export_model, sha256

    if not Path(args.checkpoint).exists():
        print(f"curious-robot export-model: {args.checkpoint}: no such file or folder",
              file=sys.stderr)
        return 2
    try:
        path = export_model(args.checkpoint, args.out, half=args.half)
    except CheckpointError as exc:
        print(f"curious-robot export-model: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"file": str(path), "bytes": path.stat().st_size,
                      "sha256": sha256(path)}))
    return 0


class _Progress:
    """On a terminal: tqdm (or a carriage-return line without it); else ~10 log lines."""

    def __init__(self, total: int, initial: int):
        self.total, self.n = total, initial
        self.t_last = 0.0
        self.tty = sys.stderr.isatty()
        self.log_every = max(1, (total - initial) // 10)  # without a terminal: ~10 log lines
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=total, initial=initial, file=sys.stderr, unit="step",
                            dynamic_ncols=True, disable=not self.tty)

    def update(self, step: int, losses: dict[str, float]) -> None:
        text = " ".join(f"{t} {v:.3f}" for t, v in losses.items())
        if not self.tty:
            if step % self.log_every == 0 or step >= self.total:
                log.info("step %d/%d %s", step, self.total, text)
        elif self.bar is not None:
            self.bar.update(step - self.n)
            self.bar.set_postfix_str(text, refresh=False)
        elif time.monotonic() - self.t_last > 0.2 or step >= self.total:
            self.t_last = time.monotonic()
            sys.stderr.write(f"\rstep {step}/{self.total} {text}\033[K")
            sys.stderr.flush()
        self.n = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.tty:
            sys.stderr.write("\n")


def _format_metrics(metrics: dict) -> str:
    width = max(len(k) for k in metrics)
    return "\n".join(f"{k:<{width}}  {'-' if v is None else f'{v:.4f}'}"
                     for k, v in metrics.items())


def run_train(args) -> int:
    if args.steps < 0:
        print("curious-robot train: --steps must be >= 0", file=sys.stderr)
        return 2
    if args.save_every < 1 or args.eval_every < 0:
        print("curious-robot train: --save-every must be >= 1 and --eval-every >= 0",
              file=sys.stderr)
        return 2
    if not Path(args.store).is_file():
        print(f"curious-robot train: {args.store}: no such file", file=sys.stderr)
        return 2
    import torch

    from curious_robot.learning.checkpoint import CheckpointError, checkpoint_path
    from curious_robot.learning.loop import NO_DATA, TB_DIR, Job, TrainLoop, resume_or_start
    from curious_robot.learning.metrics import metric_keys, trainer_panels
    from curious_robot.learning.networks import ModelConfig
    from curious_robot.learning.train import TrainConfig, Trainer
    from curious_robot.store import ReplayStore, StoreError

    try:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA is not available here")
    except (RuntimeError, ValueError) as exc:
        print(f"curious-robot train: --device {args.device}: {exc}", file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    overrides = {"tasks": args.tasks, "batch_size": args.batch_size, "lr": args.lr,
                 "color_jitter": args.color_jitter, "color_scramble": args.color_scramble,
                 "identity_loss": args.identity_loss,
                 "identity_temperature": args.identity_temperature,
                 "loss_weights": args.loss_weights, "root_grads": args.root_grads,
                 "optimizer": args.optimizer, "min_records": args.min_records,
                 "poke_turn": args.poke_turn}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_path(out)
    try:
        store = ReplayStore(args.store, readonly=True)
    except StoreError as exc:
        print(f"curious-robot train: {exc}", file=sys.stderr)
        return 1

    def resume(path):
        trainer = Trainer.from_checkpoint(path, store, device, **overrides)
        for name, value in (("input_size", args.input_size), ("width", args.width),
                            ("patch_view", args.patch_view), ("crop_stats", args.crop_stats)):
            if value is not None and value != getattr(trainer.model_cfg, name):
                log.warning("--%s %s ignored: resuming a run with %s = %s",
                            name.replace("_", "-"), value, name,
                            getattr(trainer.model_cfg, name))
        return trainer

    def start():
        model_cfg = ModelConfig(input_size=args.input_size or ModelConfig.input_size,
                                width=args.width or ModelConfig.width,
                                patch_view=args.patch_view or ModelConfig.patch_view,
                                crop_stats=(ModelConfig.crop_stats if args.crop_stats is None
                                            else args.crop_stats))
        train_cfg = TrainConfig(seed=args.seed,
                                **{k: v for k, v in overrides.items() if v is not None})
        return Trainer(store, model_cfg, train_cfg, device)

    try:
        trainer, resumed = resume_or_start(ckpt, resume, start)
    except (ValueError, CheckpointError, KeyError) as exc:
        print(f"curious-robot train: {exc}", file=sys.stderr)
        store.close()
        return 1 if isinstance(exc, CheckpointError) else 2
    log.info("training %s on %s from step %d to %d (input %d px, width %g, batch %d, %s)",
             ",".join(trainer.cfg.tasks), device, trainer.step, args.steps,
             trainer.model_cfg.input_size, trainer.model_cfg.width, trainer.cfg.batch_size,
             trainer.cfg.optimizer)
    progress = _Progress(args.steps, trainer.step)
    job = Job(trainer, lambda: trainer.train_steps(1), trainer.save, evaluate=trainer.evaluate,
              panels=lambda: trainer_panels(trainer),
              samples_per_step=lambda losses: len(losses) * trainer.cfg.batch_size)
    loop = TrainLoop(job, ckpt, save_every=args.save_every, until=args.steps, resumed=resumed,
                     tb_dir=out / TB_DIR, eval_every=args.eval_every,
                     progress=progress.update)
    try:
        reason = loop.run()
    except KeyboardInterrupt:
        progress.close()
        loop.close()
        log.info("interrupted at step %d; checkpoint %s", trainer.step, ckpt)
        raise
    progress.close()
    code = 0
    if reason == NO_DATA:
        log.error("no task has %d training records yet (tasks %s): nothing to train",
                  trainer.cfg.min_records, ",".join(trainer.cfg.tasks))
        code = 1
    keys = metric_keys(trainer.cfg.tasks)
    metrics = {k: trainer.evaluate().get(k) for k in keys}
    if ckpt.exists():
        trainer.save(ckpt)  # again, so that the newest checkpoint carries these metrics
    loop.log_metrics(metrics)
    loop.close()
    store.close()
    log.info("step %d, checkpoint %s", trainer.step, ckpt)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(_format_metrics(metrics))
    return code
