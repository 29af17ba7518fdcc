"""Object detection from one depth image: table plane removal and clustering.

Stands in for the paper's Kinect background subtraction: back-project the depth image,
find the table as the dominant plane (open3d RANSAC), keep the points above it and split
them into objects. Pure: takes arrays and returns dataclasses, no rclpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Detection:
    """One object cluster, in the table frame."""

    centroid: np.ndarray  # (3,) m
    size: np.ndarray  # (3,) m: long side, short side, height
    yaw: float  # rad in [0, pi): direction of the long side about table z
    n_points: int
    roi: tuple[int, int, int, int]  # x_offset, y_offset, width, height in pixels


@dataclass(frozen=True)
class DetectorConfig:
    plane_distance: float = 0.004  # m: RANSAC inlier distance of the table plane
    min_height: float = 0.006  # m above the table plane to count as object
    max_height: float = 0.40  # m: ignore points higher than this (arm, clutter)
    min_points: int = 12  # smallest cluster kept
    workspace: tuple[float, float, float, float] = (-0.35, 0.35, -0.35, 0.35)  # xmin..ymax

    def __post_init__(self):
        for name in ("plane_distance", "min_height", "max_height"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DetectorConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.min_points < 1:
            raise ValueError(f"DetectorConfig.min_points must be >= 1, got {self.min_points}")


def back_project(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                 cam_to_table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table-frame points (N, 3) of the valid depth pixels, and their (row, col) indices."""
    if depth.ndim != 2:
        raise ValueError(f"depth must be a 2-D image, got shape {depth.shape}")
    rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[rows, cols].astype(np.float64)
    cam = np.stack([(cols - cx) * z / fx, (rows - cy) * z / fy, z, np.ones_like(z)])
    pts = (np.asarray(cam_to_table, dtype=np.float64) @ cam)[:3].T
    return pts, np.stack([rows, cols], axis=1)


def detect_objects(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                   cam_to_table: np.ndarray, config: DetectorConfig | None = None,
                   seed: int = 0) -> tuple[list[Detection], np.ndarray]:
    """Detect objects; returns (detections sorted by x, table plane a,b,c,d in the table
    frame with a unit normal pointing up).

    The plane is found by open3d's RANSAC on a voxel-downsampled cloud; points higher than
    ``min_height`` above it form an object mask in the image, which is split into objects
    by connected components after a small erosion (so objects that merely touch separate),
    then grown back to their full pixels. Connected components on the organised depth
    image replace a DBSCAN over the points: same clusters for table-top scenes, about 50x
    faster at 128x128 (measured: ~5 ms vs. ~350 ms).
    """
    import cv2
    import open3d as o3d

    cfg = config or DetectorConfig()
    pts, pix = back_project(depth, fx, fy, cx, cy, cam_to_table)
    if len(pts) < 3:
        return [], np.array([0.0, 0.0, 1.0, 0.0])
    o3d.utility.random.seed(seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    if len(pts) > 4000:
        cloud = cloud.voxel_down_sample(0.01)
    plane, _inliers = cloud.segment_plane(cfg.plane_distance, 3, 100)
    plane = np.asarray(plane, dtype=np.float64)
    plane /= np.linalg.norm(plane[:3])
    if plane[2] < 0:
        plane = -plane
    height = pts @ plane[:3] + plane[3]
    xmin, xmax, ymin, ymax = cfg.workspace
    keep = ((height > cfg.min_height) & (height < cfg.max_height)
            & (pts[:, 0] > xmin) & (pts[:, 0] < xmax) & (pts[:, 1] > ymin) & (pts[:, 1] < ymax))
    mask = np.zeros(depth.shape, np.uint8)
    mask[pix[keep, 0], pix[keep, 1]] = 1
    index = -np.ones(depth.shape, np.int64)
    index[pix[:, 0], pix[:, 1]] = np.arange(len(pix))
    # split touching objects: erode, label the cores, give every mask pixel its core's label
    cores = cv2.erode(mask, np.ones((3, 3), np.uint8))
    n, labels = cv2.connectedComponents(cores, connectivity=4)
    if n > 1:
        dist, nearest = cv2.distanceTransformWithLabels(
            (labels == 0).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
        # map each background pixel to the label of its nearest core pixel
        core_r, core_c = np.nonzero(labels > 0)
        lut = np.zeros(nearest.max() + 1, np.int32)
        lut[nearest[core_r, core_c]] = labels[core_r, core_c]
        grown = np.where(labels > 0, labels, lut[nearest])
        labels = np.where((mask > 0) & (dist < 3.5), grown, 0)
    out = []
    for label in range(1, n):
        rows, cols = np.nonzero(labels == label)
        idx = index[rows, cols]
        idx = idx[idx >= 0]
        if len(idx) < cfg.min_points:
            continue
        out.append(_describe(pts[idx], pix[idx], height[idx]))
    out.sort(key=lambda d: (d.centroid[0], d.centroid[1]))
    return out, plane


def _describe(pts: np.ndarray, pix: np.ndarray, height: np.ndarray) -> Detection:
    xy = pts[:, :2]
    mean = xy.mean(axis=0)
    cov = np.cov((xy - mean).T) if len(xy) > 2 else np.eye(2)
    evals, evecs = np.linalg.eigh(cov)
    major = evecs[:, np.argmax(evals)]
    yaw = math.atan2(major[1], major[0]) % math.pi
    rot = np.array([[math.cos(yaw), math.sin(yaw)], [-math.sin(yaw), math.cos(yaw)]])
    local = (xy - mean) @ rot.T
    extent = local.max(axis=0) - local.min(axis=0)
    # centre of the footprint box (more robust than the mean for one-sided views)
    centre = mean + rot.T @ ((local.max(axis=0) + local.min(axis=0)) / 2.0)
    top = float(np.percentile(height, 95))
    r0, c0 = pix.min(axis=0)
    r1, c1 = pix.max(axis=0)
    return Detection(
        centroid=np.array([centre[0], centre[1], top / 2.0]),
        size=np.array([extent[0], extent[1], top]),
        yaw=yaw, n_points=int(len(pts)),
        roi=(int(c0), int(r0), int(c1 - c0 + 1), int(r1 - r0 + 1)))
