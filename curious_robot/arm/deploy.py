"""The deploy-mode node graph: collect mode's graph (curious_robot.graph) with the arm node
on its hardware backend, plus, with ``fake_hardware``, the fake ros2_control arm in each
robot's namespace. Used by ``launch/deploy.launch.py`` and the tests."""

from __future__ import annotations

from curious_robot.graph import NodeSpec, collect_graph


def default_hardware_config() -> str:
    from curious_robot.paths import share_path

    return str(share_path("config", "hardware", "panda_sim.yaml"))


def deploy_graph(hardware_config: str, fake_hardware: bool = False, dry_run: bool = False,
                 robots: int = 1, seed: int = 0, store: str = "data/replay.db",
                 tasks: str | None = None, learner: bool = True,
                 fake_objects: int = 8, fleet_key: str | None = None) -> list[NodeSpec]:
    """All nodes of a deployment; one hardware YAML for every robot (topics are relative,
    so each robot's namespace keeps its controllers apart)."""
    specs = collect_graph(robots=robots, seed=seed, store=store, tasks=tasks, learner=learner,
                          fleet_key=fleet_key)
    out = []
    for s in specs:
        if s.name == "arm":
            s.parameters.update(backend="hardware", hardware_config=hardware_config,
                                dry_run=bool(dry_run))
            if fake_hardware:
                out.append(NodeSpec("fake_hardware", "fake_hardware", s.namespace, {
                    "hardware_config": hardware_config, "seed": s.parameters.get("seed", 0),
                    "n_objects": int(fake_objects)}))
        out.append(s)
    return out
