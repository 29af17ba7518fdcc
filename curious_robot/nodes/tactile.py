"""The tactile node: the raw probe force stream of each poke -> a tactile response.

Subscribes tactile/raw (TactileReadings: chunks of readings, grouped by poke_id);
publishes tactile/response (TactileResponse: force vs. depth, fitted slope and intercept,
contact onset) when the last chunk of a press arrives.
"""

from __future__ import annotations

from rclpy.node import Node

from curious_robot.nodes.common import RELIABLE, run
from curious_robot.tactile import fit_tactile


#: executor threads this node wants (its own process, or its share of a container)
THREADS = 1

class TactileNode(Node):
    def __init__(self, **kwargs):
        super().__init__("tactile", **kwargs)
        from curious_robot.node_config import TactileParams, declare

        self.max_pending = declare(self, TactileParams).max_pending
        from curious_robot_interfaces.msg import TactileResponse, TactileReadings

        self.pending: dict[str, list] = {}
        self.pub = self.create_publisher(TactileResponse, "tactile/response", RELIABLE)
        self.create_subscription(TactileReadings, "tactile/raw", self._on_chunk, RELIABLE)

    def _on_chunk(self, msg) -> None:
        chunks = self.pending.setdefault(msg.poke_id, [])
        chunks.append((msg.first_index, list(msg.depth), list(msg.force)))
        if len(self.pending) > self.max_pending:  # presses whose last chunk never came
            self.pending.pop(next(iter(self.pending)))
        if msg.last:
            self._respond(msg, sorted(self.pending.pop(msg.poke_id)))

    def _respond(self, last, chunks) -> None:
        from curious_robot_interfaces.msg import TactileResponse

        depth = [d for c in chunks for d in c[1]]
        force = [f for c in chunks for f in c[2]]
        out = TactileResponse(poke_id=last.poke_id, depth=depth, force=force)
        out.header.stamp, out.header.frame_id = last.header.stamp, last.header.frame_id
        try:
            fit = fit_tactile(depth, force)
            out.slope, out.intercept = float(fit.slope), float(fit.intercept)
            out.onset_depth, out.max_force = float(fit.onset_depth), float(fit.max_force)
            out.n_contact, out.valid = int(fit.n_contact), bool(fit.valid)
        except ValueError as exc:
            self.get_logger().warning(f"poke {last.poke_id}: no tactile fit: {exc}")
            out.max_force = float(max(force)) if force else 0.0
        self.pub.publish(out)


def main() -> int:
    return run(TactileNode, threads=THREADS)
