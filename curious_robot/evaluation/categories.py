"""Everyday object categories for evaluation (``curious-robot eval-categories``).

Robots never touch these objects: each category is a parametric generator (a mug is a
lathed shell and a swept handle, a bottle a lathed body and neck, ...), and each instance
draws its dimensions from the category's ranges, so instances of one category differ in
proportions and size (4-16 cm, the scale of the arm's objects). Every instance gets a
colour drawn uniformly in HSV and one of five textures (plain, stripes, rings, checks,
dots) in that colour and a second one, both drawn independently of the category, so the
category cannot be read from colour or texture.

Split: by instance, fixed by the seed. Of each category's ``instances``, ``val_share``
(default half, rounded down) are **validation** objects and the rest **test** objects.
Every recipe choice (layer, training options, checkpoints) is made on ``val``; ``test`` is
read only by ``reproduce``'s final stage, and ``eval-categories --split test`` says so.

Rendering: each instance alone on the table, upright at a random yaw, from ``views``
random oblique cameras under varied light (:meth:`evalset.Renderer.shoot`, the held-out
renders' conditions: elevation 35-85 deg, any azimuth, apparent size 45-85 %, light
direction, colour and coefficients, shadows on or off).

Layout (``data/categories`` by default; generated, not committed)::

    OUT/meshes/<category>/inst_<k>.obj, inst_<k>.png   mesh and its texture
    OUT/{val,test}/<category>/inst_<k>_view_<j>.png    renders
    OUT/meta.json                                      parameters, instances, split

Metric: 1-NN category accuracy (cosine) where the neighbour must be a view of another
instance (:func:`metrics.nn_hits_across_groups`, leave-one-instance-out within the split),
per layer, with its standard error over instances and per-instance scores for paired
differences; and instance retrieval recall@1 / @5 over the same images.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from curious_robot.world import shapes as sh

log = logging.getLogger(__name__)

#: Bump when generators, looks or rendering change: an older set is rendered again.
VERSION = 1
DEFAULT_FOLDER = "data/categories"
SPLITS = ("val", "test")
DEFAULT_INSTANCES = 10
DEFAULT_VIEWS = 6
DEFAULT_VAL_SHARE = 0.5
META_NAME = "meta.json"
TEXTURES = ("plain", "stripes", "rings", "checks", "dots")
TEXTURE_PX = 64
TEST_WARNING = ("the category test split is for reproduce's final stage only: make every "
                "choice (layer, recipe, checkpoint) on --split val")


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


# -- generators: rng -> parts (metres, z up) -----------------------------------------------


def mug(rng):
    r, h = _u(rng, 0.028, 0.045), _u(rng, 0.065, 0.11)
    t, b = _u(rng, 0.003, 0.007), _u(rng, 0.005, 0.01)
    body = sh.lathe([(0, 0), (r, 0), (r, h), (r - t, h), (r - t, b), (0, b)])
    hx, hz, hr = _u(rng, 0.014, 0.03), _u(rng, 0.35, 0.45) * h, _u(rng, 0.003, 0.007)
    zc = _u(rng, 0.45, 0.55) * h
    th = np.linspace(-math.pi / 2, math.pi / 2, 12)
    path = np.stack([r - t / 2 + hx * np.cos(th), np.zeros_like(th), zc + hz * np.sin(th)], 1)
    return [body, sh.tube(path, hr)]


def cup(rng):
    rt, h = _u(rng, 0.028, 0.045), _u(rng, 0.07, 0.12)
    rb, t = rt * _u(rng, 0.55, 0.8), _u(rng, 0.002, 0.004)
    return [sh.lathe([(0, 0), (rb, 0), (rt, h), (rt - t, h), (rb - t, 2 * t), (0, 2 * t)])]


def bowl(rng):
    r = _u(rng, 0.045, 0.075)
    h, rf, t = r * _u(rng, 0.35, 0.65), r * _u(rng, 0.35, 0.6), _u(rng, 0.003, 0.006)
    s = np.linspace(0.0, 1.0, 8) * math.pi / 2
    outer = [(rf + (r - rf) * math.sin(a), h * (1 - math.cos(a))) for a in s]
    inner = [(rf - t + (r - rf) * math.sin(a), t + (h - t) * (1 - math.cos(a)))
             for a in s[::-1]]
    return [sh.lathe([(0, 0), *outer, *inner, (0, t)])]


def plate(rng):
    r, h, t = _u(rng, 0.06, 0.08), _u(rng, 0.01, 0.022), _u(rng, 0.003, 0.005)
    rf, w = r * _u(rng, 0.55, 0.75), _u(rng, 0.008, 0.018)
    return [sh.lathe([(0, 0), (rf, 0), (r, h), (r - w, h), (rf, t), (0, t)])]


def bottle(rng):
    r, h = _u(rng, 0.022, 0.038), _u(rng, 0.12, 0.16)
    zs, rn = h * _u(rng, 0.5, 0.7), r * _u(rng, 0.3, 0.45)
    zn = zs + h * _u(rng, 0.1, 0.2)
    cap = _u(rng, 0.012, 0.02)
    return [sh.lathe([(0, 0), (r, 0), (r, zs), (rn, zn), (rn, h - cap), (rn * 1.15, h - cap),
                      (rn * 1.15, h), (0, h)])]


def can(rng):
    r, h = _u(rng, 0.025, 0.045), _u(rng, 0.06, 0.13)
    e = min(0.008, 0.1 * h)
    return [sh.lathe([(0, 0), (0.9 * r, 0), (r, e), (r, h - e), (0.92 * r, h),
                      (0.85 * r, h), (0.85 * r, h - 0.004), (0, h - 0.004)])]


def box(rng):
    size = sorted((_u(rng, 0.03, 0.14) for _ in range(3)), reverse=True)
    return [sh.transform(sh.box([size[0], size[1], size[2]]), translation=(0, 0, size[2] / 2))]


def ring(rng):
    major = _u(rng, 0.028, 0.055)
    minor = major * _u(rng, 0.18, 0.45)
    return [sh.transform(sh.torus(major, minor), translation=(0, 0, minor))]


def l_bracket(rng):
    a, b = _u(rng, 0.06, 0.12), _u(rng, 0.04, 0.1)
    w, t = _u(rng, 0.025, 0.05), _u(rng, 0.006, 0.014)
    base = sh.transform(sh.box([a, w, t]), translation=(a / 2, 0, t / 2))
    leg = sh.transform(sh.box([t, w, b]), translation=(t / 2, 0, b / 2))
    return [base, leg]


def funnel(rng):
    r, hc = _u(rng, 0.035, 0.06), _u(rng, 0.035, 0.06)
    rs, ls, t = _u(rng, 0.006, 0.011), _u(rng, 0.025, 0.06), _u(rng, 0.002, 0.004)
    return [sh.lathe([(0, 0), (rs, 0), (rs, ls), (r, ls + hc), (r - t, ls + hc),
                      (rs - t / 2, ls + t), (0, ls + t)])]


def cone(rng):
    r = _u(rng, 0.025, 0.05)
    h, rt = r * _u(rng, 1.3, 2.6), r * _u(rng, 0.05, 0.25)
    return [sh.lathe([(0, 0), (r, 0), (rt, h), (0, h)])]


def hammer(rng):
    length, hr = _u(rng, 0.09, 0.14), _u(rng, 0.006, 0.011)
    hx, hy, hz = _u(rng, 0.018, 0.03), _u(rng, 0.045, 0.08), _u(rng, 0.02, 0.032)
    handle = sh.transform(sh.lathe([(0, 0), (hr, 0), (hr, length), (0, length)]),
                          sh.rot_y(math.pi / 2), (0, 0, hz / 2))
    head = sh.transform(sh.box([hx, hy, hz]), translation=(length + hx / 2 - 0.004, 0,
                                                           hz / 2))
    return [handle, head]


def dumbbell(rng):
    length, rb = _u(rng, 0.08, 0.13), _u(rng, 0.005, 0.01)
    rw, ww = _u(rng, 0.018, 0.032), _u(rng, 0.012, 0.028)
    part = sh.lathe([(0, 0), (rw, 0), (rw, ww), (rb, ww), (rb, length - ww), (rw, length - ww),
                     (rw, length), (0, length)], segments=int(rng.choice([6, 8, 32])))
    return [sh.transform(part, sh.rot_y(math.pi / 2), (0, 0, rw))]


def pyramid(rng):
    return [sh.pyramid(_u(rng, 0.05, 0.1), _u(rng, 0.04, 0.1))]


#: name -> generator; the evaluation's categories (sorted names give the class indices)
CATEGORIES = {f.__name__: f for f in (mug, cup, bowl, plate, bottle, can, box, ring,
                                      l_bracket, funnel, cone, hammer, dumbbell, pyramid)}


# -- instances, looks, split ---------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    category: str
    index: int
    split: str  # "val" or "test"
    rgb: tuple[float, float, float]
    rgb2: tuple[float, float, float]
    texture: str
    size: tuple[float, float, float]  # bounding box (m)

    @property
    def name(self) -> str:
        return f"{self.category}/inst_{self.index:02d}"


def _key(category: str) -> int:
    return zlib.crc32(category.encode())


def instance_parts(category: str, index: int, seed: int = 0) -> list[sh.Part]:
    """The mesh parts of one instance, resting on the table (deterministic)."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
    rng = np.random.default_rng([seed, _key(category), index, 0])
    return sh.rest_on_table(CATEGORIES[category](rng))


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    import colorsys

    return tuple(float(c) for c in colorsys.hsv_to_rgb(
        rng.uniform(0, 1), rng.uniform(0.15, 0.9), rng.uniform(0.3, 0.95)))


def split_indices(instances: int, val_share: float = DEFAULT_VAL_SHARE, seed: int = 0,
                  category: str = "") -> dict[int, str]:
    """``{instance index: "val" | "test"}`` for one category: a seeded permutation, the
    first ``floor(val_share * instances)`` (at least one) validation, the rest test."""
    if instances < 4:
        raise ValueError(f"instances must be >= 4 (two per split), got {instances}")
    if not 0.0 < val_share < 1.0:
        raise ValueError(f"val_share must be in (0, 1), got {val_share}")
    n_val = min(instances - 2, max(2, int(val_share * instances)))
    order = np.random.default_rng([seed, _key(category), 1]).permutation(instances)
    return {int(k): ("val" if i < n_val else "test") for i, k in enumerate(order)}


def instances(n: int = DEFAULT_INSTANCES, seed: int = 0,
              val_share: float = DEFAULT_VAL_SHARE) -> list[Instance]:
    """Every instance of every category, with its split, look and size."""
    out = []
    for cat in CATEGORIES:
        split = split_indices(n, val_share, seed, cat)
        for k in range(n):
            v, _ = sh.merge(instance_parts(cat, k, seed))
            rng = np.random.default_rng([seed, _key(cat), k, 2])
            out.append(Instance(cat, k, split[k], _colour(rng), _colour(rng),
                                TEXTURES[int(rng.integers(len(TEXTURES)))],
                                tuple(float(x) for x in np.ptp(v, axis=0))))
    return out


def texture_image(inst: Instance, seed: int = 0, px: int = TEXTURE_PX) -> np.ndarray:
    """(px, px, 3) uint8 texture of ``inst``: its colour, patterned with its second colour
    (a tiled image; the mesh's texture coordinates wrap it around the object)."""
    rng = np.random.default_rng([seed, _key(inst.category), inst.index, 3])
    a, b = np.asarray(inst.rgb), np.asarray(inst.rgb2)
    yy, xx = np.mgrid[0:px, 0:px] / px
    freq = int(rng.integers(2, 6))
    if inst.texture == "stripes":
        mask = np.sin(2 * np.pi * freq * xx) > 0
    elif inst.texture == "rings":
        mask = np.sin(2 * np.pi * freq * yy) > 0.3
    elif inst.texture == "checks":
        mask = (np.floor(freq * xx) + np.floor(freq * yy)) % 2 == 1
    elif inst.texture == "dots":
        cx, cy = (xx * freq) % 1 - 0.5, (yy * freq) % 1 - 0.5
        mask = cx ** 2 + cy ** 2 < 0.09
    else:
        mask = np.zeros((px, px), bool)
    img = np.where(mask[..., None], b, a)
    img = img * (1.0 + rng.normal(0.0, 0.03, (px, px, 1)))  # a little grain
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


# -- files and renders ---------------------------------------------------------------------


def _params(n: int, views: int, seed: int, val_share: float) -> dict:
    return {"version": VERSION, "instances": n, "views": views, "seed": seed,
            "val_share": val_share, "categories": list(CATEGORIES)}


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def write_meshes(out: str | os.PathLike, insts, seed: int = 0) -> dict[str, tuple[Path, Path]]:
    """OBJ and texture PNG of each instance under ``out/meshes``; ``{name: (obj, png)}``."""
    files = {}
    for inst in insts:
        d = Path(out) / "meshes" / inst.category
        d.mkdir(parents=True, exist_ok=True)
        obj = sh.write_obj(instance_parts(inst.category, inst.index, seed),
                           d / f"inst_{inst.index:02d}.obj")
        png = d / f"inst_{inst.index:02d}.png"
        _write_png(png, texture_image(inst, seed))
        files[inst.name] = (obj, png)
    return files


def render_instance(renderer, obj: Path, texture: Path, size, views: int,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """``views`` renders of one mesh alone on the renderer's table, upright at a random
    yaw, each from a random oblique camera under a random light."""
    p = renderer.world.p
    vis = p.createVisualShape(p.GEOM_MESH, fileName=str(obj), meshScale=[1.0, 1.0, 1.0])
    body = p.createMultiBody(0, -1, vis, basePosition=[0.0, 0.0, 0.0])
    try:
        tex = p.loadTexture(str(texture))
        p.changeVisualShape(body, -1, textureUniqueId=tex, rgbaColor=[1.0, 1.0, 1.0, 1.0])
        out = []
        for _ in range(views):
            yaw = float(rng.uniform(-math.pi, math.pi))
            p.resetBasePositionAndOrientation(body, [0.0, 0.0, 0.0],
                                              p.getQuaternionFromEuler([0.0, 0.0, yaw]))
            out.append(renderer.shoot((0.0, 0.0, 0.5 * size[2]), max(size), rng))
        return out
    finally:
        p.removeBody(body)


def generate(out: str | os.PathLike = DEFAULT_FOLDER, n: int = DEFAULT_INSTANCES,
             views: int = DEFAULT_VIEWS, seed: int = 0, val_share: float = DEFAULT_VAL_SHARE,
             categories=None, progress=None) -> dict:
    """Write meshes and renders of the category set into ``out`` (module docstring) and
    return its meta (also ``out/meta.json``). ``categories``: a subset (tests)."""
    from curious_robot.evaluation.evalset import Renderer

    if views < 2:
        raise ValueError(f"views must be >= 2, got {views}")
    cats = list(CATEGORIES) if categories is None else list(categories)
    unknown = [c for c in cats if c not in CATEGORIES]
    if unknown or len(cats) < 2:
        raise ValueError(f"need two or more known categories, got {cats}; known: "
                         f"{', '.join(CATEGORIES)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder")
    insts = [i for i in instances(n, seed, val_share) if i.category in cats]
    for sub in (*SPLITS, "meshes"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    (out / META_NAME).unlink(missing_ok=True)
    files = write_meshes(out, insts, seed)
    renderer = Renderer(seed)
    try:
        for done, inst in enumerate(insts):
            rng = np.random.default_rng([seed, _key(inst.category), inst.index, 4])
            d = out / inst.split / inst.category
            d.mkdir(parents=True, exist_ok=True)
            for j, img in enumerate(render_instance(renderer, *files[inst.name], inst.size,
                                                    views, rng)):
                _write_png(d / f"inst_{inst.index:02d}_view_{j:02d}.png", img)
            if progress is not None:
                progress(done + 1, len(insts))
    finally:
        renderer.close()
    meta = {**_params(n, views, seed, val_share), "categories": cats,
            "image_size": renderer.size,
            "n_images": {s: views * sum(i.split == s for i in insts) for s in SPLITS},
            "objects": [{**asdict(i), "name": i.name} for i in insts]}
    (out / META_NAME).write_text(json.dumps(meta, indent=1))
    log.info("category set %s: %d categories x %d instances x %d views", out, len(cats), n,
             views)
    return meta


def ensure(out: str | os.PathLike = DEFAULT_FOLDER, n: int = DEFAULT_INSTANCES,
           views: int = DEFAULT_VIEWS, seed: int = 0,
           val_share: float = DEFAULT_VAL_SHARE, progress=None) -> dict:
    """The meta of the category set in ``out``, rendered first when it is missing or was
    made with other parameters (or an older :data:`VERSION`)."""
    path = Path(out) / META_NAME
    want = _params(n, views, seed, val_share)
    if path.is_file():
        try:
            meta = json.loads(path.read_text())
        except ValueError:
            meta = {}
        if {k: meta.get(k) for k in want} == want:
            return meta
        log.info("category set in %s was made with other parameters: rendering again", out)
    else:
        log.info("rendering the category set into %s (once)", out)
    return generate(out, n, views, seed, val_share, progress=progress)


# -- evaluation ----------------------------------------------------------------------------


def load_split(folder: str | os.PathLike, split: str, size: int, threads: int = 2):
    """Images (N, size, size, 3) uint8, category labels and instance names of one split
    of a rendered category set (``folder/<split>/<category>/inst_<k>_view_<j>.png``)."""
    from curious_robot.evaluation.folders import ImageFolderError, read_images, scan_classes

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    found = scan_classes(Path(folder) / split)
    if len(found) < 2:
        raise ImageFolderError(f"{Path(folder) / split}: need two or more category folders "
                               f"with images, found {len(found)}")
    paths = [p for c in sorted(found) for p in found[c]]
    cats = [p.parent.name for p in paths]
    inst = [f"{p.parent.name}/{p.name.split('_view_')[0]}" for p in paths]
    return read_images(paths, size, threads), np.array(cats), np.array(inst)


def category_scores(feats: np.ndarray, cats, inst) -> dict:
    """1-NN category accuracy over other instances, its standard error over instances,
    per-instance and per-category means, and retrieval recall@1 / @5 of the instance."""
    from curious_robot.evaluation import metrics

    cats, inst = np.asarray(cats), np.asarray(inst)
    hits = metrics.nn_hits_across_groups(feats, cats, inst)
    ids, means = metrics.group_means(hits, inst)
    names, per_cat = metrics.group_means(hits, cats)
    _, rec = metrics.recall_hits(feats, inst, (1, 5))
    return {"nn_accuracy": float(hits.mean()),
            "nn_accuracy_se": metrics.group_standard_error(hits, inst),
            "recall_at_1": float(rec[1].mean()), "recall_at_5": float(rec[5].mean()),
            "n_images": int(len(cats)), "n_instances": int(len(ids)),
            "n_categories": int(len(names)),
            "per_category": {str(c): round(float(m), 4) for c, m in zip(names, per_cat)},
            "per_instance": {str(i): round(float(m), 5) for i, m in zip(ids, means)}}


def evaluate(root, folder: str | os.PathLike, split: str, layers, threads: int = 2,
             probe: bool = False) -> dict:
    """``{layer: category_scores(...)}`` of a frozen ``root`` on one split; ``probe`` adds
    ``linear_accuracy`` (:func:`probe_accuracy`)."""
    from curious_robot.evaluation.features import extract

    images, cats, inst = load_split(folder, split, root.cfg.input_size, threads)
    feats = extract(root, images, layers)
    out = {}
    for layer in layers:
        out[layer] = {"layer": layer, **category_scores(feats[layer], cats, inst)}
        if probe:
            out[layer]["linear_accuracy"] = probe_accuracy(feats[layer], cats, inst)
    return out


def instance_folds(cats, inst, folds: int) -> np.ndarray:
    """Per image, its fold: each category's instances (sorted) are dealt to ``folds``
    folds in turn, so every fold holds whole instances of every category that has enough."""
    cats, inst = np.asarray(cats), np.asarray(inst)
    fold_of = {}
    for c in np.unique(cats):
        for k, name in enumerate(np.unique(inst[cats == c])):
            fold_of[name] = k % folds
    return np.array([fold_of[n] for n in inst], np.int64)


def probe_accuracy(feats: np.ndarray, cats, inst, folds: int = 3) -> float:
    """Linear-probe category accuracy, cross-validated over instances: the probe
    (:func:`metrics.linear_probe`) is fitted on the other folds' instances and tested on
    one fold's, so no test instance is ever seen in training; mean over images."""
    from curious_robot.evaluation import metrics

    cats = np.asarray(cats)
    names = np.unique(cats)
    y = np.searchsorted(names, cats)
    fold = instance_folds(cats, inst, folds)
    correct = 0
    for f in range(folds):
        te, tr = fold == f, fold != f
        if not te.any() or not tr.any():
            continue
        acc, _ = metrics.linear_probe(feats[tr], y[tr], feats[te], y[te])
        correct += acc * int(te.sum())
    return float(correct / len(y))
