"""Context prediction (Doersch, Gupta, Efros, ICCV 2015) on the stored images.

A stored image is scaled to a ``CANVAS`` x ``CANVAS`` canvas and cut into a 3 x 3 grid of
``PATCH`` px patches with ``GAP`` px between neighbours (grid span 3 * 36 + 2 * 6 = 120 of
128 px); each patch is shifted by up to ``JITTER`` px in x and y independently. The
first patch is the centre cell, the second one of its 8 neighbours; the label is the
neighbour's index in :data:`OFFSETS` (row-major, the centre skipped):

    0 1 2
    3 . 4
    5 6 7

The gap and the jitter stop the network from matching edges and lines across the border
(the trivial shortcut). Chromatic aberration (the other shortcut: a lens shifts colours
toward the image border, so colour fringes tell where a patch was) is removed by *colour
dropping per patch*: each patch keeps one random RGB channel, replicated to all three (so
conv1 still takes 3 channels). Both patches are scaled up to the root's input size; the
two towers are the same root run on both patches in one batch; the head concatenates
their fc6 and classifies (fc -> ReLU -> dropout -> fc -> 8), as the paper's fc6 ->
fc7 -> fc8 over the concatenated pair.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from curious_robot.learning.data import resize
from curious_robot.learning.networks import MLPHead, RootNet

CANVAS, PATCH, GAP, JITTER = 128, 36, 6, 3
#: (row, col) offsets of the 8 neighbours, in label order.
OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
N_CLASSES = len(OFFSETS)


def cell_origin(row: int, col: int, patch: int = PATCH, gap: int = GAP,
                canvas: int = CANVAS) -> tuple[int, int]:
    """Top-left pixel of grid cell (row, col), row / col in -1..1, grid centred."""
    span = 3 * patch + 2 * gap
    start = (canvas - span) // 2
    return start + (row + 1) * (patch + gap), start + (col + 1) * (patch + gap)


def patch_pair(image: np.ndarray, label: int, rng: np.random.Generator | None = None,
               patch: int = PATCH, gap: int = GAP, jitter: int = JITTER,
               canvas: int = CANVAS) -> tuple[np.ndarray, np.ndarray]:
    """(centre patch, neighbour patch ``label``) of ``image`` scaled to ``canvas``, each
    jittered by up to ``jitter`` px (no jitter when ``rng`` is None)."""
    img = resize(image, canvas)
    out = []
    for r, c in ((0, 0), OFFSETS[label]):
        y, x = cell_origin(r, c, patch, gap, canvas)
        if rng is not None and jitter:
            y += int(rng.integers(-jitter, jitter + 1))
            x += int(rng.integers(-jitter, jitter + 1))
        y = min(max(y, 0), canvas - patch)
        x = min(max(x, 0), canvas - patch)
        out.append(img[y:y + patch, x:x + patch])
    return out[0], out[1]


def drop_colour(patch: np.ndarray, channel: int) -> np.ndarray:
    """Keep one RGB channel, replicated to three."""
    return np.repeat(patch[..., channel:channel + 1], 3, axis=2)


def context_batch(images: list[np.ndarray], size: int, rng: np.random.Generator) -> dict:
    """A training batch: ``a`` / ``b`` (N, size, size, 3) uint8 patches, ``label`` (N,)."""
    a, b, labels = [], [], []
    for img in images:
        label = int(rng.integers(N_CLASSES))
        p, q = patch_pair(img, label, rng)
        a.append(resize(drop_colour(p, int(rng.integers(3))), size))
        b.append(resize(drop_colour(q, int(rng.integers(3))), size))
        labels.append(label)
    return {"a": np.stack(a), "b": np.stack(b), "label": np.asarray(labels, np.int64)}


class ContextNet(nn.Module):
    """Two towers (one root, one pass over both patches) -> concatenated fc6 -> 8 logits."""

    def __init__(self, root: RootNet, hidden: int, dropout: float = 0.5):
        super().__init__()
        self.root = root
        self.head = MLPHead(2 * root.fc6_dim, hidden, N_CLASSES, dropout)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        n = a.shape[0]
        f = self.root(torch.cat([a, b]), upto="fc6")
        return self.head(torch.cat([f[:n], f[n:]], 1))
