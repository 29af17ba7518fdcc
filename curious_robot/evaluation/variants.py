"""The variants of the paper's comparison and the paper's own numbers: what
:mod:`.reproduce` (one seed) and :mod:`.seeds` (several) both tabulate."""

from __future__ import annotations

from curious_robot import tasks as registry

#: the robot tasks of the comparison: every arm task of the registry
ALL_TASKS = registry.names("arm")
TASK_NAMES = {t: registry.label(t) for t in ALL_TASKS}

#: name -> (row label, tasks for ``train``, or "autoencoder" / "pretext:KIND" / None for
#: random init)
VARIANTS: dict[str, tuple[str, str | None]] = {
    "random": ("root network, random init", None),
    "all": ("root network trained on robot tasks", ",".join(ALL_TASKS)),
    "identity": ("root network trained on identity data only", "inspect"),
    "autoencoder": ("auto-encoder trained on all robot data", "autoencoder"),
    "context": ("context prediction on all robot images", "pretext:context"),
    "colorization": ("colorization on all robot images", "pretext:color"),
    "splitbrain": ("split-brain auto-encoder on all robot images", "pretext:splitbrain"),
    **{f"no-{TASK_NAMES[t]}": (f"all tasks except {TASK_NAMES[t]}",
                               ",".join(x for x in ALL_TASKS if x != t)) for t in ALL_TASKS},
}
MAIN_ROWS = ("random", "all", "identity", "autoencoder")
ABLATION_ROWS = ("all", *(f"no-{TASK_NAMES[t]}" for t in ALL_TASKS))
#: The other self-supervised signals of the lecture (issue 9), on the same stored images.
PRETEXT_ROWS = ("all", "autoencoder", "context", "colorization", "splitbrain")

#: The paper's numbers (Pinto et al., ECCV 2016, Tables 1 and 2: classification accuracy
#: of fc7-level features), per row and dataset; tables head their columns "(paper)".
PAPER_DATASETS = ("Household", "UW RGB-D", "Caltech-256")
PAPER_SOURCE = ("Pinto, Gandhi, Han, Park, Gupta: The Curious Robot: Learning Visual "
                "Representations via Physical Interactions, ECCV 2016, Tables 1 and 2")
PAPER = {
    "random": (0.250, 0.468, 0.242),
    "all": (0.354, 0.693, 0.317),
    "imagenet": (0.625, 0.820, 0.656),
    "identity": (0.315, 0.660, 0.252),
    "autoencoder": (0.296, 0.657, 0.280),
    "no-grasp": (0.309, 0.632, 0.263),
    "no-push": (0.356, 0.710, 0.279),
    "no-poke": (0.342, 0.684, 0.289),
    "no-identity": (0.324, 0.711, 0.297),
}


def fmt3(v) -> str:
    """A table cell: three decimals, '-' for nothing."""
    return "-" if v is None else f"{v:.3f}"


def minutes(m: float) -> str:
    return f"{m:.0f} min" if m >= 0.5 else f"{60 * m:.0f} s"
