"""``curious-robot bench mcap``: seconds to export a 1,000-interaction store to MCAP (budget
60 s) and to import that file into a new store.

The store is written first (not timed) with records shaped like the robots' own: 128 x 128
rgb8 images everywhere (the patch and scene image sizes of ``config/collect.yaml``), equal
shares of grasp (one patch), push (scene before and after plus a 128 x 128 float32 depth
image: more than simulated pushes carry), poke (a patch and 200 tactile samples) and
inspect (a patch and 4 views), over two robots. The images look rendered: a shaded table,
a few coloured objects, a little sensor noise (PNG in the store about as large as real
ones). Timed (wall clock, and this process's CPU time: on a shared machine the wall time
includes waiting for a core): :func:`curious_robot.store.mcap_io.export_mcap` of the whole
store, then :func:`curious_robot.store.mcap_io.import_mcap` of the file into an empty store;
the import is checked to give back every record. Exit 1 when the export takes longer than the
budget (scaled linearly for more than 1,000 records).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from curious_robot import tasks as registry

log = logging.getLogger(__name__)

#: What the MCAP issue allows for exporting a 1,000-interaction store.
BUDGET_S = 60.0
SIZE = 128


def add_arguments(parser) -> None:
    parser.add_argument("--interactions", type=int, default=1000,
                        help="records of the generated store (default %(default)s)")
    parser.add_argument("--dir", default=None,
                        help="keep the store and the .mcap in this folder (default: a "
                             "temporary folder, removed)")
    parser.add_argument("--seed", type=int, default=0)


def _image(rng: np.random.Generator, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    import cv2

    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(110, 170, 3).astype(np.float32)
    img = base + 25.0 * (x / w)[..., None] - 15.0 * (y / h)[..., None]
    img = img.astype(np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        centre = (int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10)))
        axes = (int(rng.integers(6, 30)), int(rng.integers(6, 30)))
        cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    noise = rng.normal(0.0, 1.5, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _push(rec, rng) -> None:
    rec.after = _image(rng)
    rec.depth_before = rng.uniform(0.70, 0.75, (SIZE, SIZE)).astype(np.float32)


def _poke(rec, rng) -> None:
    depth = np.linspace(0.0, 0.02, 200)
    force = np.maximum(0.0, 900.0 * (depth - 0.004)) + rng.normal(0, 0.05, 200)
    rec.tactile_depth, rec.tactile_force = depth.tolist(), force.tolist()
    rec.outcome = [900.0, -3.6, 0.004, float(force.max())]


def _inspect(rec, rng) -> None:
    rec.views = [_image(rng) for _ in range(4)]


#: what a real record of these tasks carries beyond its before image (sizes as collected)
FILL = {"push": _push, "poke": _poke, "inspect": _inspect}


def make_record(i: int, rng: np.random.Generator, t0: float = 1.76e9):
    from curious_robot.record import Interaction

    names = registry.names("arm")
    task = names[i % len(names)]
    robot = f"robot{i % 2}"
    start = t0 + 12.0 * i + float(rng.uniform(0, 1))
    rec = Interaction(task=task, robot=robot, seq=i // 2, object_id=f"obj{i % 7:04d}",
                      object_model=f"model_{i % 23}", held_out=i % 10 == 0,
                      success=bool(rng.integers(0, 2)), before=_image(rng),
                      truth={"mass": float(rng.uniform(0.05, 0.3)),
                             "stiffness": float(rng.uniform(3e3, 4e4))},
                      stamp_start=start, stamp_end=start + float(rng.uniform(4, 11)),
                      sim_step=int(2400 * i))
    spec = registry.get(task)
    rec.action = [float(v) for v in rng.uniform(-0.2, 0.2, len(spec.action_fields))]
    rec.outcome = [float(v) for v in rng.normal(0, 0.02, len(spec.outcome_fields))]
    FILL.get(task, lambda r, g: None)(rec, rng)
    return rec


def build_store(path: Path, n: int, seed: int = 0) -> None:
    from curious_robot.store import ReplayStore

    rng = np.random.default_rng(seed)
    with ReplayStore(path) as store:
        for i in range(n):
            store.add(make_record(i, rng))


def measure(n: int, folder: Path, seed: int = 0) -> dict:
    from curious_robot.store import ReplayStore
    from curious_robot.store.mcap_io import export_mcap, import_mcap

    src, bag, dst = folder / "bench.db", folder / "bench.mcap", folder / "imported.db"
    for p in (src, bag, dst):
        p.unlink(missing_ok=True)
    t0 = time.perf_counter()
    build_store(src, n, seed)
    build_s = time.perf_counter() - t0
    log.info("wrote a %d-record store (%.1f s, not timed)", n, build_s)
    with ReplayStore(src, readonly=True) as store:
        stats = store.stats()
        c0 = time.process_time()
        exported = export_mcap(store, bag)
        export_cpu = time.process_time() - c0
    with ReplayStore(dst) as store:
        c0 = time.process_time()
        imported = import_mcap(bag, store)
        import_cpu = time.process_time() - c0
        back = store.count()
    if back != n or imported.stored != n:
        raise RuntimeError(f"import gave back {back} of {n} records ({imported.as_dict()})")
    return {
        "interactions": n, "images": stats["images"], "budget_s": BUDGET_S,
        "store_mb": round(stats["file_bytes"] / 1e6, 1),
        "mcap_mb": round(exported.bytes / 1e6, 1), "messages": exported.messages,
        "export_s": round(exported.seconds, 2),
        "export_ms_per_interaction": round(1000 * exported.seconds / n, 2),
        "export_cpu_s": round(export_cpu, 2),
        # the budget is for 1,000 records; scaled linearly for larger stores
        "export_within_budget": exported.seconds < BUDGET_S * max(1.0, n / 1000),
        "import_s": round(imported.seconds, 2),
        "import_ms_per_interaction": round(1000 * imported.seconds / n, 2),
        "import_cpu_s": round(import_cpu, 2),
        "build_store_s_untimed": round(build_s, 1),
    }


def run(args) -> int:
    if args.interactions < 1:
        print("curious-robot bench mcap: --interactions must be at least 1", file=sys.stderr)
        return 2
    tmp = None
    try:
        if args.dir:
            folder = Path(args.dir)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = tmp = Path(tempfile.mkdtemp(prefix="curious-robot-bench-mcap-"))
        result = measure(args.interactions, folder, args.seed)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"curious-robot bench mcap: {exc}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    code = 0 if result["export_within_budget"] else 1
    if args.json:
        print(json.dumps(result))
        return code
    print(f"MCAP export / import of {result['interactions']} interactions "
          f"({result['images']} images; store {result['store_mb']} MB, "
          f"file {result['mcap_mb']} MB, {result['messages']} messages)")
    print(f"export  {result['export_s']:7.2f} s wall, {result['export_cpu_s']:.2f} s CPU  "
          f"({result['export_ms_per_interaction']} ms per interaction; budget "
          f"{BUDGET_S:.0f} s per 1,000)")
    print(f"import  {result['import_s']:7.2f} s wall, {result['import_cpu_s']:.2f} s CPU  "
          f"({result['import_ms_per_interaction']} ms per interaction)")
    return code
