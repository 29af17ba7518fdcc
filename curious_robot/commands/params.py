"""``curious-robot params [NODE ...]``: every node's parameters with their defaults, allowed
values and descriptions, from the one definition the nodes declare them from
(:mod:`curious_robot.node_config`); ``--check FILE`` checks a parameter YAML against it."""

from __future__ import annotations

import sys

#: node name -> executable, for every node the graphs start
NODES = {"arm": "arm_node", "sensing": "sensing_node", "tactile": "tactile_node",
         "interaction_manager": "interaction_manager", "learner": "learner_node",
         "drone": "drone_node", "pilot": "pilot_node", "fake_hardware": "fake_hardware"}


def node_table() -> dict[str, str]:
    """node name -> executable: the fixed nodes and one selector per selector node."""
    from curious_robot import tasks as registry

    selectors = {t.selector: t.selector for t in registry.all_tasks("arm") if t.selector}
    return {**NODES, **selectors}


def register(sub) -> None:
    p = sub.add_parser("params", help="list every node's parameters (defaults, allowed "
                                      "values, meaning) or check a parameter YAML")
    p.add_argument("nodes", nargs="*", metavar="NODE", help="nodes to list (default: all)")
    p.add_argument("--check", metavar="YAML", help="check a parameter file: unknown keys, "
                   "bad values and values that repeat the default are errors (exit 1)")
    p.set_defaults(func=run)


def check_yaml(path: str) -> list[str]:
    """Problems of a ROS parameter YAML (``/**/node: ros__parameters: {...}`` sections)."""
    import yaml

    from curious_robot.node_config import check_overrides, params_of

    try:
        with open(path) as f:
            doc = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [f"{path}: {exc}"]
    table, problems = node_table(), []
    if not isinstance(doc, dict):
        return [f"{path}: not a mapping of node sections"]
    for key, body in doc.items():
        name = str(key).rstrip("/").split("/")[-1]
        if name not in table:
            problems.append(f"{path}: section {key!r}: no node named {name!r} (known: "
                            f"{', '.join(sorted(table))})")
            continue
        values = (body or {}).get("ros__parameters") if isinstance(body, dict) else None
        if not isinstance(values, dict):
            problems.append(f"{path}: section {key!r} has no ros__parameters mapping")
            continue
        problems += check_overrides(params_of(table[name]), values, f"{path}: {name}",
                                    repeat_is_error=True)
    return problems


def run(args) -> int:
    from curious_robot.node_config import help_text, params_of

    if args.check:
        problems = check_yaml(args.check)
        for p in problems:
            print(p, file=sys.stderr)
        if not problems:
            print(f"OK {args.check}: every key is a parameter of its node and differs from "
                  "the default")
        return 1 if problems else 0
    table = node_table()
    unknown = [n for n in args.nodes if n not in table]
    if unknown:
        print(f"curious-robot params: unknown node(s) {', '.join(unknown)}; known: "
              f"{', '.join(table)}", file=sys.stderr)
        return 2
    for name in args.nodes or table:
        print(f"{name} ({table[name]}):")
        print(help_text(params_of(table[name])))
    return 0
