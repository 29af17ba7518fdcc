"""The task registry: one module per task, one list of tasks.

Every task (grasp, push, poke, inspect on the arm; crash on the drone) is a
:class:`~curious_robot.tasks.base.Task` declared in its own module here; this registry is
the only place that lists them. Adding a task means writing one module (or one class in a
test) and calling :func:`register`: the record validation, the store, the manager and arm
node loops, the selectors, the trainer and the metrics all iterate the registry.
"""

from __future__ import annotations

from .base import Task

_REGISTRY: dict[str, Task] = {}


def register(task: Task, replace: bool = False) -> Task:
    """Add ``task`` (an instance) to the registry; returns it."""
    if not isinstance(task, Task) or not task.name or not task.name.isidentifier():
        raise ValueError(f"a task needs an identifier as its name, got {task!r}")
    if task.name in _REGISTRY and not replace:
        raise ValueError(f"task {task.name!r} is registered already")
    if not task.action_fields or not task.outcome_fields:
        raise ValueError(f"task {task.name!r} must name its action and outcome fields")
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove a task (tests that register a toy task clean up with this)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Task:
    """The registered task ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; known: {', '.join(_REGISTRY)}") from None


def known(name: str) -> bool:
    return name in _REGISTRY


def all_tasks(robot: str | None = None) -> list[Task]:
    """Registered tasks in registration order (``robot``: only those of "arm" / "drone")."""
    return [t for t in _REGISTRY.values() if robot is None or t.robot == robot]


def names(robot: str | None = None) -> tuple[str, ...]:
    return tuple(t.name for t in all_tasks(robot))


def trained_by_default() -> tuple[str, ...]:
    return tuple(t.name for t in _REGISTRY.values() if t.default_train)


def with_head() -> list[Task]:
    return [t for t in _REGISTRY.values() if t.head]


def with_target() -> list[Task]:
    return [t for t in _REGISTRY.values() if t.target is not None]


def success_filter(name: str) -> bool | None:
    """The ``success`` argument of the store queries for task ``name``'s training data."""
    return get(name).train_success


def label(name: str) -> str:
    return get(name).label or name


def _register_builtin() -> None:
    from .crash import CRASH
    from .grasp import GRASP
    from .inspect import INSPECT
    from .poke import POKE
    from .push import PUSH

    for task in (GRASP, PUSH, POKE, INSPECT, CRASH):
        register(task)


_register_builtin()

__all__ = ["Task", "all_tasks", "get", "known", "label", "names", "register",
           "success_filter", "trained_by_default", "unregister", "with_head", "with_target"]
