"""From interaction records to training batches: images, angle bins, normalisation.

Batches are built on the CPU as numpy arrays (images stay ``uint8`` (N, S, S, 3) until
:func:`to_tensors` moves them to the caller's device and normalises them there).

Image convention of grasp patches (set by the simulated world): top-down, image column
grows with table +x, image row grows with table -y. The table frame is right-handed with
z up, so a counter-clockwise rotation of the patch *as displayed* is a counter-clockwise
rotation in the table frame, i.e. it adds to the grasp angle (measured from table +x
toward +y). :func:`rotate_image` rotates counter-clockwise for positive degrees, hence
rotating a patch by ``k * 10`` degrees moves the label from bin ``b`` to ``(b + k) % 18``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch

from curious_robot.learning.layers import N_ANGLE_BINS

if TYPE_CHECKING:  # pragma: no cover
    from curious_robot.record import Interaction

BIN_DEGREES = 180.0 / N_ANGLE_BINS
#: Per-channel input normalisation after scaling to [0, 1].
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25
#: Number of training records read to compute normalisation statistics.
STATS_MAX_RECORDS = 5000


# -- images -----------------------------------------------------------------------------


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """A (H, W, 3) uint8 image scaled to (size, size, 3)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central (size, size, 3) pixels of an image at its own resolution (scaled up
    first where it is smaller)."""
    h, w = img.shape[:2]
    if h < size or w < size:
        return resize(img, size)
    y, x = (h - size) // 2, (w - size) // 2
    return img[y:y + size, x:x + size]


#: :func:`local_contrast`: the blur (px) that gives the local brightness, and how much a
#: relative deviation from it is amplified before it is stored in 8 bits
CONTRAST_SIGMA, CONTRAST_GAIN = 4.0, 3.0


def local_contrast(img: np.ndarray, sigma: float = CONTRAST_SIGMA,
                   gain: float = CONTRAST_GAIN) -> np.ndarray:
    """Grey local contrast of an (H, W, 3) uint8 image, as (H, W, 3) uint8 (the same grey
    in every channel): each pixel's brightness over the Gaussian-blurred brightness around
    it, 128 where they are equal, ``128 * gain`` per unit of relative deviation. A
    texture's pits, grain and bands keep their shape and relative depth whatever the
    object's colour or the light, which no longer show."""
    grey = img.astype(np.float32).mean(axis=2)
    rel = grey / np.maximum(cv2.GaussianBlur(grey, (0, 0), sigma), 1.0) - 1.0
    out = np.clip(128.0 + 128.0 * gain * rel, 0.0, 255.0).astype(np.uint8)
    return np.repeat(out[:, :, None], 3, axis=2)


def contrast_all(images: np.ndarray) -> np.ndarray:
    """:func:`local_contrast` of each image of an (N, H, W, 3) uint8 stack."""
    return np.stack([local_contrast(img) for img in images]) if len(images) else images


def view(img: np.ndarray, size: int, how: str = "resize") -> np.ndarray:
    """``img`` as a (size, size, 3) network input, by
    :data:`~curious_robot.learning.config.PATCH_VIEWS` ``how``."""
    if how == "crop":
        return center_crop(img, size)
    if how == "contrast":
        return local_contrast(center_crop(img, size))
    if how != "resize":
        raise ValueError(f"view must be 'contrast', 'crop' or 'resize', got {how!r}")
    return resize(img, size)


def rotate_image(img: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise (as displayed) about the centre; borders reflected."""
    if degrees % 360.0 == 0.0:
        return img
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), float(degrees), 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def angle_to_bin(angle: float) -> int:
    """Grasp angle (rad, any value; period pi) -> bin 0..17 centred on 0, 10, ..., 170 deg."""
    return int(round(math.degrees(angle) / BIN_DEGREES)) % N_ANGLE_BINS


def bin_to_angle(b: int) -> float:
    """Centre of bin ``b`` in radians, in [0, pi)."""
    return math.radians((b % N_ANGLE_BINS) * BIN_DEGREES)


def rotate_grasp(patch: np.ndarray, label_bin: int, k: int) -> tuple[np.ndarray, int]:
    """The patch rotated by ``k * 10`` degrees and the angle bin that moves with it."""
    return rotate_image(patch, k * BIN_DEGREES), (label_bin + k) % N_ANGLE_BINS


def stack(images: list[np.ndarray], size: int, how: str = "resize") -> np.ndarray:
    """(N, size, size, 3) network inputs of ``images`` (:func:`view` ``how``)."""
    return np.stack([view(img, size, how) for img in images]) if images else \
        np.zeros((0, size, size, 3), np.uint8)


def turn_all(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each (H, W, 3) image of a square stack turned by a random multiple of 90 degrees
    and mirrored with probability 1/2 (the eight symmetries of the square)."""
    return np.stack([_turn(img, rng) for img in images]) if len(images) else images


def jitter_params(n: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """(n, 5) draws for :func:`jitter_colors`: brightness, contrast, three channel gains."""
    s = float(strength)
    return np.concatenate([rng.uniform(1 - s, 1 + s, (n, 2)),
                           rng.uniform(1 - s / 4, 1 + s / 4, (n, 3))], axis=1)


def jitter_colors(images: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Photometric augmentation of (N, H, W, 3) uint8 ``images`` (one row of ``params``
    from :func:`jitter_params` per image): contrast about the image's mean grey, then
    brightness and a per-channel gain, as a change of light does. Shapes and colour order
    are kept (a red object stays the reddest thing), so material cues survive."""
    x = images.astype(np.float32)
    p = params.astype(np.float32)
    grey = x.mean(axis=(1, 2, 3), keepdims=True)
    # in place, in the order of ((x - grey) * contrast + grey) * brightness * gain + 0.5
    x -= grey
    x *= p[:, 1, None, None, None]
    x += grey
    x *= p[:, 0, None, None, None]
    x *= p[:, None, None, 2:5]
    x += 0.5
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


#: the six orders of the colour channels (:func:`scramble_colors`)
CHANNEL_ORDERS = np.array([(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)])

def scramble_params(n: int, rng: np.random.Generator, p: float) -> np.ndarray:
    """(n, 2) draws for :func:`scramble_colors`: a channel order (index into
    :data:`CHANNEL_ORDERS`; 0 keeps the image) and a grey flag. With probability ``p`` an
    image is scrambled: half of those lose their colour, the rest get a random channel
    order."""
    hit = rng.random(n) < p
    grey = hit & (rng.random(n) < 0.5)
    order = np.where(hit & ~grey, rng.integers(1, len(CHANNEL_ORDERS), n), 0)
    return np.stack([order, grey.astype(np.int64)], axis=1)


def scramble_colors(images: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Colour scrambling of (N, H, W, 3) uint8 ``images`` (one row of ``params`` from
    :func:`scramble_params` per image): reorder the channels or turn the image grey. A
    feature that must survive this cannot be the colour alone, so the tasks that do not
    depend on colour teach shape instead of matching hues."""
    out = images.copy()
    for k in np.unique(params[:, 0]):  # one slice per channel order, not per pixel
        if k:
            hit = params[:, 0] == k
            out[hit] = images[hit][..., CHANNEL_ORDERS[k]]
    grey = params[:, 1].astype(bool)
    if grey.any():
        g = images[grey].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        out[grey] = np.clip(g + 0.5, 0, 255).astype(np.uint8)[..., None]
    return out


def augment_batch(batch: dict, rng: np.random.Generator, strength: float,
                  scramble: float = 0.0, shared: bool = False) -> dict:
    """Photometric jitter (``strength``) and colour scrambling (probability ``scramble``;
    the trainer passes 0 for tasks whose outcome the colour shows: ``Task.scramble``) of a
    task batch's images: independent per image, or, with ``shared`` (``Task.shared_augment``:
    the before / after pair of a push, as the push moves the object, not the lamp), one
    draw per record for all its images."""
    if batch is None or (strength <= 0 and scramble <= 0):
        return batch
    out = dict(batch)
    keys = [k for k, v in batch.items()
            if isinstance(v, np.ndarray) and v.dtype == np.uint8 and v.ndim == 4]
    n = len(batch[keys[0]]) if keys else 0
    jit = jitter_params(n, rng, strength) if strength > 0 and shared else None
    scr = scramble_params(n, rng, scramble) if scramble > 0 and shared else None
    for key in keys:
        value = out[key]
        if strength > 0:
            value = jitter_colors(value, jit if shared else
                                  jitter_params(len(value), rng, strength))
        if scramble > 0:
            value = scramble_colors(value, scr if shared else
                                    scramble_params(len(value), rng, scramble))
        out[key] = value
    return out


def to_tensors(batch: dict[str, np.ndarray], device) -> dict[str, torch.Tensor]:
    """Move a batch to ``device``; uint8 image stacks become normalised float NCHW."""
    out = {}
    for key, value in batch.items():
        t = torch.from_numpy(np.ascontiguousarray(value)).to(device, non_blocking=True)
        if value.dtype == np.uint8 and value.ndim == 4:
            t = (t.permute(0, 3, 1, 2).float() / 255.0 - PIXEL_MEAN) / PIXEL_STD
        out[key] = t
    return out


# -- normalisation of regression targets --------------------------------------------------


@dataclass
class NormStats:
    """Centre and scale of a regression target, from the training split.

    Robust: the centre is the median and the scale 1.4826 x the median absolute deviation
    (the standard deviation for Gaussian data), so a few wild values (a tactile fit gone
    wrong, a push that flung an object) neither shift nor shrink everything else; normalised
    targets are clipped to +-``CLIP``. ``mean`` / ``std`` keep their names in checkpoints.
    """

    mean: list[float]
    std: list[float]
    count: int

    CLIP = 8.0

    @classmethod
    def fit(cls, values: np.ndarray) -> NormStats:
        values = np.asarray(values, np.float64).reshape(len(values), -1)
        centre = np.median(values, axis=0)
        scale = 1.4826 * np.median(np.abs(values - centre), axis=0)
        scale = np.where(scale > 1e-8, scale, values.std(axis=0))
        scale = np.where(scale > 1e-8, scale, 1.0)  # constant target: leave it unscaled
        return cls(centre.tolist(), scale.tolist(), len(values))

    def normalize(self, x) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.std
        return np.clip(z, -self.CLIP, self.CLIP).astype(np.float32)

    def denormalize(self, z) -> np.ndarray:
        return np.asarray(z, np.float64) * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "count": int(self.count)}

    @classmethod
    def from_dict(cls, d: dict) -> NormStats:
        return cls([float(v) for v in d["mean"]], [float(v) for v in d["std"]], int(d["count"]))


def extra_targets(task, records: list, stats: dict) -> dict[str, np.ndarray]:
    """The normalised :attr:`~curious_robot.tasks.base.Task.extra_targets` of ``records``,
    by key, for those keys ``stats`` (key -> :class:`NormStats`) holds."""
    return {key: stats[key].normalize(np.array([fn(r) for r in records], np.float64)
                                      .reshape(len(records), -1))
            for key, fn in task.extra_targets.items() if key in stats}


# -- batch builders (each task's ``batch`` hook picks its own) ------------------------------


def grasp_batch(records: list[Interaction], size: int, rng: np.random.Generator | None = None,
                rotate: bool = True) -> dict[str, np.ndarray]:
    """Patches, tried bins and success; with ``rotate`` each patch is turned by a random
    multiple of 10 degrees and its bin shifted to match."""
    patches, bins = [], []
    for r in records:
        patch, b = r.before, angle_to_bin(r.action[2])
        if rotate and rng is not None:
            patch, b = rotate_grasp(patch, b, int(rng.integers(N_ANGLE_BINS)))
        patches.append(patch)
        bins.append(b)
    return {"patch": stack(patches, size), "bin": np.array(bins, np.int64),
            "success": np.array([r.success for r in records], np.float32)}


def crash_batch(records: list[Interaction], size: int, horizon_s: float) -> dict:
    """Frames more than ``horizon_s`` before the collision are "safe" (label 1)."""
    return {"crop": stack([r.before for r in records], size),
            "safe": np.array([r.outcome[0] > horizon_s for r in records], np.float32)}


def inspect_images(rec: Interaction) -> list[np.ndarray]:
    """The images of one object of an inspect record: the table patch, then the views."""
    return [rec.before] + list(rec.views)


def _identity(rec: Interaction) -> str:
    """What makes two records the same object: its model where the record names one
    (object ids count spawns per world, so two robots' ``obj0003`` differ)."""
    return rec.object_model or rec.object_id


def identity_batch(records: list[Interaction], size: int,
                   rng: np.random.Generator, turn: bool = False) -> dict | None:
    """One positive pair (two images of the record's object) and one negative pair (an
    image of another object) per record; ``None`` when no pair can be made. ``group_a``
    / ``group_b`` number the objects within the batch, so the loss can also use every
    other pairing of the batch (:func:`~curious_robot.learning.networks.identity_loss`).
    ``turn``: each image is turned by a random multiple of 90 degrees and maybe mirrored
    (an object's identity does not depend on how it lies)."""
    usable = [r for r in records if len(inspect_images(r)) >= 2]
    groups = {key: i for i, key in enumerate(dict.fromkeys(_identity(r) for r in usable))}
    a, b, same, ga, gb = [], [], [], [], []
    for r in usable:
        imgs = inspect_images(r)
        g = groups[_identity(r)]
        j, k = rng.choice(len(imgs), size=2, replace=False)
        a.append(imgs[j])
        b.append(imgs[k])
        same.append(1.0)
        ga.append(g)
        gb.append(g)
        others = [o for o in usable if _identity(o) != _identity(r)]
        if others:
            o = others[int(rng.integers(len(others)))]
            oi = inspect_images(o)
            a.append(imgs[int(rng.integers(len(imgs)))])
            b.append(oi[int(rng.integers(len(oi)))])
            same.append(0.0)
            ga.append(g)
            gb.append(groups[_identity(o)])
    if not a:
        return None
    if turn:
        a = [_turn(img, rng) for img in a]
        b = [_turn(img, rng) for img in b]
    return {"a": stack(a, size), "b": stack(b, size), "same": np.array(same, np.float32),
            "group_a": np.array(ga, np.int64), "group_b": np.array(gb, np.int64)}


def _turn(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    img = np.rot90(img, int(rng.integers(4)))
    return np.ascontiguousarray(img[:, ::-1] if rng.random() < 0.5 else img)


# -- synthetic interactions (benchmarks and tests) ----------------------------------------


def bar_image(size: int, angle: float, length: float = 0.7, thickness: int = 0,
              color=(230, 230, 230), background=(40, 40, 40)) -> np.ndarray:
    """A bar through the centre along table angle ``angle`` (rad) in the grasp-patch
    convention (column = +x, row = -y)."""
    img = np.zeros((size, size, 3), np.uint8)
    img[:] = background
    c, half = (size - 1) / 2.0, length * size / 2.0
    dx, dy = math.cos(angle) * half, math.sin(angle) * half
    p0 = (int(round(c - dx)), int(round(c + dy)))
    p1 = (int(round(c + dx)), int(round(c - dy)))
    cv2.line(img, p0, p1, color, thickness or max(2, size // 10), cv2.LINE_AA)
    return img

