"""``curious-robot store stats|check|export PATH``: look into a replay store.

Exit codes: 0 fine, 1 a problem (or the file is not a readable store), 2 no such file.
The store is opened read-only, so these commands are safe while a learner writes to it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def register(sub) -> None:
    parser = sub.add_parser("store", help="inspect, check or export a replay store")
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION", required=True)

    p = actions.add_parser("stats", help="counts per task / robot / object, seq gaps, size")
    p.add_argument("path", help="replay store file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_stats)

    p = actions.add_parser("check", help="integrity, schema, images and records; exit 1 on "
                                         "any problem")
    p.add_argument("path", help="replay store file")
    p.set_defaults(func=run_check)

    p = actions.add_parser("export", help="write the images of a few records as PNG files")
    p.add_argument("path", help="replay store file")
    p.add_argument("--out", required=True, help="folder for the PNG files (created)")
    p.add_argument("--limit", type=int, default=10, help="number of records (default 10)")
    p.add_argument("--task", default=None, help="only records of this task")
    p.set_defaults(func=run_export)


def _open(path: str):
    """(store, None) or (None, exit code) after printing why."""
    if not Path(path).exists():
        print(f"curious-robot store: {path}: no such file", file=sys.stderr)
        return None, 2
    from curious_robot.store import ReplayStore, StoreError

    try:
        return ReplayStore(path, readonly=True), None
    except StoreError as exc:
        print(f"curious-robot store: {exc}", file=sys.stderr)
        return None, 1


def run_stats(args) -> int:
    store, code = _open(args.path)
    if store is None:
        return code
    with store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(format_stats(stats))
    return 0


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def format_stats(stats: dict) -> str:
    """The human-readable form of :meth:`ReplayStore.stats`."""
    lines = [f"{stats['path']}: {stats['interactions']} interactions, schema "
             f"{stats['schema_version']}, {_mb(stats['file_bytes'])} (+ {_mb(stats['wal_bytes'])}"
             f" WAL), {stats['images']} images ({_mb(stats['image_bytes'])})",
             f"{'task':<10}{'count':>8}{'success':>10}{'held out':>10}"]
    for task, e in stats["per_task"].items():
        rate = "-" if e["success_rate"] is None else f"{100 * e['success_rate']:.1f}%"
        lines.append(f"{task:<10}{e['count']:>8}{rate:>10}{e['held_out']:>10}")
    lines.append(f"objects: {stats['objects']} ({stats['held_out_objects']} held out); "
                 f"held-out share of interactions: {100 * stats['held_out_share']:.1f}%")
    for robot, r in stats["robots"].items():
        gaps = ""
        if r["n_missing"]:
            shown = ", ".join(str(s) for s in r["gaps"][:10])
            more = ", ..." if r["n_missing"] > 10 else ""
            gaps = f", missing {r['n_missing']}: {shown}{more}"
        lines.append(f"robot {robot}: {r['count']} interactions, seq {r['min_seq']}.."
                     f"{r['max_seq']}{gaps}")
    return "\n".join(lines)


def run_check(args) -> int:
    store, code = _open(args.path)
    if store is None:
        return code
    with store:
        problems = store.check()
        n, pos = store.count(), store.position()
    for p in problems:
        print(f"PROBLEM: {p}")
    if problems:
        print(f"{args.path}: {len(problems)} problem(s)")
        return 1
    print(f"OK {args.path}: {n} interactions, position {pos}, all images and records valid")
    return 0


def run_export(args) -> int:
    store, code = _open(args.path)
    if store is None:
        return code
    import cv2
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with store:
        for row_id in store.ids(task=args.task)[:max(args.limit, 0)].tolist():
            rec = store.get(row_id)
            for role, img in rec.images().items():
                name = out / f"{row_id:06d}_{rec.task}_{rec.robot}_{rec.seq}_{role}.png"
                if img.dtype == np.float32:  # depth: 16-bit PNG in millimetres
                    img = np.round(np.clip(img, 0.0, 65.535) * 1000.0).astype(np.uint16)
                else:
                    img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
                if not cv2.imwrite(str(name), img):
                    print(f"curious-robot store: cannot write {name}", file=sys.stderr)
                    return 1
                written += 1
    print(f"wrote {written} images to {out}")
    return 0
