"""Frozen root networks and their features.

:func:`load_root` builds the root of a checkpoint (any checkpoint whose ``model`` holds
``root.*`` weights: the multi-task trainer's, the auto-encoder baseline's) or a randomly
initialised root with a fixed seed. :func:`extract` runs it in eval mode (BatchNorm on its
running statistics, no dropout) on uint8 images and returns one flat vector per image and
layer. Conv layers are average-pooled to at most ``POOL_GRID`` x ``POOL_GRID`` cells first
(conv1 of a 96 px input is 48 x 22 x 22 = 23k numbers otherwise); pool5 and fc6 are used
as they are.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from curious_robot.learning.data import PIXEL_MEAN, PIXEL_STD, resize
from curious_robot.learning.networks import LAYERS, CuriousNet, ModelConfig, RootNet

log = logging.getLogger(__name__)

POOL_GRID = 6
RANDOM = "random"
#: Architecture of a ``random`` root when no flags say otherwise (``train``'s defaults).
DEFAULT_INPUT_SIZE, DEFAULT_WIDTH = ModelConfig.input_size, ModelConfig.width


def random_root(input_size: int = DEFAULT_INPUT_SIZE, width: float = DEFAULT_WIDTH,
                seed: int = 0) -> RootNet:
    """The root of a freshly initialised :class:`CuriousNet` (as ``train --seed`` builds
    it), so ``random`` is exactly a trained variant's step 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CuriousNet(ModelConfig(input_size=input_size, width=width))
    return model.root.eval()


def load_root(checkpoint: str | os.PathLike, input_size: int | None = None,
              width: float | None = None, seed: int = 0) -> RootNet:
    """The frozen root of ``checkpoint`` (a path, ``"default"`` for the shipped model, or
    ``"random"`` for a random init with
    ``input_size`` / ``width`` / ``seed``); in eval mode, gradients off."""
    if str(checkpoint) == RANDOM:
        root = random_root(input_size or DEFAULT_INPUT_SIZE, width or DEFAULT_WIDTH, seed)
    else:
        from curious_robot.learning.checkpoint import CheckpointError, load_checkpoint
        from curious_robot.paths import resolve_checkpoint

        try:
            checkpoint = resolve_checkpoint(checkpoint)
        except FileNotFoundError as exc:
            raise CheckpointError(str(exc)) from exc
        if checkpoint.is_dir():
            checkpoint = checkpoint / "checkpoint.pt"
        state = load_checkpoint(checkpoint)
        try:
            cfg = ModelConfig.from_dict(state["config"]["model"])
            weights = {k[len("root."):]: v for k, v in state["model"].items()
                       if k.startswith("root.")}
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"checkpoint {checkpoint} has no model config / root "
                                  f"weights ({exc})") from exc
        for name, value in (("input_size", input_size), ("width", width)):
            if value is not None and value != getattr(cfg, name):
                log.warning("--%s %s ignored: checkpoint %s has %s = %s",
                            name.replace("_", "-"), value, checkpoint, name, getattr(cfg, name))
        root = RootNet(cfg)
        try:
            root.load_state_dict(weights)
        except RuntimeError as exc:
            raise CheckpointError(f"checkpoint {checkpoint}: root weights do not fit its "
                                  f"config: {exc}") from exc
    root.eval()
    for p in root.parameters():
        p.requires_grad_(False)
    return root


def to_input(images: np.ndarray, size: int) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> normalised float (N, 3, size, size), as training does."""
    if images.shape[1:3] != (size, size):
        images = np.stack([resize(img, size) for img in images])
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return (t / 255.0 - PIXEL_MEAN) / PIXEL_STD


def _flatten(name: str, x: torch.Tensor) -> torch.Tensor:
    if x.ndim == 4 and name.startswith("conv") and x.shape[-1] > POOL_GRID:
        x = F.adaptive_avg_pool2d(x, POOL_GRID)
    return x.flatten(1)


def feature_dims(root: RootNet, layers=LAYERS) -> dict[str, int]:
    size = root.cfg.input_size
    with torch.no_grad():
        out = root.features(torch.zeros(1, 3, size, size), layers)
    return {k: _flatten(k, v).shape[1] for k, v in out.items()}


@torch.no_grad()
def extract(root: RootNet, images: np.ndarray, layers=("pool5",),
            batch_size: int = 128) -> dict[str, np.ndarray]:
    """``{layer: (N, D) float32}`` for (N, H, W, 3) uint8 ``images`` (one forward pass per
    batch gives every requested layer)."""
    layers = tuple(layers)
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        raise ValueError(f"unknown layer(s) {', '.join(unknown)}; known: {', '.join(LAYERS)}")
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {images.shape} "
                         f"{images.dtype}")
    root.eval()
    size = root.cfg.input_size
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    for i in range(0, len(images), batch_size):
        out = root.features(to_input(images[i:i + batch_size], size), layers)
        for name in layers:
            chunks[name].append(_flatten(name, out[name]).numpy().astype(np.float32))
    if not len(images):
        dims = feature_dims(root, layers)
        return {name: np.zeros((0, dims[name]), np.float32) for name in layers}
    return {name: np.concatenate(chunks[name]) for name in layers}
