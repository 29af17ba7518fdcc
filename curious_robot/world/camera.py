"""Pinhole cameras looking straight down at the table, and their PyBullet matrices.

Conventions: the image column grows with table +x and the row grows with table -y (the up
vector of the view is +y). Intrinsics follow OpenCV (pixel centres at integer
coordinates); :attr:`Camera.pose` maps camera coordinates (x right, y down, z forward)
into the table frame, so ``table_point = pose @ [(u - cx) z / fx, (v - cy) z / fy, z, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Camera:
    """A camera at ``eye`` looking at ``target`` with square pixels and a square image."""

    width: int
    height: int
    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float]
    fov_deg: float  # vertical field of view
    near: float = 0.05
    far: float = 2.0

    @classmethod
    def top_down(cls, x: float, y: float, height: float, extent: float, size: int) -> Camera:
        """A camera ``height`` m above (x, y) whose image spans ``extent`` m of the table."""
        fov = math.degrees(2.0 * math.atan(0.5 * extent / height))
        return cls(size, size, (x, y, height), (x, y, 0.0), (0.0, 1.0, 0.0), fov,
                   near=max(0.01, height - 0.5), far=height + 0.1)

    @property
    def fy(self) -> float:
        return 0.5 * self.height / math.tan(math.radians(self.fov_deg) / 2.0)

    @property
    def fx(self) -> float:
        return self.fy  # square pixels

    @property
    def cx(self) -> float:
        return (self.width - 1) / 2.0

    @property
    def cy(self) -> float:
        return (self.height - 1) / 2.0

    @property
    def intrinsics(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def pose(self) -> np.ndarray:
        """4x4 camera-to-table transform (OpenCV camera axes)."""
        eye, tgt, up = (np.asarray(v, float) for v in (self.eye, self.target, self.up))
        z = tgt - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, up)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        t = np.eye(4)
        t[:3, 0], t[:3, 1], t[:3, 2], t[:3, 3] = x, y, z, eye
        return t

    def view_matrix(self, p) -> list[float]:
        return p.computeViewMatrix(self.eye, self.target, self.up)

    def projection_matrix(self, p) -> list[float]:
        return p.computeProjectionMatrixFOV(self.fov_deg, self.width / self.height,
                                            self.near, self.far)

    def metric_depth(self, zbuffer: np.ndarray) -> np.ndarray:
        """OpenGL depth buffer values in [0, 1] -> z depth in metres (float32)."""
        n, f = self.near, self.far
        return (f * n / (f - (f - n) * zbuffer)).astype(np.float32)

    def point_cloud(self, depth: np.ndarray) -> np.ndarray:
        """(H*W, 3) table-frame points of a metric depth image of this camera."""
        v, u = np.mgrid[0:self.height, 0:self.width]
        z = depth.reshape(-1).astype(float)
        pts = np.stack([(u.reshape(-1) - self.cx) * z / self.fx,
                        (v.reshape(-1) - self.cy) * z / self.fy, z, np.ones_like(z)])
        return (self.pose @ pts)[:3].T

    def table_to_pixel(self, x: float, y: float, z: float = 0.0) -> tuple[float, float]:
        """(column, row) of a table-frame point."""
        inv = np.linalg.inv(self.pose)
        c = inv @ np.array([x, y, z, 1.0])
        return self.fx * c[0] / c[2] + self.cx, self.fy * c[1] / c[2] + self.cy
