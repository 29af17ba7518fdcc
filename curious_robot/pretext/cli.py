"""``curious-robot pretext | colorize``.

    curious-robot pretext --kind context|color|splitbrain --store DB --steps N --out DIR
    curious-robot colorize IMAGE --checkpoint CKPT [--out PNG]

``pretext`` trains one of the other self-supervised signals on every stored training image
(the auto-encoder baseline's images) into ``OUT/checkpoint.pt`` (trainer format; a rerun
resumes). ``colorize`` writes input | grey | colourised side by side.

Module-level imports stay light (``curious-robot --help`` imports this module).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("pretext", help="train context prediction, colorization or the "
                       "split-brain auto-encoder (same root) on every stored training image")
    p.add_argument("--kind", required=True, choices=("context", "color", "splitbrain"))
    p.add_argument("--store", required=True, help="replay store file (opened read-only)")
    p.add_argument("--steps", type=int, required=True,
                   help="train until this step (a rerun resumes from OUT/checkpoint.pt)")
    p.add_argument("--out", required=True, help="folder for checkpoint.pt")
    p.add_argument("--input-size", type=int, default=96, help="network input px (default 96)")
    p.add_argument("--width", type=float, default=0.5, help="width multiplier (default 0.5)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step (default 64)")
    p.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    p.add_argument("--seed", type=int, default=0, help="seed of a new run (default 0)")
    p.add_argument("--save-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default 0: torch's own choice)")
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.set_defaults(func=run_pretext)

    p = sub.add_parser("colorize", help="show a colorization (or split-brain) model's colours "
                       "for an image: input | grey | colourised")
    p.add_argument("image", help="an RGB image file")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of pretext --kind "
                   "color (or splitbrain)")
    p.add_argument("--out", default=None, help="PNG to write (default IMAGE_colorized.png)")
    p.add_argument("--temperature", type=float, default=0.38,
                   help="annealed-mean temperature (default 0.38)")
    p.set_defaults(func=run_colorize)


def run_pretext(args) -> int:
    if not Path(args.store).is_file():
        print(f"curious-robot pretext: {args.store}: no such file", file=sys.stderr)
        return 2
    import torch

    from curious_robot.learning.checkpoint import CheckpointError
    from curious_robot.pretext.train import PretextConfig, train_pretext
    from curious_robot.store import StoreError

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    every = max(1, args.steps // 10)

    def progress(step, total, losses):
        if step % every == 0 or step == total:
            log.info("pretext %s step %d/%d %s", args.kind, step, total,
                     " ".join(f"{k} {v:.4f}" for k, v in losses.items()))

    try:
        cfg = PretextConfig(kind=args.kind, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed)
        summary = train_pretext(args.store, args.out, args.kind, args.steps, args.input_size,
                                args.width, cfg, args.save_every, progress, args.device)
    except (ValueError, CheckpointError, StoreError) as exc:
        print(f"curious-robot pretext: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary) if args.json else
          f"{args.kind}: step {summary['step']}, losses {summary['losses']}, "
          f"{summary['checkpoint']}")
    return 0


def run_colorize(args) -> int:
    import cv2
    import numpy as np

    from curious_robot.learning.checkpoint import CheckpointError
    from curious_robot.pretext.colorization import colorize
    from curious_robot.pretext.train import load_colour_model

    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        print(f"curious-robot colorize: cannot read image {args.image}", file=sys.stderr)
        return 2
    try:
        net, mc = load_colour_model(args.checkpoint)
    except (ValueError, CheckpointError) as exc:
        print(f"curious-robot colorize: {exc}", file=sys.stderr)
        return 1
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    grey, coloured = colorize(net, image, mc.input_size, args.temperature)
    sep = np.full((image.shape[0], 4, 3), 255, np.uint8)
    panel = np.concatenate([image, sep, grey, sep, coloured], axis=1)
    out = Path(args.out) if args.out else Path(args.image).with_name(
        Path(args.image).stem + "_colorized.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR)):
        print(f"curious-robot colorize: cannot write {out}", file=sys.stderr)
        return 1
    print(f"{out}: input | grey | colourised ({image.shape[1]} x {image.shape[0]} px each)")
    return 0
