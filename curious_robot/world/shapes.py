"""Parametric meshes of everyday objects (pure numpy): closed triangle meshes built from a
few primitives, and an OBJ writer.

A mesh is a list of parts, each a closed, outward-wound triangle mesh ``(V (N, 3) float,
F (M, 3) int)``; parts may overlap (a mug's handle enters its wall), as in a CAD union
drawn without the boolean. Primitives:

    lathe(profile)      a solid of revolution about z; ``profile`` is an (r, z) polyline
                        from the axis to the axis (a shell: out, up, over the rim, down
                        inside), so the surface is closed
    box(size)           a cuboid centred on the origin
    tube(path, radius)  a circle swept along a polyline, both ends capped (handles, rings)
    torus(R, r)         a closed ring about z
    pyramid(base, h)    a square pyramid

Units are metres; z is up and every part is placed by :func:`transform`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

Part = tuple[np.ndarray, np.ndarray]


def _oriented(v: np.ndarray, f: np.ndarray) -> Part:
    """``(v, f)`` with faces wound so that the signed volume is positive (outward)."""
    if signed_volume(v, f) < 0:
        f = f[:, ::-1]
    return np.asarray(v, np.float64), np.ascontiguousarray(f, dtype=np.int64)


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh (positive when wound outward)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _ring_faces(i0: int, i1: int, n: int) -> list[tuple[int, int, int]]:
    """Triangles joining ring ``i0..i0+n-1`` to ring ``i1..`` (both of ``n`` vertices)."""
    out = []
    for k in range(n):
        a, b = i0 + k, i0 + (k + 1) % n
        c, d = i1 + k, i1 + (k + 1) % n
        out += [(a, b, d), (a, d, c)]
    return out


def _fan(centre: int, i0: int, n: int, end: bool = False) -> list[tuple[int, int, int]]:
    """Triangles closing ring ``i0..i0+n-1`` at ``centre``: the first ring of a sweep, or
    (``end``) its last, wound the other way."""
    if end:
        return [(centre, i0 + k, i0 + (k + 1) % n) for k in range(n)]
    return [(centre, i0 + (k + 1) % n, i0 + k) for k in range(n)]


def lathe(profile, segments: int = 32) -> Part:
    """Solid of revolution about z of the (r, z) polyline ``profile``, whose first and
    last points lie on the axis (r == 0) and whose other points lie off it."""
    prof = np.asarray(profile, np.float64)
    if prof.ndim != 2 or prof.shape[1] != 2 or len(prof) < 3:
        raise ValueError("a lathe profile needs at least three (r, z) points")
    if prof[0, 0] != 0.0 or prof[-1, 0] != 0.0 or np.any(prof[1:-1, 0] <= 0.0):
        raise ValueError("a lathe profile starts and ends on the axis (r == 0) and stays "
                         "off it in between")
    ang = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    verts = [np.array([[0.0, 0.0, prof[0, 1]]])]
    for r, z in prof[1:-1]:
        verts.append(np.stack([r * np.cos(ang), r * np.sin(ang), np.full(segments, z)], 1))
    verts.append(np.array([[0.0, 0.0, prof[-1, 1]]]))
    v = np.concatenate(verts)
    rings = len(prof) - 2
    faces = _fan(0, 1, segments)
    for i in range(rings - 1):
        faces += _ring_faces(1 + i * segments, 1 + (i + 1) * segments, segments)
    last = len(v) - 1
    faces += _fan(last, 1 + (rings - 1) * segments, segments, end=True)
    return _oriented(v, np.array(faces))


def box(size) -> Part:
    """Cuboid of extents ``size`` centred on the origin."""
    sx, sy, sz = (0.5 * float(s) for s in size)
    v = np.array([[x, y, z] for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)])
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return _oriented(v, f)


def tube(path, radius: float, segments: int = 16) -> Part:
    """A circle of ``radius`` swept along the 3-D polyline ``path`` (>= 2 points),
    capped at both ends."""
    path = np.asarray(path, np.float64)
    if len(path) < 2:
        raise ValueError("a tube needs a path of at least two points")
    tang = np.gradient(path, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    ref = np.array([0.0, 0.0, 1.0]) if abs(tang[0, 2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    ang = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    rings = []
    n1 = np.cross(tang[0], ref)
    for p, t in zip(path, tang):
        n1 = n1 - t * (n1 @ t)  # parallel transport of the frame
        n1 /= np.linalg.norm(n1)
        n2 = np.cross(t, n1)
        rings.append(p + radius * (np.outer(np.cos(ang), n1) + np.outer(np.sin(ang), n2)))
    v = np.concatenate([path[:1], *rings, path[-1:]])
    faces = _fan(0, 1, segments)
    for i in range(len(path) - 1):
        faces += _ring_faces(1 + i * segments, 1 + (i + 1) * segments, segments)
    last = len(v) - 1
    faces += _fan(last, 1 + (len(path) - 1) * segments, segments, end=True)
    return _oriented(v, np.array(faces))


def torus(major: float, minor: float, segments: int = 32, sides: int = 12) -> Part:
    """A ring about z: tube radius ``minor`` around a circle of radius ``major``."""
    if not 0.0 < minor < major:
        raise ValueError(f"a torus needs 0 < minor < major, got {minor}, {major}")
    u = np.linspace(0.0, 2.0 * math.pi, segments, endpoint=False)
    w = np.linspace(0.0, 2.0 * math.pi, sides, endpoint=False)
    uu, ww = np.meshgrid(u, w, indexing="ij")
    r = major + minor * np.cos(ww)
    v = np.stack([r * np.cos(uu), r * np.sin(uu), minor * np.sin(ww)], -1).reshape(-1, 3)
    faces = []
    for i in range(segments):
        faces += _ring_faces(i * sides, ((i + 1) % segments) * sides, sides)
    return _oriented(v, np.array(faces))


def pyramid(base: float, height: float) -> Part:
    """Square pyramid, base ``base`` x ``base`` at z = 0, apex at ``height``."""
    b = 0.5 * base
    v = np.array([[-b, -b, 0.0], [b, -b, 0.0], [b, b, 0.0], [-b, b, 0.0], [0.0, 0.0, height]])
    f = np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    return _oriented(v, f)


def transform(part: Part, rotation=None, translation=(0.0, 0.0, 0.0)) -> Part:
    """``part`` rotated by the 3 x 3 ``rotation`` (about the origin), then moved."""
    v, f = part
    if rotation is not None:
        v = v @ np.asarray(rotation, np.float64).T
    return v + np.asarray(translation, np.float64), f


def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def merge(parts) -> Part:
    """One vertex / face array of several parts (face indices offset)."""
    vs, fs, n = [], [], 0
    for v, f in parts:
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.concatenate(vs), np.concatenate(fs)


def rest_on_table(parts) -> list[Part]:
    """``parts`` moved so that their union's lowest point is at z = 0 and its bounding
    box is centred on the z axis."""
    v, _ = merge(parts)
    lo, hi = v.min(0), v.max(0)
    shift = np.array([-0.5 * (lo[0] + hi[0]), -0.5 * (lo[1] + hi[1]), -lo[2]])
    return [(pv + shift, pf) for pv, pf in parts]


def is_closed(f: np.ndarray) -> bool:
    """Every edge of ``f`` is shared by exactly two faces, in opposite directions (a
    closed, consistently wound surface)."""
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    fwd = {tuple(x) for x in e.tolist()}
    return len(fwd) == len(e) and all((b, a) in fwd for a, b in fwd)


def write_obj(parts, path: str | os.PathLike) -> Path:
    """Write ``parts`` as one OBJ with per-face normals (flat shading) and texture
    coordinates from a cylindrical projection about z (u: angle, v: height), so a tiled
    texture wraps around the object. Written to a temporary name, then renamed."""
    v, f = merge(parts)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    lo, hi = v.min(0), v.max(0)
    u = (np.arctan2(v[:, 1], v[:, 0]) / (2.0 * math.pi) + 0.5) * 2.0
    w = (v[:, 2] - lo[2]) / max(float(np.max(hi - lo)), 1e-9) * 2.0
    lines = ["# curious_robot.world.shapes"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in v]
    lines += [f"vt {s:.5f} {t:.5f}" for s, t in zip(u, w)]
    lines += [f"vn {x:.5f} {y:.5f} {z:.5f}" for x, y, z in n]
    lines += [f"f {i + 1}/{i + 1}/{k + 1} {j + 1}/{j + 1}/{k + 1} {m + 1}/{m + 1}/{k + 1}"
              for k, (i, j, m) in enumerate(f.tolist())]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
