"""``curious-robot store stats|check|export PATH``, ``store import FILE --store PATH`` and
``store merge A B ... --out C``: look into a replay store, export it (PNG images, or an MCAP
recording for Foxglove and ``ros2 bag``), import recorded interactions into one, and merge
stores collected apart (:mod:`curious_robot.store.merge`).

Exit codes: 0 fine, 1 a problem (or the file is not a readable store; import: some records
were rejected; merge: two inputs hold one robot's seq with different content), 2 no such
file or bad input (import: the MCAP file is not one, is damaged, or carries another schema
on the interactions topic; merge: an input missing or not a store, a schema mismatch, the
output an input or existing without --force). A merge that fails writes nothing.
stats / check / export open the store read-only, so they are safe while a learner writes to
it; import adds to the store like the learner does (one transaction per record).
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

    p = actions.add_parser("export", help="write the images of a few records as PNG files, "
                                          "or records as an MCAP recording (rosbag2)")
    p.add_argument("path", help="replay store file")
    p.add_argument("--format", choices=("png", "mcap"), default="png",
                   help="png: the images of a few records as PNG files (default); mcap: the "
                        "records as a rosbag2 MCAP file for Foxglove / ros2 bag")
    p.add_argument("--out", required=True,
                   help="png: folder for the PNG files (created); mcap: the .mcap file "
                        "(replaced if it exists)")
    p.add_argument("--limit", type=int, default=None,
                   help="number of records (default: png 10, mcap all)")
    p.add_argument("--task", default=None, help="only records of this task")
    p.add_argument("--json", action="store_true", help="mcap: print one JSON object")
    p.set_defaults(func=run_export)

    p = actions.add_parser("import", help="add the interactions of an MCAP recording (e.g. "
                                          "ros2 bag record /interactions) to a store")
    p.add_argument("file", help="MCAP file")
    p.add_argument("--store", required=True, help="replay store file (created if missing)")
    p.add_argument("--topic", default="/interactions",
                   help="topic of the Interaction messages (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_import)

    p = actions.add_parser("merge", help="merge stores collected apart into a new one "
                                         "(dedup by robot and seq, provenance kept)")
    p.add_argument("inputs", nargs="+", metavar="STORE", help="replay store files to merge "
                   "(read only; records are taken in this order)")
    p.add_argument("--out", required=True, help="the merged store, a new file (written "
                   "to a temporary file beside it, then renamed)")
    p.add_argument("--force", action="store_true",
                   help="replace --out if it exists (never when it is one of the inputs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_merge)


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
    for task, counts in stats.get("per_policy", {}).items():
        shown = ", ".join(f"{n} {policy or '(unknown)'}" for policy, n in counts.items())
        lines.append(f"{task} by policy: {shown}")
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
    for src in stats.get("sources", []):
        if src["id"]:
            origin = f" (which had them from {src['origin']})" if src["origin"] else ""
            lines.append(f"source {src['id']}: {src['interactions']} interactions merged "
                         f"from {src['path']}{origin}")
        elif len(stats["sources"]) > 1:
            lines.append(f"source 0: {src['interactions']} interactions collected here")
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
    if args.task is not None:
        from curious_robot import tasks as registry

        if not registry.known(args.task):
            print(f"curious-robot store: unknown task {args.task!r}; known: "
                  f"{', '.join(registry.names())}", file=sys.stderr)
            return 2
    if args.limit is not None and args.limit < 0:
        print(f"curious-robot store: --limit must be >= 0, got {args.limit}", file=sys.stderr)
        return 2
    store, code = _open(args.path)
    if store is None:
        return code
    if args.format == "mcap":
        return _export_mcap(store, args)
    limit = 10 if args.limit is None else args.limit
    import cv2
    import numpy as np

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with store:
        for row_id in store.ids(task=args.task)[:limit].tolist():
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


def _export_mcap(store, args) -> int:
    from curious_robot.store.mcap_io import McapError, export_mcap

    with store:
        ids = store.ids(task=args.task)
        if args.limit is not None:
            ids = ids[:args.limit]
        try:
            report = export_mcap(store, args.out, ids.tolist())
        except McapError as exc:
            print(f"curious-robot store: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"curious-robot store: cannot write {args.out}: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print(f"wrote {report.interactions} interactions ({report.messages} messages on "
          f"{len(report.topics)} topics, {_mb(report.bytes)}) to {report.path} in "
          f"{report.seconds:.1f} s")
    for topic, n in sorted(report.topics.items()):
        print(f"  {topic}: {n}")
    return 0


def run_import(args) -> int:
    from curious_robot.store import ReplayStore, StoreError
    from curious_robot.store.mcap_io import McapInputError, check_file, import_mcap

    try:  # before the store is opened (or created): a bad file leaves no trace
        check_file(args.file, args.topic)
    except McapInputError as exc:
        print(f"curious-robot store: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps({"path": args.file, "store": args.store, "stored": 0,
                              "duplicate": 0, "rejected": 0, "error": str(exc)}, indent=2))
        return 2
    try:
        store = ReplayStore(args.store)
    except StoreError as exc:
        print(f"curious-robot store: {exc}", file=sys.stderr)
        return 1
    code = 0
    with store:
        try:
            report = import_mcap(args.file, store, topic=args.topic)
        except McapInputError as exc:
            print(f"curious-robot store: {exc}", file=sys.stderr)
            report, code = exc.report, 2
        except StoreError as exc:
            print(f"curious-robot store: {exc}", file=sys.stderr)
            return 1
    if code == 0 and report.rejected:
        code = 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return code
    print(f"{report.path} -> {report.store}: stored {report.stored}, duplicate "
          f"{report.duplicate}, rejected {report.rejected} ({report.skipped} messages of "
          f"other topics skipped) in {report.seconds:.1f} s")
    for robot, seq, why in report.rejections:
        print(f"REJECTED {robot}/{seq}: {why}")
    if report.rejected > len(report.rejections):
        print(f"... and {report.rejected - len(report.rejections)} more rejected")
    return code


def run_merge(args) -> int:
    from curious_robot.store import StoreError
    from curious_robot.store.merge import MergeConflict, MergeInputError, merge

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = merge(args.inputs, args.out, force=args.force, progress=progress)
    except MergeInputError as exc:
        print(f"curious-robot store merge: {exc}; nothing written", file=sys.stderr)
        return 2
    except MergeConflict as exc:
        for c in exc.conflicts:
            print(f"CONFLICT: {c}", file=sys.stderr)
        print(f"curious-robot store merge: {exc}; nothing written (merge the stores without "
              "one of them, or decide which record is right first)", file=sys.stderr)
        return 1
    except (StoreError, OSError) as exc:
        print(f"curious-robot store merge: {exc}; nothing written", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    for i in report.inputs:
        print(f"{i.path} (schema {i.schema_version}): {i.records} records, {i.stored} merged, "
              f"{i.duplicate} identical duplicates dropped")
    rate = report.records / report.seconds if report.seconds else 0.0
    print(f"merged {len(report.inputs)} stores into {report.out}: {report.stored} "
          f"interactions ({report.duplicate} identical duplicates dropped) in "
          f"{report.seconds:.1f} s ({rate:.0f} records/s)")
    return 0
