"""The auto-encoder baseline (``curious-robot autoencoder``): the same root network as the
robot tasks, trained to reconstruct every stored image of the training split.

Encoder: :class:`~curious_robot.learning.networks.CuriousNet`'s root up to fc6 (the heads
are built but never trained, so the checkpoint has the trainer's layout). Decoder: fc6 ->
256 x 4 x 4 -> four stride-2 transposed convs -> a 64 x 64 RGB image, L2 loss against the
input scaled to 64 x 64. Images: every ``before``, ``after`` and inspect view of every task,
held-out records excluded. The checkpoint is the trainer's format (``config.model``,
``model`` = CuriousNet state dict, ``optimizer``, ``step``) plus ``decoder``, so ``eval``
loads its root the same way and a rerun resumes from it.

The other baselines are variants of ``curious-robot train`` (``--tasks inspect``, all tasks
minus one) or no training at all (``eval --checkpoint random``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from curious_robot.learning.checkpoint import load_checkpoint, save_checkpoint
from curious_robot.learning.data import stack, to_tensors
from curious_robot.learning.networks import CuriousNet, ModelConfig

log = logging.getLogger(__name__)

RECON_SIZE = 64


@dataclass
class AutoencoderConfig:
    batch_size: int = 64
    lr: float = 3e-4
    seed: int = 0
    tasks: tuple[str, ...] = ("autoencoder",)  # read by tools that list a run's tasks

    def __post_init__(self):
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d


class Decoder(nn.Module):
    """fc6 features -> (N, 3, 64, 64) image in the network's input normalisation."""

    def __init__(self, fc6_dim: int, width: float = 1.0):
        super().__init__()
        c = max(16, int(round(128 * width)))
        self.fc = nn.Sequential(nn.Linear(fc6_dim, 2 * c * 16), nn.ReLU(inplace=True))
        self.c = 2 * c

        def up(cin, cout, last=False):
            layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1)]
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            return layers

        self.net = nn.Sequential(*up(2 * c, c), *up(c, c // 2), *up(c // 2, c // 4),
                                 *up(c // 4, 3, last=True))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, self.c, 4, 4))


class ImagePool:
    """Every image of the training split of a store, drawn uniformly at random: first a
    record (weighted by its image count), then one of its images."""

    def __init__(self, store, rng: np.random.Generator):
        self.store, self.rng = store, rng
        self.refresh()

    def refresh(self) -> None:
        ids = self.store.ids(held_out=False)
        self.ids = np.asarray(ids, np.int64)
        if not len(self.ids):
            raise ValueError("the store has no training records: nothing to auto-encode")

    def sample(self, n: int, size: int) -> np.ndarray:
        rows = self.rng.choice(self.ids, size=n, replace=len(self.ids) < n)
        images = []
        for rec in self.store.get_many(rows.tolist()):
            imgs = [rec.before] + ([rec.after] if rec.after is not None else []) + \
                list(rec.views or [])
            images.append(imgs[int(self.rng.integers(len(imgs)))])
        return stack(images, size)


class AutoencoderTrainer:
    """Root + decoder, Adam, one batch per step; ``save`` / ``from_checkpoint`` resume."""

    def __init__(self, store, model_cfg: ModelConfig | None = None,
                 cfg: AutoencoderConfig | None = None, device="cpu"):
        self.store = store
        self.model_cfg = model_cfg or ModelConfig()
        self.cfg = cfg or AutoencoderConfig()
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):  # the root starts as train's does
            torch.manual_seed(self.cfg.seed)
            self.model = CuriousNet(self.model_cfg)
            self.decoder = Decoder(self.model.root.fc6_dim, self.model_cfg.width)
        self.model.to(self.device)
        self.decoder.to(self.device)
        params = list(self.model.root.parameters()) + list(self.decoder.parameters())
        self.optimizer = torch.optim.Adam(params, lr=self.cfg.lr)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.pool = ImagePool(store, self.rng)
        self.step = 0
        self.last_loss = float("nan")

    def loss(self, images: np.ndarray) -> torch.Tensor:
        x = to_tensors({"x": images}, self.device)["x"]
        target = nn.functional.interpolate(x, size=(RECON_SIZE, RECON_SIZE), mode="area")
        return nn.functional.mse_loss(self.decoder(self.model.root(x, upto="fc6")), target)

    def train_steps(self, n: int) -> float:
        self.model.train()
        self.decoder.train()
        total = 0.0
        for _ in range(n):
            images = self.pool.sample(self.cfg.batch_size, self.model_cfg.input_size)
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(images)
            self.step += 1
            if not torch.isfinite(loss):
                log.error("non-finite auto-encoder loss at step %d; update skipped", self.step)
                continue
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
        self.last_loss = total / max(1, n)
        return self.last_loss

    @torch.no_grad()
    def panels(self, n: int = 6) -> dict[str, np.ndarray]:
        """TensorBoard panel ``reconstruction``: the same ``n`` stored images every time
        (top) above their reconstructions (bottom), 128 px tiles."""
        from curious_robot.learning.data import PIXEL_MEAN, PIXEL_STD, resize

        images = ImagePool(self.store, np.random.default_rng(0)).sample(
            n, self.model_cfg.input_size)
        self.model.eval()
        self.decoder.eval()
        x = to_tensors({"x": images}, self.device)["x"]
        recon = self.decoder(self.model.root(x, upto="fc6"))
        recon = ((recon * PIXEL_STD + PIXEL_MEAN).clamp(0, 1) * 255).round().byte()
        recon = recon.permute(0, 2, 3, 1).cpu().numpy()
        tile = 128
        top = np.concatenate([resize(im, tile) for im in images], axis=1)
        bottom = np.concatenate([resize(im, tile) for im in recon], axis=1)
        return {"reconstruction": np.concatenate([top, bottom], axis=0)}

    def state_dict(self) -> dict:
        return {
            "step": int(self.step), "store_position": int(self.store.position()),
            "config": {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()},
            "model": self.model.state_dict(), "decoder": self.decoder.state_dict(),
            "optimizer": self.optimizer.state_dict(), "stats": {},
            "rng": {"numpy": self.rng.bit_generator.state},
            "losses": {"autoencoder": float(self.last_loss)}, "metrics": {},
            "saved": time.time(),
        }

    def save(self, path: str | os.PathLike) -> None:
        save_checkpoint(path, self.state_dict())

    @classmethod
    def from_checkpoint(cls, path, store, device="cpu") -> AutoencoderTrainer:
        state = load_checkpoint(path, map_location=torch.device(device))
        if "decoder" not in state:
            raise ValueError(f"{path} is not an auto-encoder checkpoint (no decoder)")
        train = {k: v for k, v in state["config"]["train"].items()
                 if k in ("batch_size", "lr", "seed")}
        trainer = cls(store, ModelConfig.from_dict(state["config"]["model"]),
                      AutoencoderConfig(**train), device)
        trainer.model.load_state_dict(state["model"])
        trainer.decoder.load_state_dict(state["decoder"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.step = int(state["step"])
        trainer.rng.bit_generator.state = state["rng"]["numpy"]
        trainer.last_loss = float(state.get("losses", {}).get("autoencoder", float("nan")))
        return trainer


def train_autoencoder(store_path: str | os.PathLike, out: str | os.PathLike, steps: int,
                      input_size: int = ModelConfig.input_size, width: float = ModelConfig.width,
                      cfg: AutoencoderConfig | None = None, save_every: int = 100,
                      progress=None) -> dict:
    """Train (or resume) to ``steps`` into ``out/checkpoint.pt`` (TensorBoard: ``out/tb``)
    with the shared loop (:mod:`curious_robot.learning.loop`); returns a summary dict.
    ``progress(step, total, loss)`` is called every step."""
    from curious_robot.learning.checkpoint import checkpoint_path
    from curious_robot.learning.loop import TB_DIR, Job, TrainLoop, resume_or_start
    from curious_robot.store import ReplayStore

    ckpt = checkpoint_path(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    with ReplayStore(store_path, readonly=True) as store:
        def resume(path):
            trainer = AutoencoderTrainer.from_checkpoint(path, store)
            log.info("auto-encoder: resumed from %s at step %d", path, trainer.step)
            return trainer

        trainer, resumed = resume_or_start(
            ckpt, resume,
            lambda: AutoencoderTrainer(store, ModelConfig(input_size=input_size, width=width),
                                       cfg))
        job = Job(trainer, lambda: {"autoencoder": trainer.train_steps(1)}, trainer.save,
                  panels=trainer.panels, samples_per_step=lambda _: trainer.cfg.batch_size)
        loop = TrainLoop(job, ckpt, save_every=save_every, until=steps, resumed=resumed,
                         tb_dir=Path(out) / TB_DIR,
                         progress=None if progress is None else
                         lambda step, losses: progress(step, steps, losses["autoencoder"]))
        try:
            loop.run()
        finally:
            loop.close()
        return {"step": trainer.step, "loss": trainer.last_loss, "checkpoint": str(ckpt)}
