"""Flight policies at the camera rate: the learned one (the crash head scores the left,
centre and right crops of the forward image; fly straight when the centre is safe, else
turn toward the safer side), and the baselines: straight-line flight and random turns.

A policy is ``act(t, image) -> (forward m/s, yaw rate rad/s)``; ``reset(seed)`` before a
flight. Crops are square (the image height) at the left edge, the middle and the right
edge of the frame; the ``crash`` records store the centre crop, so training and flying
see the same kind of image.
"""

from __future__ import annotations

import math

import numpy as np


def crops(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(left, centre, right) square crops of an (H, W, 3) image with W >= H."""
    h, w = image.shape[:2]
    if w < h:
        raise ValueError(f"image must be at least as wide as high, got {w}x{h}")
    mid = (w - h) // 2
    return image[:, :h], image[:, mid:mid + h], image[:, w - h:]


def centre_crop(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(crops(image)[1])


class StraightPolicy:
    name = "straight"
    needs_image = False

    def __init__(self, speed: float = 1.0):
        self.speed = speed

    def reset(self, seed: int = 0) -> None:
        pass

    def act(self, t: float, image: np.ndarray | None) -> tuple[float, float]:
        return self.speed, 0.0


class RandomTurnPolicy:
    """Fly straight; at each decision start, with probability ``turn_prob``, a turn of a
    random direction and 0.3-1.5 s duration (at ``turn_rate``, not moving forward)."""

    name = "random"
    needs_image = False

    def __init__(self, speed: float = 1.0, turn_rate: float = 1.5, turn_prob: float = 0.15):
        self.speed, self.turn_rate, self.turn_prob = speed, turn_rate, turn_prob
        self.reset(0)

    def reset(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng([int(seed), 9091])
        self.until, self.sign = -math.inf, 1.0

    def act(self, t: float, image: np.ndarray | None) -> tuple[float, float]:
        if t < self.until:
            return 0.0, self.sign * self.turn_rate
        if self.rng.random() < self.turn_prob:
            self.until = t + float(self.rng.uniform(0.3, 1.5))
            self.sign = float(self.rng.choice([-1.0, 1.0]))
            return 0.0, self.sign * self.turn_rate
        return self.speed, 0.0


class CrashScorer:
    """P(safe to fly straight) of image crops, from the ``crash`` head of a checkpoint."""

    def __init__(self, model, device="cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_size = model.cfg.input_size

    @classmethod
    def from_checkpoint(cls, path, device="cpu") -> CrashScorer:
        from pathlib import Path

        import torch

        from curious_robot.learning.checkpoint import load_checkpoint
        from curious_robot.learning.networks import CuriousNet, ModelConfig

        path = Path(path)
        if path.is_dir():
            path = path / "checkpoint.pt"
        state = load_checkpoint(path, map_location=torch.device(device))
        model = CuriousNet(ModelConfig.from_dict(state["config"]["model"]))
        model.load_state_dict(state["model"])
        return cls(model, device)

    def __call__(self, images) -> np.ndarray:
        from curious_robot.learning import data

        with self.torch.no_grad():
            x = data.to_tensors({"x": data.stack(list(images), self.input_size)},
                                self.device)["x"]
            return self.torch.sigmoid(self.model.crash(x)).cpu().numpy()


class CrashNetPolicy:
    """Fly straight while the centre crop is safe (P >= ``threshold``); else turn in place
    toward the side whose crop scores safer, until the centre is safe again."""

    name = "learned"
    needs_image = True

    def __init__(self, scorer, speed: float = 1.0, turn_rate: float = 1.5,
                 threshold: float = 0.5):
        self.scorer, self.speed, self.turn_rate = scorer, speed, turn_rate
        self.threshold = threshold
        self.sign = 0.0
        self.last_scores = np.zeros(3)

    def reset(self, seed: int = 0) -> None:
        self.sign = 0.0

    def act(self, t: float, image: np.ndarray) -> tuple[float, float]:
        left, centre, right = self.last_scores = self.scorer(crops(image))
        if centre >= self.threshold:
            self.sign = 0.0
            return self.speed, 0.0
        if self.sign == 0.0:  # keep turning the way we started, no dithering in a corner
            self.sign = 1.0 if left >= right else -1.0
        return 0.0, self.sign * self.turn_rate
