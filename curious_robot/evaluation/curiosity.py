"""``curious-robot curiosity``: does curiosity make the robot learn faster?

For each policy and seed: collect through the full node graph (``curious-robot collect``,
online learning from scratch: selectors and managers follow the learner's checkpoints as
they are written) up to ``--budget`` interactions, stopping at fixed fractions of it to
evaluate the newest checkpoint. Every policy gets the same training per interaction
(``--steps-per-interaction`` K: online training paced at K steps per stored interaction,
and a learner that fell behind is trained up to K x interactions before an evaluation),
so a policy that collects more slowly does not get a better-trained model for it:

(a) held-out prediction: ``learning.metrics.evaluate`` (grasp accuracy, poke / push error)
    on one fixed set of interactions with held-out objects, collected once by the random
    policy (``DIR/heldout/replay.db``);
(b) closed-loop grasping on held-out objects (``eval-grasp --policy model --split
    held_out``; ``--attempts`` 400 gives a 95 % interval of at most +-5 points);
(c) the representation: the frozen root on the held-out renders (``evalset``; as
    ``reproduce``: nearest-neighbour shape accuracy and R@1 at ``pool5``).

Layout (resumable: every finished point is a file, a rerun skips it; collection continues
from the run's store)::

    DIR/experiment.json                  the settings; another experiment's DIR is refused
    DIR/heldout/replay.db                the fixed held-out interactions
    DIR/evalset/                         the held-out renders (c)
    DIR/runs/<policy>/seed<k>/replay.db  the run's store, replay.checkpoints/ its model
    DIR/runs/<policy>/seed<k>/point_<n>.json   the evaluation at n interactions
    DIR/runs/<policy>/seed<k>/run.json   a finished run's speed and choices (from its store)
    DIR/heldout/digest.json, DIR/evalset/digest.json   what the points were evaluated on
    DIR/results.json                     every point, and mean / 95 % interval over seeds
    DIR/report.md                        the tables: metrics at the budget, interactions
                                         to reach random's final value, collection speed,
                                         what each policy chose
    DIR/curves_<metric>.png              metric vs interactions and vs robot-seconds

``--export DEST`` copies what the report needs and nothing large (no store, checkpoint or
log) to DEST: the folder to commit. A copy of it continues as an experiment folder: the
same command with ``--out`` on the copy skips the finished runs, re-collects the held-out
set and re-renders the evalset, and refuses to go on if either differs from the digest the
earlier points were evaluated on (both are seeded: on the same code they are the same).

Policies (the levels of a record's ``policy`` field, curious_robot/record.py):
``random`` (everything random, fixed task shares), ``curious`` (curious actions, objects
and task progress), ``model`` (greedy actions), ``curious-action``, ``curious-object``,
``curious-task`` (one level curious, the rest random / fixed).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

from curious_robot.evaluation.reproduce import stored
from curious_robot.fileio import write_json

log = logging.getLogger(__name__)

SELECTORS = ("grasp_selector", "push_selector", "poke_selector")


def _levels(action: str, obj: str, task: str) -> dict:
    return {"action": action, "object": obj, "task": task}


#: policy name -> what each level uses
POLICIES = {
    "random": _levels("random", "random", "fixed"),
    "curious": _levels("curious", "curious", "progress"),
    "model": _levels("model", "random", "fixed"),
    "curious-action": _levels("curious", "random", "fixed"),
    "curious-object": _levels("random", "curious", "fixed"),
    "curious-task": _levels("random", "random", "progress"),
}
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
METRICS = ("heldout", "grasp", "representation")
#: what results.json and the curves report: (key, label), key into a point's "metrics"
CURVES = (("grasp_bin_accuracy", "held-out grasp accuracy"), ("poke_error", "poke error"),
          ("push_error", "push error"), ("poke_error_ratio", "poke error / mean baseline"),
          ("push_error_ratio", "push error / mean baseline"),
          ("push_forward_error_ratio", "push forward error / mean baseline"),
          ("grasp_success", "closed-loop grasp success"),
          ("nn_accuracy", "representation: shape NN accuracy"),
          ("recall_at_1", "representation: R@1"),
          ("learner_step", "online training steps (the learner's own)"),
          ("model_step", "training steps of the evaluated model"))
#: settings that must match to continue an experiment folder
SAME = ("budget", "fractions", "heldout", "attempts", "skip", "robots", "evalset_objects",
        "sets", "steps_per_interaction")
#: what a folder written before a setting existed holds for it
_SAME_BEFORE = {"sets": [], "steps_per_interaction": 0.0}
#: parameters each policy (and the held-out set) sets itself: --set may not touch them
OWNED = (*(f"{s}.{p}" for s in SELECTORS for p in ("policy", "checkpoint")),
         "interaction_manager.object_policy", "interaction_manager.task_policy",
         "interaction_manager.checkpoint", "learner.train", "learner.steps_per_interaction",
         "arm.object_split")
#: two-sided 95 % Student t quantiles by degrees of freedom (larger: 1.96)
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228}


class BadInput(ValueError):
    """The command line asks for something that cannot run (exit 2, nothing touched)."""


def register(sub) -> None:
    p = sub.add_parser("curiosity", help="collect with online learning under each policy "
                       "and seed and compare learning curves (issue 17)")
    p.add_argument("--budget", type=int, required=True,
                   help="interactions per policy and seed")
    p.add_argument("--seeds", type=int, default=3, help="seeds per policy (0..S-1)")
    p.add_argument("--policies", default="random,curious",
                   help=f"comma-separated, from {', '.join(POLICIES)} (default %(default)s)")
    p.add_argument("--out", required=True, help="experiment folder (created; resumable)")
    p.add_argument("--fractions", default=",".join(f"{f:g}" for f in FRACTIONS),
                   help="fractions of the budget where the model is evaluated "
                        "(default %(default)s)")
    p.add_argument("--heldout", type=int, default=300,
                   help="interactions of the fixed held-out set (random policy, held-out "
                        "objects; default %(default)s)")
    p.add_argument("--attempts", type=int, default=400,
                   help="closed-loop grasp attempts per evaluation (default %(default)s: "
                        "a 95 %% interval of at most +-5 points)")
    p.add_argument("--robots", type=int, default=1, help="robots collecting per run")
    p.add_argument("--evalset-objects", type=int, default=None,
                   help="held-out objects rendered for (c) (default: all)")
    p.add_argument("--skip", default="", help=f"comma-separated metrics not to compute, "
                   f"from {', '.join(METRICS)}")
    p.add_argument("--steps-per-interaction", type=float, default=0.5, metavar="K",
                   help="training per interaction, the same for every policy: online "
                        "training is paced at K steps per stored interaction (learner "
                        "duty 1.0), and before each evaluation the model is trained up to "
                        "K x its interactions if the learner fell behind; 0: as many steps "
                        "as the learner finds time for (default %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="a collect --set override for every run and the held-out set "
                        "(repeatable; part of the settings), e.g. learner.duty=1.0 so the "
                        "learner trains whenever the robots leave it a core")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the evaluations")
    p.add_argument("--export", default=None, metavar="DEST",
                   help="after the report, copy the results without stores, checkpoints "
                        "or logs to DEST (a folder to commit; a copy of it continues the "
                        "experiment)")
    p.set_defaults(func=run)


# -- input --------------------------------------------------------------------------------


def min_point() -> int:
    """Interactions the first evaluation needs: a task joins online training with
    ``min_records`` training records (learning/config.py), so before then there is no model
    to evaluate. The most frequent task (default shares) expects that many at
    ``min_records / share``; twice that, as part of the objects are held out (their
    records do not train) and the draw varies."""
    from curious_robot import tasks as registry
    from curious_robot.learning.config import TrainConfig

    weights = [t.default_weight for t in registry.all_tasks("arm")]
    return math.ceil(2 * TrainConfig().min_records * sum(weights) / max(weights))


def settings(args) -> dict:
    """The experiment's settings from the command line; raises :class:`BadInput`."""
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise BadInput(f"--policies: unknown {', '.join(unknown) or '(none given)'}; known: "
                       f"{', '.join(POLICIES)}")
    if len(set(policies)) != len(policies):
        raise BadInput(f"--policies: {args.policies!r} names a policy twice")
    try:
        fractions = sorted({float(f) for f in args.fractions.split(",") if f.strip()})
    except ValueError:
        raise BadInput(f"--fractions: {args.fractions!r} is not a list of numbers") from None
    if not fractions or fractions[0] <= 0 or fractions[-1] > 1:
        raise BadInput(f"--fractions: {args.fractions!r}: each must be in (0, 1]")
    skip = sorted({s.strip() for s in args.skip.split(",") if s.strip()})
    if set(skip) - set(METRICS):
        raise BadInput(f"--skip: unknown {', '.join(sorted(set(skip) - set(METRICS)))}; "
                       f"known: {', '.join(METRICS)}")
    for flag, value in (("--seeds", args.seeds), ("--robots", args.robots),
                        ("--heldout", args.heldout), ("--attempts", args.attempts)):
        if value < 1:
            raise BadInput(f"{flag} must be >= 1, got {value}")
    if not math.isfinite(args.steps_per_interaction) or args.steps_per_interaction < 0:
        raise BadInput(f"--steps-per-interaction must be >= 0, got "
                       f"{args.steps_per_interaction}")
    need = min_point()
    first = math.ceil(fractions[0] * args.budget)
    if first < need:
        raise BadInput(f"--budget {args.budget}: the first evaluation (at {fractions[0]:g} "
                       f"of it: {first} interactions) needs at least {need} (online training "
                       f"needs enough records of a task); use --budget >= "
                       f"{math.ceil(need / fractions[0])}")
    if args.heldout < need:
        raise BadInput(f"--heldout {args.heldout}: at least {need}")
    sets = list(args.set)
    for item in sets:
        if item.partition("=")[0].strip() in OWNED:
            raise BadInput(f"--set {item!r}: the experiment sets that parameter itself "
                           f"(per policy, or for the held-out set)")
    from curious_robot.commands.collect import _overrides
    from curious_robot.graph import collect_graph

    try:
        _overrides(collect_graph(robots=args.robots), sets)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return {"budget": args.budget, "fractions": fractions, "heldout": args.heldout,
            "attempts": args.attempts, "skip": skip, "robots": args.robots,
            "evalset_objects": args.evalset_objects, "sets": sets,
            "steps_per_interaction": args.steps_per_interaction, "policies": policies,
            "seeds": args.seeds}


def check_folder(out: Path, cfg: dict) -> dict | None:
    """The settings stored in ``out`` (None: a new experiment); raises :class:`BadInput`
    for a folder holding anything else or another experiment's results."""
    meta = out / "experiment.json"
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} is a file")
    if not out.exists() or not any(out.iterdir()):
        return None
    if not meta.is_file():
        raise BadInput(f"--out {out} holds other files and no experiment.json: not a "
                       "curiosity experiment folder")
    try:
        earlier = json.loads(meta.read_text())
    except ValueError as exc:
        raise BadInput(f"{meta} is unreadable: {exc}") from None
    differ = [k for k in SAME if earlier.get(k, _SAME_BEFORE.get(k)) != cfg[k]]
    if earlier.get("kind") != "curiosity" or differ:
        raise BadInput(f"--out {out} holds another experiment's results (different "
                       f"{', '.join(differ) or 'kind'}: "
                       + "; ".join(f"{k} {earlier.get(k)!r} there, {cfg[k]!r} now"
                                   for k in differ) + ")")
    return earlier


# -- stages -------------------------------------------------------------------------------


def _cli() -> list[str]:
    return [sys.executable, "-m", "curious_robot.cli"]




def collect(store: Path, until: int, seed: int, sets: list[str], robots: int,
            log_dir: Path) -> float:
    """Run the node graph until ``store`` holds ``until`` interactions; wall seconds."""
    if stored(store) >= until:
        return 0.0
    store.parent.mkdir(parents=True, exist_ok=True)
    # generous: a stalled graph ends rather than hanging the experiment
    duration = 600.0 + 30.0 * (until - stored(store)) / robots
    cmd = _cli() + ["collect", "--store", str(store), "--until", str(until), "--duration",
                    f"{duration:.0f}", "--seed", str(seed), "--robots", str(robots),
                    "--log-dir", str(log_dir)]
    for s in sets:
        cmd += ["--set", s]
    log.info("collect: %s to %d interactions", store, until)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0 or stored(store) < until:
        raise RuntimeError(f"collect into {store} ended with exit {proc.returncode} at "
                           f"{stored(store)} of {until} interactions (logs: {log_dir})")
    return seconds


def policy_sets(policy: str, checkpoint: Path | None = None) -> list[str]:
    """``collect --set`` overrides that make a run use ``policy``; ``checkpoint`` (the
    run's model so far) lets a continued run's selectors and manager start from it
    instead of waiting for the learner's next announcement (random levels ignore it)."""
    levels = POLICIES[policy]
    sets = [f"interaction_manager.object_policy={levels['object']}",
            f"interaction_manager.task_policy={levels['task']}",
            "learner.train=true"]
    sets += [f"{s}.policy={levels['action']}" for s in SELECTORS]
    if checkpoint is not None and checkpoint.is_file():
        sets += [f"{s}.checkpoint={checkpoint}" for s in (*SELECTORS, "interaction_manager")]
    return sets


def run_sets(cfg: dict, policy: str, checkpoint: Path | None = None) -> list[str]:
    """Every ``collect --set`` of a run: paced training (duty 1.0 unless ``--set`` says
    otherwise), the experiment's ``--set`` overrides, then the policy's."""
    k = cfg["steps_per_interaction"]
    paced = [f"learner.steps_per_interaction={k!r}"] if k > 0 else []
    return [*(["learner.duty=1.0"] if k > 0 else []), *cfg["sets"], *paced,
            *policy_sets(policy, checkpoint)]


def top_up(store: Path, checkpoint_dir: Path, steps: int, threads: int) -> dict:
    """Train the run's model (its online checkpoint, resumed) up to ``steps`` when the
    learner fell behind: {"steps": wanted, "learner_step": the learner's, "trained_step":
    after this (None: no checkpoint yet)}."""
    from curious_robot.learning.checkpoint import load_checkpoint

    path = checkpoint_dir / "checkpoint.pt"
    out = {"steps": steps, "learner_step": None, "trained_step": None}
    if not path.is_file():
        return out
    out["learner_step"] = out["trained_step"] = step = int(load_checkpoint(path)["step"])
    if step >= steps:
        return out
    log.info("%s: the learner is at step %d: training it up to %d", checkpoint_dir, step, steps)
    cmd = _cli() + ["train", "--store", str(store), "--out", str(checkpoint_dir), "--steps",
                    str(steps), "--threads", str(threads), "--eval-every", "0"]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"training {checkpoint_dir} up to step {steps} failed "
                           f"(exit {proc.returncode})")
    out["trained_step"] = int(load_checkpoint(path)["step"])
    return out


def _records(store: Path) -> list:
    """Every record of a store, without images, in the order stored."""
    from curious_robot.store import ReplayStore

    with ReplayStore(store, readonly=True) as s:
        return s.get_many(s.ids().tolist(), images=False)


def robot_seconds(store: Path) -> float:
    """Robot time of a store: the sum of its interactions' durations."""
    recs = _records(store)
    return float(sum(max(0.0, r.stamp_end - r.stamp_start) for r in recs))


def store_digest(store: Path, records: int | None = None) -> dict:
    """What a store's first ``records`` records (None: all) hold: their count and one
    SHA-256 over their contents in stored order (task, object, held-out flag, action,
    outcome, success; not the wall-clock stamps). A seeded collection repeated on the same
    code gives the same digest."""
    import hashlib

    h = hashlib.sha256()
    recs = _records(store)[:records]
    for r in recs:
        h.update(json.dumps([r.task, r.object_model, bool(r.held_out),
                             [round(float(v), 6) for v in r.action], bool(r.success),
                             [round(float(v), 6) for v in r.outcome]]).encode())
    return {"records": len(recs), "sha256": h.hexdigest()}


def folder_digest(folder: Path, subdirs: tuple[str, ...] = ("retrieval", "classify")) -> dict:
    """Files under ``folder``'s ``subdirs`` and one SHA-256 over their paths and bytes."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(f for d in subdirs for f in (folder / d).rglob("*") if f.is_file())
    for f in files:
        h.update(str(f.relative_to(folder)).encode() + b"\0" + f.read_bytes())
    return {"files": len(files), "sha256": h.hexdigest()}


def check_digest(path: Path, digest: dict, what: str) -> None:
    """Record ``digest`` in ``path`` the first time; later, refuse (``RuntimeError``) when
    the data differs from what the folder's earlier points were evaluated on."""
    if path.is_file():
        earlier = json.loads(path.read_text())
        if earlier != digest:
            raise RuntimeError(
                f"{what} differs from the one this folder's points were evaluated on "
                f"({path}: {earlier}; now: {digest}); new points would not compare with "
                "them: continue in the folder that holds the original, or start a new one")
        return
    write_json(path, digest)


class StorePrefix:
    """A store's first ``n`` records (by row id) as a read-only store: the held-out set is
    exactly the records its digest covers, however far a re-collection overshot."""

    def __init__(self, store, n: int):
        ids = store.ids()
        self._store = store
        self._last = int(ids[min(n, len(ids)) - 1]) if len(ids) and n > 0 else -1

    def ids(self, task=None, held_out=None, success=None, after_id=None):
        ids = self._store.ids(task, held_out, success, after_id)
        return ids[ids <= self._last]

    def count(self, task=None, held_out=None, success=None) -> int:
        return len(self.ids(task, held_out, success))

    def __getattr__(self, name):
        return getattr(self._store, name)


def heldout_metrics(checkpoint: Path, heldout: Path, records: int | None = None) -> dict:
    """(a): the task heads on the fixed held-out interactions (the first ``records``)."""
    from curious_robot.learning.metrics import evaluate
    from curious_robot.learning.predict import Predictor
    from curious_robot.store import ReplayStore

    pred = Predictor.from_checkpoint(checkpoint)
    with ReplayStore(heldout, readonly=True) as s:
        view = s if records is None else StorePrefix(s, records)
        return evaluate(pred.model, view, pred.stats, pred.device, pred.input_size)


def grasp_metrics(checkpoint: Path, attempts: int, seed: int, threads: int) -> dict:
    """(b): closed-loop grasps on held-out objects with the greedy grasp policy."""
    cmd = _cli() + ["eval-grasp", "--checkpoint", str(checkpoint), "--policy", "model",
                    "--attempts", str(attempts), "--split", "held_out", "--seed", str(seed),
                    "--threads", str(threads), "--json"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"eval-grasp on {checkpoint} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])["model"]


def representation_metrics(checkpoint: Path, evalset: Path, out: Path, name: str) -> dict:
    """(c): the frozen root on the held-out renders, as ``reproduce`` evaluates it."""
    from curious_robot.evaluation import DEFAULT_LAYER
    from curious_robot.evaluation.reproduce import stage_eval

    res = stage_eval(name, str(checkpoint), evalset, out.with_suffix(".json"),
                     out.with_suffix(".png"), DEFAULT_LAYER, None, None)
    return {"nn_accuracy": res["classification"][DEFAULT_LAYER]["nn_accuracy"],
            "recall_at_1": res["retrieval"][DEFAULT_LAYER]["recall_at_1"],
            "layer": DEFAULT_LAYER}


def error_ratios(metrics: dict) -> dict:
    """``<task>_error_ratio``: a regression error over its predict-the-mean baseline. The
    errors themselves are in each checkpoint's normalised units (its training split's
    median / MAD), so only the ratio compares across runs and points."""
    out = {}
    for key, value in metrics.items():
        if key.endswith("_error") and not key.endswith("_baseline_error"):
            base = metrics.get(key.replace("_error", "_mean_baseline_error"))
            if value is not None and base:
                out[f"{key}_ratio"] = value / base
    return out


def evaluate_point(run_dir: Path, store: Path, n: int, cfg: dict, out: Path, seed: int,
                   threads: int) -> dict:
    from curious_robot.paths import beside_store

    checkpoint = beside_store(store, "checkpoints") / "checkpoint.pt"
    metrics: dict = {}
    step = None
    paced = None
    if cfg["steps_per_interaction"] > 0:
        paced = top_up(store, checkpoint.parent,
                       math.ceil(cfg["steps_per_interaction"] * stored(store)), threads)
    if paced is not None and paced["trained_step"] is not None:
        metrics["learner_step"] = paced["learner_step"]
        metrics["model_step"] = paced["trained_step"]
    if checkpoint.is_file():
        # a copy: the learner of the next stretch rewrites the file
        frozen = run_dir / f"checkpoint_{n}.pt"
        frozen.write_bytes(checkpoint.read_bytes())
        import torch

        torch.set_num_threads(max(1, threads))
        if "heldout" not in cfg["skip"]:
            metrics.update(heldout_metrics(frozen, out / "heldout" / "replay.db",
                                           cfg["heldout"]))
            metrics.update(error_ratios(metrics))
        if "grasp" not in cfg["skip"]:
            g = grasp_metrics(frozen, cfg["attempts"], seed, threads)
            metrics["grasp_success"] = g.get("success_rate")
            metrics["grasp_detail"] = g
            step = g.get("checkpoint_step")
        if "representation" not in cfg["skip"]:
            metrics.update(representation_metrics(frozen, out / "evalset",
                                                  run_dir / f"representation_{n}",
                                                  f"{run_dir.parent.name}/{run_dir.name}@{n}"))
    else:
        log.warning("%s: no checkpoint after %d interactions: no model to evaluate", run_dir, n)
    return {"metrics": metrics, "checkpoint_step": step, "has_model": checkpoint.is_file(),
            "heldout_records": cfg["heldout"],
            **({"pacing": paced} if paced is not None else {})}


def refresh_heldout(point: Path, run_dir: Path, n: int, cfg: dict, out: Path,
                    threads: int = 1) -> bool:
    """Re-evaluate (a) of a point evaluated on another held-out set than the first
    ``--heldout`` records (points from before ``heldout_records``: the whole store, a
    record or two more) from its frozen checkpoint; False when nothing was to do (or no
    checkpoint is left to do it with, as in an exported folder)."""
    if "heldout" in cfg["skip"]:
        return False
    result = json.loads(point.read_text())
    frozen = run_dir / f"checkpoint_{n}.pt"
    if result.get("heldout_records") == cfg["heldout"] or not result.get("has_model") \
            or not frozen.is_file():
        return False
    import torch

    torch.set_num_threads(max(1, threads))  # as evaluate_point
    metrics = result["metrics"]
    metrics.update(heldout_metrics(frozen, out / "heldout" / "replay.db", cfg["heldout"]))
    metrics.update(error_ratios(metrics))
    result["heldout_records"] = cfg["heldout"]
    result["heldout_reevaluated"] = True
    write_json(point, result)
    return True


# -- report -------------------------------------------------------------------------------


def _interval(values: list[float]) -> dict:
    import numpy as np

    v = np.asarray(values, float)
    n = len(v)
    mean = float(v.mean())
    if n < 2:
        return {"mean": mean, "lo": mean, "hi": mean, "n": n}
    half = _T95.get(n - 1, 1.96) * float(v.std(ddof=1)) / math.sqrt(n)
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}


def aggregate(points: list[dict]) -> dict:
    """policy -> metric -> list of {interactions, robot_seconds, mean, lo, hi, n} by point
    (95 % t interval over seeds)."""
    out: dict = {}
    for policy in sorted({p["policy"] for p in points}):
        mine = [p for p in points if p["policy"] == policy]
        out[policy] = {}
        for key, _label in CURVES:
            rows = []
            for n in sorted({p["target"] for p in mine}):
                at = [p for p in mine if p["target"] == n
                      and p["metrics"].get(key) is not None]
                if not at:
                    continue
                row = _interval([p["metrics"][key] for p in at])
                row["interactions"] = n
                row["robot_seconds"] = sum(p["robot_seconds"] for p in at) / len(at)
                rows.append(row)
            if rows:
                out[policy][key] = rows
    return out


#: the report's question, after the issue: how many interactions does a policy need to
#: reach the reference policy's final value (both: higher is better)
REACH = (("grasp_success", "closed-loop grasp success"),
         ("grasp_bin_accuracy", "held-out grasp accuracy"))
REFERENCE = "random"


def first_reach(xs: list[float], ys: list[float], target: float) -> float | None:
    """The first x where the piecewise-linear curve through ``(xs, ys)`` (ascending xs)
    reaches ``target``; None if it never does. Reached at the first point: that point's x,
    an upper bound (nothing was measured before it)."""
    for i, (x, y) in enumerate(zip(xs, ys)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = xs[i - 1], ys[i - 1]
            return float(x0 + (x - x0) * (target - y0) / (y - y0))
    return None


def _runs(points: list[dict]) -> dict:
    """(policy, seed) -> its points by target, for runs evaluated up to the budget only
    (an unfinished run's curve would read as 'never reached')."""
    budget = max(p["target"] for p in points)
    runs: dict = {}
    for p in points:
        runs.setdefault((p["policy"], p["seed"]), []).append(p)
    return {k: sorted(v, key=lambda p: p["target"]) for k, v in sorted(runs.items())
            if max(p["target"] for p in v) == budget}


def reach(points: list[dict], reference: str = REFERENCE) -> dict:
    """metric -> the reference's final value (mean and interval over its seeds) and, per
    policy and seed, the interactions and robot-seconds at which the curve first reaches
    that mean (linear between evaluation points); mean and 95 % interval over seeds when
    every seed reaches it, else how many did."""
    if not points:
        return {}
    budget = max(p["target"] for p in points)
    runs = _runs(points)
    out: dict = {}
    for key, label in REACH:
        final = [ps[-1]["metrics"][key] for (pol, _s), ps in runs.items()
                 if pol == reference and ps[-1]["metrics"].get(key) is not None]
        if not final:
            continue
        goal = sum(final) / len(final)
        entry = {"label": label, "reference": reference, "budget": budget,
                 "reference_final": _interval(final), "policies": {}}
        for policy in sorted({pol for pol, _s in runs}):
            seeds = {}
            for (pol, seed), ps in runs.items():
                have = [p for p in ps if p["metrics"].get(key) is not None]
                if pol != policy or not have:
                    continue
                ys = [p["metrics"][key] for p in have]
                seeds[str(seed)] = {
                    "interactions": first_reach([p["target"] for p in have], ys, goal),
                    "robot_seconds": first_reach([p["robot_seconds"] for p in have], ys, goal)}
            reached = [v for v in seeds.values() if v["interactions"] is not None]
            row = {"seeds": seeds, "runs": len(seeds), "reached": len(reached)}
            if seeds and len(reached) == len(seeds):
                row["interactions"] = _interval([v["interactions"] for v in reached])
                row["fraction_of_budget"] = _interval([v["interactions"] / budget
                                                       for v in reached])
                row["robot_seconds"] = _interval([v["robot_seconds"] for v in reached])
            entry["policies"][policy] = row
        entry["along"] = _along(runs, key, reference)
        out[key] = entry
    return out


def _difference(a: list[float], b: list[float]) -> dict | None:
    """mean(a) - mean(b) with a 95 % Welch t interval; None unless both have 2 values."""
    import numpy as np

    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    diff = float(np.mean(a) - np.mean(b))
    se = math.sqrt(va + vb)
    if se == 0:
        return {"mean": diff, "lo": diff, "hi": diff, "n": len(a) + len(b)}
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = _T95.get(max(1, int(df)), 1.96) * se
    return {"mean": diff, "lo": diff - half, "hi": diff + half, "n": len(a) + len(b)}


def _along(runs: dict, key: str, reference: str) -> list[dict]:
    """At each evaluation point: every policy's mean and interval over seeds of ``key``,
    and its difference from the reference's (Welch interval): is one ahead on the way?"""
    rows = []
    for n in sorted({p["target"] for ps in runs.values() for p in ps}):
        values: dict = {}
        for (policy, _seed), ps in runs.items():
            for p in ps:
                if p["target"] == n and p["metrics"].get(key) is not None:
                    values.setdefault(policy, []).append(p["metrics"][key])
        row: dict = {"interactions": n,
                     "policies": {pol: _interval(v) for pol, v in sorted(values.items())}}
        for policy, v in sorted(values.items()):
            if policy != reference and reference in values:
                d = _difference(v, values[reference])
                if d is not None:
                    row.setdefault("minus_reference", {})[policy] = d
        rows.append(row)
    return rows


#: what ``run.json`` was computed by (2: interrupted stretches' pauses left out)
SUMMARY_VERSION = 2

#: a wait between two records longer than this is not collection: the graph was down (a
#: stretch continued after an interruption), not choosing or moving
RESUMED_AFTER_S = 60.0


def run_rate(store: Path, counts: list[int]) -> dict:
    """How fast a run collected, from its own records: interactions per second of wall time
    while its graph ran (each collection stretch from its first record's start to its last
    record's end, so start-up, evaluations and resumptions are left out; a stretch that
    was interrupted and continued counts each of its parts so, split where two records
    lie over :data:`RESUMED_AFTER_S` apart) and per robot-second (the sum of the records'
    durations: choosing the object and the action, and the motion)."""
    recs = _records(store)
    bounds = [0] + sorted(counts)
    n, wall = 0, 0.0
    for a, b in zip(bounds, bounds[1:]):
        part: list = []
        for r in recs[a:b] + [None]:
            if part and (r is None or r.stamp_start - part[-1].stamp_end > RESUMED_AFTER_S):
                if len(part) > 1:
                    n += len(part)
                    wall += (max(q.stamp_end for q in part)
                             - min(q.stamp_start for q in part))
                part = []
            if r is not None:
                part.append(r)
    busy = sum(max(0.0, r.stamp_end - r.stamp_start) for r in recs)
    return {"per_s": n / wall if wall > 0 else None,
            "per_robot_second": len(recs) / busy if busy > 0 else None}


def run_summary(out: Path, policy: str, seed: int, points: list[dict]) -> dict | None:
    """A finished run's :func:`run_rate` and :func:`run_choices`, computed from its store
    once and kept in ``run.json`` beside it (an exported folder has no stores); None when
    neither is there."""
    run_dir = out / "runs" / policy / f"seed{seed}"
    counts = [p["interactions"] for p in points]
    cached = run_dir / "run.json"
    store = run_dir / "replay.db"
    if cached.is_file():
        summary = json.loads(cached.read_text())
        # one from an older version is computed again where the store is there to do it
        if summary.get("counts") == counts and (
                summary.get("version") == SUMMARY_VERSION or not store.is_file()):
            return summary
    if not store.is_file():
        return None
    summary = {"version": SUMMARY_VERSION, "counts": counts,
               "rate": run_rate(store, counts), "choices": run_choices(store)}
    write_json(cached, summary)
    return summary


def task_seconds(summary: dict) -> dict:
    """Robot-seconds per record of each task of one run (from its :func:`run_summary`: a
    task's share of the robot time over its share of the records, over the run's
    interactions per robot-second)."""
    per = summary["rate"].get("per_robot_second")
    ch = summary["choices"]
    if not per:
        return {}
    return {t: ch["time_share"].get(t, 0.0) / share / per
            for t, share in ch["task_share"].items() if share > 0}


def rates(out: Path, points: list[dict], reference: str = REFERENCE) -> dict:
    """policy -> mean and interval over seeds of :func:`run_rate`'s figures, and the ratio
    of each mean to the reference policy's (the issue's bar: curious >= 0.9).

    A policy that chooses its tasks changes its speed twice: through what each task costs
    it (choosing objects and actions, and the motions it picks) and through the mix of
    tasks (an inspect takes longer than a grasp). To tell them apart, each run's
    robot-seconds per record of each task (``task_seconds``) are also weighed with the
    reference policy's mean task mix: ``per_robot_second_at_reference_mix`` is the speed
    the run would have had choosing its tasks as the reference does."""
    if not points:
        return {}
    per: dict = {}
    for (policy, seed), ps in _runs(points).items():
        summary = run_summary(out, policy, seed, ps)
        if summary is not None:
            per.setdefault(policy, []).append(summary)
    ref_runs = per.get(reference, [])
    mix: dict = {}
    for s in ref_runs:
        for t, share in s["choices"]["task_share"].items():
            mix[t] = mix.get(t, 0.0) + share / len(ref_runs)
    result: dict = {}
    for policy, runs in per.items():
        rows = [s["rate"] for s in runs]
        result[policy] = {k: _interval([r[k] for r in rows if r[k] is not None])
                          for k in ("per_s", "per_robot_second")
                          if any(r[k] is not None for r in rows)}
        secs = [task_seconds(s) for s in runs]
        tasks = sorted({t for row in secs for t in row})
        result[policy]["task_seconds"] = {
            t: _interval([row[t] for row in secs if t in row]) for t in tasks}
        at_mix = [1.0 / sum(share * row[t] for t, share in mix.items())
                  for row in secs if mix and all(t in row for t in mix)]
        if at_mix:
            result[policy]["per_robot_second_at_reference_mix"] = _interval(at_mix)
    ref = result.get(reference, {})
    for row in result.values():
        for k in ("per_s", "per_robot_second", "per_robot_second_at_reference_mix"):
            if k in row and k in ref and ref[k]["mean"]:
                row[f"{k}_vs_{reference}"] = row[k]["mean"] / ref[k]["mean"]
    return result


def run_choices(store: Path) -> dict:
    """What a run's policy chose, from its records: each task's share of the interactions
    and of the robot time, and its success rate (for grasp: how many held), how evenly it
    touched the objects (object models touched, the most touched one's share of the
    records naming one) and the share of records each level chose with curiosity (a
    curious level falls back to random until the run has a model)."""
    from collections import Counter

    from curious_robot.record import parse_policy

    recs = _records(store)
    n = max(1, len(recs))
    tasks, seconds, models, curious = Counter(), Counter(), Counter(), Counter()
    for r in recs:
        tasks[r.task] += 1
        seconds[r.task] += max(0.0, r.stamp_end - r.stamp_start)
        if r.object_model:
            models[r.object_model] += 1
        for level, name in parse_policy(r.policy).items():
            curious[level] += name not in ("random", "fixed")
    busy = sum(seconds.values()) or 1.0
    return {"task_share": {t: c / n for t, c in tasks.items()},
            "time_share": {t: v / busy for t, v in seconds.items()},
            "success": {t: sum(r.success for r in recs if r.task == t) / c
                        for t, c in tasks.items()},
            "object_models": len(models),
            "top_object_share": max(models.values()) / sum(models.values()) if models
            else None,
            "curious_share": {level: c / n for level, c in curious.items()}}


def choices(out: Path, points: list[dict]) -> dict:
    """policy -> :func:`run_choices` averaged over the seeds of its finished runs."""
    if not points:
        return {}
    per: dict = {}
    for (policy, seed), ps in _runs(points).items():
        summary = run_summary(out, policy, seed, ps)
        if summary is not None:
            per.setdefault(policy, []).append(summary["choices"])

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    result = {}
    for policy, rows in per.items():
        row: dict = {"runs": len(rows)}
        for key, value in rows[0].items():
            if isinstance(value, dict):
                keys = sorted({k for r in rows for k in r[key]})
                row[key] = {k: mean([r[key].get(k, 0.0) for r in rows]) for k in keys}
            else:
                row[key] = mean([r[key] for r in rows])
        result[policy] = row
    return result


def _cell(iv: dict | None, digits: int = 3) -> str:
    if not iv:
        return "-"
    if iv["n"] < 2:
        return f"{iv['mean']:.{digits}f}"
    return f"{iv['mean']:.{digits}f} [{iv['lo']:.{digits}f}, {iv['hi']:.{digits}f}]"


def report_markdown(meta: dict, summary: dict, reached: dict, rate: dict,
                    chose: dict | None = None) -> str:
    """The experiment's tables: final metrics, interactions to reach the reference's final
    value, collection speed (means over seeds with 95 % t intervals) and what each policy
    chose (means over seeds)."""
    lines = [f"# Curiosity experiment: {', '.join(meta['policies'])}", "",
             f"Budget {meta['budget']} interactions per run, {meta['robots']} robot(s), "
             f"evaluations at {', '.join(f'{f:g}' for f in meta['fractions'])} of it; "
             f"held-out set {meta['heldout']} interactions, {meta['attempts']} closed-loop "
             "grasp attempts per evaluation"
             + (f"; every run with `--set {' --set '.join(meta['sets'])}`"
                if meta.get("sets") else "")
             + ". Cells: mean over seeds [95 % t interval].", "",
             "## At the budget", ""]
    policies = list(summary)
    lines += ["| metric | " + " | ".join(policies) + " |",
              "|---|" + "---:|" * len(policies)]
    for key, label in CURVES:
        cells = []
        for policy in policies:
            rows = summary[policy].get(key)
            digits = 0 if key.endswith("_step") else 3
            cells.append(_cell(rows[-1], digits) + f" (n={rows[-1]['n']})" if rows
                         and rows[-1]["interactions"] == meta["budget"] else "-")
        if any(c != "-" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", f"## Interactions needed to reach {REFERENCE}'s final value", ""]
    if not reached:
        lines.append("No run has reached the budget yet.")
    for entry in reached.values():
        lines += [f"**{entry['label']}**: {REFERENCE} ends at "
                  f"{_cell(entry['reference_final'])}.", "",
                  "| policy | seeds reaching it | interactions | fraction of budget | "
                  "robot-seconds | per seed |", "|---|---:|---:|---:|---:|---|"]
        for policy, row in entry["policies"].items():
            per_seed = ", ".join(
                f"{s}: {'-' if v['interactions'] is None else round(v['interactions'])}"
                for s, v in row["seeds"].items())
            lines.append(f"| {policy} | {row['reached']} of {row['runs']} | "
                         f"{_cell(row.get('interactions'), 0)} | "
                         f"{_cell(row.get('fraction_of_budget'), 2)} | "
                         f"{_cell(row.get('robot_seconds'), 0)} | {per_seed} |")
        lines.append("")
        along = entry.get("along") or []
        names = sorted({pol for row in along for pol in row["policies"]})
        others = sorted({pol for row in along for pol in row.get("minus_reference", {})})
        if along:
            lines += [f"At each evaluation ({entry['label']}; differences: mean over seeds "
                      f"minus {REFERENCE}'s, 95 % Welch interval):", "",
                      "| interactions | " + " | ".join(names)
                      + "".join(f" | {pol} - {REFERENCE}" for pol in others) + " |",
                      "|---:|" + "---:|" * (len(names) + len(others))]
            for row in along:
                cells = [_cell(row["policies"].get(pol)) for pol in names]
                cells += [_cell(row.get("minus_reference", {}).get(pol)) for pol in others]
                lines.append(f"| {row['interactions']} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["A curve that reaches the value at its first evaluation is counted there (an "
              "upper bound); '-' for a seed: not reached within the budget.", "",
              "## Collection speed", "",
              "| policy | interactions / s (graph running) | vs " + REFERENCE +
              " | interactions / robot-second | vs " + REFERENCE + " |",
              "|---|---:|---:|---:|---:|"]
    for policy, row in rate.items():
        vs = {k: row.get(f"{k}_vs_{REFERENCE}") for k in ("per_s", "per_robot_second")}
        vs = {k: "-" if v is None else f"{v:.2f}" for k, v in vs.items()}
        lines.append(f"| {policy} | {_cell(row.get('per_s'), 2)} | {vs['per_s']} | "
                     f"{_cell(row.get('per_robot_second'), 2)} | "
                     f"{vs['per_robot_second']} |")
    tasks = sorted({t for row in rate.values() for t in row.get("task_seconds", {})})
    if tasks:
        lines += ["", "Robot-seconds per record of each task (choosing the object and the "
                  "action, and the motion), and the speed each policy would have had with "
                  f"{REFERENCE}'s task mix: what its choice of tasks costs is left out, what "
                  "its choices within a task cost is kept.", "",
                  "| policy | " + " | ".join(tasks) + f" | interactions / robot-second at "
                  f"{REFERENCE}'s task mix | vs {REFERENCE} |",
                  "|---|" + "---:|" * (len(tasks) + 2)]
        for policy, row in rate.items():
            vs = row.get(f"per_robot_second_at_reference_mix_vs_{REFERENCE}")
            lines.append(f"| {policy} | "
                         + " | ".join(_cell(row.get("task_seconds", {}).get(t), 3)
                                      for t in tasks)
                         + f" | {_cell(row.get('per_robot_second_at_reference_mix'), 2)} | "
                         + ("-" if vs is None else f"{vs:.2f}") + " |")
    if chose:
        tasks = sorted({t for row in chose.values() for t in row["task_share"]})
        levels = sorted({lv for row in chose.values() for lv in row["curious_share"]})

        def pct(v):
            return "-" if v is None else f"{100 * v:.0f} %"

        lines += ["", "## What each policy chose (mean over seeds)", "",
                  "| policy | " + " | ".join(f"{t}: records / robot time / success"
                                             for t in tasks)
                  + " | object models | most touched | "
                  + " | ".join(f"{lv} curious" for lv in levels) + " |",
                  "|---|" + "---:|" * (len(tasks) + 2 + len(levels))]
        for policy, row in chose.items():
            cells = [f"{pct(row['task_share'].get(t))} / {pct(row['time_share'].get(t))} / "
                     f"{pct(row['success'].get(t))}" for t in tasks]
            cells += [f"{row['object_models']:.0f}", pct(row["top_object_share"])]
            cells += [pct(row["curious_share"].get(lv)) for lv in levels]
            lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_curves(summary: dict, out: Path) -> list[Path]:
    """One PNG per metric: vs interactions (left) and vs robot-seconds (right), each
    policy's mean over seeds with its 95 % interval shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for key, label in CURVES:
        if not any(key in m for m in summary.values()):
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
        for policy, metrics in summary.items():
            rows = metrics.get(key)
            if not rows:
                continue
            for ax, x in zip(axes[0], ("interactions", "robot_seconds")):
                xs = [r[x] for r in rows]
                line, = ax.plot(xs, [r["mean"] for r in rows], marker="o", label=policy)
                ax.fill_between(xs, [r["lo"] for r in rows], [r["hi"] for r in rows],
                                color=line.get_color(), alpha=0.2)
        for ax, x in zip(axes[0], ("interactions", "robot-seconds")):
            ax.set_xlabel(x)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{label}: mean over seeds, shaded 95 % interval")
        fig.tight_layout()
        path = out / f"curves_{key}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


# -- driver -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    out = Path(os.path.abspath(os.path.expanduser(args.out)))
    dest = Path(os.path.abspath(os.path.expanduser(args.export))) if args.export else None
    try:
        cfg = settings(args)
        earlier = check_folder(out, cfg)
        if dest is not None:
            if dest == out or out in dest.parents:
                raise BadInput(f"--export {dest}: must be outside --out {out}")
            check_folder(dest, cfg)
    except BadInput as exc:
        print(f"curious-robot curiosity: {exc}", file=sys.stderr)
        return 2
    meta = {"kind": "curiosity", **cfg}
    if earlier:  # more policies or seeds continue the same experiment
        meta["policies"] = list(dict.fromkeys(earlier["policies"] + cfg["policies"]))
        meta["seeds"] = max(earlier["seeds"], cfg["seeds"])
    write_json(out / "experiment.json", meta)
    targets = sorted({math.ceil(f * cfg["budget"]) for f in cfg["fractions"]})
    t0 = time.monotonic()
    new = 0
    try:
        heldout = out / "heldout" / "replay.db"
        if "heldout" not in cfg["skip"]:
            if stored(heldout) < cfg["heldout"]:
                collect(heldout, cfg["heldout"], 9999, [
                    *cfg["sets"], "learner.train=false", "arm.object_split=held_out"], 1,
                    out / "heldout" / "logs")
            # the set is the first --heldout records: those in flight when collection
            # stopped are not (shutdown races into them: the same seed may differ there)
            check_digest(out / "heldout" / "digest.json",
                         store_digest(heldout, cfg["heldout"]), "the held-out set")
        if "representation" not in cfg["skip"]:
            if not (out / "evalset" / "meta.json").is_file():
                from curious_robot.evaluation.evalset import generate

                generate(out / "evalset", n_objects=cfg["evalset_objects"])
            check_digest(out / "evalset" / "digest.json", folder_digest(out / "evalset"),
                         "the evalset")
        for seed in range(cfg["seeds"]):
            for policy in cfg["policies"]:
                run_dir = out / "runs" / policy / f"seed{seed}"
                store = run_dir / "replay.db"
                for n in targets:
                    point = run_dir / f"point_{n}.json"
                    if point.is_file():
                        log.info("%s seed %d at %d: done earlier%s", policy, seed, n,
                                 "; (a) re-evaluated on the held-out set" if
                                 refresh_heldout(point, run_dir, n, cfg, out, args.threads)
                                 else "")
                        continue
                    done = [t for t in targets if t < n]
                    if not store.is_file() and any(run_dir.glob("point_*.json")):
                        raise RuntimeError(
                            f"{run_dir} holds points up to {done[-1] if done else '?'} "
                            "interactions but no store (a copy of an exported folder?): "
                            "the run cannot continue where they end; move its points "
                            "aside to run it again from the start")
                    model = run_dir / f"checkpoint_{done[-1]}.pt" if done else None
                    wall = collect(store, n, seed, run_sets(cfg, policy, model), cfg["robots"],
                                   run_dir / "logs" / str(n))
                    result = {"policy": policy, "seed": seed, "target": n,
                              "interactions": stored(store),
                              "robot_seconds": robot_seconds(store),
                              "collect_wall_seconds": round(wall, 1)}
                    result.update(evaluate_point(run_dir, store, n, cfg, out, seed,
                                                 args.threads))
                    write_json(point, result)
                    new += 1
                    log.info("%s seed %d at %d interactions: %s", policy, seed, n,
                             {k: v for k, v in result["metrics"].items()
                              if not isinstance(v, dict)})
    except (RuntimeError, OSError) as exc:
        print(f"curious-robot curiosity: {exc}", file=sys.stderr)
        return 1
    points = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/*/point_*.json"))]
    summary = aggregate(points)
    reached, rate, chose = reach(points), rates(out, points), choices(out, points)
    write_json(out / "results.json", {"experiment": meta, "points": points,
                                       "summary": summary, "reach": reached,
                                       "rates": rate, "choices": chose})
    (out / "report.md").write_text(report_markdown(meta, summary, reached, rate, chose))
    pngs = render_curves(summary, out)
    exported = export(out, dest, targets[-1]) if dest is not None else []
    print(json.dumps({"out": str(out), "new_points": new, "points": len(points),
                      "curves": [p.name for p in pngs], "report": "report.md",
                      **({"exported": len(exported), "export": str(dest)} if dest else {}),
                      "seconds": round(time.monotonic() - t0, 1)}))
    return 0


#: what ``--export`` copies: everything the report is made of, nothing large
EXPORT = ("experiment.json", "results.json", "report.md", "curves_*.png",
          "heldout/digest.json", "evalset/digest.json", "runs/*/*/point_*.json",
          "runs/*/*/run.json", "runs/*/*/representation_*.json")


def export(out: Path, dest: Path, last: int) -> list[Path]:
    """Copy :data:`EXPORT` from ``out`` to ``dest`` (files there with the same names are
    replaced; nothing else in it is touched). A run's files only once it is finished (its
    point at ``last`` interactions written): an unfinished run cannot continue without
    its store (its points are in results.json all the same)."""
    import shutil

    copied = []
    for pattern in EXPORT:
        for f in sorted(out.glob(pattern)):
            rel = f.relative_to(out)
            if rel.parts[0] == "runs" and not (f.parent / f"point_{last}.json").is_file():
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
            copied.append(target)
    return copied
