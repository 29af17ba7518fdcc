"""``curious-robot bench TARGET``: benchmarks that print figures (a table, or JSON).

Targets live in their own modules, each exposing ``add_arguments(parser)`` and
``run(args) -> int``; they are imported only when their target is chosen.
"""

from __future__ import annotations

import importlib

TARGETS = {
    "sim": ("curious_robot.world.bench", "simulated primitives: rates and outcome quality"),
    "learner": ("curious_robot.learning.bench", "training samples per second"),
    "graph": ("curious_robot.commands.bench_graph",
              "interactions per second through the ROS graph vs. in-process"),
    "curiosity": ("curious_robot.commands.bench_curiosity",
                  "interactions per second of curious against random collection, paired "
                  "by seed"),
    "eval": ("curious_robot.evaluation.bench",
             "seconds to evaluate a checkpoint on a 2,000-image folder (budget 120 s)"),
    "mcap": ("curious_robot.store.bench_mcap",
             "seconds to export a 1,000-interaction store to MCAP (budget 60 s) and import it"),
    "store": ("curious_robot.store.bench_store",
              "milliseconds per stored interaction, synchronous FULL (default) vs NORMAL"),
}


def register(sub) -> None:
    parser = sub.add_parser("bench", help="run a benchmark and print its figures")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, (module_name, help_text) in TARGETS.items():
        p = targets.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=_runner(module_name), _bench_module=module_name)
        try:
            importlib.import_module(module_name).add_arguments(p)
        except ModuleNotFoundError as exc:
            if not (exc.name and module_name.startswith(exc.name)):
                raise


def _runner(module_name: str):
    def run(args) -> int:
        module = importlib.import_module(module_name)
        if not args.json:
            return module.run(args)
        from curious_robot.stdio import json_stdout

        with json_stdout():
            return module.run(args)
    return run
