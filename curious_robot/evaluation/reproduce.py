"""``curious-robot reproduce``: collect -> train every variant -> evaluate -> tables.

Stages, each writing its output under the work folder and skipped when that is present, so
an interrupted run continues where it stopped (a half-trained variant resumes from its
checkpoint, collection from its last finished chunk):

1. collect   ``curious-robot collect --until`` as a subprocess, in chunks of at most
             ``CHUNK_S`` seconds (WORK/collect/chunk_<i>.done), into WORK/replay.db until it
             holds ``COLLECT_N`` interactions (or ``COLLECT_CAP_S`` have gone); skipped
             when ``--store`` names an existing store.
2. evalset   held-out renders (WORK/evalset, ``curious-robot evalset``).
3. train     one ``curious-robot train`` / ``autoencoder`` subprocess per variant
             (WORK/variants/<name>/checkpoint.pt, done.json).
4. eval      every layer, classification + retrieval, neighbour pictures
             (WORK/eval/<name>.json, OUT/neighbours/<name>.png).
5. categories the everyday-object category set's **test** split (the only reader of it;
             rendered once into ``--categories``), 1-NN from other instances at every
             layer with per-instance scores (WORK/eval/<name>.categories.json).
6. report    OUT/table.md, OUT/chart.png, OUT/results.json (always rewritten).

``--seeds 0,1,2`` runs stages 1-5 once per seed, each in its own work folder, and
reports means, standard errors and paired differences over the seeds
(:mod:`curious_robot.evaluation.seeds`).

``--mode drone`` runs the drone's pipeline instead (:mod:`curious_robot.drone.results`:
crash data, the crash net, flights in held-out rooms against straight and random-turn
flight -> results/drone/).

The default scale (1.0) was budgeted for about 60 minutes on two CPU cores; a seed of
``--seeds`` takes about 71 (measured December 2026): 10 minutes of collection by two
robots (the learner stores without training; since 2026-12-07 a count of interactions,
so that a busy machine collects as much, only slower), 7 trained variants of ``STEPS``
steps each,
two at a time on one thread each (57 minutes), 20 s of held-out evaluation and a few
seconds of category test per variant. One ``--seed`` also trains the three pretext
variants of issue 9. ``--scale`` multiplies the interactions collected (and the time
allowed for them) and the training steps.
Every finished seed is kept in ``OUT/seeds/seed-S.json`` and read back by a later
invocation while :func:`code_fingerprint` and the rest of its key match.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from curious_robot import tasks as registry
from curious_robot.evaluation.variants import (
    ABLATION_ROWS, ALL_TASKS, PAPER, PAPER_DATASETS, PAPER_SOURCE, PRETEXT_ROWS, TASK_NAMES,
    VARIANTS, fmt3 as _f, minutes as _minutes)
from curious_robot.fileio import write_json

log = logging.getLogger(__name__)

#: interactions collected at scale 1 (two robots: about 10 minutes on two cores)
COLLECT_N = 3000
#: seconds collection may take at scale 1; a store still short of COLLECT_N then is used
#: as it is (a warning says so, and the report shows every seed's counts)
COLLECT_CAP_S = 1800.0
CHUNK_S = 300.0
STEPS = 1200  # training steps (cycles) per variant at scale 1
MIN_STEPS = 20
#: Stages this invocation found done (or half done) by an earlier one, for the report.
REUSED: list[str] = []
#: What an evaluation JSON holds; an earlier version is evaluated again (2: per-object
#: scores of the report layer, for paired differences).
EVAL_VERSION = 2


def add_arguments(p) -> None:
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiplies the interactions collected and training steps (default "
                        "%(default)s: about "
                        "60 minutes on two cores)")
    p.add_argument("--mode", choices=("arm", "drone"), default="arm",
                   help="arm: the paper's comparison (default); drone: crash data, the "
                        "crash net and flights in held-out rooms against straight and "
                        "random-turn flight (curious_robot/drone/results.py)")
    p.add_argument("--out", default=None,
                   help="folder for table.md, chart.png, results.json (and neighbours/) "
                        "(default results; drone mode results/drone)")
    p.add_argument("--work", default=None,
                   help="folder for the store, checkpoints, renders and per-variant results "
                        "(default runs/reproduce/scale-S)")
    p.add_argument("--store", default=None,
                   help="use this replay store; an existing one skips collection "
                        "(default WORK/replay.db)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps per variant (default {STEPS} x scale)")
    p.add_argument("--robots", type=int, default=2,
                   help="simulated robots while collecting (default %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads for evaluation and for each training (default: "
                        "torch's own choice for evaluation; the cores split between the "
                        "trainings running at once)")
    p.add_argument("--jobs", type=int, default=0,
                   help="variants trained at once, each its own process (default 0: one "
                        "per CPU core, at most the variants left; 1: one after another)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the collection and of every variant's training; the "
                        "held-out renders stay the same, so runs with other seeds are "
                        "replicates of one comparison (default 0)")
    p.add_argument("--seeds", default=None, metavar="S,S,...",
                   help="run the comparison once per seed (comma-separated, distinct, >= 0), "
                        "each in its own work folder (WORK for seed 0, WORK-seed-S "
                        "otherwise), and report means, standard errors and paired "
                        "differences over the seeds (not with --seed)")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated subset of: {', '.join(VARIANTS)} (default: all; "
                        "with --seeds: random, all, identity, autoencoder and the "
                        "no-<task> ablations)")
    p.add_argument("--categories", default=None, metavar="DIR",
                   help="folder of the everyday-object category set whose test split the "
                        "final stage reads (rendered there on first use; default "
                        "data/categories)")
    from curious_robot.drone import results as drone

    g = p.add_argument_group("drone mode (default: the scale-1 value x --scale)")
    g.add_argument("--rooms", type=int, default=None,
                   help=f"training rooms the pilot collects crashes in ({drone.ROOMS})")
    g.add_argument("--crashes", type=int, default=None,
                   help=f"collisions per room ({drone.CRASHES})")
    g.add_argument("--held-out-rooms", type=int, default=None,
                   help="held-out rooms flown for the crash head's held-out accuracy "
                        f"({drone.HELD_OUT_ROOMS})")
    g.add_argument("--flights", type=int, default=None,
                   help=f"flights per policy in the held-out rooms ({drone.FLIGHTS})")
    g.add_argument("--max-time", type=float, default=None,
                   help=f"s after which a flight ends without a collision ({drone.MAX_TIME_S:g})")


def _cli() -> list[str]:
    return [sys.executable, "-m", "curious_robot.cli"]


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess:
    """Run a stage's subprocess; its log lines (stderr) pass through as progress, its
    stdout is captured."""
    log.info("%s: %s", what, " ".join(cmd[2:]))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    log.info("%s: exit %d after %.0f s", what, proc.returncode, time.monotonic() - t0)
    return proc




# -- stages -------------------------------------------------------------------------------


#: collection draws every scene all from the training or all from the held-out objects
#: (the evaluation renders show held-out objects, which training images must not)
OBJECT_SPLIT = "scenes"


def stored(store: Path) -> int:
    """Interactions in the store at ``store`` (0 when there is none yet)."""
    from curious_robot.store import ReplayStore

    if not store.is_file():
        return 0
    with ReplayStore(store, readonly=True) as s:
        return s.count()


def stage_collect(store: Path, work: Path, target: int, seconds: float, robots: int,
                  seed: int = 0) -> None:
    """Collect into ``store`` until it holds ``target`` interactions, in chunks of at most
    :data:`CHUNK_S` s, for ``seconds`` at most (then the store is used as it is)."""
    chunks = max(1, int(-(-seconds // CHUNK_S)))
    length = seconds / chunks
    marks = work / "collect"
    marks.mkdir(parents=True, exist_ok=True)
    store.parent.mkdir(parents=True, exist_ok=True)
    for i in range(chunks):
        done = marks / f"chunk_{i}.done"
        if done.exists():
            log.info("collect chunk %d: done earlier", i + 1)
            REUSED.append(f"collect chunk {i + 1}")
            continue
        if (have := stored(store)) >= target:
            break
        log.info("collect chunk %d (at most %d): up to %.0f s, %d of %d interactions "
                 "stored, into %s", i + 1, chunks, length, have, target, store)
        # the learner only stores: every variant trains afterwards, on the whole store
        proc = _run(_cli() + ["collect", "--duration", f"{length:.0f}", "--until",
                              str(target), "--robots", str(robots), "--store", str(store),
                              "--seed", str(1000 * seed + i),
                              "--set", "learner.train=false",
                              "--set", f"arm.object_split={OBJECT_SPLIT}"],
                    f"collect {i + 1}/{chunks}")
        if proc.returncode != 0:
            raise RuntimeError(f"collect chunk {i + 1} failed (exit {proc.returncode})")
        done.write_text(proc.stdout or "done\n")
    if (have := stored(store)) < target:
        log.warning("collect: %d of %d interactions after %.0f s of collection; the "
                    "variants train on those", have, target, seconds)


def stage_evalset(folder: Path) -> dict:
    from curious_robot.evaluation.evalset import META_NAME, generate

    meta_path = folder / META_NAME
    if meta_path.is_file():
        log.info("evalset: %s rendered earlier", folder)
        REUSED.append("evaluation set")
        return json.loads(meta_path.read_text())

    def progress(done, total):
        if done == total or done % max(1, total // 5) == 0:
            log.info("evalset: rendered %d/%d held-out objects", done, total)

    return generate(folder, progress=progress)


def _train_command(tasks: str, store: Path, folder: Path, steps: int, threads: int,
                   seed: int) -> list[str]:
    """The subprocess that trains one variant into ``folder`` (resuming its checkpoint)."""
    if tasks.startswith("pretext:"):
        cmd = _cli() + ["pretext", "--kind", tasks.split(":", 1)[1], "--store", str(store),
                        "--steps", str(steps), "--out", str(folder), "--json", "--threads",
                        str(threads)]
    elif tasks == "autoencoder":
        cmd = _cli() + ["autoencoder", "--store", str(store), "--steps", str(steps),
                        "--out", str(folder), "--json", "--threads", str(threads)]
    else:
        cmd = _cli() + ["train", "--store", str(store), "--steps", str(steps), "--out",
                        str(folder), "--tasks", tasks, "--json", "--threads", str(threads)]
    return cmd + ["--seed", str(seed)]


def _trained_earlier(name: str, folder: Path, steps: int) -> dict | None:
    """The record of a variant already trained to ``steps`` in ``folder``, else ``None``."""
    done = folder / "done.json"
    if done.is_file():
        info = json.loads(done.read_text())
        if info.get("steps") == steps:
            log.info("train %s: done earlier", name)
            REUSED.append(f"training of {name}")
            return info
    if (folder / "checkpoint.pt").is_file():
        REUSED.append(f"training of {name} up to its last checkpoint")
    return None


def _trained(name: str, tasks: str, folder: Path, steps: int, threads: int,
             proc: subprocess.CompletedProcess, seconds: float) -> dict:
    """Record a finished training subprocess in ``folder/done.json``; raises on failure."""
    if proc.returncode != 0:
        raise RuntimeError(f"training variant {name} failed (exit {proc.returncode})")
    try:
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        metrics = {}
    info = {"name": name, "tasks": tasks, "steps": steps, "metrics": metrics,
            "seconds": round(seconds, 1), "threads": threads}
    write_json(folder / "done.json", info)
    return info


def stage_train(name: str, tasks: str, store: Path, folder: Path, steps: int,
                threads: int, seed: int = 0) -> dict:
    """Train one variant (or reuse it: :func:`_trained_earlier`)."""
    if (info := _trained_earlier(name, folder, steps)) is not None:
        return info
    t0 = time.monotonic()
    proc = _run(_train_command(tasks, store, folder, steps, threads, seed), f"train {name}")
    return _trained(name, tasks, folder, steps, threads, proc, time.monotonic() - t0)


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_jobs(jobs: int, threads: int, variants: int, cores: int) -> tuple[int, int]:
    """(trainings run at once, torch threads each) for ``variants`` to train on ``cores``.
    ``jobs`` 0 picks one training per core (at most ``variants``); ``threads`` 0 splits
    the cores between them. A training alone keeps torch's own thread count. (On two
    cores two one-thread trainings do more steps in all than one two-thread training:
    docs/architecture.md, "Evaluation and other self-supervised signals".)"""
    n = max(1, min(variants, cores) if jobs <= 0 else min(jobs, max(1, variants)))
    if threads > 0:
        return n, threads
    return n, (0 if n == 1 else max(1, cores // n))


def _run_parallel(cmds: dict[str, list[str]], jobs: int) -> dict[str, tuple]:
    """Run ``{name: command}`` with at most ``jobs`` at once; every stderr line passes
    through prefixed with its name, stdout is captured. Returns ``{name:
    (CompletedProcess, seconds)}``. On an exception (Ctrl-C) the running ones are
    stopped: each resumes from its last checkpoint next time."""
    import tempfile
    import threading

    def relay(name: str, stream) -> None:
        for line in stream:
            sys.stderr.write(f"[{name}] {line}")
        stream.close()

    pending, running, done = list(cmds.items()), {}, {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                name, cmd = pending.pop(0)
                log.info("train %s: %s", name, " ".join(cmd[2:]))
                out = tempfile.TemporaryFile("w+")
                proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, text=True)
                t = threading.Thread(target=relay, args=(name, proc.stderr), daemon=True)
                t.start()
                running[name] = (proc, out, t, time.monotonic())
            time.sleep(0.2)
            for name, (proc, out, t, t0) in list(running.items()):
                if proc.poll() is None:
                    continue
                t.join(timeout=5)
                out.seek(0)
                seconds = time.monotonic() - t0
                done[name] = (subprocess.CompletedProcess(proc.args, proc.returncode,
                                                          stdout=out.read()), seconds)
                out.close()
                del running[name]
                log.info("train %s: exit %d after %.0f s", name, proc.returncode, seconds)
    finally:
        for proc, out, _, _ in running.values():
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            out.close()
    return done


def training_cost(tasks: str) -> float:
    """A variant's relative cost per step: the auto-encoder and pretext variants 2 (64
    images), a robot-task variant the sum of its tasks' ``Task.step_images`` (1 for a
    name the registry does not know: its training fails and says so)."""
    if tasks == "autoencoder" or tasks.startswith("pretext:"):
        return 2.0
    known = registry.names()
    return sum(registry.get(t).step_images if t in known else 1.0 for t in tasks.split(","))


def stage_train_all(variants: dict[str, tuple[str, Path]], store: Path, steps: int,
                    jobs: int, threads: int, seed: int = 0) -> dict:
    """Train ``{name: (tasks, folder)}``: one after another with ``jobs`` 1, else up to
    ``jobs`` subprocesses at once. A failed variant does not stop the others; the stage
    raises once they have finished (each finished one is kept, so a rerun trains only
    what is missing)."""
    trained, todo = {}, {}
    for name, (tasks, folder) in variants.items():
        if (info := _trained_earlier(name, folder, steps)) is not None:
            trained[name] = info
        else:
            todo[name] = (tasks, folder)
    n, per_job = plan_jobs(jobs, threads, len(todo), cpu_cores())
    if not todo:
        return trained
    if n == 1:
        for name, (tasks, folder) in todo.items():
            trained[name] = stage_train(name, tasks, store, folder, steps, per_job, seed)
        return {name: trained[name] for name in variants}
    log.info("training %d variants, %d at a time, %d torch thread(s) each", len(todo), n,
             per_job)
    # the costliest first, so that the last one to finish is short (alone at the end it
    # leaves cores idle)
    order = sorted(todo, key=lambda name: -training_cost(todo[name][0]))
    cmds = {name: _train_command(todo[name][0], store, todo[name][1], steps, per_job, seed)
            for name in order}
    failed = []
    for name, (proc, seconds) in _run_parallel(cmds, n).items():
        tasks, folder = todo[name]
        try:
            trained[name] = _trained(name, tasks, folder, steps, per_job, proc, seconds)
        except RuntimeError as exc:
            failed.append(str(exc))
    if failed:
        raise RuntimeError("; ".join(failed))
    return {name: trained[name] for name in variants}


def _checkpoint_key(checkpoint: str, seed: int = 0) -> str:
    """What identifies the weights an evaluation saw: a retrained or resumed variant
    (more steps) has another checkpoint file, so its old numbers are not reused; random
    init is the untrained network of the seed."""
    if checkpoint == "random":
        return "random" if not seed else f"random:{seed}"
    st = os.stat(checkpoint)
    return f"{st.st_size}:{st.st_mtime_ns}"


def stage_eval(name: str, checkpoint: str, evalset: Path, out_json: Path, nn_png: Path,
               layer: str, input_size: int, width: float, seed: int = 0) -> dict:
    """Evaluate one variant on the held-out renders (``seed``: of a random-init root,
    so that it is the seed's trained variants' step 0)."""
    key = _checkpoint_key(checkpoint, seed)
    if out_json.is_file() and nn_png.is_file():
        earlier = json.loads(out_json.read_text())
        if earlier.get("checkpoint_key") == key and \
                earlier.get("eval_version") == EVAL_VERSION and layer in earlier["retrieval"] \
                and "per_instance" in earlier["retrieval"][layer]:
            log.info("eval %s: done earlier", name)
            REUSED.append(f"evaluation of {name}")
            return earlier
        log.info("eval %s: the checkpoint or the evaluation changed since; again", name)
    from curious_robot.evaluation import evaluate
    from curious_robot.evaluation.features import load_root
    from curious_robot.learning.networks import LAYERS

    t0 = time.monotonic()
    root = load_root(checkpoint, input_size, width, seed)
    meta = json.loads((evalset / "meta.json").read_text())
    classes = {f"obj_{o['id']:03d}": o["class"] for o in meta["objects"]}
    result = {"name": name, "checkpoint": checkpoint,
              "classification": evaluate.classification(root, evalset / "classify", LAYERS),
              "retrieval": evaluate.retrieval(root, evalset / "retrieval", LAYERS,
                                              classes=classes, per_instance=(layer,))}
    evaluate.neighbour_figure(root, evalset / "retrieval", nn_png, layer,
                              title=f"{name} ({layer}): query and top-5 (green: same object)")
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["checkpoint_key"] = key
    result["eval_version"] = EVAL_VERSION
    write_json(out_json, result)
    log.info("eval %s: %s nn %.3f, linear %.3f, R@1 %.3f (%.0f s)", name, layer,
             result["classification"][layer]["nn_accuracy"],
             result["classification"][layer]["linear_accuracy"],
             result["retrieval"][layer]["recall_at_1"], result["seconds"])
    return result


#: What a category evaluation JSON holds; an earlier version is evaluated again.
#: 2: the validation split at every layer too, from which the report's layer is chosen.
CATEGORY_EVAL_VERSION = 2
#: The category split of the final stage: the only reader of the test split.
CATEGORY_SPLIT = "test"
#: The split the report's category layer is chosen on (:func:`seeds.category_layer`).
CATEGORY_CHOICE_SPLIT = "val"
#: The category set's parameters that make its renders (a change renders and evaluates
#: again).
CATEGORY_SET_KEYS = ("version", "instances", "views", "seed", "val_share", "categories")


def stage_categories(name: str, checkpoint: str, folder: Path, out_json: Path,
                     input_size: int, width: float, seed: int = 0) -> dict:
    """Category 1-NN from other instances on the category set's **test** split, at every
    layer, with per-instance scores (:func:`categories.evaluate`), into ``out_json``, and
    on its validation split (``val_by_layer``, the scores the report's layer is chosen
    from); reused while the weights, this stage's version and the category set are
    unchanged."""
    from curious_robot.evaluation import categories

    key = _checkpoint_key(checkpoint, seed)
    meta = json.loads((folder / categories.META_NAME).read_text())
    category_set = {k: meta.get(k) for k in CATEGORY_SET_KEYS}
    if out_json.is_file():
        try:
            earlier = json.loads(out_json.read_text())
        except ValueError:
            earlier = {}
        if earlier.get("checkpoint_key") == key and \
                earlier.get("eval_version") == CATEGORY_EVAL_VERSION and \
                earlier.get("category_set") == category_set and \
                earlier.get("split") == CATEGORY_SPLIT:
            log.info("categories %s: done earlier", name)
            REUSED.append(f"category test of {name}")
            return earlier
        log.info("categories %s: the checkpoint or the category set changed since; again",
                 name)
    from curious_robot.evaluation.features import load_root
    from curious_robot.learning.networks import LAYERS

    t0 = time.monotonic()
    root = load_root(checkpoint, input_size, width, seed)
    result = {"name": name, "checkpoint": checkpoint, "split": CATEGORY_SPLIT,
              "category_set": category_set,
              "by_layer": categories.evaluate(root, folder, CATEGORY_SPLIT, LAYERS),
              "val_by_layer": categories.evaluate(root, folder, CATEGORY_CHOICE_SPLIT,
                                                  LAYERS),
              "seconds": round(time.monotonic() - t0, 1), "checkpoint_key": key,
              "eval_version": CATEGORY_EVAL_VERSION}
    write_json(out_json, result)
    log.info("categories %s: test 1-NN %s (%.0f s)", name, ", ".join(
        f"{L} {r['nn_accuracy']:.3f}" for L, r in result["by_layer"].items()),
        result["seconds"])
    return result


def stage_category_set(folder: Path) -> dict:
    """The category set's meta, rendered into ``folder`` first when missing or stale."""
    from curious_robot.evaluation import categories
    from curious_robot.stdio import stdout_to_stderr

    def progress(done, total):
        if done == total or done % max(1, total // 5) == 0:
            log.info("category set: rendered %d/%d instances", done, total)

    with stdout_to_stderr():  # PyBullet prints to fd 1 while rendering
        return categories.ensure(folder, progress=progress)


# -- a seed's results, kept beside the report ------------------------------------------------

#: What a seed record holds; another version is not reused. 2: category tests carry the
#: validation split's scores (``val_by_layer``).
SEED_RECORD_VERSION = 2
#: Modules left out of :func:`code_fingerprint`: they only render what the stages measured.
REPORT_ONLY = ("evaluation/seeds.py",)


def _code_only(source: bytes) -> bytes:
    """A module's syntax tree without its docstrings (comments and layout are not in it):
    what runs, so that fixing a docstring or a comment keeps a seed's record valid."""
    import ast

    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


#: The folders :func:`code_fingerprint` covers: the package, then the data folders.
FINGERPRINTED = ("curious_robot", "sim", "config")


def code_fingerprint() -> str:
    """sha256 of everything that makes a seed's numbers: every module of the package
    (except :data:`REPORT_ONLY`; its code, not its docstrings or comments:
    :func:`_code_only`) and the data folders the simulation and the nodes read (``sim/``,
    ``config/``, byte for byte). Two checkouts with the same fingerprint collect, train
    and evaluate alike."""
    import hashlib

    import curious_robot
    from curious_robot.paths import share_dir

    h = hashlib.sha256()
    package = Path(curious_robot.__file__).resolve().parent
    files = [(f"curious_robot/{f.relative_to(package).as_posix()}", f)
             for f in package.rglob("*.py")
             if f.relative_to(package).as_posix() not in REPORT_ONLY]
    for folder in FINGERPRINTED[1:]:
        root = share_dir() / folder
        files += [(f"{folder}/{f.relative_to(root).as_posix()}", f)
                  for f in root.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    for name, f in sorted(files):
        data = f.read_bytes()
        h.update(name.encode() + b"\0" + (_code_only(data) if name.endswith(".py") else data)
                 + b"\0")
    return h.hexdigest()


def environment() -> dict:
    """The versions of what computes the numbers besides this package."""
    import platform

    import cv2
    import numpy
    import pybullet
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "opencv": cv2.__version__,
            "pybullet": getattr(pybullet, "getAPIVersion", lambda: None)()}


def _commit() -> str | None:
    """The source checkout's commit (``+dirty`` with uncommitted changes to the code the
    fingerprint covers, not to a run's own results), if it is one."""
    from curious_robot.paths import share_dir

    try:
        run = dict(cwd=share_dir(), capture_output=True, text=True, timeout=10)
        head = subprocess.run(["git", "rev-parse", "HEAD"], **run)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "--", *FINGERPRINTED], **run).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def seed_record_path(out: Path, seed: int) -> Path:
    return out / "seeds" / f"seed-{seed}.json"


def seed_key(seed: int, scale: float, steps: int, robots: int, layer: str) -> dict:
    """What a seed's numbers depend on besides the variants: a record is reused only when
    all of it matches."""
    return {"version": SEED_RECORD_VERSION, "seed": seed, "scale": scale, "steps": steps,
            "robots": robots, "layer": layer, "code": code_fingerprint(),
            "environment": environment()}


def write_seed_record(path: Path, key: dict, names: list[str], summary: dict,
                      results: dict, cats: dict) -> None:
    """One seed's finished comparison (its summary, every variant's evaluation and
    category test, per-object and per-instance scores included), so that a report over
    seeds can be completed by another invocation, in another work folder or checkout."""
    write_json(path, {"key": key, "variants": list(names), "commit": _commit(),
                      "made": time.time(), "summary": summary, "results": results,
                      "categories": cats})


def read_seed_record(path: Path, key: dict, names: list[str]) -> dict | None:
    """The record at ``path`` when it was made with ``key`` and holds every variant of
    ``names``; else ``None``, with the reason logged."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        log.warning("%s is not JSON: running its seed", path)
        return None
    have = record.get("key") or {}
    changed = [k for k in key if have.get(k) != key[k]]
    missing = [n for n in names if n not in (record.get("variants") or [])]
    if changed or missing:
        log.info("%s was made with another %s: running its seed", path,
                 ", ".join(changed + (["set of variants"] if missing else [])))
        return None
    return record


# -- report -------------------------------------------------------------------------------


def store_summary(store_path: Path) -> dict:
    from curious_robot.store import ReplayStore

    with ReplayStore(store_path, readonly=True) as store:
        stats = store.stats()
        tasks = {t: {"train": store.count(t, held_out=False),
                     "held_out": store.count(t, held_out=True)}
                 for t in registry.names()}
    return {"path": str(store_path), "stats": stats, "tasks": tasks}


def _ours(results: dict, name: str, layer: str) -> tuple:
    """(NN over all objects, NN on the split, linear probe on the split, R@1, R@5)."""
    r = results.get(name)
    if not r:
        return (None,) * 5
    c, q = r["classification"][layer], r["retrieval"][layer]
    return (q.get("nn_accuracy_all"), c["nn_accuracy"], c["linear_accuracy"],
            q["recall_at_1"], q["recall_at_5"])


def _pm(value, se) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if se is None else f"{value:.3f} ± {se:.3f}"


def _ours_cells(results: dict, name: str, layer: str) -> str:
    """The table's cells of one variant: NN over all objects (± s.e.), the split's NN and
    linear probe, R@1 (± s.e.), R@5."""
    r = results.get(name)
    if not r:
        return " | ".join(["-"] * 5)
    c, q = r["classification"][layer], r["retrieval"][layer]
    return " | ".join([_pm(q.get("nn_accuracy_all"), q.get("nn_accuracy_all_se")),
                       _f(c["nn_accuracy"]), _f(c["linear_accuracy"]),
                       _pm(q["recall_at_1"], q.get("recall_at_1_se")),
                       _f(q["recall_at_5"])])


#: Baselines of the paired-difference table (name -> column label), and its metrics.
PAIRED_BASELINES = {"random": "random init", "autoencoder": "auto-encoder"}
PAIRED_METRICS = (("nn_accuracy_all", "shape NN, all objects"), ("recall_at_1", "R@1"))


def paired_differences(results: dict, layer: str) -> dict:
    """``{variant: {baseline: {metric: (difference, standard error, n objects)}}}``: a
    variant's score minus a baseline's, paired over the held-out objects both saw.
    Variants without per-object scores (an older evaluation) are left out."""
    from curious_robot.evaluation.metrics import paired_difference

    def scores(name, metric):
        r = results.get(name, {}).get("retrieval", {}).get(layer, {})
        return r.get("per_instance", {}).get(metric)

    out: dict = {}
    for base in PAIRED_BASELINES:
        for name in results:
            if name == base:
                continue
            for metric, _ in PAIRED_METRICS:
                a, b = scores(name, metric), scores(base, metric)
                if not a or not b:
                    continue
                common = sorted(set(a) & set(b))
                if len(common) < 2:
                    continue
                d, se = paired_difference([a[k] for k in common], [b[k] for k in common])
                out.setdefault(name, {}).setdefault(base, {})[metric] = (d, se, len(common))
    return out


def _signed(d, se) -> str:
    return f"{100 * d:+.1f} ± {100 * se:.1f}"


def render_paired(results: dict, layer: str) -> list[str]:
    """The table of differences against random init and the auto-encoder, in points."""
    paired = paired_differences(results, layer)
    if not paired:
        return []
    cols = [(base, metric, f"{label} vs {short}")
            for base, short in PAIRED_BASELINES.items() for metric, label in PAIRED_METRICS]
    n = max(v[2] for per in paired.values() for m in per.values() for v in m.values())
    lines = ["## Differences, paired over the held-out objects (points)", "",
             f"Each variant's per-object score minus the baseline's on the same {n} objects "
             "(an object's score: the mean over its views), ± one standard error of that "
             "difference. Pairing cancels how hard each object is for every network, so "
             "these errors are smaller than the tables' separate ones; a difference under "
             "about two of them is noise.", "",
             "| features | " + " | ".join(c[2] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name in results:
        if name not in paired:
            continue
        cells = []
        for base, metric, _ in cols:
            v = paired[name].get(base, {}).get(metric)
            cells.append("-" if v is None else _signed(v[0], v[1]))
        lines.append(f"| {VARIANTS[name][0]} | " + " | ".join(cells) + " |")
    return lines + [""]


def _duration(summary: dict) -> str:
    runs = summary.get("invocations") or []
    if len(runs) < 2:
        return f"{_minutes(summary['minutes'])} in all"
    return (f"{_minutes(sum(r['minutes'] for r in runs))} of work over {len(runs)} "
            f"invocations, this one {_minutes(summary['minutes'])}")


def _ledger(work: Path, finished: float, minutes: float) -> list[dict]:
    """Every invocation on this work folder so far, this one appended (``runs.json``)."""
    path = work / "runs.json"
    try:
        runs = json.loads(path.read_text()) if path.is_file() else []
    except ValueError:
        log.warning("%s is not JSON; starting its record of invocations again", path)
        runs = []
    runs.append({"finished": finished, "minutes": round(minutes, 2)})
    write_json(path, runs)
    return runs


def render_table(summary: dict, results: dict, layer: str) -> str:
    tasks = summary["store"]["tasks"]
    ev = summary["evalset"]
    lines = [
        "# The Curious Robot: this project's numbers beside the paper's",
        "",
        f"Generated by `curious-robot reproduce --scale {summary['scale']:g}"
        f"{' --seed %d' % summary['seed'] if summary.get('seed') else ''}` "
        f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(summary['finished']))}, "
        f"{_duration(summary)}). Columns marked **(paper)** are the paper's own numbers "
        f"({PAPER_SOURCE}; copied into `curious_robot/evaluation/reproduce.py`, `PAPER`), "
        "on its data sets, which this project does not have: they are not comparable "
        "cell by cell with this project's columns, only the direction of each "
        "difference is.",
        *([] if not summary.get("reused") else [
            "", f"This run continued an earlier one: its {_minutes(summary['minutes'])} do not "
            "include what it reused (" + "; ".join(summary["reused"]) + ")."]),
        "",
        "Ours: features of the frozen root network, layer "
        f"`{layer}`, on renders of **{ev['n_objects']} held-out objects** x {ev['views']} "
        "views (oblique cameras, other lighting, scales and poses than training). Their "
        "own interactions are never trained on, and collection drew each scene all from "
        f"the training or all from the held-out objects (`object_split: {OBJECT_SPLIT}`), "
        "so they never appear in training images:",
        "",
        f"- **shape**: {len(ev['classes'])} shape families from mesh geometry "
        f"({' / '.join(ev['classes'])}: how much of its bounding rectangle an object's "
        "top-down silhouette fills, tertiles; chance "
        f"{1 / len(ev['classes']):.3f}). **NN, all objects**: every image queries the "
        "images of all *other* objects, 1-nearest-neighbour (cosine) class accuracy. "
        "**NN / linear, split**: the classify/ train / test split by object "
        "(1-NN, linear probe); its test part holds only ~30 % of the objects, so it is "
        "the noisier of the two;",
        f"- **R@1 / R@5**: instance retrieval over the {ev['n_objects']} objects: query one "
        "view, recall@k of another view of the same object;",
        "- **±**: one standard error over objects (an object's views are not independent "
        "tests); differences under about two of them are noise.",
        "",
        "## Interactions (training split of the store; every variant trains on the same "
        "store)",
        "",
        "| task | interactions trained on | held out (not trained on) |",
        "|---|---:|---:|",
    ]
    for t in ALL_TASKS:
        label = t if TASK_NAMES[t] == t else f"{TASK_NAMES[t]} ({t})"
        lines.append(f"| {label} | {tasks[t]['train']} | {tasks[t]['held_out']} |")
    lines.append(f"| total | {sum(tasks[t]['train'] for t in ALL_TASKS)} | "
                 f"{sum(tasks[t]['held_out'] for t in ALL_TASKS)} |")
    lines += ["", f"Training: {summary['steps']} steps per variant (one batch of 32 per task "
              "per step; auto-encoder and the pretext variants: 64 images per step). The "
              "robot-task variants train with `train`'s defaults: photometric jitter, half "
              "of the grasp / push / identity images colour-scrambled (channels reordered "
              "or grey), InfoNCE identity loss at weight 0.5.", ""]

    head = ("| features | " + " | ".join(f"{d} (paper)" for d in PAPER_DATASETS)
            + " | shape NN, all objects | shape NN, split | shape linear, split | R@1 | R@5 |")
    rule = "|---|" + "---:|" * (len(PAPER_DATASETS) + 5)
    lines += ["## Table 1: classification and retrieval", "", head, rule]
    for name in ("random", "all", "imagenet", "identity", "autoencoder"):
        label = VARIANTS[name][0] if name in VARIANTS else "AlexNet trained on ImageNet " \
            "(labels; not run here)"
        paper = " | ".join(_f(v) for v in PAPER[name])
        lines.append(f"| {label} | {paper} | {_ours_cells(results, name, layer)} |")
    lines += ["", "## Table 2: ablation (all tasks, then all tasks except one)", "", head, rule]
    for name in ABLATION_ROWS:
        paper = " | ".join(_f(v) for v in PAPER[name])
        lines.append(f"| {VARIANTS[name][0]} | {paper} | {_ours_cells(results, name, layer)} |")
    lines += ["", "## Table 3: other self-supervised signals on the same images and budget",
              "", "Same stored images (every training-split image, as the auto-encoder), "
              "same steps; paper columns: not reported for these signals in Pinto et al.",
              "", head, rule]
    for name in PRETEXT_ROWS:
        paper = " | ".join(_f(v) for v in PAPER.get(name, (None,) * len(PAPER_DATASETS)))
        lines.append(f"| {VARIANTS[name][0]} | {paper} | {_ours_cells(results, name, layer)} |")

    lines += [""] + render_paired(results, layer)

    from curious_robot.learning.networks import LAYERS

    lines += ["## Every layer (shape NN, all objects / R@1)", "",
              "| variant | " + " | ".join(LAYERS) + " |", "|---|" + "---:|" * len(LAYERS)]
    for name, r in results.items():
        cells = [f"{_f(r['retrieval'][L].get('nn_accuracy_all'))} / "
                 f"{_f(r['retrieval'][L]['recall_at_1'])}" for L in LAYERS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Nearest-neighbour pictures: `neighbours/<variant>.png`; chart: "
              "`chart.png`; all numbers: `results.json`.", ""]
    return "\n".join(lines)


def render_chart(results: dict, layer: str, path: Path, paired: dict | None = None) -> None:
    """Top: every variant's scores (± one standard error over objects where there is one).
    Bottom (when ``paired``, as in results.json): each variant minus random init, paired
    over objects, in points, against the +5-point bar the evaluation issue sets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    metrics = (("shape NN, all objects", 0, "nn_accuracy_all_se"),
               ("shape linear, split", 2, None), ("R@1", 3, "recall_at_1_se"),
               ("R@5", 4, None))
    x = np.arange(len(names))
    diffs = [n for n in names if "random" in (paired or {}).get(n, {})]
    fig, axes = plt.subplots(2 if diffs else 1, 1, squeeze=False,
                             figsize=(max(6.0, 1.1 * len(names) + 2), 7 if diffs else 4))
    ax = axes[0][0]
    w = 0.8 / len(metrics)
    for j, (label, i, se_key) in enumerate(metrics):
        vals = [_ours(results, n, layer)[i] or 0.0 for n in names]
        err = None
        if se_key:
            err = [results[n]["retrieval"][layer].get(se_key) or 0.0 for n in names]
        ax.bar(x + (j - (len(metrics) - 1) / 2) * w, vals, w, label=label, yerr=err,
               capsize=2)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("accuracy / recall")
    ax.set_ylim(0, 1)
    ax.set_title(f"Held-out renders, frozen root features ({layer}); "
                 "bars: ± one standard error over objects")
    ax.legend(ncol=4, fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    if diffs:
        ax = axes[1][0]
        xd = np.arange(len(diffs))
        for j, (metric, label) in enumerate(PAIRED_METRICS):
            cells = [paired[n]["random"].get(metric) or {} for n in diffs]
            ax.bar(xd + (j - 0.5) * 0.35, [100 * c.get("difference", 0.0) for c in cells],
                   0.35, yerr=[100 * c.get("se", 0.0) for c in cells], capsize=3,
                   label=label, color=("tab:blue", "tab:green")[j])
        ax.axhline(0, color="black", lw=0.8)
        ax.axhline(5, color="tab:red", ls="--", lw=1, label="+5 points")
        ax.set_xticks(xd)
        ax.set_xticklabels(diffs, rotation=30, ha="right")
        ax.set_ylabel("points")
        ax.set_title("Minus random init, paired over the held-out objects (± one standard "
                     "error of the difference)")
        ax.legend(ncol=3, fontsize=8, loc="lower left")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- driver -------------------------------------------------------------------------------


def _earlier_seed(work: Path, seed: int) -> int:
    """The seed of the run ``work`` holds (``seed`` when it holds none yet)."""
    path = work / "seed.json"
    if path.is_file():
        return json.loads(path.read_text()).get("seed", 0)
    if any((work / d).exists() for d in ("collect", "variants", "replay.db")):
        return 0
    return seed


def _check_seed(work: Path, seed: int) -> None:
    """A work folder holds one seed's collection and training: resuming it with another
    seed would mix two runs. (A folder from before seeds were recorded ran seed 0.)"""
    earlier = _earlier_seed(work, seed)
    if earlier != seed:
        raise RuntimeError(f"{work} holds a run with --seed {earlier}, not {seed}: pass "
                           "another --work (or the same seed to resume it)")
    write_json(work / "seed.json", {"seed": seed})


def work_folder(work: str | None, scale: float, seed: int, suffix: bool) -> Path:
    """A seed's work folder: ``work`` (default runs/reproduce/scale-X), with ``-seed-S``
    appended for a seed other than 0 (``suffix``: always for --seeds; for --seed only
    when no --work is given)."""
    base = work or f"runs/reproduce/scale-{scale:g}"
    return Path(base + (f"-seed-{seed}" if seed and (suffix or not work) else ""))


def _arguments(args) -> tuple[list[int], list[str]] | str:
    """(seeds, variants) of the arm comparison, or what is wrong with the arguments."""
    if not args.scale > 0:
        return "--scale must be > 0"
    if args.jobs < 0:
        return "--jobs must be >= 0 (0: one training per CPU core)"
    if args.seeds is not None and args.seed is not None:
        return "give --seed S (one seed) or --seeds S,S,... (several), not both"
    if args.seeds is not None:
        from curious_robot.evaluation.seeds import DEFAULT_VARIANTS, parse_seeds

        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            return str(exc)
        if len(seeds) > 1 and args.store:
            return ("--store names one store, but each of --seeds collects its own: leave "
                    "--store out")
        names = list(DEFAULT_VARIANTS)
    else:
        seeds = [args.seed or 0]
        if seeds[0] < 0:
            return "--seed must be >= 0"
        names = list(VARIANTS)
    if args.variants:
        names = [n.strip() for n in args.variants.split(",") if n.strip()]
        unknown = [n for n in names if n not in VARIANTS]
        if unknown:
            return f"unknown variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}"
        if not names:
            return "--variants names no variant"
    return seeds, names


def run_seed(args, seed: int, work: Path, names: list[str], steps: int, layer: str,
             nn_dir: Path, category_set: Path) -> tuple[dict, dict, dict]:
    """Stages 1-4 and the category test of one seed in its work folder; returns its
    summary, its evaluations and its category tests (``{variant: ...}`` each)."""
    from curious_robot.evaluation.features import DEFAULT_INPUT_SIZE, DEFAULT_WIDTH

    t_start = time.time()
    REUSED.clear()
    store = Path(args.store) if args.store else work / "replay.db"
    work.mkdir(parents=True, exist_ok=True)
    _check_seed(work, seed)
    n_stages = 6
    log.info("[1/%d] collect (seed %d, %s)", n_stages, seed, work)
    if args.store and store.is_file() and not (work / "collect").is_dir():
        log.info("collect: using the existing store %s", store)
    else:
        stage_collect(store, work, round(COLLECT_N * args.scale), COLLECT_CAP_S * args.scale,
                      args.robots, seed)
    summary = {"scale": args.scale, "seed": seed, "steps": steps, "layer": layer,
               "store": store_summary(store)}
    log.info("store: %s", ", ".join(f"{t} {v['train']}"
                                      for t, v in summary["store"]["tasks"].items()))

    log.info("[2/%d] evalset", n_stages)
    meta = stage_evalset(work / "evalset")
    summary["evalset"] = {k: meta[k] for k in ("n_objects", "views", "n_images",
                                                "classes", "class_counts")}

    log.info("[3/%d] train %d variants", n_stages, sum(VARIANTS[n][1] is not None
                                                        for n in names))
    checkpoints = {n: "random" if VARIANTS[n][1] is None
                   else str(work / "variants" / n / "checkpoint.pt") for n in names}
    summary["training"] = stage_train_all(
        {n: (VARIANTS[n][1], work / "variants" / n) for n in names
         if VARIANTS[n][1] is not None}, store, steps, args.jobs, args.threads, seed)

    log.info("[4/%d] evaluate %d variants", n_stages, len(names))
    results = {}
    for name in names:
        results[name] = stage_eval(name, checkpoints[name], work / "evalset",
                                   work / "eval" / f"{name}.json", nn_dir / f"{name}.png",
                                   layer, DEFAULT_INPUT_SIZE, DEFAULT_WIDTH, seed)

    log.info("[5/%d] category test split, %d variants", n_stages, len(names))
    stage_category_set(category_set)
    cats = {name: stage_categories(name, checkpoints[name], category_set,
                                   work / "eval" / f"{name}.categories.json",
                                   DEFAULT_INPUT_SIZE, DEFAULT_WIDTH, seed)
            for name in names}
    summary["finished"] = time.time()
    summary["minutes"] = (time.time() - t_start) / 60.0
    summary["reused"] = list(REUSED)
    summary["invocations"] = _ledger(work, summary["finished"], summary["minutes"])
    return summary, results, cats


def _lean_categories(cats: dict) -> dict:
    """Category tests without their per-instance scores (those stay in WORK/eval)."""
    return {name: {L: {k: v for k, v in q.items() if k != "per_instance"}
                   for L, q in c["by_layer"].items()} for name, c in cats.items()}


def _lean_val(cats: dict) -> dict:
    """The validation split's 1-NN accuracy per variant and layer."""
    return {name: {L: q["nn_accuracy"] for L, q in c.get("val_by_layer", {}).items()}
            for name, c in cats.items()}


def report_one(summary: dict, results: dict, cats: dict, layer: str, out: Path) -> None:
    """One seed's report: OUT/table.md, chart.png, results.json."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(render_table(summary, results, layer))
    # per-object scores stay in the work folder's eval/*.json; the differences come here
    lean = {name: {**r, "retrieval": {L: {k: v for k, v in q.items() if k != "per_instance"}
                                      for L, q in r["retrieval"].items()}}
            for name, r in results.items()}
    paired = {name: {base: {m: dict(zip(("difference", "se", "n_objects"), v))
                            for m, v in per.items()} for base, per in d.items()}
              for name, d in paired_differences(results, layer).items()}
    render_chart(results, layer, out / "chart.png", paired)
    write_json(out / "results.json", {"summary": summary, "results": lean,
                                       "paired_differences": paired,
                                       "categories_test": _lean_categories(cats),
                                       "categories_val": _lean_val(cats)})


def report_seeds(summary: dict, runs: dict, names: list[str], layer: str, out: Path) -> None:
    """The report over several seeds (:mod:`.seeds`): OUT/table.md, chart.png,
    results.json."""
    from curious_robot.evaluation import seeds as S

    res = S.build(runs, names, layer)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(S.render_table(summary, res))
    S.render_chart(res, out / "chart.png")
    write_json(out / "results.json", {"summary": summary, **res})


def run(args) -> int:
    from curious_robot.drone import results as drone

    if args.mode == "drone":
        if args.seeds is not None or args.categories is not None or args.jobs:
            print("curious-robot reproduce: --seeds, --categories and --jobs only apply "
                  "to --mode arm", file=sys.stderr)
            return 2
        args.seed = args.seed or 0
        return drone.run(args)
    given = [f"--{k.replace('_', '-')}" for k in drone.SIZE_FLAGS
             if k != "steps" and getattr(args, k) is not None]
    if given:
        print(f"curious-robot reproduce: {', '.join(given)} only apply to --mode drone",
              file=sys.stderr)
        return 2
    from curious_robot.evaluation import DEFAULT_LAYER

    checked = _arguments(args)
    if isinstance(checked, str):
        print(f"curious-robot reproduce: {checked}", file=sys.stderr)
        return 2
    seeds, names = checked
    several = args.seeds is not None
    works = {s: work_folder(args.work, args.scale, s, several) for s in seeds}
    for s, work in works.items():
        if _earlier_seed(work, s) != s:
            print(f"curious-robot reproduce: {work} holds a run with --seed "
                  f"{_earlier_seed(work, s)}, not {s}: pass another --work (or the same "
                  "seed to resume it)", file=sys.stderr)
            return 2
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    t_start = time.time()
    out = Path(args.out or "results")
    steps = args.steps or max(MIN_STEPS, int(round(STEPS * args.scale)))
    layer = DEFAULT_LAYER
    from curious_robot.evaluation.categories import DEFAULT_FOLDER

    category_set = Path(args.categories or DEFAULT_FOLDER)
    runs, summaries = {}, {}
    try:
        for k, s in enumerate(seeds):
            if len(seeds) > 1:
                log.info("=== seed %d (%d/%d) in %s", s, k + 1, len(seeds), works[s])
            record_path = seed_record_path(out, s)
            key = seed_key(s, args.scale, steps, args.robots, layer)
            record = None if args.store else read_seed_record(record_path, key, names)
            if record is not None:
                log.info("seed %d: finished earlier (%s, commit %s): %s", s,
                         time.strftime("%Y-%m-%d %H:%M", time.localtime(record["made"])),
                         record.get("commit"), record_path)
                summaries[s] = {**record["summary"], "record": str(record_path),
                                "record_made": record["made"],
                                "record_commit": record.get("commit")}
                runs[s] = {"results": {n: record["results"][n] for n in names},
                           "categories": {n: record["categories"][n] for n in names}}
                continue
            # the first seed's neighbour pictures go to OUT, the others' stay in WORK
            nn_dir = out / "neighbours" if k == 0 else works[s] / "neighbours"
            summaries[s], results, cats = run_seed(args, s, works[s], names, steps, layer,
                                                   nn_dir, category_set)
            runs[s] = {"results": results, "categories": cats}
            if not args.store:
                write_seed_record(record_path, key, names, summaries[s], results, cats)
    except RuntimeError as exc:
        print(f"curious-robot reproduce: {exc}", file=sys.stderr)
        return 1

    log.info("report")
    if len(seeds) == 1:
        report_one(summaries[seeds[0]], runs[seeds[0]]["results"],
                   runs[seeds[0]]["categories"], layer, out)
    else:
        first = summaries[seeds[0]]
        meta = runs[seeds[0]]["categories"][names[0]]["by_layer"][layer]
        summary = {"scale": args.scale, "seeds": seeds, "steps": steps, "layer": layer,
                   "finished": time.time(), "minutes": (time.time() - t_start) / 60.0,
                   "evalset": first["evalset"],
                   "categories": {"split": CATEGORY_SPLIT, **{
                       k: meta[k] for k in ("n_images", "n_instances", "n_categories")}},
                   "per_seed": {str(s): {**summaries[s], "work": str(works[s])}
                                for s in seeds}}
        report_seeds(summary, runs, names, layer, out)
    log.info("wrote %s, %s, %s", out / "table.md", out / "chart.png", out / "results.json")
    print((out / "table.md").read_text())
    return 0
