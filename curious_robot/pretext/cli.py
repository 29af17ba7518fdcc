"""``curious-robot pretext | colorize``.

    curious-robot pretext --kind context|color|splitbrain --store DB --steps N --out DIR
    curious-robot colorize IMAGE --checkpoint CKPT [--out PNG]

``pretext`` trains one of the other self-supervised signals on every stored training image
(the auto-encoder baseline's images) into ``OUT/checkpoint.pt`` (trainer format; a rerun
resumes). ``colorize`` writes input | grey | colourised side by side.

Module-level imports stay light (``curious-robot --help`` imports this module).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from curious_robot.commands import image_training

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("pretext", help="train context prediction, colorization or the "
                       "split-brain auto-encoder (same root) on every stored training image")
    p.add_argument("--kind", required=True, choices=("context", "color", "splitbrain"))
    image_training.add_arguments(p)
    p.add_argument("--save-every", type=int, default=100, help="steps between checkpoints")
    p.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    p.set_defaults(func=run_pretext)

    p = sub.add_parser("colorize", help="show a colorization (or split-brain) model's colours "
                       "for an image: input | grey | colourised")
    p.add_argument("image", help="an RGB image file")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt of pretext --kind "
                   "color (or splitbrain)")
    p.add_argument("--out", default=None, help="PNG to write (default IMAGE_colorized.png)")
    p.add_argument("--temperature", type=float, default=0.38,
                   help="annealed-mean temperature (default %(default)s)")
    p.set_defaults(func=run_colorize)


def run_pretext(args) -> int:
    def train(progress):
        from curious_robot.pretext.train import PretextConfig, train_pretext

        cfg = PretextConfig(kind=args.kind, batch_size=args.batch_size, lr=args.lr,
                            seed=args.seed)
        return train_pretext(args.store, args.out, args.kind, args.steps, args.input_size,
                             args.width, cfg, args.save_every, progress, args.device)

    return image_training.run(
        "pretext", args, train,
        lambda s: f"{args.kind}: step {s['step']}, losses {s['losses']}, {s['checkpoint']}",
        lambda losses: " ".join(f"{k} {v:.4f}" for k, v in losses.items()),
        label=f"pretext {args.kind}")


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
