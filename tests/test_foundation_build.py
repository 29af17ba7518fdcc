"""Foundation: the packages build with colcon, install where ROS 2 expects, and the command
line works from the venv without sourcing anything."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

VENV_BIN = pathlib.Path(sys.executable).parent
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
             "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"],
             "ROS_LOG_DIR": os.environ["ROS_LOG_DIR"],
             "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


@pytest.mark.unit
def test_venv_imports_without_sourcing():
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c",
         "import rclpy, curious_robot, curious_robot_interfaces.msg, "
         "curious_robot_interfaces.action, curious_robot_interfaces.srv; print('ok')"],
        env=CLEAN_ENV, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.unit
def test_cli_help_lists_subcommands():
    exe = VENV_BIN / "curious-robot"
    out = subprocess.run([str(exe), "--help"], env=CLEAN_ENV, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: curious-robot" in out.stdout
    for sub in ("bench",):
        assert sub in out.stdout


def _source_files(root: pathlib.Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if (root / f).is_file()]


@pytest.mark.slow
def test_clean_colcon_build_of_both_packages(tmp_path, repo_root):
    src = tmp_path / "src" / "curious_robot"
    for rel in _source_files(repo_root):
        dst = src / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root / rel, dst)
    # Without a ROS 2 distribution the venv is the underlay: the ROS wheels live there.
    venv = str(VENV_BIN.parent)
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
           "AMENT_PREFIX_PATH": venv, "CMAKE_PREFIX_PATH": venv}
    out = subprocess.run(
        [str(VENV_BIN / "colcon"), "--log-base", "log", "build",
         "--base-paths", "src/curious_robot", "src/curious_robot/interfaces",
         "--event-handlers", "console_cohesion-", "status-"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "2 packages finished" in out.stdout
    share = tmp_path / "install" / "curious_robot" / "share" / "curious_robot"
    lib = tmp_path / "install" / "curious_robot" / "lib" / "curious_robot"
    assert (share / "package.xml").is_file()
    assert sorted(p.name for p in (share / "launch").glob("*.launch.py")) == sorted(
        p.name for p in (repo_root / "launch").glob("*.launch.py"))
    assert (share / "config").is_dir()
    index = tmp_path / "install" / "curious_robot" / "share" / "ament_index" / \
        "resource_index" / "packages" / "curious_robot"
    assert index.is_file()
    from tests.helpers.setup_nodes import node_names

    for name in ["curious-robot", *node_names(repo_root)]:
        assert (lib / name).is_file() and os.access(lib / name, os.X_OK), name
    iface = tmp_path / "install" / "curious_robot_interfaces"
    assert list(iface.rglob("curious_robot_interfaces/msg/_interaction.py"))
    assert (iface / "share" / "curious_robot_interfaces" / "action" / "Grasp.action").is_file()
