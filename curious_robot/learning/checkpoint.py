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

A *model file* (:func:`export_model`; what models/ ships) is a checkpoint without the
optimizer and sampler state, optionally with half-precision weights: everything that
builds and runs the network (step, config, model, stats, losses, metrics) and an
``exported`` dict saying where it came from. Every reader of checkpoints reads it; only
resuming training needs a full checkpoint.
"""

from __future__ import annotations

import hashlib
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
    return _upgrade(state, path)


#: the poke head's outputs before the target became the log felt stiffness (slope,
#: intercept); a head of that shape is dropped on load
OLD_POKE_OUTPUTS = 2


#: the push head's forward model (added December 2026), by its state-dict prefix
PUSH_FORWARD = "heads.push.forward_model."


def _upgrade(state: dict, path: Path) -> dict:
    """Bring an earlier checkpoint's heads to today's. ``state["upgraded"]`` says what was
    done (logged); everything else is kept.

    - poke: until December 2026 its head predicted (slope, intercept); now it predicts the
      log slope alone. Such a head is of no use for the new target, so it is replaced by an
      untrained one (zero output layer) and its statistics dropped: readers then treat the
      checkpoint as one without poke data (policies fall back to the centroid, training
      learns the head afresh).
    - push: before December 2026 its head was the inverse model alone. The inverse part
      keeps its weights (same names); the forward model is added untrained (seeded
      initialisation, zero output layer: it predicts the training median) and there are no
      ``push_forward`` statistics, so the push policies explore at random until training
      has fitted them (resuming training fits them on its first push batch).
    - patch view: before December 2026 a poke patch was resized whole to the input size;
      now its centre is cropped (``ModelConfig.patch_view``). A checkpoint without the
      field keeps "resize", the input its head was trained on (nothing is logged: the
      model is unchanged).
    - crop statistics: before December 2026 every input shared the root's BatchNorm
      running statistics; a checkpoint without ``crop_stats`` keeps that (its state has
      no second set)."""
    import logging

    config = state.get("config")
    if isinstance(config, dict) and isinstance(config.get("model"), dict):
        config["model"].setdefault("patch_view", "resize")
        config["model"].setdefault("crop_stats", False)
    model = state.get("model")
    if not isinstance(model, dict):
        return state
    notes = []
    w = model.get("heads.poke.out.weight")
    if w is not None and w.shape[0] == OLD_POKE_OUTPUTS:
        model["heads.poke.out.weight"] = torch.zeros((1, w.shape[1]), dtype=w.dtype)
        model["heads.poke.out.bias"] = torch.zeros(1, dtype=w.dtype)
        if isinstance(state.get("stats"), dict):
            state["stats"].pop("poke", None)
        notes.append("its poke head predicted (slope, intercept), an earlier target: "
                     "dropped; the poke head is untrained until trained again")
    w = model.get("heads.push.net.0.weight")
    if w is not None and not any(k.startswith(PUSH_FORWARD) for k in model) \
            and isinstance(state.get("config"), dict):
        for k, v in _untrained_push_forward(state["config"]["model"]).items():
            model[PUSH_FORWARD + k] = v.to(w.dtype)
        if isinstance(state.get("stats"), dict):
            state["stats"].pop("push_forward", None)
        notes.append("its push head has no forward model (written before it existed): an "
                     "untrained one was added; push selection is random until trained")
    if notes:
        state["upgraded"] = "; ".join(notes)
        logging.getLogger(__name__).warning("checkpoint %s: %s", path, state["upgraded"])
    return state


def _untrained_push_forward(model_cfg: dict) -> dict:
    """The state dict of a fresh push forward model for ``model_cfg`` (seed 0, zero output
    layer)."""
    from curious_robot import tasks as registry
    from curious_robot.learning.networks import ModelConfig, head_dims

    cfg = ModelConfig.from_dict(model_cfg)
    spec = next(t for t in registry.with_head() if PUSH_FORWARD.startswith(f"heads.{t.head}."))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        head = spec.make_head(cfg, head_dims(cfg)).forward_model
    torch.nn.init.zeros_(head.out.weight)
    torch.nn.init.zeros_(head.out.bias)
    return {k: v.detach().clone() for k, v in head.state_dict().items()}


#: What a model file keeps of a training checkpoint.
MODEL_KEYS = ("step", "store_position", "config", "model", "stats", "losses", "metrics",
              "saved")


def export_model(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False) -> Path:
    """Write the model file of checkpoint ``src`` (a file or a training folder) to ``dst``:
    no optimizer or sampler state; floating-point weights in float16 with ``half``."""
    src = Path(src)
    if src.is_dir():
        src = checkpoint_path(src)
    state = load_checkpoint(src)
    if "model" not in state or "config" not in state:
        raise CheckpointError(f"checkpoint {src} has no model / config to export")
    out = {k: state[k] for k in MODEL_KEYS if k in state}
    if half:
        out["model"] = {k: v.half() if v.is_floating_point() else v
                        for k, v in state["model"].items()}
    out["exported"] = {"from": src.name, "step": int(state.get("step", 0)),
                       "dtype": "float16" if half else "float32"}
    return save_checkpoint(dst, out)


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (what models/README.md lists for each shipped file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / CHECKPOINT_NAME
