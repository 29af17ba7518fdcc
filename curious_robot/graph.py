"""The collect-mode node graph, defined once: ``launch/collect.launch.py`` turns it into
launch_ros Nodes and ``curious-robot collect`` into processes, both with the same
``config/collect.yaml`` underneath, so the two ways of running it cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from curious_robot import tasks as registry

PACKAGE = "curious_robot"


def robot_node_table() -> dict[str, str]:
    """executable -> node name, for the nodes of one robot (each robot gets a namespace):
    arm, sensing, tactile, one selector per selector the arm tasks name (executable and
    node share the name), the interaction manager."""
    selectors = dict.fromkeys(t.selector for t in registry.all_tasks("arm") if t.selector)
    return {"arm_node": "arm", "sensing_node": "sensing", "tactile_node": "tactile",
            **{s: s for s in selectors}, "interaction_manager": "interaction_manager"}


ROBOT_NODES = robot_node_table()


@dataclass
class NodeSpec:
    executable: str
    name: str
    namespace: str = ""
    #: parameters set on top of the YAML file (per robot seed, store path, ...)
    parameters: dict = field(default_factory=dict)

    @property
    def fqn(self) -> str:
        return f"{self.namespace.rstrip('/')}/{self.name}" if self.namespace else f"/{self.name}"


#: how a graph's nodes map to processes: ``robot`` (the default) composes each robot's
#: nodes in one process (``robot_container``); ``node`` starts one process per node
PROCESS_MODES = ("robot", "node")

#: the executable that composes several nodes in one process
CONTAINER = "robot_container"
#: nodes that keep a process of their own in every layout: the fake ros2_control arm
#: stands in for a driver that runs outside the graph on a real robot, at its own rate
OWN_PROCESS = frozenset({"fake_hardware"})


@dataclass
class ProcessSpec:
    """One OS process of a graph: a single node (``name`` remaps its node name) or a
    container of a namespace's nodes (``name`` empty; ``arguments`` name them)."""
    executable: str
    namespace: str
    name: str
    nodes: list[NodeSpec]
    arguments: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """What the process is called in logs and reports: the node's fqn, or the
        container's namespace (``/robot0``)."""
        return self.nodes[0].fqn if self.name else (self.namespace or "/")


def processes(specs: list[NodeSpec], mode: str = "robot") -> list[ProcessSpec]:
    """The processes that run ``specs``: with ``mode`` ``robot`` the nodes of each
    namespace share one container (in the order given; a namespace's single node and
    the learner, which has none, keep a process of their own), with ``node`` each node
    has its own. Raises ValueError for an unknown mode."""
    if mode not in PROCESS_MODES:
        raise ValueError(f"unknown process mode {mode!r}; choose from "
                         + ", ".join(PROCESS_MODES))
    groups: dict[str, list[NodeSpec]] = {}
    for s in specs:
        alone = mode == "node" or not s.namespace or s.executable in OWN_PROCESS
        key = s.fqn if alone else s.namespace
        groups.setdefault(key, []).append(s)
    out = []
    for members in groups.values():
        if len(members) == 1:
            s = members[0]
            out.append(ProcessSpec(s.executable, s.namespace, s.name, members))
        else:
            out.append(ProcessSpec(CONTAINER, members[0].namespace, "", members,
                                   ["--nodes", ",".join(s.executable for s in members)]))
    return out


def parameter_sections(specs: list[NodeSpec], extra: dict | None = None) -> dict:
    """The graph's own per-node parameters (``extra``: node name -> more of them, e.g.
    from ``--set``) as a parameter file's content: ``{fqn: {"ros__parameters": ..}}``,
    keyed by fully qualified name so one file serves nodes in any process layout."""
    extra = extra or {}
    out = {}
    for s in specs:
        params = {**s.parameters, **extra.get(s.name, {})}
        if params:
            out[s.fqn] = {"ros__parameters": params}
    return out


def robot_name(index: int) -> str:
    return f"robot{index}"


def parse_tasks(tasks: str | list[str] | tuple[str, ...]) -> list[str]:
    """'grasp,push' or a list -> validated task list."""
    items = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks)]
    items = [t for t in items if t]
    known = registry.names("arm")
    bad = [t for t in items if t not in known]
    if bad or not items:
        raise ValueError(f"unknown task(s) {bad or tasks!r}; choose from {', '.join(known)}")
    return items


def outbox_dir(store: str) -> str:
    """Where a graph's robots spool what the learner has not acknowledged: beside the
    store and named after it (``data/replay.outbox``), so a run and its outboxes stay
    together and another store's run never resends them."""
    from curious_robot.paths import beside_store

    return str(beside_store(store, "outbox"))


def fleet_key_path(store: str, fleet_key: str | None) -> str:
    """The fleet key file a graph's nodes use: ``fleet_key`` as given ('' runs them
    unauthenticated), or by default ``<store folder>/fleet.key``."""
    from curious_robot.fleet import default_key_path

    if fleet_key is None:
        return default_key_path(store)
    return os.path.abspath(os.path.expanduser(fleet_key)) if fleet_key else ""


def robot_nodes(index: int, seed: int, tasks: list[str],
                store: str | None = None, fleet_key: str = "") -> list[NodeSpec]:
    ns = "/" + robot_name(index)
    robot_seed = seed * 1000 + index
    specs = []
    for exe, name in ROBOT_NODES.items():
        params: dict = {}
        if exe in ("arm_node", "interaction_manager") or exe.endswith("_selector"):
            params["seed"] = robot_seed
        if exe in ("arm_node", "interaction_manager"):
            params["robot"] = robot_name(index)
            if fleet_key:
                params["fleet_key"] = fleet_key
        if exe == "interaction_manager":
            params["tasks"] = list(tasks)
            if store:
                params["outbox_dir"] = outbox_dir(store)
        specs.append(NodeSpec(exe, name, ns, params))
    return specs


def collect_graph(robots: int = 1, seed: int = 0, store: str = "data/replay.db",
                  tasks: str | list[str] | None = None, first_robot: int = 0,
                  learner: bool = True, fleet_key: str | None = None) -> list[NodeSpec]:
    """All nodes of collect mode: ``robots`` robot groups and one learner. ``fleet_key``:
    see :func:`fleet_key_path` (arms, managers and the learner get it)."""
    if robots < 0:
        raise ValueError(f"robots must be >= 0, got {robots}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    task_list = parse_tasks(registry.names("arm") if tasks is None else tasks)
    key = fleet_key_path(store, fleet_key)
    specs = [s for i in range(first_robot, first_robot + robots)
             for s in robot_nodes(i, seed, task_list, store, key)]
    if learner:
        specs.append(_learner(store, key))
    return specs


def _learner(store: str, fleet_key: str) -> NodeSpec:
    params = {"store": os.path.abspath(os.path.expanduser(store))}
    if fleet_key:
        params["fleet_key"] = fleet_key
    return NodeSpec("learner_node", "learner", "", params)


def default_config() -> str:
    from curious_robot.paths import share_path

    return str(share_path("config", "collect.yaml"))


def drone_name(index: int) -> str:
    return f"drone{index}"


def drone_graph(robots: int = 1, seed: int = 0, store: str = "data/replay.db",
                first_robot: int = 0, learner: bool = True,
                fleet_key: str | None = None) -> list[NodeSpec]:
    """Collect mode with drones: per drone a simulated drone and a pilot in /droneN (drone
    N flies training rooms N, N + robots, ...), and the same learner as the arms."""
    if robots < 0:
        raise ValueError(f"robots must be >= 0, got {robots}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    key = fleet_key_path(store, fleet_key)
    specs = []
    for i in range(first_robot, first_robot + robots):
        ns = "/" + drone_name(i)
        specs.append(NodeSpec("drone_node", "drone", ns, {
            "seed": seed * 1000 + i, "room_index": seed * 1000 + i,
            "room_stride": max(1, first_robot + robots)}))
        pilot = {"seed": seed * 1000 + i, "robot": drone_name(i),
                 "outbox_dir": outbox_dir(store)}
        if key:
            pilot["fleet_key"] = key
        specs.append(NodeSpec("pilot_node", "pilot", ns, pilot))
    if learner:
        specs.append(_learner(store, key))
    return specs


def default_drone_config() -> str:
    from curious_robot.paths import share_path

    return str(share_path("config", "drone.yaml"))
