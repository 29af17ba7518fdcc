"""Building blocks of the task heads and their losses (no registry here: the tasks of
:mod:`curious_robot.tasks` build their heads and losses from these, and
:mod:`curious_robot.learning.networks` puts the heads on the shared root)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Grasp angle bins: 0, 10, ..., 170 degrees (a parallel gripper is symmetric under 180).
N_ANGLE_BINS = 18


class ConvHead(nn.Module):
    """conv3x3 -> ReLU -> 3x3 average grid -> fc -> ReLU -> dropout -> fc."""

    def __init__(self, cin: int, cout: int, hidden: int, out: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(3), nn.Flatten(),
            nn.Linear(cout * 9, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MLPHead(nn.Module):
    """fc -> ReLU -> dropout -> fc."""

    def __init__(self, cin: int, hidden: int, out: int, dropout: float):
        super().__init__()
        self.hidden = nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.hidden(x)))

    def sample(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """(n, N, out): ``n`` forward passes with dropout on (MC dropout), whatever the mode."""
        h = self.hidden(x).unsqueeze(0).expand(n, *x.shape[:-1], -1)
        return self.out(F.dropout(h, self.dropout.p, training=True))


class ForwardHead(nn.Module):
    """A forward model: (root features of an image, an action given as ``points`` (x, y)
    positions in the image's normalised coordinates, -1..1 across) -> an outcome.

    conv3x3 -> ReLU on the features; what the head reads: the 3x3 average grid of the whole
    map (the scene) and the features under each action point (bilinear, ``grid_sample``:
    what the action meets there) through one fc, the points through another, summed; then
    ReLU -> fc -> ReLU (the *hidden* part, run once) -> dropout -> fc (the part
    :meth:`sample` repeats for MC dropout, as :class:`MLPHead`)."""

    def __init__(self, cin: int, cout: int, hidden: int, points: int, out: int,
                 dropout: float):
        super().__init__()
        self.points = int(points)
        self.conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))
        self.grid = nn.Sequential(nn.AdaptiveAvgPool2d(3), nn.Flatten())
        # the image and the action enter the first hidden layer through their own linear
        # maps (summed): concatenated, the few action numbers would start with the tiny
        # weights of a layer with a thousand image inputs and be learnt slowly
        self.image_in = nn.Linear(cout * (9 + self.points), hidden)
        self.action_in = nn.Linear(2 * self.points, hidden)
        self.hidden_out = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(hidden, hidden),
                                        nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, out)

    def features(self, x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """(N, hidden) before dropout; ``points``: (N, P, 2) image (x, y) in -1..1, x along
        the columns, y along the rows (``grid_sample``'s convention)."""
        if points.shape[1:] != (self.points, 2):
            raise ValueError(f"expected (N, {self.points}, 2) action points, got "
                             f"{tuple(points.shape)}")
        g = self.conv(x)
        points = points.to(g.dtype)
        at = F.grid_sample(g, points.unsqueeze(1), align_corners=True)
        return self.hidden_out(self.image_in(torch.cat([self.grid(g), at.flatten(1)], dim=1))
                               + self.action_in(points.flatten(1)))

    def forward(self, x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.features(x, points)))

    def sample(self, x: torch.Tensor, points: torch.Tensor, n: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, N, out): ``n`` passes with dropout on (MC dropout), whatever the mode; the
        masks come from ``generator`` when given (reproducible, the global RNG untouched)."""
        h = self.features(x, points).unsqueeze(0).expand(n, -1, -1)
        p = float(self.dropout.p)
        if p > 0:
            keep = torch.rand(h.shape, generator=generator, device=h.device) >= p
            h = h * keep / (1.0 - p)
        return self.out(h)


class PushHead(ConvHead):
    """The push head: the inverse model (a :class:`ConvHead` on the siamese (before,
    after) conv3 features -> the push action; ``forward`` is exactly that, and its weights
    keep the names they had before the forward model existed, ``net.*``) and
    ``forward_model``, a :class:`ForwardHead` (before conv3 features + the push -> the
    object's displacement), trained beside it; the push task documents both."""

    def __init__(self, cin: int, cout: int, hidden: int, out: int, dropout: float,
                 forward_points: int, forward_out: int):
        super().__init__(2 * cin, cout, hidden, out, dropout)
        self.forward_model = ForwardHead(cin, cout, hidden, forward_points, forward_out,
                                         dropout)


# -- losses -----------------------------------------------------------------------------


def grasp_loss(logits: torch.Tensor, bins: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on the bin that was tried only (the other 17 get no gradient)."""
    tried = logits.gather(1, bins.view(-1, 1)).squeeze(1)
    return F.binary_cross_entropy_with_logits(tried, success.float())


def regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L2 on normalised targets (push, poke)."""
    return F.mse_loss(pred, target)


def identity_loss(a: torch.Tensor, b: torch.Tensor, same: torch.Tensor,
                  margin: float = 0.5, group_a: torch.Tensor | None = None,
                  group_b: torch.Tensor | None = None, hard: bool = False) -> torch.Tensor:
    """Cosine embedding loss: 1 - cos for pairs of one object, max(0, cos - margin) else.

    Without groups only the given pairs count (row i of ``a`` with row i of ``b``). With
    ``group_a`` / ``group_b`` (object numbers) every pairing of the batch counts, each
    labelled by whether the groups match: N x N pairs for the cost of 2N embeddings, so
    each image meets many other objects per step instead of one. Positive and negative
    pairs are averaged separately and added, so the many negatives do not drown the few
    positives; ``hard`` averages only the negatives inside the margin (the ones that
    cost anything), so easy negatives do not dilute them."""
    if group_a is None or group_b is None:
        return F.cosine_embedding_loss(a, b, same.float() * 2.0 - 1.0, margin=margin)
    cos = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T
    pos = group_a[:, None] == group_b[None, :]
    loss = (1.0 - cos[pos]).mean()
    if (~pos).any():
        neg = (cos[~pos] - margin).clamp(min=0.0)
        if hard:
            loss = loss + neg.sum() / (neg > 0).sum().clamp(min=1)
        else:
            loss = loss + neg.mean()
    return loss


def identity_nce_loss(a: torch.Tensor, b: torch.Tensor, group_a: torch.Tensor,
                      group_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Contrastive (InfoNCE) identity loss over every pairing of the batch: each image's
    softmax over the other tower's images (cosine / ``temperature``) should put its mass
    on images of its own object. The softmax weighs the negatives most alike first, so
    objects told apart by colour alone stop costing, and the ones that share a colour
    must be told apart by shape. Symmetric in ``a`` and ``b``."""
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    pos = group_a[:, None] == group_b[None, :]

    def one_side(lg: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        keep = p.any(dim=1)
        lse_all = torch.logsumexp(lg, dim=1)
        lse_pos = torch.logsumexp(lg.masked_fill(~p, float("-inf")), dim=1)
        return (lse_all - lse_pos)[keep].mean()

    return 0.5 * (one_side(logits, pos) + one_side(logits.T, pos.T))


def crash_loss(logits: torch.Tensor, safe: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, safe.float())
