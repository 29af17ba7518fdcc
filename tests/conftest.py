"""Test isolation for ROS 2: each pytest run gets its own DDS domain, localhost-only
discovery, and ROS logs inside the build tree. Set before anything imports rclpy; child
processes inherit it."""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _isolate_ros() -> None:
    # Domain ids 1..100 are safe on Linux with any participant count; derive ours from the
    # pid so concurrent runs on one machine almost never share a domain.
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    log_dir = ROOT / "build" / "test-logs" / f"run-{os.getpid()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ["ROS_LOG_DIR"] = str(log_dir)
    os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


_isolate_ros()


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def python() -> str:
    """The interpreter running the tests (the project's venv)."""
    return sys.executable
