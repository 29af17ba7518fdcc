"""The object set (manifest), per-object records and footprint geometry.

The manifest (``sim/objects/objects.yaml``) fixes each model's mesh, scale and train /
held-out split; physical properties (mass, friction, contact stiffness and damping) are
drawn at every spawn and recorded in :class:`ObjectInfo`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .config import load_yaml, resolve_path


@dataclass(frozen=True)
class ObjectModel:
    """One entry of the manifest: a mesh with a fixed per-axis scale."""

    id: int
    mesh: str
    held_out: bool
    scale: tuple[float, float, float]
    size: tuple[float, float, float]
    rgba: tuple[float, float, float, float]

    @property
    def name(self) -> str:
        return str(Path(self.mesh).parent)  # e.g. random_urdfs/005


@functools.lru_cache(maxsize=8)
def load_manifest(path: str) -> tuple[ObjectModel, ...]:
    """All usable models of a manifest, in id order."""
    data = load_yaml(resolve_path(path))
    models = []
    for row in data.get("objects", []):
        models.append(ObjectModel(
            id=int(row["id"]), mesh=str(row["mesh"]), held_out=bool(row["held_out"]),
            scale=tuple(float(v) for v in row["scale"]),
            size=tuple(float(v) for v in row["size"]),
            rgba=tuple(float(v) for v in row["rgba"])))
    if not models:
        raise ValueError(f"object manifest {path} lists no objects")
    return tuple(sorted(models, key=lambda m: m.id))


def select_models(models, split: str) -> list[ObjectModel]:
    """The models of ``split`` ("scenes" draws per scene from "train" or "held_out": the
    world asks for one of those)."""
    if split == "all":
        return list(models)
    want = split == "held_out"
    return [m for m in models if m.held_out == want]


@functools.lru_cache(maxsize=2048)
def mesh_vertices(mesh: str) -> np.ndarray:
    """Unscaled vertices (N, 3) of an OBJ mesh (read-only array)."""
    path = resolve_path(mesh)
    rows = [ln.split()[1:4] for ln in path.read_text().splitlines() if ln.startswith("v ")]
    v = np.asarray(rows, dtype=float).reshape(-1, 3)
    v.setflags(write=False)
    return v


@functools.lru_cache(maxsize=2048)
def mesh_faces(mesh: str) -> tuple[tuple[int, ...], ...]:
    """Faces of an OBJ mesh as 0-based vertex indices."""
    out = []
    for ln in resolve_path(mesh).read_text().splitlines():
        if ln.startswith("f "):
            out.append(tuple(int(t.split("/")[0]) - 1 for t in ln.split()[1:]))
    return tuple(out)


def band_width(vertices: np.ndarray, faces, x: float, y: float, angle: float,
               band: float = 0.01, res: float = 0.0005) -> float:
    """Width (m) of an object's top-down silhouette along direction ``angle`` within a
    band ``band`` m either side of the line through (x, y): what a parallel gripper closing
    along ``angle`` at (x, y) has between its fingers (0 when the band misses the object).
    ``vertices``: table-frame (N, 3); ``faces``: vertex index tuples."""
    import cv2

    c, s = math.cos(angle), math.sin(angle)
    d = np.asarray(vertices, float)[:, :2] - (x, y)
    u, v = d @ (c, s), d @ (-s, c)  # along the jaw axis, across it
    half = 0.12
    n = int(round(2 * half / res))
    grid = np.zeros((n, n), np.uint8)
    pts = np.stack([(u + half) / res, (v + half) / res], 1).round().astype(np.int32)
    for f in faces:  # one by one: fillPoly's even-odd rule would cut overlaps out
        if len(f) >= 3:
            cv2.fillConvexPoly(grid, pts[list(f)], 1)
    rows = grid[int((half - band) / res):int((half + band) / res) + 1]
    cols = np.flatnonzero(rows.any(axis=0))
    return float((cols[-1] - cols[0] + 1) * res) if cols.size else 0.0


_ANGLES = np.linspace(0.0, math.pi, 180, endpoint=False)
_DIRS = np.stack([np.cos(_ANGLES), np.sin(_ANGLES)], axis=1)


def footprint_widths(points_xy: np.ndarray) -> np.ndarray:
    """Width of a 2-D point set along each of 180 directions in [0, pi) (1 degree apart)."""
    proj = points_xy @ _DIRS.T
    return proj.max(axis=0) - proj.min(axis=0)


def width_along(widths: np.ndarray, angle: float) -> float:
    """Interpolated footprint width along ``angle`` (rad, any value; period pi)."""
    a = (angle % math.pi) / math.pi * len(widths)
    i = int(a) % len(widths)
    f = a - int(a)
    return float((1 - f) * widths[i] + f * widths[(i + 1) % len(widths)])


class Material(NamedTuple):
    """What an object is made of: how stiff it feels. It shows in the surface texture
    (:mod:`curious_robot.world.looks`), as real materials do, never in the colour, which is
    drawn at random for every object: the robot can learn to predict how an object will
    feel from how its surface looks, on shapes it has never seen, but not from a colour
    lookup. The stiffness is drawn at random inside the material's range.
    """

    name: str
    stiffness: tuple[float, float]  # N/m, log-uniform range


MATERIALS = (
    Material("foam", (3000.0, 5500.0)),
    Material("rubber", (5500.0, 10000.0)),
    Material("plastic", (10000.0, 20000.0)),
    Material("wood", (20000.0, 40000.0)),
)


@dataclass
class ObjectInfo:
    """A spawned object: identity, current pose and the properties drawn for it."""

    object_id: str
    model: str
    model_id: int
    held_out: bool
    position: tuple[float, float, float]
    yaw: float
    stiffness: float  # N/m, contact stiffness
    damping: float  # N s/m, contact damping
    mass: float  # kg
    friction: float  # lateral friction coefficient
    size: tuple[float, float, float]  # extents (m) in the object frame
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # xyzw
    material: str = ""
    body: int = field(default=-1, repr=False)  # PyBullet body id (internal)
