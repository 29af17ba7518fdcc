"""Time the training step on a real store: batch sampling (decode, crops, augmentation)
and the forward / backward pass per task, for one training process or several at once.

    .venv/bin/python tools/bench_train_step.py --store runs/reproduce/scale-1/replay.db
    .venv/bin/python tools/bench_train_step.py --store S --procs 2 --threads 1

With ``--procs N`` it starts N copies of itself at once (each ``--threads`` torch threads)
and reports each one's seconds per step and the steps per second of all together: what
``reproduce --jobs`` gains over one training with all the cores. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict


def one(store_path: str, steps: int, warmup: int, threads: int) -> dict:
    import torch

    from curious_robot.learning import data
    from curious_robot.learning.config import TrainConfig
    from curious_robot.learning.train import Trainer, task_loss
    from curious_robot.store import ReplayStore

    if threads > 0:
        torch.set_num_threads(threads)
    store = ReplayStore(store_path, readonly=True)
    trainer = Trainer(store, None, TrainConfig())
    sample, forward, backward = defaultdict(float), defaultdict(float), defaultdict(float)
    t_start = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            for timings in (sample, forward, backward):
                timings.clear()
            t_start = time.perf_counter()
        batches = {}
        for task in trainer.cfg.tasks:
            t0 = time.perf_counter()
            b = trainer.sample_batch(task)
            sample[task] += time.perf_counter() - t0
            if b is not None:
                batches[task] = b
        trainer.optimizer.zero_grad(set_to_none=True)
        for task, b in batches.items():
            t0 = time.perf_counter()
            loss = task_loss(trainer.model, task, data.to_tensors(b, trainer.device),
                             trainer.cfg)
            t1 = time.perf_counter()
            loss.backward()
            forward[task] += t1 - t0
            backward[task] += time.perf_counter() - t1
        trainer.optimizer.step()
    total = time.perf_counter() - t_start
    ms = {t: {"sample": round(1e3 * sample[t] / steps, 1),
              "forward": round(1e3 * forward[t] / steps, 1),
              "backward": round(1e3 * backward[t] / steps, 1)} for t in sample}
    return {"threads": torch.get_num_threads(), "steps": steps,
            "s_per_step": round(total / steps, 3),
            "sample_ms_per_step": round(sum(v["sample"] for v in ms.values()), 1),
            "per_task_ms": ms}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True)
    p.add_argument("--steps", type=int, default=12, help="timed steps (default %(default)s)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    p.add_argument("--procs", type=int, default=1, help="trainings at once (default 1)")
    args = p.parse_args()
    if args.procs <= 1:
        print(json.dumps(one(args.store, args.steps, args.warmup, args.threads)))
        return 0
    cmd = [sys.executable, __file__, "--store", args.store, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
             for _ in range(args.procs)]
    each = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    print(json.dumps({"procs": args.procs, "threads": args.threads,
                      "s_per_step": [e["s_per_step"] for e in each],
                      "steps_per_s_all": round(sum(1 / e["s_per_step"] for e in each), 3),
                      "each": each}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
