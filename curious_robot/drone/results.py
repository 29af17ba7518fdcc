"""``curious-robot reproduce --mode drone`` (``make drone-results``): the drone's numbers,
rerunnable. Stages, each skipped when its output is in the work folder, so an interrupted
run continues where it stopped:

1. data    the crash-collecting pilot, in-process (``drone-data``'s code), in ``rooms``
           training rooms and ``held_out_rooms`` held-out ones (their frames are marked
           held out: never trained on, they give the crash head's held-out accuracy),
           ``crashes`` collisions each -> WORK/drone.db (WORK/data.json when done).
2. train   ``curious-robot train --tasks crash --steps STEPS`` -> WORK/crash/.
3. export  the crash net's model file (no optimizer state, float16 weights) ->
           WORK/drone_crash.pt; what models/drone_crash.pt ships is this file of the
           recorded run, and every number of the report is this file's.
4. eval    that model file flown against straight-line flight and random turns from the
           same start poses in the held-out rooms (``eval-drone``'s code), and its
           accuracy on the held-out crash frames.
5. report  OUT/results.json (schema :data:`SCHEMA`), OUT/chart.png (distance of every
           flight, mean and 95 % interval per policy), OUT/table.md.

Sizes scale with ``--scale`` (1.0: about ten minutes on the shared two-core machine);
``--rooms``, ``--crashes``, ``--held-out-rooms``, ``--steps``, ``--flights`` and
``--max-time`` set them one by one.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from curious_robot.fileio import write_json

log = logging.getLogger(__name__)

SCHEMA = "curious_robot.drone_results/1"
#: Sizes at scale 1.
ROOMS, CRASHES, HELD_OUT_ROOMS, STEPS, FLIGHTS, MAX_TIME_S = 8, 8, 2, 200, 30, 15.0
POLICIES = ("learned", "straight", "random")
MODEL_NAME = "drone_crash.pt"
#: The flags that set one size each (attribute names).
SIZE_FLAGS = ("rooms", "crashes", "held_out_rooms", "steps", "flights", "max_time")
Z95 = 1.959963984540054


def sizes(args) -> dict:
    """The run's sizes: each flag as given, else its scale-1 value times ``--scale``."""
    s = args.scale

    def pick(value, base, low):
        return value if value is not None else max(low, int(round(base * s)))

    return {"rooms": pick(args.rooms, ROOMS, 1), "crashes": pick(args.crashes, CRASHES, 1),
            "held_out_rooms": pick(args.held_out_rooms, HELD_OUT_ROOMS, 1),
            "steps": pick(args.steps, STEPS, 10), "flights": pick(args.flights, FLIGHTS, 3),
            "max_time_s": float(args.max_time if args.max_time is not None
                                else max(5.0, round(MAX_TIME_S * min(1.0, s), 1)))}


def check(args, size: dict) -> str | None:
    """What is wrong with the arguments (``None``: nothing)."""
    if not args.scale > 0:
        return "--scale must be > 0"
    if args.seed < 0:
        return "--seed must be >= 0"
    for key in ("rooms", "crashes", "steps", "flights"):
        if size[key] < 1:
            return f"--{key} must be >= 1"
    if size["held_out_rooms"] < 0:
        return "--held-out-rooms must be >= 0"
    if not size["max_time_s"] > 0:
        return "--max-time must be > 0"
    if args.variants:
        return "--variants names arm variants; drone mode has none"
    if args.store:
        return "--store: drone mode collects its own store (WORK/drone.db)"
    return None


def mean_ci(values) -> dict:
    """Mean, sample standard deviation and the 95 % interval of the mean (normal
    approximation: mean +- 1.96 s / sqrt(n))."""
    x = np.asarray(values, np.float64)
    if len(x) == 0:
        return {"mean": None, "sd": None, "ci95": [None, None], "n": 0}
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    half = Z95 * sd / math.sqrt(len(x))
    m = float(x.mean())
    return {"mean": m, "sd": sd, "ci95": [m - half, m + half], "n": int(len(x))}


def summarise(flights: list[dict], names) -> tuple[dict, dict]:
    """Per policy: distance (mean, sd, 95 % interval), time, collisions; and each policy's
    distance minus straight flight's, paired over the start poses every policy flew."""
    per = {n: [f for f in flights if f["policy"] == n] for n in names}
    summary = {}
    for n, fs in per.items():
        d = mean_ci([f["distance"] for f in fs])
        summary[n] = {"flights": len(fs), "mean_distance_m": d["mean"], "sd_distance_m": d["sd"],
                      "ci95_distance_m": d["ci95"],
                      "mean_time_s": float(np.mean([f["time"] for f in fs])) if fs else None,
                      "collided": int(sum(f["collided"] for f in fs))}
    paired = {}
    base = per.get("straight", [])
    for n in names:
        if n == "straight" or not base or len(per[n]) != len(base):
            continue
        d = mean_ci([a["distance"] - b["distance"] for a, b in zip(per[n], base)])
        paired[f"{n}-straight"] = {"difference_m": d["mean"], "ci95_m": d["ci95"],
                                   "flights": d["n"]}
    return summary, paired


def render_chart(result: dict, path: Path) -> None:
    """Distance flown before a collision, every flight (dots) and each policy's mean with
    its 95 % interval (bar)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["policies"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rng = np.random.default_rng(0)
    for i, n in enumerate(names):
        d = np.array([f["distance"] for f in result["flights"] if f["policy"] == n])
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(d)), d, s=10, alpha=0.45,
                   color=f"C{i}")
        s = result["policies"][n]
        if s["mean_distance_m"] is not None:
            lo, hi = s["ci95_distance_m"]
            ax.errorbar(i + 0.3, s["mean_distance_m"],
                        yerr=[[s["mean_distance_m"] - lo], [hi - s["mean_distance_m"]]],
                        fmt="D", color="black", capsize=5)
            ax.annotate(f"{s['mean_distance_m']:.1f} m", (i + 0.36, s["mean_distance_m"]),
                        fontsize=8, va="center")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_xlim(-0.5, len(names) - 0.3)
    ax.set_ylabel("distance flown before a collision (m)")
    cfg = result["config"]
    ax.set_title(f"{result['policies'][names[0]]['flights']} flights per policy, "
                 f"{len(result['layouts'])} held-out rooms, at most {cfg['max_time_s']:g} s\n"
                 "dots: flights; diamond and bar: mean and 95 % interval", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_table(result: dict) -> str:
    cfg, data = result["config"], result["data"]
    lines = ["# Drone: distance flown before a collision in held-out rooms", "",
             f"Generated by `{result['command']}` ({result['minutes']:.1f} min). Crash data: "
             f"{cfg['rooms']} training rooms x {cfg['crashes']} collisions "
             f"({data['train']['safe']} safe / {data['train']['unsafe']} unsafe frames; "
             f"{data['held_out']['safe'] + data['held_out']['unsafe']} frames from "
             f"{cfg['held_out_rooms']} held-out rooms kept for accuracy); crash net "
             f"trained {cfg['steps']} steps; flights from the same start poses in "
             f"{len(result['layouts'])} held-out rooms, at most {cfg['max_time_s']:g} s "
             "each.", "",
             "| policy | flights | mean distance (m) | 95 % interval | mean time (s) | "
             "collided |", "|---|---:|---:|---:|---:|---:|"]
    for n, s in result["policies"].items():
        lo, hi = s["ci95_distance_m"]
        lines.append(f"| {n} | {s['flights']} | {s['mean_distance_m']:.2f} | "
                     f"[{lo:.2f}, {hi:.2f}] | {s['mean_time_s']:.1f} | {s['collided']} |")
    lines.append("")
    for key, p in result["paired"].items():
        lo, hi = p["ci95_m"]
        lines.append(f"- {key.replace('-', ' minus ')}, paired over {p['flights']} start "
                     f"poses: {p['difference_m']:+.2f} m (95 % interval [{lo:+.2f}, "
                     f"{hi:+.2f}])")
    acc = result["crash_head"]
    if acc.get("crash_accuracy") is not None:
        lines.append(f"- crash head on {acc['crash_records']} held-out frames: accuracy "
                     f"{acc['crash_accuracy']:.3f} (majority class "
                     f"{acc['crash_majority_accuracy']:.3f})")
    lines += ["", f"Model file: `{result['model']['file']}`, sha256 "
              f"`{result['model']['sha256']}`. Chart: `chart.png`; every flight: "
              "`results.json`.", ""]
    return "\n".join(lines)




def stage_data(work: Path, size: dict, seed: int) -> dict:
    from curious_robot.drone.evaluate import write_crash_data
    from curious_robot.drone.sim import load_config
    from curious_robot.store import ReplayStore

    done = work / "data.json"
    if done.is_file():
        log.info("data: collected earlier (%s)", done)
        return json.loads(done.read_text())
    store_path = work / "drone.db"
    if store_path.exists():  # an interrupted collection: start it again, not half of it
        for p in work.glob("drone.db*"):
            p.unlink()
    cfg = load_config()
    t0 = time.monotonic()
    out = {}
    with ReplayStore(store_path) as store:
        for part, rooms in (("train", [cfg.layouts.train_seed(i)
                                       for i in range(size["rooms"])]),
                            ("held_out", cfg.layouts.held_out_seeds[:size["held_out_rooms"]])):
            out[part] = write_crash_data(
                store, rooms, size["crashes"], seed=seed, config=cfg,
                progress=lambda room, c: log.info("data: room %d: %d safe, %d unsafe frames "
                                                  "so far (%.0f s)", room, c["safe"],
                                                  c["unsafe"], time.monotonic() - t0))
    out["seconds"] = round(time.monotonic() - t0, 1)
    write_json(done, out)
    return out


def stage_train(store: Path, folder: Path, steps: int, threads: int, seed: int) -> dict:
    """``curious-robot train --tasks crash`` as a subprocess (resumes from its checkpoint;
    skipped when FOLDER/done.json records these steps); its held-out metrics."""
    done = folder / "done.json"
    if done.is_file() and json.loads(done.read_text()).get("steps") == steps:
        log.info("train: done earlier (%s)", done)
        return json.loads(done.read_text())
    cmd = [sys.executable, "-m", "curious_robot.cli", "train", "--store", str(store),
           "--tasks", "crash", "--steps", str(steps), "--out", str(folder), "--json",
           "--threads", str(threads), "--seed", str(seed)]
    log.info("train: %s", " ".join(cmd[2:]))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"training the crash net failed (exit {proc.returncode})")
    try:
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        metrics = {}
    info = {"steps": steps, "metrics": metrics, "seconds": round(time.monotonic() - t0, 1)}
    write_json(done, info)
    return info


def run(args) -> int:
    from curious_robot.drone.evaluate import crash_accuracy, evaluate_policies
    from curious_robot.drone.policy import (CrashNetPolicy, CrashScorer, RandomTurnPolicy,
                                            StraightPolicy)
    from curious_robot.drone.sim import load_config
    from curious_robot.learning.checkpoint import (CheckpointError, export_model,
                                                   load_checkpoint, sha256)
    from curious_robot.store import ReplayStore

    size = sizes(args)
    problem = check(args, size)
    if problem:
        print(f"curious-robot reproduce --mode drone: {problem}", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    work = Path(args.work or f"runs/reproduce/drone-scale-{args.scale:g}"
                + (f"-seed-{args.seed}" if args.seed else ""))
    out = Path(args.out or "results/drone")
    work.mkdir(parents=True, exist_ok=True)
    settings = {"seed": args.seed, **size}
    recorded = work / "config.json"
    if recorded.is_file() and json.loads(recorded.read_text()) != settings:
        print(f"curious-robot reproduce --mode drone: {work} holds a run with other settings "
              f"({recorded.read_text().strip()}): pass another --work", file=sys.stderr)
        return 2
    write_json(recorded, settings)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    try:
        log.info("[1/5] data: %d training rooms, %d held-out rooms, %d collisions each",
                 size["rooms"], size["held_out_rooms"], size["crashes"])
        data = stage_data(work, size, args.seed)
        log.info("[2/5] train the crash net, %d steps", size["steps"])
        training = stage_train(work / "drone.db", work / "crash", size["steps"],
                               args.threads, args.seed)
        log.info("[3/5] export")
        model = work / MODEL_NAME
        export_model(work / "crash" / "checkpoint.pt", model, half=True)
        log.info("[4/5] fly %d flights per policy in held-out rooms", size["flights"])
        scorer = CrashScorer.from_checkpoint(model)
        policies = {"learned": CrashNetPolicy(scorer), "straight": StraightPolicy(),
                    "random": RandomTurnPolicy()}
        t0 = time.monotonic()
        flown = evaluate_policies(policies, size["flights"], size["max_time_s"], args.seed,
                                  load_config())
        if not flown["flights"]:
            raise RuntimeError("no flight was flown")
        fly_s = time.monotonic() - t0
        horizon = load_checkpoint(model)["config"]["train"].get("crash_horizon_s", 1.0)
        with ReplayStore(work / "drone.db", readonly=True) as store:
            accuracy = crash_accuracy(scorer.model, store, scorer.input_size, horizon)
    except (RuntimeError, CheckpointError) as exc:
        print(f"curious-robot reproduce --mode drone: {exc}", file=sys.stderr)
        return 1
    log.info("[5/5] report")
    summary, paired = summarise(flown["flights"], POLICIES)
    flags = [f"--{k.replace('_', '-')} {getattr(args, k):g}" for k in SIZE_FLAGS
             if getattr(args, k) is not None]
    command = " ".join(["curious-robot reproduce --mode drone", f"--scale {args.scale:g}",
                        *flags, *([f"--seed {args.seed}"] if args.seed else [])])
    result = {
        "schema": SCHEMA, "command": command, "config": settings,
        "minutes": round((time.monotonic() - t_start) / 60.0, 2),
        "data": data,
        "training": {"steps": training.get("steps"), "seconds": training.get("seconds"),
                     "metrics": training.get("metrics", {})},
        "model": {"file": MODEL_NAME, "bytes": model.stat().st_size,
                  "sha256": sha256(model)},
        "crash_head": accuracy, "policies": summary, "paired": paired,
        "flight_seconds": round(fly_s, 1),
        "layouts": sorted({f["layout_seed"] for f in flown["flights"]}),
        "flights": flown["flights"]}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", result)
    render_chart(result, out / "chart.png")
    (out / "table.md").write_text(render_table(result))
    log.info("wrote %s, %s, %s", out / "results.json", out / "chart.png", out / "table.md")
    print((out / "table.md").read_text())
    return 0
