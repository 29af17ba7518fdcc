"""``curious-robot bench learner``: training throughput and grasp inference latency.

Synthetic interactions in memory (no store): each timed cycle builds one batch per task
from records (patch rotation, resizing: the CPU work of real training, minus SQLite and PNG
decoding) and runs the full four-task cycle (grasp, push, poke, identity) with one
optimizer step. A *sample* is one record: a cycle trains on ``4 * batch_size`` of them
(a push record feeds two images to the root, an identity record four).
"""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger(__name__)

SIZES = (96, 128)


def add_arguments(parser) -> None:
    parser.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    from curious_robot.learning.config import ModelConfig

    parser.add_argument("--width", type=float, default=ModelConfig.width,
                        help="channel width multiplier (default %(default)s, as `train`)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="records per task per cycle (default %(default)s)")
    parser.add_argument("--cycles", type=int, default=3, help="timed cycles per size")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (default %(default)s: torch's own choice); 1 "
                             "is often "
                             "faster on a machine whose cores are busy with other work")


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(size: int, device, width: float, batch_size: int, cycles: int) -> dict:
    """Samples per second of training and ms per grasp forward at input ``size``."""
    import numpy as np
    import torch

    from curious_robot import tasks as registry
    from curious_robot.learning import data
    from curious_robot.learning.networks import ModelConfig
    from curious_robot.learning.synthetic import synthetic_interactions
    from curious_robot.learning.train import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    records = synthetic_interactions(batch_size, rng, size=128, held_out_share=0)
    specs = [registry.get(t) for t in registry.trained_by_default()]
    by_task = {t.name: [r for r in records if r.task == t.name] for t in specs}
    stats = {t.name: data.NormStats.fit(t.targets(by_task[t.name]))
             for t in specs if t.target is not None}
    stats.update({key: data.NormStats.fit([fn(r) for r in by_task[t.name]])
                  for t in specs for key, fn in t.extra_targets.items()})
    trainer = Trainer(None, ModelConfig(input_size=size, width=width),
                      TrainConfig(batch_size=batch_size), device)

    def batches():
        return {t.name: {**t.make_batch(by_task[t.name], size, rng, stats.get(t.name),
                                        trainer.cfg, trainer.model_cfg.view(t.name)),
                         **data.extra_targets(t, by_task[t.name], stats)} for t in specs}

    trainer.cycle(batches())  # warm-up (allocator, cuDNN autotuning)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(cycles):
        trainer.cycle(batches())
    _sync(device)
    elapsed = time.perf_counter() - t0

    from curious_robot.learning.predict import inference_model

    model = inference_model(trainer.model, device)  # as the selectors run it
    patch = data.to_tensors({"x": data.stack([by_task["grasp"][0].before], size)}, device)["x"]
    patch = patch.contiguous(memory_format=torch.channels_last)
    times = []
    with torch.no_grad():
        for i in range(12):
            _sync(device)
            t = time.perf_counter()
            torch.sigmoid(model.grasp(patch)).cpu()
            if i >= 2:
                times.append(time.perf_counter() - t)
    return {"samples_per_s": cycles * 4 * batch_size / elapsed,
            "cycle_s": elapsed / cycles,
            "grasp_forward_ms": 1000.0 * float(np.median(times)),
            "select_ms": select_ms(model, trainer.stats or stats, rng),
            "parameters": sum(p.numel() for p in model.parameters())}


def select_ms(model, stats, rng) -> float:
    """Median ms of one model-guided selection (the slowest of every arm task's selectors
    under the "model" and "curious" policies), as a selector node answers it."""
    import numpy as np

    from curious_robot import tasks as registry
    from curious_robot.learning.policy import Policy
    from curious_robot.learning.predict import Predictor
    from curious_robot.selection import Target, Workspace

    patch = np.full((120, 120, 3), 90, np.uint8)
    target, ws = Target(0.0, 0.0, 0.2, 0.08, 0.04), Workspace()
    worst = 0.0
    for task in registry.names("arm"):
        for policy in ("model", "curious"):
            pol = Policy(task, Predictor(model, stats), policy, reload=False)
            pol.select(target, patch, 0.12, rng, ws)
            times = []
            for _ in range(7):
                t = time.perf_counter()
                pol.select(target, patch, 0.12, rng, ws)
                times.append(time.perf_counter() - t)
            worst = max(worst, 1000.0 * float(np.median(times)))
    return worst


def run(args) -> int:
    import torch

    device = torch.device(args.device)
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("curious-robot bench learner: CUDA is not available here")
        return 2
    result: dict = {"device": str(device), "width": args.width, "batch_size": args.batch_size,
                    "threads": torch.get_num_threads()}
    for size in SIZES:
        m = measure(size, device, args.width, args.batch_size, args.cycles)
        for key, value in m.items():
            result[f"{key}_{size}"] = value
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"learner on {device} (width {args.width}, batch {args.batch_size} per task, "
          f"{result['threads']} threads)")
    print(f"{'input':>6} {'samples/s':>10} {'cycle s':>8} {'grasp fwd ms':>13} "
          f"{'select ms':>10} {'params':>10}")
    for size in SIZES:
        print(f"{size:>6} {result[f'samples_per_s_{size}']:>10.1f} "
              f"{result[f'cycle_s_{size}']:>8.2f} {result[f'grasp_forward_ms_{size}']:>13.2f} "
              f"{result[f'select_ms_{size}']:>10.2f} {result[f'parameters_{size}']:>10d}")
    return 0
