"""The replay store: a crash-safe SQLite file of interactions and their images.

``from curious_robot.store import ReplayStore, StoreError, AddResult``. The names are
loaded on first use, so importing the command line (:mod:`curious_robot.store.cli`) stays
light.
"""

from __future__ import annotations

__all__ = ["AddResult", "ReplayStore", "StoreError", "SCHEMA_VERSION"]


def __getattr__(name: str):
    if name in __all__:
        from curious_robot.store import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
