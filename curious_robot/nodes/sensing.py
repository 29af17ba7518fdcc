"""The sensing node: depth image -> point cloud -> table plane -> object clusters (open3d).

Subscribes camera/depth/image_raw, camera/camera_info and camera/pose (latched camera
pose in the table frame); publishes objects (DetectedObjects) and objects/markers
(visualization_msgs/MarkerArray for RViz).
"""

from __future__ import annotations

import math

import numpy as np
from rclpy.node import Node

from curious_robot.convert import msg_to_image
from curious_robot.nodes.common import LATCHED, SENSOR, run
from curious_robot.perception import DetectorConfig, detect_objects


def pose_to_matrix(pose) -> np.ndarray:
    q = pose.orientation
    x, y, z, w = q.x, q.y, q.z, q.w
    r = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    t = np.eye(4)
    t[:3, :3] = r
    t[:3, 3] = (pose.position.x, pose.position.y, pose.position.z)
    return t


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 2

class SensingNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sensing", **kwargs)
        from curious_robot.node_config import SensingParams, declare

        p = declare(self, SensingParams)
        self.config = DetectorConfig(plane_distance=p.plane_distance, min_height=p.min_height,
                                     min_points=p.min_points, workspace=tuple(p.workspace))
        from curious_robot_interfaces.msg import DetectedObjects
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        self.info = None
        self.cam_to_table = None
        self.create_subscription(CameraInfo, "camera/camera_info", self._on_info, SENSOR)
        self.create_subscription(PoseStamped, "camera/pose", self._on_pose, LATCHED)
        self.create_subscription(Image, "camera/depth/image_raw", self._on_depth, SENSOR)
        self.pub = self.create_publisher(DetectedObjects, "objects", SENSOR)
        self.pub_markers = self.create_publisher(MarkerArray, "objects/markers", SENSOR)

    def _on_info(self, msg) -> None:
        self.info = msg

    def _on_pose(self, msg) -> None:
        self.cam_to_table = pose_to_matrix(msg.pose)

    def _on_depth(self, msg) -> None:
        if self.info is None or self.cam_to_table is None:
            return
        from curious_robot_interfaces.msg import DetectedObject, DetectedObjects

        depth = msg_to_image(msg, "depth")
        k = self.info.k
        detections, plane = detect_objects(depth, k[0], k[4], k[2], k[5], self.cam_to_table,
                                           self.config)
        out = DetectedObjects()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = "table"
        out.table_plane = [float(v) for v in plane]
        for i, d in enumerate(detections):
            o = DetectedObject(id=str(i), yaw=float(d.yaw), n_points=d.n_points)
            o.centroid.x, o.centroid.y, o.centroid.z = map(float, d.centroid)
            o.size.x, o.size.y, o.size.z = map(float, d.size)
            o.roi.x_offset, o.roi.y_offset, o.roi.width, o.roi.height = d.roi
            out.objects.append(o)
        self.pub.publish(out)
        self._publish_markers(out)

    def _publish_markers(self, objects) -> None:
        from visualization_msgs.msg import Marker, MarkerArray

        arr = MarkerArray()
        clear = Marker(action=Marker.DELETEALL)
        clear.header = objects.header
        arr.markers.append(clear)
        for i, o in enumerate(objects.objects):
            m = Marker(ns="objects", id=i, type=Marker.CUBE, action=Marker.ADD)
            m.header = objects.header
            m.pose.position = o.centroid
            m.pose.orientation.z = math.sin(o.yaw / 2.0)
            m.pose.orientation.w = math.cos(o.yaw / 2.0)
            m.scale = o.size
            m.color.r, m.color.g, m.color.b, m.color.a = 0.1, 0.8, 0.3, 0.6
            arr.markers.append(m)
        self.pub_markers.publish(arr)


def main() -> int:
    return run(SensingNode, threads=THREADS)
