"""``curious-robot release-stop``: release an arm's emergency stop as the fleet's operator.

The arm's ``release_stop`` service (ReleaseStop.srv) takes only a request signed with the
fleet key, stamped now (within a few seconds of the arm's clock) and newer than the last
release it accepted (curious_robot/fleet.py), so nobody else on the ROS domain can undo
an operator's e-stop, and a recorded release cannot be replayed. The e-stop itself
(``emergency_stop``, std_srvs/Trigger) stays open to anyone.
"""

from __future__ import annotations

import argparse
import sys
import time


def register(sub) -> None:
    p = sub.add_parser("release-stop", help="release an arm's emergency stop (signed with "
                       "the fleet key)")
    p.add_argument("--robot", default="robot0",
                   help="robot name (and namespace) of the arm (default %(default)s)")
    p.add_argument("--fleet-key", required=True, metavar="FILE",
                   help="the fleet's key file (collect: <store folder>/fleet.key)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="s to wait for the arm's service (default %(default)s)")
    p.set_defaults(func=run)


def release_request(key, robot: str, now_ns: int | None = None):
    """A signed ReleaseStop request for the arm named ``robot``."""
    from builtin_interfaces.msg import Time

    from curious_robot.fleet import release_bytes
    from curious_robot_interfaces.srv import ReleaseStop

    now_ns = time.time_ns() if now_ns is None else int(now_ns)
    return ReleaseStop.Request(
        fleet=key.fleet_id, stamp=Time(sec=now_ns // 1_000_000_000,
                                       nanosec=now_ns % 1_000_000_000),
        auth=key.sign(release_bytes(key.fleet_id, robot, now_ns)))


def run(args: argparse.Namespace) -> int:
    from curious_robot.fleet import FleetKeyError, load_key

    if args.timeout <= 0 or not args.robot:
        print("error: --timeout must be > 0 and --robot not empty", file=sys.stderr)
        return 2
    try:
        key = load_key(args.fleet_key, create=False)
    except FleetKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import rclpy

    from curious_robot_interfaces.srv import ReleaseStop

    rclpy.init()
    try:
        node = rclpy.create_node("release_stop_operator")
        client = node.create_client(ReleaseStop, f"/{args.robot}/release_stop")
        if not client.wait_for_service(timeout_sec=args.timeout):
            print(f"error: no /{args.robot}/release_stop service within {args.timeout:g} s",
                  file=sys.stderr)
            return 1
        future = client.call_async(release_request(key, args.robot))
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        res = future.result()
        if res is None:
            print(f"error: /{args.robot}/release_stop did not answer", file=sys.stderr)
            return 1
        print(f"{args.robot}: {res.message}")
        return 0 if res.success else 1
    finally:
        rclpy.try_shutdown()
