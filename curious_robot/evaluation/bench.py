"""``curious-robot bench eval``: seconds to evaluate a checkpoint on a 2,000-image folder.

The folder is what a user points ``eval --image-folder`` at: one sub-folder per class of
ordinary JPEG files (decoding and resizing are part of the cost). Without
``--image-folder`` the benchmark writes one into a temporary folder first (not timed):
``--classes`` classes of coloured shapes (one shape and hue range per class, random
position, size, background and noise) at 320 x 240 px, about Caltech-256's median size.
Timed: what ``eval`` does after parsing its arguments (root, split, reading, features,
1-NN, linear probe), once at the default layer and once at every layer
(``--layer all``), against the issue's budget of 120 s.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: What the evaluation issue allows for one checkpoint on a 2,000-image folder.
BUDGET_S = 120.0
SHAPES = ("circle", "square", "triangle", "bar", "ring", "cross", "diamond")


def add_arguments(parser) -> None:
    parser.add_argument("--checkpoint", default="random",
                        help="checkpoint.pt to evaluate, or 'random' (default)")
    parser.add_argument("--image-folder", default=None,
                        help="time this folder instead of a generated one")
    parser.add_argument("--images", type=int, default=2000,
                        help="images of the generated folder (default %(default)s)")
    parser.add_argument("--classes", type=int, default=20,
                        help="classes of the generated folder (default %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default %(default)s: torch's own choice)")


def _draw(shape: str, hue: int, rng: np.random.Generator, w: int = 320,
          h: int = 240) -> np.ndarray:
    import cv2

    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(40, 220, size=3, dtype=np.uint8)
    img = cv2.add(img, rng.integers(0, 30, size=(h, w, 3), dtype=np.uint8))
    colour = cv2.cvtColor(np.uint8([[[hue % 180, rng.integers(150, 256),
                                      rng.integers(120, 256)]]]), cv2.COLOR_HSV2BGR)
    c = tuple(int(v) for v in colour[0, 0])
    cx, cy = int(rng.integers(80, w - 80)), int(rng.integers(70, h - 70))
    r = int(rng.integers(30, 65))
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, c, -1)
    elif shape == "ring":
        cv2.circle(img, (cx, cy), r, c, max(4, r // 4))
    elif shape == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), c, -1)
    elif shape == "bar":
        cv2.rectangle(img, (cx - r, cy - r // 4), (cx + r, cy + r // 4), c, -1)
    elif shape == "cross":
        cv2.line(img, (cx - r, cy), (cx + r, cy), c, max(4, r // 4))
        cv2.line(img, (cx, cy - r), (cx, cy + r), c, max(4, r // 4))
    else:
        pts = ([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)] if shape == "triangle"
               else [(cx, cy - r), (cx - r, cy), (cx, cy + r), (cx + r, cy)])
        cv2.fillPoly(img, [np.array(pts, np.int32)], c)
    return img


def write_folder(folder: Path, images: int, classes: int, seed: int = 0) -> Path:
    """``classes`` sub-folders of JPEGs, ``images`` in all (as even as division allows)."""
    import cv2

    rng = np.random.default_rng(seed)
    for k in range(classes):
        shape, hue = SHAPES[k % len(SHAPES)], (k * 180) // classes
        sub = folder / f"class_{k:03d}_{shape}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(images // classes + (k < images % classes)):
            cv2.imwrite(str(sub / f"{i:04d}.jpg"), _draw(shape, hue, rng),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def measure(checkpoint: str, folder: Path) -> dict:
    from curious_robot.evaluation import evaluate
    from curious_robot.evaluation.cli import DEFAULT_LAYER
    from curious_robot.evaluation.features import load_root
    from curious_robot.learning.networks import LAYERS

    out: dict = {}
    for name, layers in (("default_layer", (DEFAULT_LAYER,)), ("all_layers", LAYERS)):
        t0 = time.perf_counter()
        root = load_root(checkpoint)
        rows = evaluate.classification(root, folder, layers)
        seconds = time.perf_counter() - t0
        row = rows[DEFAULT_LAYER]
        out[name] = {"seconds": round(seconds, 2), "layers": len(layers),
                     "images_per_s": round((row["n_train"] + row["n_test"]) / seconds, 1),
                     "nn_accuracy": round(row["nn_accuracy"], 3),
                     "linear_accuracy": round(row["linear_accuracy"], 3),
                     "share_of_budget": round(seconds / BUDGET_S, 3)}
    return {**out, "n_train": row["n_train"], "n_test": row["n_test"],
            "n_classes": row["n_classes"]}


def run(args) -> int:
    import sys

    import torch

    from curious_robot.evaluation.folders import ImageFolderError
    from curious_robot.learning.checkpoint import CheckpointError

    if not args.image_folder and not 2 <= args.classes <= args.images // 2:
        print(f"curious-robot bench eval: --classes must be 2 or more with at least two "
              f"images each (got {args.classes} classes, {args.images} images)",
              file=sys.stderr)
        return 2
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    tmp = None
    try:
        if args.image_folder:
            folder = Path(args.image_folder)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="curious-robot-bench-eval-"))
            t0 = time.perf_counter()
            folder = write_folder(tmp / "images", args.images, args.classes)
            log.info("wrote %d JPEGs into %s (%.1f s, not timed)", args.images, folder,
                     time.perf_counter() - t0)
        result = {"checkpoint": args.checkpoint, "image_folder": str(folder),
                  "threads": torch.get_num_threads(), "budget_s": BUDGET_S,
                  **measure(args.checkpoint, folder)}
    except (ValueError, OSError, ImageFolderError, CheckpointError) as exc:
        print(f"curious-robot bench eval: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"eval of {result['checkpoint']} on {result['n_train'] + result['n_test']} images "
          f"({result['n_classes']} classes, {result['n_train']} train / {result['n_test']} "
          f"test), {result['threads']} torch threads; budget {BUDGET_S:.0f} s")
    print(f"{'layers':>14} {'seconds':>8} {'images/s':>9} {'of budget':>10} {'1-NN':>6} "
          f"{'linear':>7}")
    for name in ("default_layer", "all_layers"):
        r = result[name]
        print(f"{name.replace('_', ' '):>14} {r['seconds']:>8.1f} {r['images_per_s']:>9.1f} "
              f"{100 * r['share_of_budget']:>9.0f}% {r['nn_accuracy']:>6.3f} "
              f"{r['linear_accuracy']:>7.3f}")
    return 0
