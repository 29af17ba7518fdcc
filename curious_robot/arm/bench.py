"""Sim backend vs. hardware backend on fake hardware: the same scenes, the same grasps.

    python -m curious_robot.arm.bench --grasps 40 --seed 0

Trial ``i`` builds a world with seed ``seed + i`` twice (one per backend, so both see the
identical scene), picks one object and a grasp at its centre with a random angle (the
random grasp selector's distribution, but on an object), and runs it through
``World.grasp`` and through ``HardwareBackend.grasp`` over :class:`LocalIO` onto a
:class:`FakeArm` (the same code the fake-hardware node runs, without DDS). Prints the two
success rates and their agreement.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


def run(grasps: int, seed: int, config: str, n_objects: int = 6, jitter: float = 0.01):
    from curious_robot.arm.backend import SafetyStop
    from curious_robot.arm.config import HardwareConfig
    from curious_robot.arm.fake import FakeArm, LocalIO
    from curious_robot.arm.hardware import HardwareBackend
    from curious_robot.arm.kinematics import Kinematics
    from curious_robot.world import World, WorldConfig

    hw_cfg = HardwareConfig.from_yaml(config)
    kin = Kinematics(hw_cfg.arm)
    wc = WorldConfig(num_objects=n_objects, object_split="all")
    rows = []
    t_sim = t_hw = 0.0
    stops = 0
    for i in range(grasps):
        rng = np.random.default_rng([seed, i])
        out = []
        for backend in ("sim", "hardware"):
            world = World(wc, seed=seed + i)
            if backend == "sim":
                objs = world.objects()
                o = objs[int(rng.integers(len(objs)))]
                x, y = np.clip(np.asarray(o.position[:2]) + rng.normal(0, jitter, 2),
                               -0.2, 0.2).tolist()
                angle = float(rng.uniform(0, math.pi))
            t = time.perf_counter()
            if backend == "sim":
                r = world.grasp(x, y, angle)
                t_sim += time.perf_counter() - t
            else:
                hb = HardwareBackend(hw_cfg, LocalIO(FakeArm(world, hw_cfg.safety.control_rate),
                                                     hw_cfg), kinematics=kin)
                hb.start()
                try:
                    r = hb.grasp(x, y, angle)
                except SafetyStop as exc:
                    print(f"    hardware path: safety stop: {exc}")
                    stops += 1
                    r = None
                t_hw += time.perf_counter() - t
            out.append((bool(r.success), float(r.gripper_width)) if r else (False, 0.0))
            world.close()
        rows.append((i, x, y, angle, *out))
        print(f"{i:3d} ({x:+.3f}, {y:+.3f}, {angle:.2f})  sim {out[0][0]:d} "
              f"{out[0][1] * 1000:5.1f} mm   hardware {out[1][0]:d} {out[1][1] * 1000:5.1f} mm",
              flush=True)
    sim = np.array([r[4][0] for r in rows])
    hw = np.array([r[5][0] for r in rows])
    print(f"grasps {len(rows)}: sim success {sim.mean():.1%}, hardware path {hw.mean():.1%}, "
          f"same outcome in {np.mean(sim == hw):.1%}, safety stops {stops}; wall time sim "
          f"{t_sim:.1f} s, hardware {t_hw:.1f} s")
    return sim, hw


def main(argv=None) -> int:
    from curious_robot.paths import share_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grasps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objects", type=int, default=6)
    ap.add_argument("--config", default=str(share_path("config", "hardware",
                                                       "panda_sim.yaml")))
    a = ap.parse_args(argv)
    run(a.grasps, a.seed, a.config, a.objects)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
