"""``curious-robot bench store``: what durability costs. Milliseconds per
:meth:`ReplayStore.add` with ``synchronous=FULL`` (the default: every acknowledged record
fsynced) against ``NORMAL`` (no fsync; survives a killed process, not a power loss), on
records shaped like the robots' own (:func:`curious_robot.store.bench_mcap.make_record`).
The two stores are written alternately, record by record, in one temporary folder (so both
see the same disk and the same load); figures are wall-clock medians and 95th percentiles.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def add_arguments(parser) -> None:
    parser.add_argument("--interactions", type=int, default=200,
                        help="records written to each store (default %(default)s)")
    parser.add_argument("--dir", default=None,
                        help="folder for the two stores (default: a temporary folder under "
                             "the system's; give one on the disk the learner will use)")
    parser.add_argument("--seed", type=int, default=0)


def measure(n: int, folder: Path, seed: int = 0) -> dict:
    from curious_robot.store import ReplayStore
    from curious_robot.store.bench_mcap import make_record

    rng = np.random.default_rng(seed)
    records = [make_record(i, rng) for i in range(n)]
    modes = ("NORMAL", "FULL")
    times: dict[str, list[float]] = {m: [] for m in modes}
    stores = {m: ReplayStore(folder / f"{m.lower()}.db", synchronous=m) for m in modes}
    try:
        for rec in records:
            for m in modes:
                t0 = time.perf_counter()
                stores[m].add(rec)
                times[m].append(1e3 * (time.perf_counter() - t0))
    finally:
        for s in stores.values():
            s.close()
    out: dict = {"interactions": n, "folder": str(folder)}
    for m in modes:
        t = np.asarray(times[m])
        out[f"{m.lower()}_ms_median"] = round(float(np.median(t)), 3)
        out[f"{m.lower()}_ms_p95"] = round(float(np.percentile(t, 95)), 3)
        out[f"{m.lower()}_per_s"] = round(1e3 * len(t) / float(t.sum()), 1)
    out["full_over_normal"] = round(out["full_ms_median"] / max(out["normal_ms_median"], 1e-9),
                                    2)
    return out


def run(args) -> int:
    if args.interactions < 1:
        print("curious-robot bench store: --interactions must be at least 1", file=sys.stderr)
        return 2
    tmp = None
    try:
        if args.dir:
            folder = Path(args.dir)
            if not folder.is_dir():
                print(f"curious-robot bench store: --dir {folder} is not a folder",
                      file=sys.stderr)
                return 2
            for name in ("normal.db", "full.db"):
                if (folder / name).exists():
                    print(f"curious-robot bench store: {folder / name} exists; give an "
                          "empty folder", file=sys.stderr)
                    return 2
        else:
            folder = tmp = Path(tempfile.mkdtemp(prefix="curious-robot-bench-store-"))
        result = measure(args.interactions, folder, args.seed)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"store add, {result['interactions']} records each, in {result['folder']}")
        for m in ("normal", "full"):
            print(f"  synchronous={m.upper():6s}  median {result[f'{m}_ms_median']:7.2f} ms  "
                  f"p95 {result[f'{m}_ms_p95']:7.2f} ms  {result[f'{m}_per_s']:7.1f} /s")
        print(f"  FULL / NORMAL (median): {result['full_over_normal']:.2f}x")
    return 0
