"""In-process drone runs (no ROS, for speed): ``curious-robot eval-drone`` flies the
learned policy, straight-line flight and random turns from the same start poses in the
held-out rooms and reports the mean distance and time flown before a collision;
``curious-robot drone-data`` runs the pilot (the same logic as the pilot node) in
training rooms and writes its labelled frames into a replay store.

    curious-robot drone-data --store data/drone.db --rooms 40 --crashes 15
    curious-robot train --store data/drone.db --tasks crash --steps 1500 --out runs/drone
    curious-robot eval-drone --checkpoint runs/drone --flights 50
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass
class FlightResult:
    policy: str
    layout_seed: int
    distance: float  # m flown (horizontal path length)
    time: float  # s flown
    collided: bool


def fly(sim, policy, detector, pose, max_time: float, seed: int = 0) -> FlightResult:
    """One flight from ``pose`` until a collision (or ``max_time`` s)."""
    sim.reset(*pose)
    policy.reset(seed)
    t0 = sim.time
    detector.reset(0.0)
    cam_every = sim.flight.camera_every
    last = sim.position()[:2]
    distance, tick, cmd, collided = 0.0, 0, (0.0, 0.0), False
    while sim.time - t0 < max_time:
        t = sim.time - t0
        if tick % cam_every == 0:
            cmd = policy.act(t, sim.image() if policy.needs_image else None)
        imu = sim.step(*cmd)
        tick += 1
        pos = sim.position()[:2]
        distance += float(np.linalg.norm(pos - last))
        last = pos
        if detector.update(sim.time - t0, imu.linear_acceleration, imu.contact) or sim.upset():
            collided = True
            break
    return FlightResult(getattr(policy, "name", type(policy).__name__), sim.layout.seed,
                        distance, sim.time - t0, collided)


def start_poses(layout, n: int, seed: int, altitude: float, clearance: float):
    rng = np.random.default_rng([int(seed), int(layout.seed), 6007])
    return [layout.start_pose(rng, altitude, clearance) for _ in range(n)]


def evaluate_policies(policies: dict, flights: int = 50, max_time: float = 60.0,
                      seed: int = 0, config=None, layouts=None,
                      progress=None) -> dict:
    """Fly every policy from the same start poses: ``flights`` flights spread over the
    held-out layouts (or ``layouts``). Returns per-policy means and every flight."""
    from curious_robot.drone.pilot import CollisionDetector, PilotConfig
    from curious_robot.drone.sim import DroneSim, generate_layout, load_config

    cfg = config or load_config()
    seeds = list(layouts) if layouts is not None else cfg.layouts.held_out_seeds
    per_room = [flights // len(seeds) + (1 if i < flights % len(seeds) else 0)
                for i in range(len(seeds))]
    results: list[FlightResult] = []
    detector = CollisionDetector(PilotConfig())
    for room_seed, n in zip(seeds, per_room):
        if n == 0:
            continue
        layout = generate_layout(room_seed, cfg.room, cfg.layouts)
        poses = start_poses(layout, n, seed, cfg.flight.altitude, cfg.room.clearance)
        with DroneSim(layout, cfg, seed=seed) as sim:
            for i, pose in enumerate(poses):
                for policy in policies.values():
                    r = fly(sim, policy, detector, pose, max_time, seed=seed * 7919 + i)
                    results.append(r)
                    if progress:
                        progress(r)
    summary = {}
    for name in policies:
        rs = [r for r in results if r.policy == name]
        summary[name] = {
            "flights": len(rs),
            "mean_distance_m": float(np.mean([r.distance for r in rs])) if rs else None,
            "mean_time_s": float(np.mean([r.time for r in rs])) if rs else None,
            "collided": int(sum(r.collided for r in rs)),
        }
    base = summary.get("straight", {}).get("mean_distance_m")
    for s in summary.values():
        s["distance_vs_straight"] = (s["mean_distance_m"] / base
                                     if base and s["mean_distance_m"] is not None else None)
    return {"summary": summary, "flights": [asdict(r) for r in results],
            "max_time_s": max_time, "layouts": seeds}


# -- in-process crash data ----------------------------------------------------------------


def collect_crashes(layout_seed: int, crashes: int, seed: int = 0, config=None,
                    pilot_cfg=None, max_time: float = 600.0):
    """Run the pilot in one room until ``crashes`` collisions (or ``max_time`` s of
    simulated flight); yields (labelled frame, sim step) as flights end."""
    from curious_robot.drone.pilot import Pilot
    from curious_robot.drone.sim import DroneSim, load_config

    cfg = config or load_config()
    pilot = Pilot(pilot_cfg, seed=seed)
    with DroneSim(layout_seed, cfg, seed=seed) as sim:
        sim.reset_random()
        cmd, tick = (0.0, 0.0), 0
        while pilot.collisions < crashes and sim.time < max_time:
            if tick % sim.flight.camera_every == 0:
                pilot.on_frame(sim.time, sim.image())
            imu = sim.step(*cmd)
            tick += 1
            cmd = pilot.tick(sim.time, imu.linear_acceleration, imu.contact)
            for frame in pilot.take():
                yield frame, sim.step_count
            if sim.upset():
                sim.reset_random()
                pilot.restart(sim.time)


def write_crash_data(store, rooms: list[int], crashes: int, robot: str = "drone_sim",
                     seed: int = 0, config=None, progress=None) -> dict:
    """Fly the pilot in each room of ``rooms`` and add its labelled frames to ``store``
    (sequence numbers continue after the robot's last stored one)."""
    from curious_robot.drone.pilot import to_interaction
    from curious_robot.drone.sim import load_config

    cfg = config or load_config()
    last = store.last_seq(robot)
    seq = 0 if last is None else last + 1
    counts = {"safe": 0, "unsafe": 0}
    for room in rooms:
        held_out = cfg.layouts.is_held_out(room)
        for frame, step in collect_crashes(room, crashes, seed=seed * 100003 + room,
                                           config=cfg):
            store.add(to_interaction(frame, robot, seq, room, held_out, step))
            seq += 1
            counts["safe" if frame.safe else "unsafe"] += 1
        if progress:
            progress(room, counts)
    return counts


# -- held-out accuracy of the crash head ---------------------------------------------------


def crash_accuracy(model, store, input_size: int, horizon_s: float = 1.0,
                   device="cpu", max_records: int = 2000) -> dict:
    """Held-out accuracy of the crash head (labels as :func:`data.crash_batch`) and the
    majority-class baseline; ``None`` values without held-out crash records."""
    import torch

    from curious_robot.learning import data

    ids = store.ids("crash", held_out=True)
    if len(ids) > max_records:
        ids = np.sort(np.random.default_rng(0).choice(ids, max_records, replace=False))
    if not len(ids):
        return {"crash_accuracy": None, "crash_majority_accuracy": None, "crash_records": 0}
    was = model.training
    model.eval()
    probs, labels = [], []
    try:
        with torch.no_grad():
            for i in range(0, len(ids), 128):
                recs = store.get_many(ids[i:i + 128].tolist())
                b = data.crash_batch(recs, input_size, horizon_s)
                x = data.to_tensors({"crop": b["crop"]}, device)["crop"]
                probs.append(torch.sigmoid(model.crash(x)).cpu().numpy())
                labels.append(b["safe"])
    finally:
        model.train(was)
    p, y = np.concatenate(probs), np.concatenate(labels).astype(bool)
    n_train = store.count("crash", held_out=False)
    rate = store.count("crash", held_out=False, success=True) / n_train if n_train else \
        float(np.mean(y))
    return {"crash_accuracy": float(np.mean((p > 0.5) == y)),
            "crash_majority_accuracy": float(np.mean(y == (rate > 0.5))),
            "crash_records": int(len(y))}


# -- command line --------------------------------------------------------------------------


def register(sub) -> None:
    p = sub.add_parser("eval-drone", help="mean distance / time flown before a collision in "
                       "held-out rooms: learned policy vs. straight flight vs. random turns")
    p.add_argument("--checkpoint", default=None,
                   help="training folder or checkpoint.pt with a crash head, or 'default' "
                        "(the shipped crash net, models/drone_crash.pt); without it only the "
                        "baselines fly")
    p.add_argument("--flights", type=int, default=50,
                   help="flights per policy (default %(default)s)")
    p.add_argument("--max-time", type=float, default=60.0,
                   help="s of flight after which a flight ends without a collision")
    p.add_argument("--policies", default="learned,straight,random")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="P(safe) of the centre crop needed to fly straight (learned)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", default=None, help="drone world file (sim/drone/drone.yaml)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write every flight to this file")
    p.add_argument("--accuracy-store", default=None, metavar="STORE",
                   help="also print the crash head's accuracy on STORE's held-out crash "
                        "records (with --flights 0: only that)")
    p.set_defaults(func=run_eval)

    d = sub.add_parser("drone-data", help="fly the crash-collecting pilot in simulated "
                       "training rooms, in-process, and write labelled frames to a store")
    d.add_argument("--store", required=True, help="replay store file (created if missing)")
    d.add_argument("--rooms", type=int, default=20, help="training rooms to fly in")
    d.add_argument("--first-room", type=int, default=0, help="index of the first room")
    d.add_argument("--held-out-rooms", type=int, default=0,
                   help="also fly this many held-out rooms (records marked held-out, for "
                        "the crash head's held-out accuracy)")
    d.add_argument("--crashes", type=int, default=15, help="collisions per room")
    d.add_argument("--robot", default="drone_sim", help="robot name of the records")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--config", default=None)
    d.set_defaults(func=run_data)


def run_data(args) -> int:
    from curious_robot.drone.sim import load_config
    from curious_robot.store import ReplayStore

    cfg = load_config(args.config)
    rooms = [cfg.layouts.train_seed(i) for i in
             range(args.first_room, args.first_room + args.rooms)]
    rooms += cfg.layouts.held_out_seeds[:args.held_out_rooms]
    t0 = time.monotonic()
    with ReplayStore(args.store) as store:
        counts = write_crash_data(
            store, rooms, args.crashes, args.robot, args.seed, cfg,
            progress=lambda room, c: log.info("room %d done: %d safe, %d unsafe frames "
                                              "(%.0f s)", room, c["safe"], c["unsafe"],
                                              time.monotonic() - t0))
    print(json.dumps({"rooms": len(rooms), **counts}))
    return 0


def _store_accuracy(checkpoint, store_path) -> dict:
    from curious_robot.drone.policy import CrashScorer
    from curious_robot.learning.checkpoint import load_checkpoint
    from curious_robot.store import ReplayStore

    scorer = CrashScorer.from_checkpoint(checkpoint)
    path = checkpoint if str(checkpoint).endswith(".pt") else f"{checkpoint}/checkpoint.pt"
    horizon = load_checkpoint(path)["config"]["train"].get("crash_horizon_s", 1.0)
    with ReplayStore(store_path, readonly=True) as store:
        return crash_accuracy(scorer.model, store, scorer.input_size, horizon)


def run_eval(args) -> int:
    from curious_robot.drone.policy import (CrashNetPolicy, CrashScorer, RandomTurnPolicy,
                                            StraightPolicy)
    from curious_robot.drone.sim import load_config

    names = [n.strip() for n in args.policies.split(",") if n.strip()]
    known = ("learned", "straight", "random")
    if not names or any(n not in known for n in names) or args.flights < 0:
        print(f"eval-drone: --policies must name some of {known}; --flights >= 0",
              file=sys.stderr)
        return 2
    if args.checkpoint:
        from curious_robot.paths import resolve_checkpoint

        try:
            args.checkpoint = str(resolve_checkpoint(args.checkpoint, kind="drone"))
        except FileNotFoundError as exc:
            print(f"eval-drone: {exc}", file=sys.stderr)
            return 2
    if args.accuracy_store:
        if not args.checkpoint:
            print("eval-drone: --accuracy-store needs --checkpoint", file=sys.stderr)
            return 2
        print(json.dumps(_store_accuracy(args.checkpoint, args.accuracy_store)))
    if args.flights == 0:
        return 0
    if "learned" in names and not args.checkpoint:
        print("eval-drone: no --checkpoint: flying the baselines only", file=sys.stderr)
        names.remove("learned")
    import torch

    torch.set_num_threads(max(1, args.threads))
    cfg = load_config(args.config)
    policies = {}
    for n in names:
        if n == "learned":
            policies[n] = CrashNetPolicy(CrashScorer.from_checkpoint(args.checkpoint),
                                         threshold=args.threshold)
        elif n == "straight":
            policies[n] = StraightPolicy()
        else:
            policies[n] = RandomTurnPolicy()
    t0 = time.monotonic()
    res = evaluate_policies(
        policies, args.flights, args.max_time, args.seed, cfg,
        progress=lambda r: log.debug("%s room %d: %.2f m, %.1f s", r.policy, r.layout_seed,
                                     r.distance, r.time))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    width = max(len(n) for n in names)
    print(f"{'policy':<{width}}  flights  mean distance (m)  mean time (s)  collided  "
          f"x straight")
    for n, s in res["summary"].items():
        ratio = "-" if s["distance_vs_straight"] is None else f"{s['distance_vs_straight']:.2f}"
        print(f"{n:<{width}}  {s['flights']:7d}  {s['mean_distance_m']:17.2f}  "
              f"{s['mean_time_s']:13.1f}  {s['collided']:8d}  {ratio:>10}")
    log.info("%d flights in %.0f s (max %.0f s each, held-out rooms %d..%d)",
             len(res["flights"]), time.monotonic() - t0, args.max_time, res["layouts"][0],
             res["layouts"][-1])
    return 0
