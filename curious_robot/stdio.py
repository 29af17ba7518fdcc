"""Keeping stdout clean for ``--json`` output.

PyBullet's C code prints "argv[0]=" to file descriptor 1 at every connect, which breaks a
command whose stdout must hold exactly one JSON document.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to file descriptor 1 (PyBullet's C ``printf`` of
    "argv[0]=" at every connect included) to stderr; yields a file on the real stdout, so
    that ``--json`` prints exactly one JSON document there."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(os.dup(real), "w")
    try:
        yield out
    finally:
        try:
            ctypes.CDLL(None).fflush(None)  # C stdio buffers still bound for the old fd 1
        except (OSError, AttributeError):
            pass
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)
        out.flush()
        out.close()


@contextlib.contextmanager
def json_stdout():
    """Run a block with C-level stdout on stderr and ``sys.stdout`` on the real stdout."""
    with stdout_to_stderr() as out:
        saved = sys.stdout
        sys.stdout = out
        try:
            yield out
        finally:
            sys.stdout = saved
