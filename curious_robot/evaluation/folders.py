"""Image-folder datasets: one sub-folder per class, optionally inside ``train/`` and ``test/``.

    DIR/<class>/<image>                  -> stratified split with a fixed seed
    DIR/train/<class>/..., DIR/test/...  -> that split, as given

Any ordinary PNG / JPEG / BMP / PPM / TIFF / WebP image works (grey and 16-bit images are
converted to 8-bit RGB, an alpha channel is dropped); hidden files and files with other
extensions are ignored. A file that cannot be decoded raises :class:`ImageFolderError`
naming it. A class folder without images is skipped with a warning (UW RGB-D and
Caltech-256 downloads sometimes hold one); fewer than two usable classes is an error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
#: Share of each class that a stratified split puts into the test set.
TEST_SHARE = 0.3
SPLIT_SEED = 0


class ImageFolderError(ValueError):
    """The folder cannot be used; the message names the folder or file."""


@dataclass
class Split:
    """Image paths and integer labels of a train / test split; ``classes[label]`` names it."""

    classes: list[str]
    train_paths: list[Path] = field(default_factory=list)
    train_labels: list[int] = field(default_factory=list)
    test_paths: list[Path] = field(default_factory=list)
    test_labels: list[int] = field(default_factory=list)
    presplit: bool = False  # True when the folder had train/ and test/

    @property
    def n_train(self) -> int:
        return len(self.train_paths)

    @property
    def n_test(self) -> int:
        return len(self.test_paths)


def is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and \
        path.suffix.lower() in IMAGE_EXTENSIONS


def scan_classes(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """``{class name: sorted image paths}`` of the sub-folders of ``folder`` (images found
    recursively inside each class folder); empty classes are left out with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageFolderError(f"{folder}: no such folder")
    out: dict[str, list[Path]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in sub.rglob("*") if is_image(p))
        if not images:
            log.warning("class folder %s holds no images: skipped", sub)
            continue
        out[sub.name] = images
    return out


def stratified_split(labels, test_share: float = TEST_SHARE,
                     seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with ``test_share`` of every class in test (rounded, at least
    one each side when a class has two or more items; a single item goes to train)."""
    labels = np.asarray(labels)
    if not 0.0 < test_share < 1.0:
        raise ValueError(f"test_share must be in (0, 1), got {test_share}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(test_share * len(idx))))
        test.extend(idx[:n_test].tolist())
        train.extend(idx[n_test:].tolist())
    return np.sort(np.array(train, np.int64)), np.sort(np.array(test, np.int64))


def load_split(folder: str | os.PathLike, test_share: float = TEST_SHARE,
               seed: int = SPLIT_SEED) -> Split:
    """The train / test split of an image folder (see the module docstring)."""
    folder = Path(folder)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        train, test = scan_classes(folder / "train"), scan_classes(folder / "test")
        classes = sorted(set(train) | set(test))
        if len(classes) < 2:
            raise ImageFolderError(f"{folder}: need at least two classes with images, found "
                                   f"{len(classes)}")
        if not test:
            raise ImageFolderError(f"{folder / 'test'}: no images")
        if not train:
            raise ImageFolderError(f"{folder / 'train'}: no images")
        missing = sorted(set(test) - set(train))
        if missing:
            log.warning("%s: classes %s have test images but no training images", folder,
                        ", ".join(missing))
        index = {c: i for i, c in enumerate(classes)}
        split = Split(classes, presplit=True)
        for name, paths in train.items():
            split.train_paths += paths
            split.train_labels += [index[name]] * len(paths)
        for name, paths in test.items():
            split.test_paths += paths
            split.test_labels += [index[name]] * len(paths)
        return split
    found = scan_classes(folder)
    if len(found) < 2:
        raise ImageFolderError(f"{folder}: need at least two class folders with images, found "
                               f"{len(found)}")
    classes = sorted(found)
    paths = [p for c in classes for p in found[c]]
    labels = [i for i, c in enumerate(classes) for _ in found[c]]
    tr, te = stratified_split(labels, test_share, seed)
    return Split(classes, [paths[i] for i in tr], [labels[i] for i in tr],
                 [paths[i] for i in te], [labels[i] for i in te])


def read_image(path: str | os.PathLike, size: int | None = None) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB, scaled to (size, size) when ``size`` is given;
    :class:`ImageFolderError` naming the file when it cannot be decoded."""
    import cv2

    path = Path(path)
    try:
        raw = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise ImageFolderError(f"cannot read image {path}: {exc}") from exc
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if img is None or img.size == 0:
        raise ImageFolderError(f"cannot decode image {path} (corrupt or not an image)")
    if img.dtype == np.uint16:  # 16-bit PNG / TIFF
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:  # float TIFF and the like: assume [0, 1]
        img = (np.clip(img.astype(np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise ImageFolderError(f"image {path} has {img.shape[2]} channels")
    if size is not None and img.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if min(img.shape[:2]) > size else cv2.INTER_LINEAR
        img = cv2.resize(img, (size, size), interpolation=interp)
    return np.ascontiguousarray(img)


def read_images(paths, size: int, threads: int = 2) -> np.ndarray:
    """(N, size, size, 3) uint8 of ``paths``; decoding runs on ``threads`` threads (OpenCV
    releases the GIL)."""
    paths = list(paths)
    out = np.empty((len(paths), size, size, 3), np.uint8)
    if threads <= 1 or len(paths) < 64:
        for i, p in enumerate(paths):
            out[i] = read_image(p, size)
        return out
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        out[i] = read_image(paths[i], size)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(len(paths))))  # re-raises the first error
    return out
