"""Read the node executables declared in setup.py without running it."""

from __future__ import annotations

import ast
import pathlib


def node_targets(repo_root: pathlib.Path) -> dict[str, str]:
    """setup.py's NODES: executable name -> module:function."""
    tree = ast.parse((repo_root / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "NODES" for t in node.targets):
            return dict(ast.literal_eval(node.value))
    raise AssertionError("setup.py declares no NODES")


def node_names(repo_root: pathlib.Path) -> list[str]:
    return list(node_targets(repo_root))
