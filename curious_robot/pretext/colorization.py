"""Colorization (Zhang, Isola, Efros, ECCV 2016) on the stored images.

Targets. Images are converted to CIE Lab (D65, ``cv2.cvtColor`` on float RGB in [0, 1]:
L in [0, 100], a / b in about [-128, 127]). ab is quantized on a grid of 10 (bin centres
at multiples of 10 in [-110, 110]); only *in-gamut* bins are kept: a bin is in gamut when
some point of a dense ab grid (step 1) inside its cell, at one of 101 L values (0, 1, ...,
100), converts back to an sRGB colour inside [0, 1]^3 (our own exact Lab -> sRGB, since
cv2 clips). That gives **257 bins** here (:func:`n_ab_bins`; a from -80 to 100, b from
-110 to 90). The paper reports 313; its count comes from a different gamut computation
(it keeps more border cells); ours is the sRGB gamut that our images can actually reach.
A pixel's target is soft: its 5 nearest bin centres, Gaussian weights (sigma 5),
normalised. The loss is the multinomial cross-entropy, each pixel weighted by the class
rebalancing weight of its nearest bin: ``w ~ 1 / ((1 - lam) * p_smooth + lam / Q)``,
lam = 0.5, ``p_smooth`` the empirical bin distribution over training images smoothed with
a Gaussian (sigma 5) in ab space, and ``w`` scaled so that ``sum(p_smooth * w) = 1``
(expected weight 1). Prediction: the annealed mean, ``softmax(log z / T)`` with T = 0.38,
averaged over the bin centres.

Input. The root sees the grey image, not Lab L: ``Y = 0.299 R + 0.587 G + 0.114 B`` (the
luma of ``cv2.COLOR_RGB2GRAY``), replicated to 3 channels and normalised as RGB inputs are.
Y is a *linear* function of the RGB pixels, so after training, :func:`fold_affine_input`
folds "RGB -> Y x 3 -> normalise" into conv1 (and its bias, or the BatchNorm running mean
when conv1 has none) exactly. The checkpoint's ``model`` root therefore takes ordinary
normalised RGB and computes precisely what the trained root computes on the grey image:
``curious-robot eval`` (which feeds RGB) needs no change and no flag, and there is no
train / eval mismatch. (Lab L is a non-linear function of the linear-light luminance;
the grey image carries the same information up to that monotone map, which is what the
task needs: predict colour from brightness alone.) The unfolded training root and the
colour head are kept under ``pretext`` for ``curious-robot colorize`` and resuming.

Network. Root conv1..fc6 (the same shapes as every variant, so fc6 is trained too), then
the head: fc6 -> C x 6 x 6 -> two stride-2 transposed convs -> 24 x 24 -> 1x1 conv to
Q logits (the paper predicts at 1/4 of a 224 input; 24 px is 1/4 of the default 96 px).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curious_robot.learning.data import PIXEL_MEAN, PIXEL_STD, resize
from curious_robot.learning.networks import RootNet

GRID = 10
AB_RANGE = 110  # bin centres -110..110
SIGMA = 5.0
N_NEAREST = 5
LAMBDA = 0.5
TEMPERATURE = 0.38
OUT_SIZE = 24  # prediction resolution (px)
#: RGB -> grey (luma) coefficients, as cv2.COLOR_RGB2GRAY.
LUMA = np.array([0.299, 0.587, 0.114], np.float64)


# -- colour spaces --------------------------------------------------------------------------


def rgb_to_lab(images: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 RGB -> float32 Lab (L 0..100, a / b about -128..127)."""
    flat = images.reshape(-1, *images.shape[-3:])
    out = np.stack([cv2.cvtColor(im.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
                    for im in flat])
    return out.reshape(*images.shape[:-3], *out.shape[1:])


def lab_to_rgb_exact(lab: np.ndarray) -> np.ndarray:
    """Lab (D65) -> sRGB in [0, 1] *without clipping* (values outside mean out of gamut)."""
    lab = np.asarray(lab, np.float64)
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    fy = (L + 16.0) / 116.0
    fx, fz = fy + a / 500.0, fy - b / 200.0
    eps = 6.0 / 29.0

    def finv(t):
        return np.where(t > eps, t ** 3, 3 * eps ** 2 * (t - 4.0 / 29.0))

    xyz = np.stack([0.950456 * finv(fx), finv(fy), 1.088754 * finv(fz)], -1)
    m = np.array([[3.240479, -1.537150, -0.498535],
                  [-0.969256, 1.875992, 0.041556],
                  [0.055648, -0.204043, 1.057311]])
    lin = xyz @ m.T
    return np.where(lin <= 0.0031308, 12.92 * lin,
                    1.055 * np.sign(lin) * np.abs(lin) ** (1 / 2.4) - 0.055)


def lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    """(H, W, 3) Lab -> uint8 RGB (clipped to the gamut, as cv2 does)."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def ab_bins() -> np.ndarray:
    """(Q, 2) float32 centres of the in-gamut ab bins (see the module docstring)."""
    fine = np.arange(-AB_RANGE - GRID // 2, AB_RANGE + GRID // 2 + 1, 1.0)
    aa, bb = np.meshgrid(fine, fine, indexing="ij")
    ab = np.stack([aa.ravel(), bb.ravel()], -1)
    cell = np.clip(np.round(ab / GRID).astype(int) + AB_RANGE // GRID, 0,
                   2 * AB_RANGE // GRID)
    n = 2 * AB_RANGE // GRID + 1
    ok = np.zeros((n, n), bool)
    for L in np.arange(0.0, 100.01, 1.0):
        lab = np.concatenate([np.full((len(ab), 1), L), ab], 1)
        rgb = lab_to_rgb_exact(lab)
        inside = np.all((rgb >= -1e-6) & (rgb <= 1 + 1e-6), axis=1)
        ok[cell[inside, 0], cell[inside, 1]] = True
    ia, ib = np.nonzero(ok)
    centres = np.stack([ia, ib], -1) * GRID - AB_RANGE
    return centres.astype(np.float32)


def n_ab_bins() -> int:
    return len(ab_bins())


# -- targets ----------------------------------------------------------------------------


def soft_encode(ab: np.ndarray, bins: np.ndarray | None = None, k: int = N_NEAREST,
                sigma: float = SIGMA) -> np.ndarray:
    """(..., 2) ab -> (..., Q) soft targets: the ``k`` nearest bins, Gaussian weights
    (``sigma``), summing to 1."""
    bins = ab_bins() if bins is None else bins
    flat = ab.reshape(-1, 2).astype(np.float32)
    d2 = ((flat[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
    dk = np.take_along_axis(d2, idx, 1)
    w = np.exp(-(dk - dk.min(1, keepdims=True)) / (2 * sigma ** 2))
    w /= w.sum(1, keepdims=True)
    out = np.zeros((len(flat), len(bins)), np.float32)
    np.put_along_axis(out, idx, w.astype(np.float32), 1)
    return out.reshape(*ab.shape[:-1], len(bins))


def nearest_bin(ab: np.ndarray, bins: np.ndarray | None = None) -> np.ndarray:
    bins = ab_bins() if bins is None else bins
    flat = ab.reshape(-1, 2).astype(np.float32)
    d2 = ((flat[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    return d2.argmin(1).reshape(ab.shape[:-1])


_LUT_LO, _LUT_STEP = -128.0, 0.5  # a / b of 8-bit Lab lie in -128..127
_LUT_N = int(-2 * _LUT_LO / _LUT_STEP) + 1


@functools.lru_cache(maxsize=1)
def _target_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`soft_encode`'s ``k`` bins and weights and :func:`nearest_bin` on a half-unit
    (a, b) grid over -128..128, computed once (a few seconds): training looks targets up
    instead of measuring every pixel's distance to every bin (0.5 s per batch)."""
    grid = np.linspace(_LUT_LO, -_LUT_LO, _LUT_N, dtype=np.float32)
    ab = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    bins = ab_bins()
    idx, wts, near = [], [], []
    for chunk in np.array_split(ab, 64):
        d2 = ((chunk[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
        i = np.argpartition(d2, N_NEAREST - 1, axis=1)[:, :N_NEAREST]
        dk = np.take_along_axis(d2, i, 1)
        w = np.exp(-(dk - dk.min(1, keepdims=True)) / (2 * SIGMA ** 2))
        idx.append(i.astype(np.int16))
        wts.append((w / w.sum(1, keepdims=True)).astype(np.float32))
        near.append(d2.argmin(1).astype(np.int16))
    return np.concatenate(idx), np.concatenate(wts), np.concatenate(near)


def _table_rows(ab: np.ndarray) -> np.ndarray:
    q = np.rint((np.clip(ab.reshape(-1, 2), _LUT_LO, -_LUT_LO) - _LUT_LO) / _LUT_STEP)
    q = q.astype(np.int64)
    return q[:, 0] * _LUT_N + q[:, 1]


def soft_encode_fast(ab: np.ndarray) -> np.ndarray:
    """:func:`soft_encode` with the default bins, ``k`` and ``sigma``, for ``ab`` rounded
    to half units (a tenth of ``SIGMA``): each target differs from the exact one by
    less than 0.1 (pixels between bins swap the last of their ``k`` bins)."""
    idx, wts, _ = _target_table()
    rows = _table_rows(ab)
    out = np.zeros((len(rows), n_ab_bins()), np.float32)
    np.put_along_axis(out, idx[rows].astype(np.int64), wts[rows], 1)
    return out.reshape(*ab.shape[:-1], out.shape[1])


def nearest_bin_fast(ab: np.ndarray) -> np.ndarray:
    """:func:`nearest_bin` with the default bins, for ``ab`` rounded to half units."""
    return _target_table()[2][_table_rows(ab)].astype(np.int64).reshape(ab.shape[:-1])


def rebalance_weights(counts: np.ndarray, bins: np.ndarray | None = None,
                      lam: float = LAMBDA, sigma: float = SIGMA) -> np.ndarray:
    """(Q,) weights from per-bin pixel counts: smooth the distribution with a Gaussian
    (``sigma``, ab units) over the bin centres, mix with uniform (``lam``), invert, scale so
    the expected weight under the smoothed distribution is 1."""
    bins = ab_bins() if bins is None else bins
    p = np.asarray(counts, np.float64)
    p = p / max(p.sum(), 1e-12)
    d2 = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1).astype(np.float64)
    kernel = np.exp(-d2 / (2 * sigma ** 2))
    p_s = kernel @ p
    p_s /= p_s.sum()
    w = 1.0 / ((1 - lam) * p_s + lam / len(bins))
    w /= (p_s * w).sum()
    return w.astype(np.float32)


def annealed_mean(logits: torch.Tensor, bins: torch.Tensor,
                  temperature: float = TEMPERATURE) -> torch.Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) ab: ``softmax(log softmax / T)`` weighted mean
    of the bin centres (T = 1 is the mean, T -> 0 the mode)."""
    p = F.softmax(F.log_softmax(logits, 1) / temperature, 1)
    return torch.einsum("nqhw,qc->nchw", p, bins.to(p))


def rebalanced_ce(logits: torch.Tensor, target: torch.Tensor,
                  pixel_w: torch.Tensor | None) -> torch.Tensor:
    """Multinomial cross-entropy of (N, Q, H, W) logits against soft (N, Q, H, W) targets,
    each pixel weighted by ``pixel_w`` (N, H, W) (None: 1); mean over pixels."""
    ce = -(target * F.log_softmax(logits, 1)).sum(1)
    if pixel_w is not None:
        ce = ce * pixel_w
    return ce.mean()


# -- inputs -----------------------------------------------------------------------------


def gray_affine() -> tuple[np.ndarray, np.ndarray]:
    """(A, b) of the grey-input map ``u = A x + b`` on RGB x in [0, 1]: every channel is
    the normalised luma."""
    A = np.tile(LUMA / PIXEL_STD, (3, 1))
    b = np.full(3, -PIXEL_MEAN / PIXEL_STD)
    return A.astype(np.float32), b.astype(np.float32)


def affine_input(images: np.ndarray, A: np.ndarray, b: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float ``A x + b`` with x the RGB in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 255.0
    u = torch.einsum("nhwk,jk->njhw", x, torch.from_numpy(A)) + \
        torch.from_numpy(b).view(1, 3, 1, 1)
    return u.contiguous()


@torch.no_grad()
def fold_affine_input(root: RootNet, A: np.ndarray, b: np.ndarray) -> None:
    """In place: make ``root`` take normalised RGB ``(x - m) / s`` and compute exactly what
    it computed on ``A x + b``. conv1 has no padding, so the constant part is one number per
    output channel; it goes into conv1's bias, or into the BatchNorm running mean (conv1 has
    no bias under BatchNorm; eval mode subtracts the running mean)."""
    block = root.stages["conv1"]
    conv = block[0]
    if conv.padding not in (0, (0, 0)):
        raise ValueError("fold_affine_input needs conv1 without padding")
    A_t = torch.as_tensor(A, dtype=conv.weight.dtype)
    b_t = torch.as_tensor(b, dtype=conv.weight.dtype)
    W = conv.weight.clone()  # (O, 3, k, k) acting on u
    # u = A (s x_n + m) + b = (A s) x_n + (A m 1 + b)
    new_w = torch.einsum("ojhw,jk->okhw", W, A_t * PIXEL_STD)
    const = A_t.sum(1) * PIXEL_MEAN + b_t  # (3,)
    delta = torch.einsum("ojhw,j->o", W, const)
    conv.weight.copy_(new_w)
    if conv.bias is not None:
        conv.bias.add_(delta)
    elif isinstance(block[1], nn.BatchNorm2d):
        block[1].running_mean.sub_(-delta)
    else:  # pragma: no cover - RootNet always has a bias or a BatchNorm
        raise ValueError("conv1 has neither bias nor BatchNorm to take the constant")


def lab_targets(images: np.ndarray, size: int = OUT_SIZE) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size, size, 3) Lab of the images scaled to ``size``."""
    return rgb_to_lab(np.stack([resize(im, size) for im in images]))


# -- network ----------------------------------------------------------------------------


class UpHead(nn.Module):
    """fc6 -> C x 6 x 6 -> two stride-2 transposed convs -> 24 x 24 -> 1x1 conv to ``out``
    logits per pixel."""

    def __init__(self, fc6_dim: int, out: int, width: float = 1.0):
        super().__init__()
        c = max(16, int(round(128 * width)))
        self.c = c
        self.fc = nn.Sequential(nn.Linear(fc6_dim, c * 36), nn.ReLU(inplace=True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, out, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, self.c, 6, 6))


class ColorNet(nn.Module):
    """Root (on the grey input) + :class:`UpHead` over the ab bins."""

    def __init__(self, root: RootNet, width: float):
        super().__init__()
        self.root = root
        self.head = UpHead(root.fc6_dim, n_ab_bins(), width)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.head(self.root(u, upto="fc6"))


@torch.no_grad()
def colorize(net: ColorNet, image: np.ndarray, input_size: int,
             temperature: float = TEMPERATURE) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 -> (grey, colourised) uint8 images of the same size: the predicted
    ab (annealed mean, upsampled) with the image's own L."""
    net.eval()
    A, b = gray_affine()
    logits = net(affine_input(resize(image, input_size)[None], A, b))
    ab = annealed_mean(logits, torch.from_numpy(ab_bins()), temperature)[0]
    ab = ab.permute(1, 2, 0).numpy().astype(np.float32)
    h, w = image.shape[:2]
    ab = cv2.resize(ab, (w, h), interpolation=cv2.INTER_LINEAR)
    lab = rgb_to_lab(image)
    grey = lab.copy()
    grey[..., 1:] = 0.0
    out = lab.copy()
    out[..., 1:] = ab
    return lab_to_rgb_uint8(grey), lab_to_rgb_uint8(out)
