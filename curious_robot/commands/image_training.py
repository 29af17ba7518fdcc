"""What ``autoencoder`` and ``pretext`` share: both train the root on every stored training
image, take the same options, resume from ``OUT/checkpoint.pt`` and report the same way.

Module-level imports stay light (``curious-robot --help`` imports this module).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def add_arguments(p) -> None:
    """The options of a command that trains the root on stored images."""
    p.add_argument("--store", required=True, help="replay store file (opened read-only)")
    p.add_argument("--steps", type=int, required=True,
                   help="train until this step (a rerun resumes from OUT/checkpoint.pt)")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt")
    from curious_robot.learning.config import ModelConfig

    p.add_argument("--input-size", type=int, default=ModelConfig.input_size,
                   help="network input px (default %(default)s)")
    p.add_argument("--width", type=float, default=ModelConfig.width,
                   help="width multiplier (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=64,
                   help="images per step (default %(default)s)")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of a new run (default %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default %(default)s: torch's own choice)")
    p.add_argument("--json", action="store_true", help="end with one JSON object")


def run(command: str, args, train: Callable[[Callable], dict],
        describe: Callable[[dict], str], loss_text: Callable[[object], str],
        label: str | None = None) -> int:
    """Check the store, set the threads, call ``train(progress)`` and print its summary
    (``--json``: one JSON object; else ``describe(summary)``). ``progress(step, total,
    loss)`` logs every tenth of the run as ``label`` (default ``command``), the loss shown by
    ``loss_text``. Exit codes:
    2 for a missing store, 1 for a failed run."""
    if not Path(args.store).is_file():
        print(f"curious-robot {command}: {args.store}: no such file", file=sys.stderr)
        return 2
    import torch

    from curious_robot.learning.checkpoint import CheckpointError
    from curious_robot.store import StoreError

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    every = max(1, args.steps // 10)

    def progress(step, total, loss):
        if step % every == 0 or step == total:
            log.info("%s step %d/%d %s", label or command, step, total, loss_text(loss))

    try:
        summary = train(progress)
    except (ValueError, CheckpointError, StoreError) as exc:
        print(f"curious-robot {command}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary) if args.json else describe(summary))
    return 0
