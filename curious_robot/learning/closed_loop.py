"""``curious-robot eval-grasp``: grasp success of the selection policies in a closed loop.

    curious-robot eval-grasp --checkpoint runs/a --attempts 200 [--policy all]
        [--split held_out] [--seed 0] [--objects 8] [--reset-every 20] [--json]

In-process, no ROS: the collect loop of one robot reduced to grasping. For each policy a
new :class:`~curious_robot.world.World` (``object_split``, ``--objects`` objects) runs
``--attempts`` attempts of

    capture -> detect_objects -> a detected object at random -> world.patch at its
    centroid -> the policy's selection -> world.grasp -> success; world.maintain()

Fair comparison: every policy sees the same scene sequence. The scene is rebuilt every
``--reset-every`` attempts from a seed that depends only on (``--seed``, block number),
and each attempt's object pick and selection draw from generators seeded by (``--seed``,
attempt number), so the first attempt of every block is exactly paired across policies;
later attempts of a block may differ where earlier grasps moved objects differently
(``--reset-every 1`` pairs every attempt, at ~0.08 s more per attempt).

Policies: ``random`` (:func:`curious_robot.selection.select_random`: a random angle at the
centroid, the exploration policy the data was collected with), ``model`` and ``curious``
(:mod:`curious_robot.learning.policy`). Printed per policy: success rate with a 95 %
Wilson interval, and the mean angle error against the ground-truth angle across the
object's narrow side (a diagnostic the simulation can give: 45 deg for uniform angles).
A grasp the world refuses (``ValueError``, e.g. out of reach) counts as a failure and
as an error. Exit codes: 0 done, 1 unusable checkpoint, 2 bad arguments.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time

from curious_robot.stdio import stdout_to_stderr  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

POLICY_CHOICES = ("random", "model", "curious")


def register(sub) -> None:
    p = sub.add_parser("eval-grasp",
                       help="grasp success of random / model / curious selection in the "
                            "simulation")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint file or training folder, or 'default' (the shipped "
                        "model, models/README.md); not needed for --policy random")
    p.add_argument("--attempts", type=int, default=200, help="grasp attempts per policy")
    p.add_argument("--policy", choices=(*POLICY_CHOICES, "all"), default="all",
                   help="policy to evaluate (default %(default)s: random, model, curious)")
    p.add_argument("--split", choices=("train", "held_out", "all"), default="held_out",
                   help="object set on the table (default %(default)s: objects never trained on)")
    p.add_argument("--seed", type=int, default=0, help="seed of the scene sequence")
    p.add_argument("--objects", type=int, default=8, help="objects on the table")
    p.add_argument("--reset-every", type=int, default=20,
                   help="attempts between scene resets (default %(default)s; 1 pairs every "
                        "attempt)")
    p.add_argument("--device", default="cpu", help="torch device of the policy")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object {policy: {attempts, success_rate, ...}}")
    p.set_defaults(func=run_eval)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (``z`` = 1.96) Wilson score interval of a binomial proportion."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def angle_error(a: float, b: float) -> float:
    """Distance of two grasp angles (period pi), in [0, pi/2]."""
    d = (a - b) % math.pi
    return min(d, math.pi - d)


def make_selector(name: str, checkpoint, device="cpu"):
    """A callable (target, patch, patch_size, rng, ws) -> Selection for policy ``name``."""
    from curious_robot.selection import select_random

    if name == "random":
        return lambda target, patch, size, rng, ws: select_random("grasp", target, rng, ws)
    from curious_robot.learning.policy import load_policy

    policy = load_policy("grasp", checkpoint, name, device)
    policy.reload = False  # one checkpoint for the whole evaluation
    return policy.select


def evaluate_policy(name: str, select, *, attempts: int, split: str, seed: int,
                    objects: int, reset_every: int, progress=None) -> dict:
    """Run ``attempts`` closed-loop grasps with ``select``; returns the policy's summary."""
    import numpy as np

    from curious_robot.perception import detect_objects
    from curious_robot.selection import Target, Workspace
    from curious_robot.world import World, WorldConfig

    successes = errors = 0
    select_s = 0.0
    angle_errors: list[float] = []
    t_start = time.perf_counter()
    with World(WorldConfig(object_split=split, num_objects=objects), seed=seed) as world:
        (x0, x1), (y0, y1), _ = world.workspace
        ws = Workspace(x0, x1, y0, y1)
        cam = world.camera
        extent = float(world.config.patch_extent)
        block = -1
        for i in range(attempts):
            if i // reset_every != block:  # the same scenes for every policy
                block = i // reset_every
                world.rng = np.random.default_rng([seed, block])
                world.reset()
            dets = []
            for retry in range(3):
                _rgb, depth = world.capture()
                dets, _plane = detect_objects(depth, cam.fx, cam.fy, cam.cx, cam.cy,
                                              cam.pose, seed=seed)
                if dets:
                    break
                world.rng = np.random.default_rng([seed, block, i, retry])
                world.reset()
            pick = np.random.default_rng([seed, i, 1])
            rng = np.random.default_rng([seed, i, 2])
            success = False
            if dets:
                d = dets[int(pick.integers(len(dets)))]
                cx, cy = float(d.centroid[0]), float(d.centroid[1])
                target = Target(cx, cy, float(d.yaw), float(max(d.size[0], 0.01)),
                                float(max(d.size[1], 0.01)))
                patch, _depth = world.patch(cx, cy)
                t0 = time.perf_counter()
                sel = select(target, patch, extent, rng, ws)
                select_s += time.perf_counter() - t0
                x, y, angle = (float(v) for v in sel.action[:3])
                near = world.object_at(x, y)
                if near is not None:
                    angle_errors.append(angle_error(angle, world.best_grasp_angle(
                        near.object_id)))
                try:
                    success = bool(world.grasp(x, y, angle).success)
                except ValueError as exc:
                    errors += 1
                    log.debug("grasp refused: %s", exc)
            else:
                errors += 1
            successes += success
            world.maintain()
            if progress is not None:
                progress(name, i + 1, successes)
    lo, hi = wilson_interval(successes, attempts)
    seconds = time.perf_counter() - t_start
    return {
        "attempts": attempts,
        "successes": successes,
        "success_rate": successes / attempts if attempts else 0.0,
        "ci95": [lo, hi],
        "errors": errors,
        "angle_error_deg": (math.degrees(float(np.mean(angle_errors)))
                            if angle_errors else None),
        "select_ms": 1000.0 * select_s / max(1, attempts),
        "seconds": seconds,
        "seconds_per_attempt": seconds / max(1, attempts),
    }


class _Progress:
    """tqdm on a terminal, else a log line every tenth of each policy's attempts."""

    def __init__(self, total: int, per_policy: int):
        self.tty = sys.stderr.isatty()
        self.every = max(1, per_policy // 10)
        self.bar = None
        self.done = 0
        if self.tty:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, file=sys.stderr, unit="grasp", dynamic_ncols=True)

    def __call__(self, name: str, n: int, successes: int) -> None:
        self.done += 1
        text = f"{name} {successes}/{n} = {successes / n:.0%}"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(text, refresh=False)
        elif n % self.every == 0:
            log.info("%s", text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def format_table(results: dict) -> str:
    lines = [f"{'policy':<8} {'success':>8}  {'95% Wilson':>15}  {'n':>5}  "
             f"{'angle err':>9}  {'select':>8}"]
    for name, r in results.items():
        lo, hi = r["ci95"]
        err = "-" if r["angle_error_deg"] is None else f"{r['angle_error_deg']:.1f} deg"
        lines.append(f"{name:<8} {r['success_rate']:>8.3f}  [{lo:.3f}, {hi:.3f}]  "
                     f"{r['attempts']:>5}  {err:>9}  {r['select_ms']:>5.1f} ms")
    return "\n".join(lines)


def _is_fd1(stream) -> bool:
    try:
        return stream.fileno() == 1
    except (OSError, ValueError, AttributeError):
        return False


def run_eval(args) -> int:
    names = list(POLICY_CHOICES) if args.policy == "all" else [args.policy]
    for flag, value, ok in (("--attempts", args.attempts, args.attempts >= 1),
                            ("--objects", args.objects, args.objects >= 1),
                            ("--reset-every", args.reset_every, args.reset_every >= 1)):
        if not ok:
            print(f"curious-robot eval-grasp: {flag} must be >= 1, got {value}",
                  file=sys.stderr)
            return 2
    needs_model = any(n != "random" for n in names)
    if needs_model and not args.checkpoint:
        print("curious-robot eval-grasp: --checkpoint is needed for the model and curious "
              "policies", file=sys.stderr)
        return 2
    if needs_model:
        from curious_robot.paths import resolve_checkpoint

        try:
            args.checkpoint = str(resolve_checkpoint(args.checkpoint))
        except FileNotFoundError as exc:
            print(f"curious-robot eval-grasp: {exc}", file=sys.stderr)
            return 2
    import torch

    from curious_robot.learning.checkpoint import CheckpointError

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        selectors = {n: make_selector(n, args.checkpoint, args.device) for n in names}
    except (CheckpointError, ValueError, RuntimeError) as exc:
        print(f"curious-robot eval-grasp: {exc}", file=sys.stderr)
        return 1
    step = next((getattr(getattr(s, "__self__", None), "step", None)
                 for s in selectors.values() if hasattr(s, "__self__")), None)
    log.info("eval-grasp: %s, %d attempts each, split %s, %d objects, seed %d%s",
             ", ".join(names), args.attempts, args.split, args.objects, args.seed,
             f", checkpoint step {step}" if step is not None else "")
    progress = _Progress(len(names) * args.attempts, args.attempts)
    results = {}
    with stdout_to_stderr() as out:
        try:
            for name in names:
                results[name] = evaluate_policy(
                    name, selectors[name], attempts=args.attempts, split=args.split,
                    seed=args.seed, objects=args.objects, reset_every=args.reset_every,
                    progress=progress)
                if step is not None and name != "random":
                    results[name]["checkpoint_step"] = step
        finally:
            progress.close()
        text = json.dumps(results) if args.json else format_table(results)
        if _is_fd1(sys.stdout):
            print(text, file=out)
        else:  # stdout replaced (a test's capture): write where the caller reads
            print(text)
    return 0
