"""Learning: the shared root network and its task heads, multi-task training from the
replay store, checkpoints, held-out metrics and inference for action selection.

Pure torch (no rclpy); the learner and selector nodes call into it. Importing this package
is light: the names below load torch on first use, so ``curious-robot --help`` stays fast.

    from curious_robot.learning import ModelConfig, TrainConfig, Trainer, Predictor
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ModelConfig": "networks", "CuriousNet": "networks", "RootNet": "networks",
    "LAYERS": "networks", "HEAD_INPUTS": "networks",
    "TrainConfig": "train", "Trainer": "train",
    "Predictor": "predict",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "evaluate": "metrics", "METRIC_KEYS": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
