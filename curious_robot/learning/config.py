"""The configurations of the network and of training, without torch: command lines take
their defaults from here (``--help`` stays fast) and :mod:`curious_robot.node_config`
gives the online learner the same defaults. :mod:`.networks` and :mod:`.train` re-export
them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from curious_robot import tasks as registry

#: AlexNet's conv layers: (out channels, kernel, stride, padding).
_CONVS = ((96, 11, 4, 0), (256, 5, 1, 2), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1))
MIN_INPUT_SIZE = 63
#: how a patch becomes the network's input: "contrast" keeps its centre at the camera's own
#: resolution as grey local contrast (the texture, not the colour), "crop" that centre in
#: colour, "resize" scales the whole patch (ModelConfig.patch_view)
PATCH_VIEWS = ("contrast", "crop", "resize")


@dataclass
class ModelConfig:
    #: the defaults are what the system runs (train, the online learner, the baselines):
    input_size: int = 96  # px, square; 96-128 on a CPU, 227 as in AlexNet on a GPU
    width: float = 0.5  # multiplies every channel count and fc width (1.0: AlexNet's)
    norm: str = "batch"  # 'batch' (BatchNorm after every conv), 'lrn' (AlexNet) or 'none'
    fc6_dim: int = 4096  # before ``width``
    fc7_dim: int = 1024  # identity embedding, before ``width``
    head_dim: int = 512  # hidden units of the heads, before ``width``
    dropout: float = 0.5  # fc6 and the heads' hidden layer (poke uses it for MC dropout)
    #: how the patch of a task with ``crop_view`` (poke) becomes the input: "crop", its
    #: centre at the camera's resolution, where a material's texture shows; "contrast",
    #: that centre as grey local contrast (each pixel over the blurred brightness around
    #: it: the texture freed of the object's colour and light;
    #: :func:`~curious_robot.learning.data.local_contrast`; the default:
    #: docs/architecture.md, "Signal audit"); "resize", the whole patch scaled down
    #: (checkpoints keep the view they were trained with; see checkpoint.py). Other
    #: tasks' patches are always resized.
    patch_view: str = "contrast"
    #: with ``norm`` "batch": a task with ``crop_view`` (poke) keeps BatchNorm running
    #: statistics of its own, beside the shared ones the other tasks' resized patches set,
    #: re-estimated on clean training patches at every checkpoint and evaluation
    #: (``Trainer.calibrate``). Training normalises each task's batch by that batch's
    #: statistics either way; this changes only what the poke head reads at inference
    #: (checkpoints written before this field existed keep shared ones).
    crop_stats: bool = True

    def __post_init__(self):
        if int(self.input_size) != self.input_size or self.input_size < MIN_INPUT_SIZE:
            raise ValueError(f"input_size must be an integer >= {MIN_INPUT_SIZE} px, got "
                             f"{self.input_size!r}")
        self.input_size = int(self.input_size)
        if not 0.0 < self.width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {self.width!r}")
        if self.norm not in ("batch", "lrn", "none"):
            raise ValueError(f"norm must be 'batch', 'lrn' or 'none', got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.patch_view not in PATCH_VIEWS:
            raise ValueError(f"patch_view must be one of {', '.join(PATCH_VIEWS)}, got "
                             f"{self.patch_view!r}")

    def view(self, task: str) -> str:
        """How ``task``'s patch becomes the input (:data:`PATCH_VIEWS`):
        :attr:`patch_view` for a task with ``crop_view``, "resize" for the others."""
        return self.patch_view if registry.get(task).crop_view else "resize"

    def scaled(self, n: int) -> int:
        return max(8, int(round(n * self.width)))

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self.scaled(c[0]) for c in _CONVS)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})



def trainable() -> tuple[str, ...]:
    """Registered tasks the trainer knows: those with a head (inspect trains identity)."""
    return tuple(t.name for t in registry.with_head())


def default_loss_weights() -> dict[str, float]:
    return {t.name: t.loss_weight for t in registry.with_head() if t.loss_weight != 1.0}


def default_root_grads() -> dict[str, float]:
    return {t.name: t.root_grad for t in registry.with_head() if t.root_grad != 1.0}


@dataclass
class TrainConfig:
    tasks: tuple[str, ...] = field(default_factory=registry.trained_by_default)
    batch_size: int = 32  # records per task per cycle (identity: 2 pairs per record)
    optimizer: str = "adam"  # 'adam' or 'rmsprop' (the paper's)
    lr: float = 3e-4
    weight_decay: float = 0.0
    #: training (not held-out) records a task needs before it joins the cycle
    min_records: int = 8
    rotate_grasp: bool = True  # random k*10 degree patch rotation, label bin shifted by k
    #: photometric jitter of training images (brightness / contrast +-this, channel gains
    #: +-this/4); 0 turns it off
    color_jitter: float = 0.3
    #: probability that a grasp / push / identity image has its colour channels reordered
    #: or its colour removed (:func:`~curious_robot.learning.data.scramble_colors`)
    color_scramble: float = 0.5
    identity_margin: float = 0.5  # cosine embedding loss margin for negative pairs
    #: identity loss over the batch's pairings: "cosine" (margin loss, negatives averaged),
    #: "hard" (averaged over the negatives inside the margin only) or "nce" (InfoNCE)
    identity_loss: str = "nce"
    identity_temperature: float = 0.1  # InfoNCE softmax temperature
    #: identity loss over every pairing of the batch (N x N), not only the drawn pairs
    identity_in_batch: bool = True
    #: identity images turned by random multiples of 90 degrees and mirrored
    identity_turn: bool = True
    #: poke patches turned and mirrored the same way: how an object feels does not depend
    #: on which way the camera looks at it
    poke_turn: bool = True
    crash_horizon_s: float = 1.0  # frames further than this from a collision are "safe"
    #: task -> loss weight (1.0 where not named; default: each task's ``loss_weight``)
    loss_weights: dict[str, float] = field(default_factory=default_loss_weights)
    #: task -> share of its gradient that reaches the root (1.0 where not named; default:
    #: each task's ``root_grad``); the head trains on the whole gradient
    root_grads: dict[str, float] = field(default_factory=default_root_grads)
    #: normalisation stats are refitted when a task's training data doubles, until this many
    stats_freeze: int = 2000
    eval_max_records: int = 512  # held-out records per task that evaluate() reads
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.tasks, str):
            self.tasks = tuple(t.strip() for t in self.tasks.split(",") if t.strip())
        self.tasks = tuple(self.tasks)
        known = trainable()
        unknown = [t for t in self.tasks if t not in known]
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of {', '.join(known)}, "
                             f"got {','.join(self.tasks) or 'nothing'}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0.0 <= self.color_jitter < 1.0:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter}")
        if not 0.0 <= self.color_scramble <= 1.0:
            raise ValueError(f"color_scramble must be in [0, 1], got {self.color_scramble}")
        bad = {t: w for t, w in self.loss_weights.items()
               if t not in known or not float(w) >= 0}
        if bad:
            raise ValueError(f"loss_weights must map tasks of {', '.join(known)} to "
                             f"weights >= 0, got {bad}")
        bad = {t: g for t, g in self.root_grads.items()
               if t not in known or not 0.0 <= float(g) <= 1.0}
        if bad:
            raise ValueError(f"root_grads must map tasks of {', '.join(known)} to shares "
                             f"in [0, 1], got {bad}")
        if self.identity_loss not in ("cosine", "hard", "nce"):
            raise ValueError("identity_loss must be 'cosine', 'hard' or 'nce', got "
                             f"{self.identity_loss!r}")
        if not self.identity_temperature > 0:
            raise ValueError(f"identity_temperature must be > 0, got "
                             f"{self.identity_temperature}")
        if self.min_records < 1:
            raise ValueError(f"min_records must be >= 1, got {self.min_records}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A saved config; one saved before a field existed keeps that field's earlier
        behaviour (:data:`BEFORE_FIELD`), so resuming an old run does not change its
        recipe."""
        known = {f.name for f in fields(cls)}
        old = {k: v for k, v in BEFORE_FIELD.items() if k not in d}
        return cls(**old, **{k: v for k, v in d.items() if k in known})


#: What a config saved before these fields existed meant by leaving them out.
BEFORE_FIELD = {"color_scramble": 0.0, "identity_loss": "cosine", "loss_weights": {},
                "root_grads": {}}
