"""Run python snippets as separate processes and read their line-oriented output."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time


class Proc:
    """A child Python process whose stdout lines are collected on a background thread."""

    def __init__(self, code: str | None = None, args: list[str] | None = None,
                 env: dict | None = None):
        cmd = [sys.executable, "-u"] + (["-c", code] if code is not None else []) + (args or [])
        self.popen = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})}, start_new_session=True)
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.popen.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._q.put(line)

    def wait_for(self, prefix: str, timeout: float = 30.0) -> str:
        """Return the first new line starting with ``prefix``; fail with the output so far."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line starting with {prefix!r} within {timeout}s; "
                                     f"output:\n" + "\n".join(self.lines[-40:]))
            try:
                line = self._q.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.popen.poll() is not None and self._q.empty():
                    time.sleep(0.2)
                    if self._q.empty():
                        raise AssertionError(
                            f"process exited ({self.popen.returncode}) before {prefix!r}; "
                            "output:\n" + "\n".join(self.lines[-40:])) from None
                continue
            if line.startswith(prefix):
                return line

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def kill9(self) -> None:
        self.popen.kill()
        self.popen.wait()
