"""Checkpoint files: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict (tensors, lists, dicts, strings, numbers; no dataclasses, no
numpy arrays), so loading it cannot run code:

    format          "curious_robot.checkpoint"
    version         CHECKPOINT_VERSION
    step            optimizer steps (training cycles) done
    store_position  highest replay-store row id the training had seen
    config          {"model": ModelConfig as dict, "train": TrainConfig as dict}
    model           state_dict of CuriousNet (root.* and heads.*)
    optimizer       optimizer state_dict
    stats           {"push": NormStats dict, "poke": ...} (training-split normalisation)
    rng             {"numpy": the sampler's numpy bit-generator state (plain dict)}
    losses          {task: last mean loss}
    metrics         last held-out metrics ({} when none)
    saved           time.time() of the write
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

FORMAT = "curious_robot.checkpoint"
CHECKPOINT_VERSION = 1
#: File name a training folder keeps its newest checkpoint under.
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, damaged or not ours; the message names the file."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically: temp file in the same folder, fsync, rename.

    A reader (or a crash at any moment) sees either the old file or the new one, never a
    partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"format": FORMAT, "version": CHECKPOINT_VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Read a checkpoint with ``weights_only=True``; :class:`CheckpointError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a curious_robot checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has version {state.get('version')!r}; this "
                              f"code reads version {CHECKPOINT_VERSION}")
    return state


def checkpoint_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / CHECKPOINT_NAME
