"""How objects look: a colour drawn at random for every object and a surface texture
that follows its material.

Colour says nothing about what an object is made of (a real red object may be foam,
rubber, plastic or wood), so no head can learn the feel of an object from a colour
lookup; the material shows through its surface, as real materials do:

    foam      open pores: many small dark pits
    rubber    a fine, low-contrast grain
    plastic   smooth: nearly uniform, a faint broad sheen
    wood      grain: wavy bands along one direction

Each material has :data:`VARIANTS` grey-level textures (seeded, so every run draws the
same ones); an object gets one of them, tinted by its colour (PyBullet multiplies the
texture by the body's rgba colour). Meshes of the object set carry no texture
coordinates, so a copy of each mesh with box-mapped coordinates (each face projected
along its dominant normal axis, :data:`TEXTURE_M` metres per texture tile) is written to
a cache folder once (:func:`cache_dir`) and used for the visual shape; collisions use the
original mesh.
"""

from __future__ import annotations

import colorsys
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from curious_robot.fileio import write_atomic

#: bump when a texture or the mesh mapping changes: cached files are keyed by it
VERSION = 1
#: textures per material
VARIANTS = 4
#: texture side, pixels
TEXTURE_PX = 128
#: metres of surface one texture tile covers
TEXTURE_M = 0.04


class Look(NamedTuple):
    """An object's appearance: its material's texture ``variant`` tinted ``rgb`` (0-1)."""

    material: str
    rgb: tuple[float, float, float]
    variant: int


def random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A colour drawn uniformly in hue, saturation 0.25-0.9, value 0.55-0.95 (light
    enough for the texture to show)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(0.25, 0.9), rng.uniform(0.55, 0.95)
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h, s, v))


def draw_look(rng: np.random.Generator, material: str) -> Look:
    return Look(material, random_colour(rng), int(rng.integers(VARIANTS)))


def cache_dir() -> Path:
    """Where generated textures and texture-mapped meshes are kept:
    ``$CURIOUS_ROBOT_CACHE`` or ``$XDG_CACHE_HOME/curious_robot`` (``~/.cache``)."""
    root = os.environ.get("CURIOUS_ROBOT_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME")
                            or os.path.join(os.path.expanduser("~"), ".cache"), "curious_robot")
    return Path(root) / f"looks-v{VERSION}"


# ---------------------------------------------------------------------- textures
def pattern(material: str, variant: int, px: int = TEXTURE_PX) -> np.ndarray:
    """(px, px) uint8 grey levels of ``material``'s texture ``variant`` (tileable: every
    feature wraps around the edges). Means stay near 200 so that the tint shows."""
    import cv2

    seed = int.from_bytes(hashlib.sha256(f"{material}/{variant}".encode()).digest()[:8],
                          "little")
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:px, 0:px] / px
    if material == "foam":
        img = np.full((px, px), 225.0)
        n = int(px * px / 40)
        for cx, cy, r in zip(rng.uniform(0, px, n), rng.uniform(0, px, n),
                             rng.uniform(0.8, 2.2, n)):
            for ox in (-px, 0, px):
                for oy in (-px, 0, px):
                    cv2.circle(img, (int(cx + ox), int(cy + oy)), int(round(r)), 120.0, -1)
        img = cv2.GaussianBlur(img, (3, 3), 0.6)
    elif material == "rubber":
        noise = rng.normal(0.0, 1.0, (px, px))
        noise = np.real(np.fft.ifft2(np.fft.fft2(noise) * _lowpass(px, 0.35)))
        img = 195.0 + 14.0 * noise / (noise.std() + 1e-9)
    elif material == "plastic":
        phase = rng.uniform(0, 2 * np.pi)
        img = 228.0 + 6.0 * np.sin(2 * np.pi * (u + v) + phase)
    elif material == "wood":
        k = int(rng.integers(5, 9))  # grain lines per tile
        wobble = np.sin(2 * np.pi * (2 * u + rng.uniform(0, 1))) * 0.35 + \
            np.sin(2 * np.pi * (5 * u + rng.uniform(0, 1))) * 0.12
        grain = np.sin(2 * np.pi * (k * v + wobble))
        img = 200.0 + 35.0 * np.sign(grain) * np.abs(grain) ** 0.5
        if rng.random() < 0.5:
            img = img.T  # grain along the other axis
    else:
        raise ValueError(f"no texture for material {material!r}")
    return np.clip(img, 0, 255).astype(np.uint8)


def _lowpass(px: int, cutoff: float) -> np.ndarray:
    f = np.fft.fftfreq(px)
    r = np.hypot(*np.meshgrid(f, f))
    return (r <= cutoff * 0.5).astype(float)


def texture_file(material: str, variant: int) -> Path:
    """The PNG of a texture, written to the cache on first use."""
    import cv2

    path = cache_dir() / "textures" / f"{material}_{variant}.png"
    if not path.is_file():
        ok, buf = cv2.imencode(".png", pattern(material, variant))
        if not ok:
            raise OSError(f"cannot encode the texture {material}/{variant}")
        write_atomic(path, buf.tobytes())
    return path


# ---------------------------------------------------------------------- meshes
def box_mapped(obj_text: str, scale, metres: float = TEXTURE_M) -> str:
    """An OBJ with texture coordinates: each face projected along the axis its (scaled)
    normal is closest to, ``metres`` of surface per texture tile. Vertices, faces and
    normals are kept; one ``vt`` per face corner."""
    scale = np.asarray(scale, float)
    verts, other, faces = [], [], []
    for line in obj_text.splitlines():
        if line.startswith("v "):
            verts.append([float(t) for t in line.split()[1:4]])
        if line.startswith("f "):
            faces.append(line.split()[1:])
        elif not line.startswith(("vt ", "mtllib", "usemtl")):
            other.append(line)
    v = np.asarray(verts, float) * scale
    out_faces, uvs = [], []
    for corners in faces:
        idx = [int(c.split("/")[0]) for c in corners]
        nrm = [c.split("/")[2] if c.count("/") == 2 and c.split("/")[2] else "" for c in corners]
        pts = v[[i - 1 if i > 0 else len(v) + i for i in idx]]
        n = np.cross(pts[1] - pts[0], pts[2] - pts[0]) if len(pts) >= 3 else np.zeros(3)
        axis = int(np.argmax(np.abs(n)))
        keep = [a for a in range(3) if a != axis]
        tokens = []
        for k, (i, nn) in enumerate(zip(idx, nrm)):
            uvs.append(pts[k][keep] / metres)
            t = len(uvs)
            tokens.append(f"{i}/{t}/{nn}" if nn else f"{i}/{t}")
        out_faces.append("f " + " ".join(tokens))
    lines = [f"# texture-mapped copy (curious_robot.world.looks v{VERSION})"]
    lines += [ln for ln in other if ln.strip() and not ln.startswith("#")]
    lines += [f"vt {a:.6f} {b:.6f}" for a, b in uvs]
    lines += out_faces
    return "\n".join(lines) + "\n"


def mapped_mesh(mesh_path: str | os.PathLike, scale) -> Path:
    """The cached texture-mapped copy of a mesh at ``scale`` (written on first use)."""
    src = Path(mesh_path)
    key = hashlib.sha256(f"{src.resolve()}|{tuple(map(float, scale))}|{VERSION}".encode()
                         ).hexdigest()[:16]
    path = cache_dir() / "meshes" / f"{src.stem}_{key}.obj"
    if not path.is_file():
        write_atomic(path, box_mapped(src.read_text(), scale).encode())
    return path


class Textures:
    """The material textures of one PyBullet client, loaded once each."""

    def __init__(self, p):
        self.p = p
        self._ids: dict[tuple[str, int], int] = {}

    def apply(self, body: int, look: Look) -> None:
        key = (look.material, look.variant)
        if key not in self._ids:
            self._ids[key] = self.p.loadTexture(str(texture_file(*key)))
        self.p.changeVisualShape(body, -1, textureUniqueId=self._ids[key],
                                 rgbaColor=[*map(float, look.rgb), 1.0])
