"""Selector nodes: one per task (grasp_selector, push_selector, poke_selector), each
serving ``select`` (SelectAction): the parameters of the next action on an object.

Parameter ``policy``: ``random`` (exploration; the default for a cold start), ``model``
or ``curious`` (use the learner's newest checkpoint, announced on /model_updates).
"""

from __future__ import annotations

import numpy as np
from rclpy.node import Node

from curious_robot.nodes.common import LATCHED, ParameterError, run
from curious_robot.selection import Target, Workspace, select_random


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 2

class SelectorNode(Node):
    def __init__(self, task: str, **kwargs):
        super().__init__(f"{task}_selector", **kwargs)
        self.task = task
        from curious_robot.node_config import SelectorParams, declare

        p = declare(self, SelectorParams)
        self.policy, seed, self.checkpoint = p.policy, p.seed, p.checkpoint
        self.threads = p.threads
        self.workspace = Workspace(*p.workspace)
        self.rng = np.random.default_rng([seed, sum(map(ord, task))])
        self.model = None
        if self.policy != "random":
            self._load_model(self.checkpoint)
        from curious_robot_interfaces.msg import ModelUpdate
        from curious_robot_interfaces.srv import SelectAction

        self.create_service(SelectAction, "~/select", self._on_select)
        self.create_subscription(ModelUpdate, "/model_updates", self._on_model, LATCHED)

    def _load_model(self, path: str) -> None:
        if not path:
            self.get_logger().info(f"policy '{self.policy}': no checkpoint yet, random until "
                                   "the learner announces one")
            return
        try:
            from curious_robot.learning.policy import load_policy
            from curious_robot.learning.predict import inference_threads
        except ImportError as exc:
            raise ParameterError(f"parameter 'policy' = {self.policy!r} needs the learning "
                                 f"package: {exc}") from exc
        from curious_robot.paths import resolve_checkpoint

        try:
            path = str(resolve_checkpoint(path))
        except FileNotFoundError as exc:
            raise ParameterError(f"parameter 'checkpoint': {exc}") from exc
        inference_threads(self.threads)
        self.model = load_policy(self.task, path, self.policy)
        self.get_logger().info(f"{self.task} selector: policy '{self.policy}' from {path}")

    def _on_model(self, msg) -> None:
        if self.policy != "random" and msg.path:
            try:
                self._load_model(msg.path)
            except (OSError, RuntimeError, ValueError) as exc:
                self.get_logger().error(f"cannot load checkpoint {msg.path}: {exc}")

    def _on_select(self, request, response):
        o = request.object
        ws = self.workspace
        if len(request.workspace) == 4:  # the arm's area: keep inside both
            x0, x1, y0, y1 = (float(v) for v in request.workspace)
            ws = Workspace(max(ws.xmin, x0), min(ws.xmax, x1), max(ws.ymin, y0),
                           min(ws.ymax, y1))
            if ws.xmin >= ws.xmax or ws.ymin >= ws.ymax:
                response.success = False
                response.message = (f"the arm's workspace {list(request.workspace)} does not "
                                    f"overlap this selector's {self.workspace}")
                return response
        target = Target(x=o.centroid.x, y=o.centroid.y, yaw=o.yaw,
                        length=max(o.size.x, 0.01), width=max(o.size.y, 0.01))
        try:
            if self.model is not None:
                from curious_robot.convert import msg_to_image

                sel = self.model.select(target, msg_to_image(request.patch, "patch"),
                                        request.patch_size, self.rng, ws,
                                        task=request.task or self.task)
            else:
                sel = select_random(request.task or self.task, target, self.rng, ws)
            response.action = [float(v) for v in sel.action]
            response.score, response.policy = float(sel.score), sel.policy
            response.success = True
        except ValueError as exc:
            response.success, response.message = False, str(exc)
        return response


def _main(task: str) -> int:
    return run(lambda: SelectorNode(task), threads=THREADS)


def grasp_main() -> int:
    return _main("grasp")


def push_main() -> int:
    return _main("push")


def poke_main() -> int:
    return _main("poke")
