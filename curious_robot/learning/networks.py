"""The shared root network and its task heads (Pinto et al., ECCV 2016), in pure torch.

One AlexNet-style root (conv1..conv5, pool5, fc6) is shared by every task; each task has a
small head in one ``nn.ModuleDict``, attached at the depth given by :data:`HEAD_INPUTS`:

    grasp     conv4 of the patch                 -> 18 angle-bin logits ("would it succeed")
    push      conv3 of (before, after), siamese  -> the push action (4 numbers, normalised)
              conv3 of before + the push          -> the object's displacement (forward model)
    poke      fc6 of the patch                   -> log tactile slope (normalised)
    identity  fc6 -> fc7 of each image, siamese  -> an embedding (cosine embedding loss)
    crash     fc6 of a camera crop               -> one logit ("safe to fly straight")

Towers of a siamese head are the same root run on both images (one batch), never copies.
The model never picks a device: build it, then ``.to(device)`` as the caller decides.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from curious_robot import tasks as registry
from curious_robot.learning.config import _CONVS, MIN_INPUT_SIZE, ModelConfig  # noqa: F401
from curious_robot.learning.layers import (N_ANGLE_BINS, ConvHead, MLPHead,  # noqa: F401
                                           crash_loss, grasp_loss, identity_loss,
                                           identity_nce_loss, regression_loss)

#: Root layers in order; each can be read with ``root(x, upto=name)`` / ``root.features``.
LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6")
#: Root layer each head reads (each task declares its own: ``Task.head_input``).
HEAD_INPUTS = {t.head: t.head_input for t in registry.with_head()}
#: AlexNet's conv layers: (out channels, kernel, stride, padding): learning.config._CONVS.
_POOL = (3, 2)  # kernel, stride (ceil mode, so small inputs still reach pool5)


def _out(n: int, kernel: int, stride: int, pad: int = 0, ceil: bool = False) -> int:
    span = n + 2 * pad - kernel
    return (math.ceil(span / stride) if ceil else span // stride) + 1


def spatial_sizes(input_size: int) -> dict[str, int]:
    """Side length of each conv layer's feature map for a square input of ``input_size``."""
    sizes, n = {}, input_size
    for i, (_, k, s, p) in enumerate(_CONVS):
        if i in (1, 2):  # pool1 before conv2, pool2 before conv3
            n = _out(n, *_POOL, ceil=True)
        n = _out(n, k, s, p)
        sizes[f"conv{i + 1}"] = n
    sizes["pool5"] = _out(n, *_POOL, ceil=True)
    return sizes


class SplitStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose affine weights are shared but which keeps a second set of running
    statistics (``alt_running_mean`` / ``alt_running_var``), used and updated when it is
    called with ``alt`` (``ModelConfig.crop_stats``: the poke inputs, whose statistics
    can be far from the other tasks' resized colour patches)."""

    def __init__(self, num_features: int):
        super().__init__(num_features)
        self.register_buffer("alt_running_mean", torch.zeros(num_features))
        self.register_buffer("alt_running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, alt: bool = False) -> torch.Tensor:
        if not alt:
            return super().forward(x)
        return F.batch_norm(x, self.alt_running_mean, self.alt_running_var, self.weight,
                            self.bias, self.training, self.momentum, self.eps)


def _run(module: nn.Module, x: torch.Tensor, alt: bool) -> torch.Tensor:
    """``module(x)``, with ``alt`` passed to every :class:`SplitStatsBatchNorm2d` inside."""
    if isinstance(module, SplitStatsBatchNorm2d):
        return module(x, alt)
    if isinstance(module, nn.Sequential):
        for m in module:
            x = _run(m, x, alt)
        return x
    return module(x)


def _conv_block(cin: int, cout: int, kernel: int, stride: int, pad: int,
                norm: str, first: bool, split_stats: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, pad, bias=norm != "batch")]
    if norm == "batch":
        layers.append(SplitStatsBatchNorm2d(cout) if split_stats else nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    if norm == "lrn" and first:
        layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))
    return nn.Sequential(*layers)


class RootNet(nn.Module):
    """conv1..conv5 (AlexNet shapes, scaled by ``width``), pool5, fc6."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        stages: dict[str, nn.Module] = {}
        cin = 3
        for i, ((_, k, s, p), cout) in enumerate(zip(_CONVS, ch)):
            block = _conv_block(cin, cout, k, s, p, cfg.norm, first=i < 2,
                                split_stats=cfg.crop_stats)
            if i in (1, 2):
                block = nn.Sequential(nn.MaxPool2d(*_POOL, ceil_mode=True), block)
            stages[f"conv{i + 1}"] = block
            cin = cout
        stages["pool5"] = nn.MaxPool2d(*_POOL, ceil_mode=True)
        side = spatial_sizes(cfg.input_size)["pool5"]
        self.fc6_dim = cfg.scaled(cfg.fc6_dim)
        stages["fc6"] = nn.Sequential(nn.Flatten(), nn.Linear(ch[4] * side * side, self.fc6_dim),
                                      nn.ReLU(inplace=True), nn.Dropout(cfg.dropout))
        self.stages = nn.ModuleDict(stages)

    def forward(self, x: torch.Tensor, upto: str = "fc6", alt: bool = False) -> torch.Tensor:
        """The output of layer ``upto`` (later layers are not computed); ``alt``: the
        BatchNorm layers use (and in training update) their second running statistics
        (``ModelConfig.crop_stats``; no effect on a root without them)."""
        if upto not in self.stages:
            raise ValueError(f"unknown root layer {upto!r}; known: {', '.join(LAYERS)}")
        for name, stage in self.stages.items():
            x = _run(stage, x, alt) if alt else stage(x)
            if name == upto:
                return x
        raise AssertionError("unreachable")

    def features(self, x: torch.Tensor, layers=LAYERS) -> dict[str, torch.Tensor]:
        """Outputs of every layer named in ``layers`` (for evaluation and visualisation)."""
        wanted, out = set(layers), {}
        for name, stage in self.stages.items():
            if not wanted - out.keys():
                break
            x = stage(x)
            if name in wanted:
                out[name] = x
        return out


def head_dims(cfg: ModelConfig) -> dict:
    """What a task's ``make_head`` gets: channel counts and widths of the root and heads."""
    return {"channels": cfg.channels, "hidden": cfg.scaled(cfg.head_dim),
            "fc6": cfg.scaled(cfg.fc6_dim), "fc7": cfg.scaled(cfg.fc7_dim),
            "dropout": cfg.dropout}


class CuriousNet(nn.Module):
    """The root network and one head per task; one method per task."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.root = RootNet(cfg)
        dims = head_dims(cfg)
        # one head per registered task that has one, built in registration order
        tasks = registry.with_head()
        self.head_inputs = {t.head: t.head_input for t in tasks}
        self.heads = nn.ModuleDict({t.head: t.make_head(cfg, dims) for t in tasks})

    def grasp(self, patch: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, 18) logits, one per angle bin."""
        return self.heads["grasp"](self.root(patch, upto=self.head_inputs["grasp"]))

    def push(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """Two (N, 3, S, S) scenes -> (N, 4) normalised push action (inverse model)."""
        n = before.shape[0]
        f = self.root(torch.cat([before, after]), upto=self.head_inputs["push"])
        return self.heads["push"](torch.cat([f[:n], f[n:]], dim=1))

    def push_both(self, before: torch.Tensor, after: torch.Tensor, points: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`push` and :meth:`push_outcome` of one record batch with one root pass."""
        n = before.shape[0]
        f = self.root(torch.cat([before, after]), upto=self.head_inputs["push"])
        head = self.heads["push"]
        return head(torch.cat([f[:n], f[n:]], dim=1)), head.forward_model(f[:n], points)

    def push_outcome(self, before: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """A (N, 3, S, S) scene and (N, P, 2) push points in its normalised image
        coordinates -> (N, 2) normalised displacement of the pushed object (forward model;
        the push task defines the points)."""
        f = self.root(before, upto=self.head_inputs["push"])
        return self.heads["push"].forward_model(f, points)

    def poke_features(self, patch: torch.Tensor) -> torch.Tensor:
        """What the poke head reads: the root on poke inputs, with the poke view's own
        BatchNorm statistics where the model keeps them (``ModelConfig.crop_stats``)."""
        return self.root(patch, upto=self.head_inputs["poke"], alt=self.cfg.crop_stats)

    def poke(self, patch: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, 1) normalised log slope."""
        return self.heads["poke"](self.poke_features(patch))

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, D) identity embedding (fc7, not normalised)."""
        return self.heads["identity"](self.root(image, upto=self.head_inputs["identity"]))

    def crash(self, crop: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N,) logit of "safe to go straight"."""
        return self.heads["crash"](self.root(crop, upto=self.head_inputs["crash"])).squeeze(1)
