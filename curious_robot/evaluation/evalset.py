"""Render held-out objects into image folders for evaluation (``curious-robot evalset``).

Only models of the manifest's held-out split are used (training collects on the train
split), each rendered alone on the table in ``views`` random conditions that training never
uses: an oblique camera (elevation 35-85 deg, any azimuth) instead of the overhead one, the
object at any yaw and upright or upside down, its apparent size varied (it spans 45-85 %
of the image), and varied lighting (direction over the upper hemisphere, ambient 0.5-0.7,
diffuse 0.35-0.6, specular 0-0.2, light colour 0.9-1 per channel, shadows on or off;
ER_TINY_RENDERER). Training images have one fixed light and no shadows. Each object keeps
one material and colour (:func:`instance_look`) in all its views, as a real object does.

Output::

    OUT/retrieval/obj_<model id>/view_<k>.png        one folder per object (instances)
    OUT/classify/{train,test}/<class>/obj_<id>_<k>.png   shape families, object-disjoint
    OUT/meta.json                                    parameters, thresholds, objects

Classes are shape families computed from each model's mesh, not labels: how much of its
bounding rectangle the top-down silhouette fills (tertiles over the held-out set:
``spindly`` crosses and forks, ``mixed``, ``blocky`` plates and boxes). Train / test of
``classify`` split objects, not views (30 % of each class's objects are test), so a test
object is never seen in training of the probe.
``classify`` files are hard links to the ``retrieval`` ones where the file system allows.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGE_SIZE = 128
FILL_NAMES = ("spindly", "mixed", "blocky")
META_NAME = "meta.json"
_GRID = 128


def _faces(mesh: str) -> list[list[int]]:
    from curious_robot.world.config import resolve_path

    out = []
    for line in resolve_path(mesh).read_text().splitlines():
        if line.startswith("f "):
            out.append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    return out


def footprint_fill(model) -> float:
    """Share of its bounding rectangle that the model's top-down silhouette covers (its
    mesh's triangles rasterised on a 128 x 128 grid): ~1 for a box, ~0.3 for a cross."""
    import cv2

    from curious_robot.world.objects import mesh_vertices

    xy = (mesh_vertices(model.mesh) * np.asarray(model.scale))[:, :2]
    lo, span = xy.min(0), np.maximum(np.ptp(xy, axis=0), 1e-9)
    pts = np.round((xy - lo) / span * (_GRID - 1)).astype(np.int32)
    img = np.zeros((_GRID, _GRID), np.uint8)
    for face in _faces(model.mesh):
        cv2.fillPoly(img, [pts[face]], 1)
    return float(img.mean())


def shape_classes(models) -> tuple[dict[int, str], dict]:
    """``{model id: class}`` (footprint-fill tertiles of ``models``) and the thresholds."""
    fill = np.array([footprint_fill(m) for m in models])
    cuts = np.quantile(fill, [1 / 3, 2 / 3]).tolist()
    out = {m.id: FILL_NAMES[int(np.searchsorted(cuts, f, side="right"))]
           for m, f in zip(models, fill)}
    return out, {"footprint_fill_tertiles": cuts}


def _rotation(yaw: float, flip: bool) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    rx = np.diag([1.0, -1.0, -1.0]) if flip else np.eye(3)  # upside down about x
    return rz @ rx


def _quat(r: np.ndarray) -> tuple[float, float, float, float]:
    from curious_robot.motion.geometry import quat_from_matrix

    return quat_from_matrix(r)


class Renderer:
    """One held-out world with no objects on the table; renders one object at a time."""

    def __init__(self, seed: int = 0, size: int = IMAGE_SIZE):
        from curious_robot.world import World, WorldConfig

        self.world = World(WorldConfig(object_split="held_out", num_objects=0), seed=seed)
        self.size = size

    def close(self) -> None:
        self.world.close()

    def render(self, model, rng: np.random.Generator, look=None) -> np.ndarray:
        """(size, size, 3) uint8: ``model`` alone under one random view condition, with
        ``look`` (a :class:`~curious_robot.world.looks.Look`; the world's draw when
        ``None``)."""
        from curious_robot.world.objects import mesh_vertices

        w = self.world
        p = w.p
        info = w.spawn_object(model.id)
        try:
            if look is not None:
                w.textures.apply(info.body, look)
            rot = _rotation(float(rng.uniform(-math.pi, math.pi)), bool(rng.random() < 0.5))
            v = mesh_vertices(model.mesh) * np.asarray(model.scale)
            v = (v - 0.5 * (v.max(0) + v.min(0))) @ rot.T  # about the inertial frame
            p.resetBasePositionAndOrientation(info.body, [0.0, 0.0, -float(v[:, 2].min())],
                                              _quat(rot))
            centre = np.array([0.0, 0.0, 0.5 * float(v[:, 2].max() - v[:, 2].min())])
            return self.shoot(centre, max(model.size), rng)
        finally:
            w.remove_object(info.object_id)

    def shoot(self, centre, extent: float, rng: np.random.Generator) -> np.ndarray:
        """(size, size, 3) uint8 of whatever stands on the table around ``centre`` (its
        largest extent ``extent`` m), from one random oblique camera under one random
        light (the module docstring's conditions)."""
        w = self.world
        p = w.p
        centre = np.array(centre, np.float64)
        elev = math.radians(rng.uniform(35.0, 85.0))
        azim = rng.uniform(-math.pi, math.pi)
        fov = 40.0
        span = float(rng.uniform(0.45, 0.85))
        dist = extent / span / (2.0 * math.tan(math.radians(fov) / 2.0))
        centre[:2] += rng.uniform(-0.1, 0.1, size=2) * extent
        direction = np.array([math.cos(elev) * math.cos(azim),
                              math.cos(elev) * math.sin(azim), math.sin(elev)])
        eye = centre + dist * direction
        view = p.computeViewMatrix(eye.tolist(), centre.tolist(), [0.0, 0.0, 1.0])
        proj = p.computeProjectionMatrixFOV(fov, 1.0, 0.02, dist + 1.0)
        light_el = math.radians(rng.uniform(25.0, 90.0))
        light_az = rng.uniform(-math.pi, math.pi)
        light = [math.cos(light_el) * math.cos(light_az),
                 math.cos(light_el) * math.sin(light_az), math.sin(light_el)]
        _, _, rgba, _, _ = p.getCameraImage(
            self.size, self.size, view, proj, lightDirection=light,
            lightColor=rng.uniform(0.9, 1.0, size=3).tolist(),
            lightAmbientCoeff=float(rng.uniform(0.5, 0.7)),
            lightDiffuseCoeff=float(rng.uniform(0.35, 0.6)),
            lightSpecularCoeff=float(rng.uniform(0.0, 0.2)),
            shadow=int(rng.random() < 0.5), renderer=w._pb.ER_TINY_RENDERER,
            flags=w._pb.ER_NO_SEGMENTATION_MASK)
        img = np.asarray(rgba, np.uint8).reshape(self.size, self.size, 4)[:, :, :3]
        return np.ascontiguousarray(img)


def instance_look(seed: int, model_id: int):
    """The look (material texture and colour, :class:`~curious_robot.world.looks.Look`) of
    one held-out object, drawn once (seeded by ``seed`` and the model) the way the world
    draws them, so every view of an instance shows the same object: only pose, scale and
    light change between views."""
    from curious_robot.world.looks import draw_look
    from curious_robot.world.objects import MATERIALS

    rng = np.random.default_rng([seed, model_id])
    material = MATERIALS[int(rng.integers(len(MATERIALS)))]
    return draw_look(rng, material.name)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def generate(out: str | os.PathLike, n_objects: int | None = None, views: int = 8,
             seed: int = 0, test_share: float = 0.3, progress=None) -> dict:
    """Render the evaluation set into ``out`` (see the module docstring); returns the meta
    dict also written to ``out/meta.json``. ``n_objects``: how many held-out models (a
    seeded, class-stratified choice; ``None``: all). ``progress(done, total)`` is called
    after each object."""
    import cv2

    from curious_robot.evaluation.folders import stratified_split
    from curious_robot.world.config import WorldConfig
    from curious_robot.world.objects import load_manifest, select_models

    if views < 2:
        raise ValueError(f"views must be >= 2 (retrieval needs two views), got {views}")
    out = Path(out)
    models = select_models(load_manifest(WorldConfig().objects_manifest), "held_out")
    classes, thresholds = shape_classes(models)
    rng = np.random.default_rng(seed)
    if n_objects is not None and n_objects < len(models):
        if n_objects < 2:
            raise ValueError(f"objects must be >= 2, got {n_objects}")
        keep, _ = stratified_split([classes[m.id] for m in models],
                                   1.0 - n_objects / len(models), seed)
        models = [models[i] for i in keep]
    labels = [classes[m.id] for m in models]
    train_i, test_i = stratified_split(labels, test_share, seed)
    test_ids = {models[i].id for i in test_i}
    for sub in ("retrieval", "classify"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    renderer = Renderer(seed)
    looks: dict[int, str] = {}
    try:
        for n, m in enumerate(models):
            obj_dir = out / "retrieval" / f"obj_{m.id:03d}"
            obj_dir.mkdir(parents=True, exist_ok=True)
            part = "test" if m.id in test_ids else "train"
            cls_dir = out / "classify" / part / classes[m.id]
            cls_dir.mkdir(parents=True, exist_ok=True)
            look = instance_look(seed, m.id)
            looks[m.id] = look.material
            for k in range(views):
                img = renderer.render(m, rng, look)
                path = obj_dir / f"view_{k:02d}.png"
                if not cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                    raise OSError(f"cannot write {path}")
                _link_or_copy(path, cls_dir / f"obj_{m.id:03d}_{k:02d}.png")
            if progress is not None:
                progress(n + 1, len(models))
    finally:
        renderer.close()
    meta = {
        "split": "held_out", "seed": seed, "views": views, "image_size": IMAGE_SIZE,
        "n_objects": len(models), "n_images": len(models) * views,
        "classes": sorted(set(labels)), "thresholds": thresholds,
        "class_counts": {c: labels.count(c) for c in sorted(set(labels))},
        "objects": [{"id": m.id, "model": m.name, "class": classes[m.id],
                     "part": "test" if m.id in test_ids else "train",
                     "material": looks.get(m.id, "")} for m in models],
    }
    (out / META_NAME).write_text(json.dumps(meta, indent=1))
    log.info("evaluation set %s: %d held-out objects x %d views, %d classes", out,
             len(models), views, len(meta["classes"]))
    return meta
