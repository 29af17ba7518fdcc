"""A small JSON beside the online trainer's checkpoint (step, store position, losses), so
progress displays need not load the checkpoint. No torch, no rclpy."""

from __future__ import annotations

import json
import os
from pathlib import Path


STATUS_NAME = "status.json"


def write_status(folder, step: int, position: int, losses: dict) -> None:
    """A small JSON beside the checkpoint (step, store position, losses) so progress
    displays need not load the checkpoint; written atomically."""
    folder = Path(folder)
    tmp = folder / (STATUS_NAME + ".tmp")
    tmp.write_text(json.dumps({"step": int(step), "store_position": int(position),
                               "losses": {k: float(v) for k, v in losses.items()}}))
    os.replace(tmp, folder / STATUS_NAME)


def read_status(folder) -> dict | None:
    try:
        return json.loads((Path(folder) / STATUS_NAME).read_text())
    except (OSError, ValueError):
        return None

