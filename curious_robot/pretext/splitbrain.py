"""Split-brain auto-encoder (Zhang, Isola, Efros, CVPR 2017) on the stored images.

Two half-width roots (``width / 2`` each), trained independently:

- the *brightness half* sees the grey image (as colorization does, see
  :mod:`.colorization`) and predicts ab: classification over the in-gamut ab bins with
  soft-encoded targets and class rebalancing, exactly the colorization loss;
- the *colour half* sees the chroma of the image and predicts L: classification over
  :data:`N_L_BINS` = 50 bins of width 2 on L in [0, 100] (the paper also chose
  classification for both directions over regression).

Adaptation: the colour half's input is the linear opponent chroma ``(Cb, Cr)`` of YCbCr
(scaled by 4, third channel zero) instead of Lab ab. Cb / Cr are linear in RGB, so both
halves' input maps fold into conv1 exactly (:func:`.colorization.fold_affine_input`), and
the two halves are then assembled into ONE :class:`RootNet` of the full width whose
weights are block-diagonal (:func:`assemble`): conv1 takes ordinary normalised RGB and its
first half of channels is the brightness half, the rest the colour half; every later
layer (conv2..conv5, fc6, BatchNorm included) acts on each half separately. Its features
at every layer are exactly the two halves' features concatenated, which is the paper's
evaluation, and ``curious-robot eval`` loads it like any root. Lab ab would have needed a
non-linear input stage that a RootNet cannot hold. Norm ``lrn`` would mix channels across
the boundary of the halves and is refused.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from curious_robot.learning.networks import ModelConfig, RootNet
from curious_robot.pretext.colorization import UpHead, n_ab_bins

N_L_BINS = 50
L_BIN = 100.0 / N_L_BINS
CHROMA_SCALE = 4.0
#: YCbCr chroma rows (ITU-R BT.601) on RGB in [0, 1]; both are 0 on grey.
CB = np.array([-0.168736, -0.331264, 0.5])
CR = np.array([0.5, -0.418688, -0.081312])


def chroma_affine() -> tuple[np.ndarray, np.ndarray]:
    """(A, b) of the colour half's input ``u = A x + b``: (4 Cb, 4 Cr, 0)."""
    A = np.stack([CB * CHROMA_SCALE, CR * CHROMA_SCALE, np.zeros(3)])
    return A.astype(np.float32), np.zeros(3, np.float32)


def l_bins(L: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> bin index 0..49."""
    return np.clip((np.asarray(L) / L_BIN).astype(np.int64), 0, N_L_BINS - 1)


def half_config(cfg: ModelConfig) -> ModelConfig:
    if cfg.norm == "lrn":
        raise ValueError("split-brain needs norm 'batch' or 'none' (LRN mixes the halves)")
    half = ModelConfig.from_dict({**cfg.to_dict(), "width": cfg.width / 2})
    full, h = RootNet(cfg), RootNet(half)
    if list(full.cfg.channels) != [2 * c for c in h.cfg.channels] or \
            full.fc6_dim != 2 * h.fc6_dim:
        raise ValueError(f"width {cfg.width}: the channel counts are not even after "
                         "scaling; split-brain needs a width whose halves add up (e.g. "
                         "0.25, 0.5, 1.0)")
    return half


class SplitBrainNet(nn.Module):
    """The two half-roots and their heads (ab logits from grey, L logits from chroma)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        half = half_config(cfg)
        self.grey = RootNet(half)
        self.chroma = RootNet(half)
        self.grey_head = UpHead(self.grey.fc6_dim, n_ab_bins(), half.width)
        self.chroma_head = UpHead(self.chroma.fc6_dim, N_L_BINS, half.width)

    def forward(self, u_grey: torch.Tensor, u_chroma: torch.Tensor):
        return (self.grey_head(self.grey(u_grey, upto="fc6")),
                self.chroma_head(self.chroma(u_chroma, upto="fc6")))


@torch.no_grad()
def assemble(a: RootNet, b: RootNet, cfg: ModelConfig) -> RootNet:
    """One full-width RootNet computing ``cat(a(x), b(x))`` at every layer: conv1 is the
    two conv1s stacked (both read the same 3 channels); later convs and fc6 are
    block-diagonal; BatchNorm parameters and statistics are concatenated."""
    full = RootNet(cfg)
    sa, sb = a.state_dict(), b.state_dict()
    out = {}
    for key, value in full.state_dict().items():
        va, vb = sa[key], sb[key]
        if key.endswith("num_batches_tracked"):
            out[key] = va
        elif va.ndim == 0:
            out[key] = va
        elif va.ndim == 1:
            out[key] = torch.cat([va, vb])
        elif key.startswith("stages.conv1."):
            out[key] = torch.cat([va, vb])  # conv1: (O, 3, k, k), shared input
        elif va.ndim == 4:
            w = torch.zeros_like(value)
            oa, ia = va.shape[:2]
            w[:oa, :ia] = va
            w[oa:, ia:] = vb
            out[key] = w
        elif va.ndim == 2:  # fc6: input is the flattened (C, H, W) map, halves contiguous
            w = torch.zeros_like(value)
            oa, ia = va.shape
            w[:oa, :ia] = va
            w[oa:, ia:] = vb
            out[key] = w
        else:  # pragma: no cover
            raise ValueError(f"cannot assemble {key} of shape {tuple(value.shape)}")
    full.load_state_dict(out)
    return full
