"""Where the package's data (config/, launch/, sim/, models/) lives: the source checkout
when running from it (editable install, tests), else the ament share directory."""

from __future__ import annotations

import functools
from pathlib import Path

PACKAGE = "curious_robot"


@functools.lru_cache(maxsize=1)
def share_dir() -> Path:
    source = Path(__file__).resolve().parents[1]
    if (source / "package.xml").is_file() and (source / "config").is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError) as exc:
        raise FileNotFoundError(
            f"cannot find the {PACKAGE} data folders: not a source checkout and not "
            f"installed with colcon ({exc})") from exc


def share_path(*parts: str) -> Path:
    return share_dir().joinpath(*parts)


def beside_store(store: str | Path, what: str) -> Path:
    """A folder that belongs to one replay store, named after it: ``data/replay.db`` ->
    ``data/replay.<what>`` (its checkpoints, its robots' outboxes). Two stores in one
    folder never share one (a run's model status or unacknowledged records would leak
    into the other's)."""
    import os

    p = Path(os.path.abspath(os.path.expanduser(str(store))))
    return p.with_name(f"{p.stem}.{what}")


#: The models shipped in models/ (models/README.md is their card), by robot kind.
SHIPPED_MODELS = {"arm": "arm_curiousnet.pt", "drone": "drone_crash.pt"}
#: The name a ``--checkpoint`` (or a selector's ``checkpoint`` parameter) gives for the
#: shipped model of the command's robot kind (eval-drone: the drone's, else the arm's).
DEFAULT_MODEL = "default"


def shipped_model(kind: str = "arm") -> Path:
    """Path of the shipped model of ``kind`` (:data:`SHIPPED_MODELS`): share/curious_robot/
    models of an install, or the source tree's models/. It may not exist."""
    if kind not in SHIPPED_MODELS:
        raise ValueError(f"no shipped model for {kind!r}; known: {', '.join(SHIPPED_MODELS)}")
    return share_path("models", SHIPPED_MODELS[kind])


def resolve_checkpoint(spec: str | Path, kind: str = "arm") -> Path:
    """The checkpoint file or training folder that ``spec`` names: ``default`` is the
    shipped model of robot ``kind`` (:func:`shipped_model`), anything else a path.
    ``FileNotFoundError``, saying what was looked for, when it does not exist."""
    text = str(spec).strip()
    if not text:
        raise FileNotFoundError(f"empty checkpoint: give a file, a training folder or "
                                f"{DEFAULT_MODEL!r} (the shipped model)")
    if text == DEFAULT_MODEL:
        try:
            path = shipped_model(kind)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"shipped {kind} model: {exc}") from exc
        if not path.is_file():
            raise FileNotFoundError(f"shipped {kind} model: {path} is missing (models/ of "
                                    f"the source tree, share/{PACKAGE}/models when "
                                    "installed)")
        return path
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {text!r} does not exist (give a file, a "
                                f"training folder, or {DEFAULT_MODEL!r} for the shipped "
                                f"{kind} model)")
    return path
