"""``curious-robot bench curiosity``: what curiosity costs the robot's time. Interactions
per second through the whole ROS graph under two collection policies, one robot, in the
same session, paired by seed.

    curious-robot bench curiosity --seconds 300 --seeds 10,11,12,13

Per seed it makes ``bench graph``'s measurement (a fresh graph on a fresh store, one
robot, counted for ``--seconds`` once it stores) with each policy's ``--set`` overrides
(``curious-robot curiosity``'s, :func:`curious_robot.evaluation.curiosity.policy_sets`),
online training on and capped at ``--steps-per-interaction`` steps per stored interaction
as in that experiment, but at ``collect``'s learner duty (0.5; the experiment runs the
learner at 1.0: ``--set learner.duty=1.0`` measures that),
the model-guided nodes starting from ``--checkpoint`` (default: the shipped model, so
that curiosity chooses from the first interaction; ``none``: from scratch, random until
the learner's first checkpoint, which in a short run is much of it);
which policy goes first alternates from seed to seed, so a machine that slows down over
the session does not favour one. The managers' goodbye lines say where each run's time
went (ms per interaction choosing the object, choosing the action, acting). Keys:

  seconds, steps_per_interaction, set, policies, pairs (per seed: each policy's
  ``bench graph`` result, ``ratio``: the second policy's per_s over the first's, and
  ``ratio_at_baseline_mix``: the same in robot-seconds per record at the first's task
  mix, which leaves out what choosing other tasks changes), ratio and
  ratio_at_baseline_mix ({mean, lo, hi, n}: 95 % t interval over the seeds),
  ms_per_interaction (per policy, means over the seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", default="random,curious",
                        help="two collection policies of `curious-robot curiosity`, the "
                             "baseline first (default %(default)s)")
    parser.add_argument("--seeds", default="0,1,2",
                        help="comma-separated seeds, one pair of runs each "
                             "(default %(default)s)")
    parser.add_argument("--seconds", type=float, default=300.0,
                        help="measuring window per run, after start-up (default %(default)s)")
    parser.add_argument("--steps-per-interaction", type=float, default=0.5,
                        help="online training capped at this many steps per stored "
                             "interaction, as the curiosity experiment's option, at "
                             "collect's learner duty (default %(default)s; 0: the learner's "
                             "own pace)")
    parser.add_argument("--checkpoint", default="default",
                        help="the model curious selectors and manager start from until the "
                             "learner announces its own: a checkpoint file, a training "
                             "folder, 'default' (the shipped model: curiosity acts from the "
                             "first interaction) or 'none' (from scratch: random until the "
                             "learner's first checkpoint, as `curious-robot curiosity` "
                             "starts) (default %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a parameter for both policies as collect's --set "
                             "does (repeatable), e.g. learner.duty=1.0")
    parser.add_argument("--startup-timeout", type=float, default=180.0,
                        help="seconds the robot gets to store its first interaction "
                             "(default %(default)s)")


def interval(values: list[float]) -> dict:
    """{mean, lo, hi, n}: the 95 % Student t interval of the mean (lo = hi = mean for one
    value), to 3 decimals."""
    from curious_robot.evaluation.curiosity import _interval

    return {k: v if k == "n" else round(v, 3) for k, v in _interval(values).items()}


def parse(args) -> tuple[list[str], list[int], Path | None]:
    """(policies, seeds, checkpoint file or None) from the command line; ValueError naming
    what is wrong."""
    from curious_robot.evaluation.curiosity import POLICIES
    from curious_robot.evaluation.seeds import parse_seeds

    policies = [p.strip() for p in str(args.policies).split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"--policies: unknown policy {unknown[0]!r}; known: "
                         f"{', '.join(POLICIES)}")
    if len(policies) != 2 or policies[0] == policies[1]:
        raise ValueError(f"--policies {args.policies!r}: give two different policies, the "
                         "baseline first, e.g. random,curious")
    seeds = parse_seeds(args.seeds)
    if not args.seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    if not (math.isfinite(args.steps_per_interaction) and args.steps_per_interaction >= 0):
        raise ValueError(f"--steps-per-interaction must be >= 0, got "
                         f"{args.steps_per_interaction}")
    checkpoint = None
    if str(args.checkpoint).strip() != "none":
        from curious_robot.paths import resolve_checkpoint
        from curious_robot.learning.predict import _checkpoint_file

        try:
            checkpoint = _checkpoint_file(resolve_checkpoint(args.checkpoint)).resolve()
        except FileNotFoundError as exc:
            raise ValueError(f"--checkpoint: {exc}") from None
        if not checkpoint.is_file():
            raise ValueError(f"--checkpoint {args.checkpoint!r}: no checkpoint file at "
                             f"{checkpoint}")
    return policies, seeds, checkpoint


def _per_task(store) -> tuple[dict[str, float], dict[str, float]]:
    """({task: share of the records}, {task: mean robot-seconds per record}) of a store
    (a record's duration: choosing its object and action, and the motion)."""
    from curious_robot.evaluation.curiosity import _records

    count: dict[str, int] = {}
    secs: dict[str, float] = {}
    for r in _records(store):
        count[r.task] = count.get(r.task, 0) + 1
        secs[r.task] = secs.get(r.task, 0.0) + max(0.0, r.stamp_end - r.stamp_start)
    n = sum(count.values()) or 1
    return {t: c / n for t, c in count.items()}, {t: secs[t] / c for t, c in count.items()}


def ratio_at_mix(base_store, other_store) -> float | None:
    """The other run's speed over the baseline run's, both in robot-seconds per record
    at the baseline's task mix: what the other policy's choices within each task cost,
    its choice of tasks left out (an inspect takes longer than a grasp). None when the
    other run has no record of a task the baseline did."""
    mix, base = _per_task(base_store)
    _, other = _per_task(other_store)
    if not mix or any(t not in other for t in mix):
        return None
    return sum(mix[t] * base[t] for t in mix) / sum(mix[t] * other[t] for t in mix)


def policy_sets(policy: str, args, checkpoint: Path | None = None) -> list[str]:
    """Every ``--set`` of one run: the experiment's pacing, the user's, the policy's (its
    model-guided nodes starting from ``checkpoint``)."""
    from curious_robot.evaluation.curiosity import policy_sets as levels

    k = args.steps_per_interaction
    paced = [f"learner.steps_per_interaction={k!r}"] if k > 0 else []
    return [*paced, *args.set, *levels(policy, checkpoint)]


def run(args: argparse.Namespace) -> int:
    from curious_robot.commands.bench_graph import graph_run

    try:
        policies, seeds, checkpoint = parse(args)
        from curious_robot.commands.collect import _overrides
        from curious_robot.graph import collect_graph

        for policy in policies:
            _overrides(collect_graph(robots=1), policy_sets(policy, args, checkpoint))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    base, other = policies
    pairs = []
    for i, seed in enumerate(seeds):
        pair: dict = {"seed": seed}
        for policy in (policies if i % 2 == 0 else policies[::-1]):
            say(f"seed {seed}, {policy}: {args.seconds:.0f} s ...")
            try:
                r = graph_run(1, args.seconds, seed, startup_timeout=args.startup_timeout,
                              log=say, sets=tuple(policy_sets(policy, args, checkpoint)))
            except RuntimeError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            pair[policy] = r
            say(f"  {policy}: {r['per_s']:.2f}/s; ms per interaction {r['ms_per_interaction']}")
        pair["ratio"] = round(pair[other]["per_s"] / pair[base]["per_s"], 3)
        at_mix = ratio_at_mix(Path(pair[base]["logs"]) / "replay.db",
                              Path(pair[other]["logs"]) / "replay.db")
        pair["ratio_at_baseline_mix"] = None if at_mix is None else round(at_mix, 3)
        pairs.append(pair)
    ms = {}
    for policy in policies:
        keys = sorted({k for p in pairs for k in p[policy]["ms_per_interaction"]})
        ms[policy] = {k: round(sum(p[policy]["ms_per_interaction"].get(k, 0.0)
                                   for p in pairs) / len(pairs), 1) for k in keys}
    result = {"seconds": args.seconds, "steps_per_interaction": args.steps_per_interaction,
              "checkpoint": None if checkpoint is None else str(checkpoint),
              "set": list(args.set), "policies": policies, "pairs": pairs,
              "ratio": interval([p["ratio"] for p in pairs]), "ms_per_interaction": ms}
    at_mix = [p["ratio_at_baseline_mix"] for p in pairs if p["ratio_at_baseline_mix"]]
    result["ratio_at_baseline_mix"] = interval(at_mix) if at_mix else None
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'seed':>5}{base + '/s':>12}{other + '/s':>12}{'ratio':>8}{'at ' + base + ' mix':>16}")
    for p in pairs:
        mixed = p["ratio_at_baseline_mix"]
        print(f"{p['seed']:5d}{p[base]['per_s']:12.2f}{p[other]['per_s']:12.2f}"
              f"{p['ratio']:8.3f}{'-' if mixed is None else f'{mixed:.3f}':>16}")
    for key, what in (("ratio", "interactions/s"),
                      ("ratio_at_baseline_mix", f"robot-seconds at {base}'s task mix")):
        r = result[key]
        if r:
            print(f"{other} / {base}, {what}: {r['mean']:.3f} [{r['lo']:.3f}, "
                  f"{r['hi']:.3f}] (95 % t interval over {r['n']} seed(s))")
    for policy in policies:
        parts = ", ".join(f"{k.replace('_', ' ')} {v:.0f}" for k, v in ms[policy].items())
        print(f"{policy}: mean ms per interaction: {parts or 'not reported'}")
    return 0
