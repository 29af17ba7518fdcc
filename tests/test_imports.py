"""Import hygiene of the package, read from the source with ``ast`` (nothing is imported):

- the intra-package import graph (module-level AND function-level imports; ``if
  TYPE_CHECKING:`` blocks ignored) has no cycle, apart from :data:`KNOWN_CYCLES_BEING_FIXED`;
- no pure module reaches rclpy (or a ROS message package) through any chain of imports,
  lazy ones included. ROS glue (:data:`ROS_GLUE`) may; everything else is pure.
"""

from __future__ import annotations

import ast
import functools
import pathlib

import pytest

pytestmark = pytest.mark.unit

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "curious_robot"

#: Cycles that exist today and are being removed in parallel (the task-code refactor).
#: Each entry is the set of modules on the cycle. Only cycles inside curious_robot/world/
#: or curious_robot/arm/ may be listed; empty this once they are gone.
KNOWN_CYCLES_BEING_FIXED: tuple[frozenset[str], ...] = ()

#: ROS glue: the only modules allowed to reach rclpy. A module is glue when its name is one
#: of these or lies under one of them.
ROS_GLUE = (
    "curious_robot.nodes",
    "curious_robot.commands",
    "curious_robot.convert",
    "curious_robot.launching",
    "curious_robot.arm.ros_io",
)
#: Top-level modules whose import counts as "reaching ROS".
ROS_ROOTS = ("rclpy", "curious_robot_interfaces", "rosidl_runtime_py", "builtin_interfaces",
             "std_msgs", "sensor_msgs", "geometry_msgs", "launch", "launch_ros")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node, at any depth, outside ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[:-(level - 1)]
    return ".".join(base + ([name] if name else []))


@functools.lru_cache(maxsize=1)
def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(intra-package edges, external top-level modules) per module of the package.

    ``import a.b.c`` and ``from a.b import c`` (c a module) give an edge to ``a.b.c``;
    ``from a.b import name`` (name not a module) gives an edge to ``a.b``. The implicit
    import of parent packages is not an edge here (see :func:`_reach`)."""
    modules = _modules()
    edges: dict[str, set[str]] = {m: set() for m in modules}
    external: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
                for t in targets:
                    if t == PACKAGE or t.startswith(PACKAGE + "."):
                        edges[mod].add(t)
                    else:
                        external[mod].add(t.split(".")[0])
                continue
            base = (_resolve_relative(mod, is_package, node.level, node.module)
                    if node.level else node.module or "")
            if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
                external[mod].add(base.split(".")[0])
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                edges[mod].add(sub if sub in modules else base)
    for mod in edges:
        unknown = {t for t in edges[mod] if t not in modules}
        assert not unknown, f"{mod} imports {sorted(unknown)}, which do not exist"
        edges[mod].discard(mod)
    return edges, external


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:  # recursion depth <= number of modules (~100)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return sccs


def _a_cycle(edges: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One concrete cycle inside the strongly connected ``comp``, from its first module."""
    members, start = set(comp), comp[0]
    parent: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v] & members):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return path[::-1] + [start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return comp


def _reach(edges: dict[str, set[str]], start: str) -> dict[str, str | None]:
    """Every module importing ``start`` executes, with the module that led there (parent
    packages' ``__init__`` count: importing ``a.b.c`` runs ``a`` and ``a.b``)."""
    parent: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        v = queue.pop(0)
        nxt = set(edges[v])
        parts = v.split(".")
        nxt.update(".".join(parts[:i]) for i in range(1, len(parts)))
        for w in sorted(nxt):
            if w in edges and w not in parent:
                parent[w] = v
                queue.append(w)
    return parent


def _is_glue(module: str) -> bool:
    return any(module == g or module.startswith(g + ".") for g in ROS_GLUE)


def test_the_graph_sees_lazy_imports_and_skips_type_checking():
    edges, external = import_graph()
    # function-level imports are edges: the learner node imports online training lazily
    assert "curious_robot.learning.online" in edges["curious_robot.nodes.learner"]
    assert "rclpy" in external["curious_robot.nodes.common"]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import rclpy\n"
                     "else:\n    import json\ndef f():\n    import os\n")
    names = [a.name for n in _imports(tree) for a in n.names]
    assert sorted(names) == ["TYPE_CHECKING", "json", "os"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c"]) == \
        ["a", "b", "c", "a"]


def test_known_cycles_allow_list_is_only_world_and_arm():
    for cycle in KNOWN_CYCLES_BEING_FIXED:
        assert all(m.startswith((f"{PACKAGE}.world.", f"{PACKAGE}.arm.")) for m in cycle), \
            f"only cycles inside world/ or arm/ may be allow-listed, not {sorted(cycle)}"


def test_no_import_cycles():
    edges, _ = import_graph()
    allowed = set(KNOWN_CYCLES_BEING_FIXED)
    comps = _cycles(edges)
    bad = [f"{' <-> '.join(sorted(c))} is no longer a cycle: remove it from "
           "KNOWN_CYCLES_BEING_FIXED" for c in allowed - {frozenset(c) for c in comps}]
    for comp in comps:
        if frozenset(comp) in allowed:
            continue
        bad.append(" -> ".join(_a_cycle(edges, comp))
                   + (f"   (component: {', '.join(comp)})" if len(comp) > 2 else ""))
    assert not bad, "import cycles:\n  " + "\n  ".join(bad)


def test_pure_modules_do_not_reach_rclpy():
    edges, external = import_graph()
    bad = []
    for mod in sorted(edges):
        if _is_glue(mod):
            continue
        parent = _reach(edges, mod)
        for reached in sorted(parent):
            ros = sorted(external[reached] & set(ROS_ROOTS))
            if ros:
                chain = [reached]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                bad.append(" -> ".join(chain[::-1] + [ros[0]]))
                break
    assert not bad, "pure modules reaching ROS:\n  " + "\n  ".join(bad)


#: Modules that may import the simulated world: ``arm.bench`` times the hardware backend
#: on a fake arm that a simulated world plays.
WORLD_USERS_IN_ARM = ("curious_robot.arm.bench",)


def test_motion_and_hardware_do_not_reach_the_simulation():
    """The motion scripts and the hardware backend run without ``curious_robot.world``:
    nothing in ``motion/`` or ``arm/`` (but :data:`WORLD_USERS_IN_ARM`) reaches it, lazy
    imports included, and ``motion/`` reaches nothing of ``arm/`` either."""
    edges, _ = import_graph()
    bad = []
    for mod in sorted(edges):
        if mod in WORLD_USERS_IN_ARM:
            continue
        if mod.startswith(f"{PACKAGE}.motion"):
            forbidden = (f"{PACKAGE}.world", f"{PACKAGE}.arm")
        elif mod.startswith(f"{PACKAGE}.arm"):
            forbidden = (f"{PACKAGE}.world",)
        else:
            continue
        parent = _reach(edges, mod)
        for reached in sorted(parent):
            if any(reached == f or reached.startswith(f + ".") for f in forbidden):
                chain = [reached]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                bad.append(" -> ".join(chain[::-1]))
                break
    assert not bad, "motion / hardware modules reaching the simulation:\n  " + "\n  ".join(bad)
