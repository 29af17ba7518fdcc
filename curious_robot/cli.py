"""The ``curious-robot`` command line.

Each subcommand lives in its own module, which exposes ``register(subparsers)``: it adds
its parser and sets ``func`` (a callable taking the parsed namespace and returning an
exit code). Modules are imported lazily by name so ``--help`` stays fast and a missing
optional dependency only breaks its own subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

#: subcommand modules, in the order ``--help`` lists them
SUBCOMMAND_MODULES = (
    "curious_robot.commands.collect",
    "curious_robot.commands.chaos",
    "curious_robot.commands.params",
    "curious_robot.commands.release_stop",
    "curious_robot.store.cli",
    "curious_robot.learning.cli",
    "curious_robot.evaluation.cli",
    "curious_robot.evaluation.audit",
    "curious_robot.evaluation.curiosity",
    "curious_robot.learning.closed_loop",
    "curious_robot.bench",
    "curious_robot.drone.evaluate",
    "curious_robot.pretext.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curious-robot",
        description="Robots that teach themselves to see by grasping, pushing, poking and "
                    "inspecting objects (Pinto et al., ECCV 2016) on ROS 2.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # subcommand not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
