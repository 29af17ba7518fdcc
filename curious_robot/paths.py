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
