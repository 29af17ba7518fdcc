"""Evaluate a frozen root on image folders: classification (1-NN, linear probe) and
instance retrieval (recall@k), plus nearest-neighbour pictures. Used by ``eval`` and
``reproduce``."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from curious_robot.evaluation import metrics
from curious_robot.evaluation.features import extract
from curious_robot.evaluation.folders import ImageFolderError, load_split, read_images, \
    scan_classes

log = logging.getLogger(__name__)


def classification(root, folder: str | os.PathLike, layers, threads: int = 2) -> dict:
    """``{layer: {nn_accuracy, linear_accuracy, n_train, n_test, layer, ...}}``."""
    t0 = time.monotonic()
    split = load_split(folder)
    size = root.cfg.input_size
    train_img = read_images(split.train_paths, size, threads)
    test_img = read_images(split.test_paths, size, threads)
    t_read = time.monotonic() - t0
    feats_tr = extract(root, train_img, layers)
    feats_te = extract(root, test_img, layers)
    t_feat = time.monotonic() - t0 - t_read
    out = {}
    for layer in layers:
        nn_acc = metrics.nn_accuracy(feats_tr[layer], split.train_labels, feats_te[layer],
                                     split.test_labels)
        lin_acc, wd = metrics.linear_probe(feats_tr[layer], split.train_labels,
                                           feats_te[layer], split.test_labels)
        out[layer] = {"nn_accuracy": nn_acc, "linear_accuracy": lin_acc,
                      "n_train": split.n_train, "n_test": split.n_test, "layer": layer,
                      "n_classes": len(split.classes), "feature_dim": feats_tr[layer].shape[1],
                      "probe_weight_decay": wd, "presplit": split.presplit}
    log.info("classification on %s: %d train / %d test images, %d classes (read %.1f s, "
             "features %.1f s, metrics %.1f s)", folder, split.n_train, split.n_test,
             len(split.classes), t_read, t_feat, time.monotonic() - t0 - t_read - t_feat)
    return out


def load_instances(folder: str | os.PathLike, size: int,
                   threads: int = 2) -> tuple[list[Path], np.ndarray, np.ndarray, list[str]]:
    """Paths, images, integer instance labels and instance names of a retrieval folder
    (one sub-folder per object instance)."""
    found = scan_classes(folder)
    if not found:
        raise ImageFolderError(f"{folder}: no instance folders with images")
    names = sorted(found)
    paths = [p for n in names for p in found[n]]
    labels = np.array([i for i, n in enumerate(names) for _ in found[n]], np.int64)
    return paths, read_images(paths, size, threads), labels, names


def retrieval(root, folder: str | os.PathLike, layers, threads: int = 2,
              classes: dict[str, str] | None = None, per_instance=()) -> dict:
    """``{layer: {recall_at_1, recall_at_5, recall_at_1_se, n_images, n_instances,
    layer}}``; ``recall_at_1_se`` is its standard error over instances.

    ``classes`` (instance folder name -> class) adds ``nn_accuracy_all`` and its standard
    error: 1-NN class accuracy with every image a query and only other instances as
    neighbours, so all objects count instead of one split's test part.

    ``per_instance`` (layer names) adds to those layers ``per_instance``:
    ``{"recall_at_1": {instance: mean over its views}, "nn_accuracy_all": {...}}``, for
    differences between networks paired by object (:func:`metrics.paired_difference`)."""
    t0 = time.monotonic()
    _, images, labels, names = load_instances(folder, root.cfg.input_size, threads)
    feats = extract(root, images, layers)
    class_of = None
    if classes is not None:
        missing = [n for n in names if n not in classes]
        if missing:
            raise ValueError(f"no class for instance(s) {', '.join(missing[:5])}")
        class_of = np.array([classes[names[i]] for i in labels])
    out = {}
    for layer in layers:
        queries, hits = metrics.recall_hits(feats[layer], labels, (1, 5))
        out[layer] = {"recall_at_1": float(hits[1].mean()),
                      "recall_at_5": float(hits[5].mean()),
                      "recall_at_1_se": metrics.group_standard_error(hits[1],
                                                                     labels[queries]),
                      "n_images": len(labels), "n_instances": len(names), "layer": layer}
        if layer in per_instance:
            out[layer]["per_instance"] = {
                "recall_at_1": _by_name(*metrics.group_means(hits[1], labels[queries]),
                                        names)}
        if class_of is not None:
            nn = metrics.nn_hits_across_groups(feats[layer], class_of, labels)
            out[layer].update(nn_accuracy_all=float(nn.mean()),
                              nn_accuracy_all_se=metrics.group_standard_error(nn, labels))
            if layer in per_instance:
                out[layer]["per_instance"]["nn_accuracy_all"] = _by_name(
                    *metrics.group_means(nn, labels), names)
    log.info("retrieval on %s: %d images of %d instances (%.1f s)", folder, len(labels),
             len(names), time.monotonic() - t0)
    return out


def _by_name(ids, means, names) -> dict[str, float]:
    return {names[int(i)]: round(float(m), 5) for i, m in zip(ids, means)}


def query_indices(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` query images of distinct instances, the same for every network."""
    rng = np.random.default_rng(seed)
    instances = rng.permutation(np.unique(labels))[:n]
    return np.array([int(np.flatnonzero(labels == i)[0]) for i in instances], np.int64)


def neighbour_figure(root, folder: str | os.PathLike, out_png: str | os.PathLike,
                     layer: str, n_queries: int = 5, k: int = 5, title: str = "",
                     threads: int = 2) -> Path:
    """A PNG grid: each row a query image of the retrieval folder and its ``k`` nearest
    other images (cosine on ``layer``); a green frame marks the same instance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths, images, labels, _ = load_instances(folder, root.cfg.input_size, threads)
    feats = extract(root, images, (layer,))[layer]
    q = query_indices(labels, n_queries)
    nbrs = metrics.cosine_neighbours(feats, feats, k, exclude_self=True)[q]
    shown = np.unique(np.concatenate([q, nbrs.ravel()]))
    lookup = dict(zip(shown.tolist(), read_images([paths[i] for i in shown], 128, threads)))
    fig, axes = plt.subplots(len(q), k + 1, figsize=(1.6 * (k + 1), 1.6 * len(q)),
                             squeeze=False)
    for r, (qi, row) in enumerate(zip(q, nbrs)):
        for c, idx in enumerate([qi, *row]):
            ax = axes[r][c]
            ax.imshow(lookup[int(idx)])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                colour, lw = "black", 3
            else:
                colour, lw = ("tab:green", 3) if labels[idx] == labels[qi] else ("tab:red", 1)
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(lw)
    axes[0][0].set_title("query", fontsize=9)
    for c in range(1, k + 1):
        axes[0][c].set_title(f"#{c}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png
