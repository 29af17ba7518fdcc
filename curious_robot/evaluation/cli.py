"""``curious-robot eval | evalset | autoencoder | reproduce``.

    curious-robot eval --checkpoint CKPT|random --image-folder DIR [--layer L] [--json]
    curious-robot eval --checkpoint CKPT --retrieval [--image-folder DIR] [--json]
    curious-robot evalset --out DIR [--objects N] [--views V] [--seed S]
    curious-robot eval-categories --checkpoint CKPT|default|random [--split val|test]
                                  [--out DIR] [--layer L] [--probe] [--json]
    curious-robot autoencoder --store DB --steps N --out DIR
    curious-robot reproduce [--scale S] [--out DIR] [--store DB]

Exit codes: 0 done, 1 unusable input (checkpoint, folder, image, store), 2 bad arguments
(for ``eval-categories`` also a checkpoint path that does not exist).
Module-level imports stay light (``curious-robot --help`` imports this module).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from curious_robot.commands import image_training
from curious_robot.evaluation import DEFAULT_LAYER
from curious_robot.learning.config import ModelConfig

log = logging.getLogger(__name__)

#: Where ``eval --retrieval`` without ``--image-folder`` renders (once) its evaluation set.
DEFAULT_EVALSET = "data/evalset"
LAYER_CHOICES = ("conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6", "all")


def register(sub) -> None:
    p = sub.add_parser("eval", help="features of a frozen root: 1-NN / linear-probe accuracy "
                       "on an image folder, or held-out instance retrieval")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint.pt of train / autoencoder, 'default' (the shipped "
                        "model, models/README.md) or 'random' (random init)")
    p.add_argument("--image-folder", default=None,
                   help="one sub-folder per class (optionally inside train/ and test/); with "
                        "--retrieval one sub-folder per object instance (default: "
                        f"{DEFAULT_EVALSET}/retrieval, rendered on first use)")
    p.add_argument("--retrieval", action="store_true",
                   help="instance retrieval recall@1 / @5 instead of classification")
    p.add_argument("--layer", choices=LAYER_CHOICES, default=DEFAULT_LAYER,
                   help=f"root layer to read (default {DEFAULT_LAYER}); 'all' reports each")
    p.add_argument("--input-size", type=int, default=None,
                   help=f"input px of a 'random' root (default {ModelConfig.input_size}, as "
                        "train)")
    p.add_argument("--width", type=float, default=None,
                   help=f"width multiplier of a 'random' root (default {ModelConfig.width:g}, "
                        "as train)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of a 'random' root (default %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default %(default)s: torch's own choice)")
    p.add_argument("--neighbours", default=None, metavar="PNG",
                   help="also draw queries and their top-5 neighbours into this PNG "
                        "(retrieval folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval)

    p = sub.add_parser("evalset", help="render held-out objects into image folders for eval")
    p.add_argument("--out", required=True, help="output folder (its retrieval/ and classify/ "
                   "are replaced)")
    p.add_argument("--objects", type=int, default=None,
                   help="held-out objects to render (default: all of the held-out split)")
    p.add_argument("--views", type=int, default=8, help="views per object (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed (default %(default)s)")
    p.set_defaults(func=run_evalset)

    from curious_robot.evaluation import categories

    p = sub.add_parser("eval-categories", help="features of a frozen root: 1-NN category "
                       "accuracy on everyday object categories, neighbours from other "
                       "instances only (validation split unless --split test)")
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint.pt of train / autoencoder, 'default' (the shipped "
                        "model, models/README.md) or 'random' (random init)")
    p.add_argument("--split", choices=categories.SPLITS, default="val",
                   help="instance split to evaluate (default %(default)s; test is for "
                        "reproduce's final stage only)")
    p.add_argument("--out", default=categories.DEFAULT_FOLDER,
                   help="folder of the category set, rendered there on first use or when "
                        "made with other parameters (default %(default)s)")
    p.add_argument("--instances", type=int, default=categories.DEFAULT_INSTANCES,
                   help="instances per category, both splits (default %(default)s)")
    p.add_argument("--views", type=int, default=categories.DEFAULT_VIEWS,
                   help="views per instance (default %(default)s)")
    p.add_argument("--layer", choices=LAYER_CHOICES, default="all",
                   help="root layer to read (default %(default)s: each layer)")
    p.add_argument("--probe", action="store_true",
                   help="add a linear probe, cross-validated over instances (minutes, where "
                        "the 1-NN takes seconds)")
    p.add_argument("--input-size", type=int, default=None,
                   help=f"input px of a 'random' root (default {ModelConfig.input_size})")
    p.add_argument("--width", type=float, default=None,
                   help=f"width multiplier of a 'random' root (default {ModelConfig.width:g})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of a 'random' root (default %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default %(default)s: torch's own choice)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_eval_categories)

    p = sub.add_parser("autoencoder", help="train the auto-encoder baseline (same root) on "
                       "every stored training image")
    image_training.add_arguments(p)
    p.set_defaults(func=run_autoencoder)

    from curious_robot.evaluation.reproduce import add_arguments

    p = sub.add_parser("reproduce", help="collect -> train every variant -> evaluate -> "
                       "results/table.md, chart and JSON (resumable)")
    add_arguments(p)
    p.set_defaults(func=run_reproduce)


def _print_table(rows: dict, keys: tuple[str, ...]) -> None:
    print("layer   " + "  ".join(f"{k:>15}" for k in keys))
    for layer, r in rows.items():
        print(f"{layer:<7} " + "  ".join(f"{r[k]:>15.4f}" if isinstance(r[k], float)
                                         else f"{r[k]:>15}" for k in keys))


def ensure_evalset(folder: str | Path = DEFAULT_EVALSET) -> Path:
    """``folder``, rendered with the defaults when it has no meta.json yet."""
    from curious_robot.evaluation.evalset import META_NAME, generate

    folder = Path(folder)
    if not (folder / META_NAME).is_file():
        log.info("rendering the held-out evaluation set into %s (once)", folder)
        generate(folder)
    return folder


def run_eval(args) -> int:
    import torch

    from curious_robot.evaluation import evaluate
    from curious_robot.evaluation.features import load_root
    from curious_robot.evaluation.folders import ImageFolderError
    from curious_robot.learning.checkpoint import CheckpointError
    from curious_robot.learning.networks import LAYERS

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if not args.retrieval and args.image_folder is None:
        print("curious-robot eval: --image-folder is required (or --retrieval)",
              file=sys.stderr)
        return 2
    layers = LAYERS if args.layer == "all" else (args.layer,)
    t0 = time.monotonic()
    try:
        root = load_root(args.checkpoint, args.input_size, args.width, args.seed)
        if args.retrieval:
            folder = Path(args.image_folder) if args.image_folder else \
                ensure_evalset() / "retrieval"
            rows = evaluate.retrieval(root, folder, layers)
            keys: tuple[str, ...] = ("recall_at_1", "recall_at_5", "n_images", "n_instances")
        else:
            folder = Path(args.image_folder)
            rows = evaluate.classification(root, folder, layers)
            keys = ("nn_accuracy", "linear_accuracy", "n_train", "n_test")
        if args.neighbours:
            nb_folder = folder if args.retrieval else ensure_evalset() / "retrieval"
            evaluate.neighbour_figure(root, nb_folder, args.neighbours, layers[-1]
                                      if args.layer != "all" else DEFAULT_LAYER,
                                      title=str(args.checkpoint))
    except (CheckpointError, ImageFolderError, ValueError, OSError) as exc:
        print(f"curious-robot eval: {exc}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    main_layer = DEFAULT_LAYER if args.layer == "all" else args.layer
    result = dict(rows[main_layer])
    result.update({"checkpoint": str(args.checkpoint), "image_folder": str(folder),
                   "seconds": round(seconds, 2)})
    if args.layer == "all":
        result["by_layer"] = rows
    if args.json:
        print(json.dumps(result))
    else:
        _print_table(rows, keys)
        print(f"({seconds:.1f} s)")
    return 0


def run_evalset(args) -> int:
    from curious_robot.evaluation.evalset import generate

    def progress(done, total):
        if done == total or done % max(1, total // 10) == 0:
            log.info("rendered %d/%d objects", done, total)

    try:
        meta = generate(args.out, args.objects, args.views, args.seed, progress=progress)
    except (ValueError, OSError) as exc:
        print(f"curious-robot evalset: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    print(f"{meta['n_images']} images of {meta['n_objects']} held-out objects in {args.out}: "
          f"retrieval/ ({meta['n_objects']} instances), classify/ "
          f"({len(meta['classes'])} classes: {', '.join(meta['classes'])})")
    return 0


def run_eval_categories(args) -> int:
    import torch

    from curious_robot.evaluation import categories
    from curious_robot.evaluation.features import RANDOM, load_root
    from curious_robot.evaluation.folders import ImageFolderError
    from curious_robot.learning.checkpoint import CheckpointError
    from curious_robot.learning.networks import LAYERS
    from curious_robot.paths import resolve_checkpoint
    from curious_robot.stdio import stdout_to_stderr

    name = "curious-robot eval-categories"
    problem = None
    if args.instances < 4:
        problem = f"--instances must be >= 4 (two per split), got {args.instances}"
    elif args.views < 2:
        problem = f"--views must be >= 2, got {args.views}"
    elif Path(args.out).exists() and not Path(args.out).is_dir():
        problem = f"--out {args.out} is a file, not a folder"
    elif args.checkpoint != RANDOM:
        try:
            resolve_checkpoint(args.checkpoint)
        except FileNotFoundError as exc:
            problem = f"--checkpoint: {exc}"
    if problem:
        print(f"{name}: {problem}", file=sys.stderr)
        return 2
    if args.split == "test":
        print(f"{name}: WARNING: {categories.TEST_WARNING}", file=sys.stderr)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    layers = LAYERS if args.layer == "all" else (args.layer,)
    t0 = time.monotonic()
    try:
        root = load_root(args.checkpoint, args.input_size, args.width, args.seed)
        with stdout_to_stderr():  # PyBullet prints to fd 1 while rendering
            meta = categories.ensure(args.out, args.instances, args.views)
        rows = categories.evaluate(root, args.out, args.split, layers, probe=args.probe)
    except (CheckpointError, ImageFolderError, ValueError, OSError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    main_layer = DEFAULT_LAYER if args.layer == "all" else args.layer
    result = {k: v for k, v in rows[main_layer].items() if k != "per_instance"}
    result.update({"checkpoint": str(args.checkpoint), "split": args.split,
                   "folder": str(args.out), "categories": meta["categories"],
                   "seconds": round(seconds, 2), "by_layer": rows})
    if args.json:
        print(json.dumps(result))
    else:
        keys = ("nn_accuracy", "nn_accuracy_se", "recall_at_1") + \
            (("linear_accuracy",) if args.probe else ())
        _print_table(rows, keys)
        first = rows[layers[0]]
        print(f"{args.split}: {first['n_images']} images of {first['n_instances']} instances "
              f"in {first['n_categories']} categories; 1-NN from other instances only "
              f"({seconds:.1f} s)")
    return 0


def run_autoencoder(args) -> int:
    def train(progress):
        from curious_robot.evaluation.baselines import AutoencoderConfig, train_autoencoder

        cfg = AutoencoderConfig(batch_size=args.batch_size, lr=args.lr, seed=args.seed)
        return train_autoencoder(args.store, args.out, args.steps, args.input_size,
                                 args.width, cfg, progress=progress)

    return image_training.run(
        "autoencoder", args, train,
        lambda s: f"step {s['step']}, loss {s['loss']:.4f}, {s['checkpoint']}",
        lambda loss: f"loss {loss:.4f}")


def run_reproduce(args) -> int:
    from curious_robot.evaluation.reproduce import run

    return run(args)
