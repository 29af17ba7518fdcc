"""Configuration of the simulated world: dataclasses with checks, loadable from YAML.

The arm is data (``sim/arms/<name>.yaml``, read by the shared
:class:`~curious_robot.motion.config.ArmConfig`), the object set is data
(``sim/objects/objects.yaml``); this module only reads and validates them.
Paths that are relative resolve against the ``sim/`` folder (``$CURIOUS_ROBOT_SIM_DIR``
or the repository's ``sim/``) and then against ``pybullet_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from curious_robot.motion.config import (ArmConfig, PrimitiveDefaults, from_dict, load_yaml,
                                         resolve_path, sim_dir)

__all__ = ["SPLITS", "ArmConfig", "WorldConfig", "load_yaml", "resolve_path", "sim_dir"]

#: which objects a world drops: the training objects, the held-out ones, all of them, or
#: "scenes": each scene (every reset) is drawn whole from one side, held out with
#: probability ``held_out_scenes``, so a held-out object never shares an image with a
#: training one (its records evaluate; training images never show it)
SPLITS = ("train", "held_out", "all", "scenes")


@dataclass
class WorldConfig:
    """Everything that defines a world; the defaults are the benchmarked setup."""

    #: the arm is configuration: by default sim/arms/panda.yaml
    arm: ArmConfig = field(default_factory=lambda: ArmConfig.from_yaml("arms/panda.yaml"))
    objects_manifest: str = "objects/objects.yaml"
    object_split: str = "train"
    #: with object_split "scenes": the share of scenes drawn from the held-out objects
    #: (0.2: as many held-out records as with "all", whose held-out objects are a fifth)
    held_out_scenes: float = 0.2
    num_objects: int = 10
    time_step: float = 1.0 / 240.0
    #: solver iterations per step (the poke's press uses poke_solver_iterations); 25
    #: with rigid_objects held every `bench sim` quality bar (docs/scale.md)
    solver_iterations: int = 25
    #: objects as maximal-coordinate rigid bodies (PyBullet ``useMaximalCoordinates``)
    #: rather than one-link multibodies: the same shapes, masses and contact
    #: parameters, with cheaper contacts; a poke pins its object by making it static
    #: (World.pin). False and 50 solver iterations are the physics before issue 15
    #: (slower, docs/scale.md)
    rigid_objects: bool = True
    #: friction about the contact normal and against rolling, per object. Without the
    #: spinning friction, pushed objects spin out of the stroke: 4 of 37 pushes moved
    #: their object against the push (tests/test_push_outcome.py), 0 of 41 with it
    spinning_friction: float = 0.1
    rolling_friction: float = 0.0001
    #: Box the gripper may reach and objects must stay in: x, y, z (min, max), table frame.
    workspace: tuple[tuple[float, float], ...] = ((-0.2, 0.2), (-0.2, 0.2), (0.0, 0.4))
    #: Objects are dropped this far inside the workspace's x / y edges.
    spawn_margin: float = 0.04
    #: Objects whose centre drifts closer than this to the workspace's x / y edges (or
    #: beyond) are put back (World.maintain); at least the manager's reach_margin, so
    #: every object it sees is one it may choose.
    reach_margin: float = 0.02
    table_size: tuple[float, float] = (0.9, 0.8)
    # cameras
    image_size: int = 128
    camera_height: float = 0.75
    scene_extent: float = 0.46  # m of table seen across the overhead image
    patch_size: int = PrimitiveDefaults.patch_size
    patch_extent: float = PrimitiveDefaults.patch_extent  # m of table across a patch
    hide_arm: bool = True
    renderer: str = "tiny"  # "tiny" (ER_TINY_RENDERER) or "opengl" (needs a GL context)
    # per-object physical properties, drawn at each spawn
    mass_range: tuple[float, float] = (0.05, 0.3)
    friction_range: tuple[float, float] = (0.6, 1.0)
    stiffness_range: tuple[float, float] = (3000.0, 40000.0)  # N/m, log-uniform
    #: draw a material per object (objects.MATERIALS): its stiffness range and colour;
    #: False: stiffness from stiffness_range and the model's own colour
    materials: bool = True
    damping_ratio_range: tuple[float, float] = (0.001, 0.005)  # damping = ratio * stiffness
    # primitives
    #: m above the table for free-space moves
    approach_height: float = PrimitiveDefaults.approach_height
    lift_height: float = PrimitiveDefaults.lift_height
    #: m below the surface seen at the grasp point
    grasp_depth: float = PrimitiveDefaults.grasp_depth
    #: m, lowest fingertip height above the table
    min_grasp_height: float = PrimitiveDefaults.min_grasp_height
    #: m, gripper width at or below which it counts as closed
    closed_width: float = PrimitiveDefaults.closed_width
    push_height: float = PrimitiveDefaults.push_height
    push_speed: float = PrimitiveDefaults.push_speed  # m/s
    poke_force_limit: float = PrimitiveDefaults.poke_force_limit  # N
    poke_max_depth: float = PrimitiveDefaults.poke_max_depth  # m beyond the first contact
    poke_speed: float = PrimitiveDefaults.poke_speed  # m/s, largest press speed
    poke_solver_iterations: int = 200  # during the press: stiff contacts need them
    #: during the press, hold the other objects still (static) so that its many solver
    #: iterations go to the probe and its object alone (rigid_objects only): pokes 2.4x
    #: to 2.7x faster, and the felt stiffness ranks the true one no worse (80 pokes of
    #: two worlds, docs/scale.md)
    poke_hold_others: bool = True
    #: while an inspect shows its object to the camera, hold the objects on the table
    #: still (static): they cost the solver most of each step (docs/scale.md)
    hold_during_views: bool = True
    #: m/s, the press's free travel until it is about to touch (simulation only: the
    #: steps before contact read nothing; in contact it presses at poke_speed)
    poke_free_speed: float = 0.05
    inspect_views: int = PrimitiveDefaults.inspect_views
    #: the wrist's turns between inspect views at full joint speed (the real arm's 0.4
    #: only costs physics steps here: the object was held as well, 16 of 16 inspects
    #: under `bench sim`, and inspect ran 1.45x faster)
    inspect_speed_scale: float = 1.0
    probe_urdf: str = "tools/probe.urdf"
    max_speed: float = 5.0  # m/s: any object faster than this is a physics blow-up

    def __post_init__(self):
        if isinstance(self.arm, dict):
            self.arm = from_dict(ArmConfig, self.arm, "arm")
        elif isinstance(self.arm, (str, Path)):
            self.arm = ArmConfig.from_yaml(self.arm)
        self.workspace = tuple(tuple(float(v) for v in b) for b in self.workspace)
        if self.object_split not in SPLITS:
            raise ValueError(f"object_split must be one of {SPLITS}, got {self.object_split!r}")
        if not 0.0 <= self.held_out_scenes <= 1.0:
            raise ValueError(f"held_out_scenes must be in [0, 1], got {self.held_out_scenes}")
        if self.num_objects < 0:
            raise ValueError(f"num_objects must be >= 0, got {self.num_objects}")
        if len(self.workspace) != 3 or any(len(b) != 2 or b[0] >= b[1] for b in self.workspace):
            raise ValueError(f"workspace must be three (min, max) pairs, got {self.workspace}")
        for name in ("time_step", "camera_height", "scene_extent", "patch_extent",
                     "poke_force_limit", "poke_max_depth", "poke_speed", "poke_free_speed",
                     "push_speed"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 < self.inspect_speed_scale <= 1:
            raise ValueError("inspect_speed_scale must be in (0, 1], got "
                             f"{self.inspect_speed_scale}")
        for name in ("spinning_friction", "rolling_friction"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("image_size", "patch_size", "inspect_views", "solver_iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("mass_range", "friction_range", "stiffness_range", "damping_ratio_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be 0 < min <= max, got {(lo, hi)}")
        if not 0 <= self.reach_margin < self.spawn_margin:
            raise ValueError(f"reach_margin must be >= 0 and below spawn_margin "
                             f"({self.spawn_margin}), got {self.reach_margin}")
        if self.poke_free_speed < self.poke_speed:
            raise ValueError(f"poke_free_speed ({self.poke_free_speed}) must be at least "
                             f"poke_speed ({self.poke_speed})")
        if self.renderer not in ("tiny", "opengl"):
            raise ValueError(f"renderer must be 'tiny' or 'opengl', got {self.renderer!r}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> WorldConfig:
        """Read a world config; ``arm`` may be a mapping or the path of an arm YAML."""
        data = load_yaml(path)
        return from_dict(cls, data, str(path))
