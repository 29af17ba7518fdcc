"""One trainer for the pretext variants (``curious-robot pretext --kind ...``).

Images: every ``before``, ``after`` and inspect view of every training record, drawn by
the auto-encoder baseline's :class:`~curious_robot.evaluation.baselines.ImagePool`: the
same images and the same sampling as the auto-encoder row. One batch of ``batch_size``
images per step (context: one patch pair per image), Adam.

Checkpoint: the trainer's format (``config.model``, ``config.train``, ``model`` = a
:class:`CuriousNet` state dict whose ``root.*`` is the variant's evaluation root, heads
at their seeded initialisation, ``optimizer``, ``step``, ``rng``, ``losses``) plus

    pretext  {"kind": "context" | "color" | "splitbrain",
              "net": the training network's state dict (unfolded roots + pretext heads),
              "rebalance": (Q,) class rebalancing weights (color / splitbrain)}

so ``curious-robot eval`` loads its root like any other, ``curious-robot colorize`` finds
the colour head, and a rerun resumes. The evaluation root is *derived* from the training
network at every save (:meth:`PretextTrainer.export_root`): context's root as it is;
colorization's with the grey input folded into conv1; split-brain's two folded halves
assembled into one block-diagonal root (see :mod:`.colorization`, :mod:`.splitbrain`).
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from curious_robot.evaluation.baselines import ImagePool
from curious_robot.learning.checkpoint import load_checkpoint, save_checkpoint
from curious_robot.learning.data import to_tensors
from curious_robot.learning.networks import CuriousNet, ModelConfig, RootNet
from curious_robot.pretext import colorization as col
from curious_robot.pretext import context as ctx
from curious_robot.pretext import splitbrain as sb

log = logging.getLogger(__name__)

KINDS = ("context", "color", "splitbrain")
#: Images read once to estimate the ab bin distribution for class rebalancing.
REBALANCE_IMAGES = 512


@dataclass
class PretextConfig:
    kind: str = "color"
    batch_size: int = 64  # images per step, as the auto-encoder baseline
    lr: float = 3e-4
    seed: int = 0
    rebalance_images: int = REBALANCE_IMAGES
    tasks: tuple[str, ...] = ()  # read by tools that list a run's tasks

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        self.tasks = (f"pretext-{self.kind}",)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PretextConfig:
        keys = ("kind", "batch_size", "lr", "seed", "rebalance_images")
        return cls(**{k: d[k] for k in keys if k in d})


def ab_counts(images: np.ndarray) -> np.ndarray:
    """Pixel count per ab bin (nearest bin) over ``images`` at the prediction size."""
    lab = col.lab_targets(images)
    idx = col.nearest_bin(lab[..., 1:])
    return np.bincount(idx.ravel(), minlength=col.n_ab_bins()).astype(np.float64)


class _GreyHalf(torch.nn.Module):
    """Split-brain's brightness half as a colour model (for ``colorize``)."""

    def __init__(self, net: sb.SplitBrainNet):
        super().__init__()
        self.root, self.head = net.grey, net.grey_head

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.head(self.root(u, upto="fc6"))


class PretextTrainer:
    """Training network + Adam, one batch per step; ``save`` / ``from_checkpoint``."""

    def __init__(self, store, model_cfg: ModelConfig | None = None,
                 cfg: PretextConfig | None = None, device="cpu",
                 rebalance: np.ndarray | None = None):
        self.store = store
        self.model_cfg = model_cfg or ModelConfig()
        self.cfg = cfg or PretextConfig()
        self.device = torch.device(device)
        kind, mc = self.cfg.kind, self.model_cfg
        with torch.random.fork_rng(devices=[]):  # the root starts as train's does
            torch.manual_seed(self.cfg.seed)
            if kind == "context":
                self.net = ctx.ContextNet(RootNet(mc), mc.scaled(mc.head_dim), mc.dropout)
            elif kind == "color":
                self.net = col.ColorNet(RootNet(mc), mc.width)
            else:
                self.net = sb.SplitBrainNet(mc)
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.rng = np.random.default_rng(self.cfg.seed)
        self.pool = ImagePool(store, self.rng)
        self.step = 0
        self.last_losses: dict[str, float] = {}
        self.bins = torch.from_numpy(col.ab_bins())
        self.rebalance = None
        if kind in ("color", "splitbrain"):
            if rebalance is None:
                pool = ImagePool(store, np.random.default_rng(self.cfg.seed + 1))
                n = self.cfg.rebalance_images
                counts = sum(ab_counts(pool.sample(min(64, n - i), col.OUT_SIZE * 2))
                             for i in range(0, n, 64))
                rebalance = col.rebalance_weights(counts)
                log.info("class rebalancing from %d images: %d of %d bins seen, weights "
                         "%.2f..%.2f", n, int((counts > 0).sum()), len(counts),
                         rebalance.min(), rebalance.max())
            self.rebalance = torch.as_tensor(np.asarray(rebalance, np.float32))

    # -- losses ---------------------------------------------------------------------------

    def _ab_loss(self, logits: torch.Tensor, lab: np.ndarray) -> torch.Tensor:
        ab = lab[..., 1:]
        target = torch.from_numpy(col.soft_encode_fast(ab)).permute(0, 3, 1, 2).to(
            self.device)
        w = self.rebalance[torch.from_numpy(col.nearest_bin_fast(ab))].to(self.device)
        return col.rebalanced_ce(logits, target, w)

    def losses(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        """This kind's loss(es) on one batch of (N, S, S, 3) uint8 images."""
        kind, size = self.cfg.kind, self.model_cfg.input_size
        if kind == "context":
            b = context_tensors(images, size, self.rng, self.device)
            return {"context": F.cross_entropy(self.net(b["a"], b["b"]), b["label"])}
        lab = col.lab_targets(images)
        A, bias = col.gray_affine()
        u_grey = col.affine_input(images, A, bias).to(self.device)
        if kind == "color":
            return {"color": self._ab_loss(self.net(u_grey), lab)}
        A, bias = sb.chroma_affine()
        u_chroma = col.affine_input(images, A, bias).to(self.device)
        ab_logits, l_logits = self.net(u_grey, u_chroma)
        l_target = torch.from_numpy(sb.l_bins(lab[..., 0])).to(self.device)
        return {"ab_from_grey": self._ab_loss(ab_logits, lab),
                "l_from_chroma": F.cross_entropy(l_logits, l_target)}

    def sample(self, n: int) -> np.ndarray:
        size = ctx.CANVAS if self.cfg.kind == "context" else self.model_cfg.input_size
        return self.pool.sample(n, size)

    def train_steps(self, n: int) -> dict[str, float]:
        self.net.train()
        sums: dict[str, float] = {}
        for _ in range(n):
            images = self.sample(self.cfg.batch_size)
            self.optimizer.zero_grad(set_to_none=True)
            losses = self.losses(images)
            total = sum(losses.values())
            self.step += 1
            if not torch.isfinite(total):
                log.error("non-finite %s loss at step %d; update skipped", self.cfg.kind,
                          self.step)
                continue
            total.backward()
            self.optimizer.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / n
        self.last_losses = sums
        return sums

    # -- export / checkpoints -------------------------------------------------------------

    def export_root(self) -> RootNet:
        """The evaluation root: takes normalised RGB like every root (module docstring)."""
        kind = self.cfg.kind
        if kind == "context":
            return copy.deepcopy(self.net.root).cpu()
        if kind == "color":
            root = copy.deepcopy(self.net.root).cpu()
            col.fold_affine_input(root, *col.gray_affine())
            return root
        grey = copy.deepcopy(self.net.grey).cpu()
        chroma = copy.deepcopy(self.net.chroma).cpu()
        col.fold_affine_input(grey, *col.gray_affine())
        col.fold_affine_input(chroma, *sb.chroma_affine())
        return sb.assemble(grey, chroma, self.model_cfg)

    def colour_model(self) -> torch.nn.Module:
        if self.cfg.kind == "color":
            return self.net
        if self.cfg.kind == "splitbrain":
            return _GreyHalf(self.net)
        raise ValueError("a context-prediction checkpoint has no colour model")

    @torch.no_grad()
    def panels(self, n: int = 6) -> dict[str, np.ndarray]:
        """TensorBoard panel ``colorization`` (color, splitbrain): the same ``n`` stored
        images every time (top) above the model's colours with their own lightness
        (bottom), 128 px tiles; none for context prediction."""
        if self.cfg.kind == "context":
            return {}
        from curious_robot.learning.data import resize

        net = self.colour_model()
        if self.device.type != "cpu":  # colorize works on the CPU
            net = copy.deepcopy(net).cpu()
        images = ImagePool(self.store, np.random.default_rng(0)).sample(
            n, self.model_cfg.input_size)
        tile = 128
        top = [resize(im, tile) for im in images]
        bottom = [col.colorize(net, im, self.model_cfg.input_size)[1] for im in top]
        self.net.train()
        return {"colorization": np.concatenate([np.concatenate(top, axis=1),
                                                np.concatenate(bottom, axis=1)], axis=0)}

    def model_state(self) -> dict:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            model = CuriousNet(self.model_cfg)
        model.root.load_state_dict(self.export_root().state_dict())
        return model.state_dict()

    def state_dict(self) -> dict:
        return {
            "step": int(self.step), "store_position": int(self.store.position()),
            "config": {"model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()},
            "model": self.model_state(), "optimizer": self.optimizer.state_dict(),
            "stats": {}, "rng": {"numpy": self.rng.bit_generator.state},
            "losses": {k: float(v) for k, v in self.last_losses.items()}, "metrics": {},
            "pretext": {"kind": self.cfg.kind, "net": self.net.state_dict(),
                        "rebalance": self.rebalance},
            "saved": time.time(),
        }

    def save(self, path: str | os.PathLike) -> None:
        save_checkpoint(path, self.state_dict())

    @classmethod
    def from_state(cls, state: dict, store, device="cpu") -> PretextTrainer:
        pre = state.get("pretext")
        if not isinstance(pre, dict) or "net" not in pre:
            raise ValueError("not a pretext checkpoint (no 'pretext' entry)")
        cfg = PretextConfig.from_dict(state["config"]["train"])
        trainer = cls(store, ModelConfig.from_dict(state["config"]["model"]), cfg, device,
                      rebalance=None if pre.get("rebalance") is None
                      else pre["rebalance"].numpy())
        trainer.net.load_state_dict(pre["net"])
        if state.get("optimizer"):
            trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.step = int(state["step"])
        trainer.rng.bit_generator.state = state["rng"]["numpy"]
        trainer.last_losses = dict(state.get("losses", {}))
        return trainer

    @classmethod
    def from_checkpoint(cls, path, store, device="cpu") -> PretextTrainer:
        state = load_checkpoint(path, map_location=torch.device(device))
        try:
            return cls.from_state(state, store, device)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


def context_tensors(images: np.ndarray, size: int, rng: np.random.Generator,
                    device) -> dict[str, torch.Tensor]:
    return to_tensors(ctx.context_batch(list(images), size, rng), device)


def load_colour_model(path: str | os.PathLike) -> tuple[torch.nn.Module, ModelConfig]:
    """The colour model (colorization net, or split-brain's grey half) of a checkpoint,
    without a store."""
    state = load_checkpoint(path)
    pre = state.get("pretext")
    if not isinstance(pre, dict) or pre.get("kind") not in ("color", "splitbrain"):
        raise ValueError(f"{path} is not a colorization or split-brain checkpoint")
    mc = ModelConfig.from_dict(state["config"]["model"])
    if pre["kind"] == "color":
        net: torch.nn.Module = col.ColorNet(RootNet(mc), mc.width)
        net.load_state_dict(pre["net"])
        return net.eval(), mc
    full = sb.SplitBrainNet(mc)
    full.load_state_dict(pre["net"])
    return _GreyHalf(full).eval(), mc


def train_pretext(store_path: str | os.PathLike, out: str | os.PathLike, kind: str,
                  steps: int, input_size: int = ModelConfig.input_size,
                  width: float = ModelConfig.width,
                  cfg: PretextConfig | None = None, save_every: int = 100,
                  progress=None, device="cpu") -> dict:
    """Train (or resume) ``kind`` to ``steps`` into ``out/checkpoint.pt`` (TensorBoard:
    ``out/tb``) with the shared loop (:mod:`curious_robot.learning.loop`); returns a summary.
    ``progress(step, total, losses)`` is called every step."""
    from curious_robot.learning.checkpoint import checkpoint_path
    from curious_robot.learning.loop import TB_DIR, Job, TrainLoop, resume_or_start
    from curious_robot.store import ReplayStore

    cfg = cfg or PretextConfig(kind=kind)
    ckpt = checkpoint_path(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    with ReplayStore(store_path, readonly=True) as store:
        def resume(path):
            trainer = PretextTrainer.from_checkpoint(path, store, device)
            if trainer.cfg.kind != kind:
                raise ValueError(f"{path} holds a {trainer.cfg.kind} run, not {kind}")
            log.info("pretext %s: resumed from %s at step %d", kind, path, trainer.step)
            return trainer

        trainer, resumed = resume_or_start(
            ckpt, resume,
            lambda: PretextTrainer(store, ModelConfig(input_size=input_size, width=width),
                                   cfg, device))
        job = Job(trainer, lambda: trainer.train_steps(1), trainer.save,
                  panels=trainer.panels, samples_per_step=lambda _: trainer.cfg.batch_size)
        loop = TrainLoop(job, ckpt, save_every=save_every, until=steps, resumed=resumed,
                         tb_dir=Path(out) / TB_DIR,
                         progress=None if progress is None else
                         lambda step, losses: progress(step, steps, losses))
        try:
            loop.run()
        finally:
            loop.close()
        return {"kind": kind, "step": trainer.step, "losses": trainer.last_losses,
                "checkpoint": str(ckpt)}
