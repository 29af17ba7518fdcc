"""``curious-robot reproduce --seeds 0,1,2``: the comparison replicated over seeds.

Each seed runs :mod:`.reproduce`'s whole per-seed pipeline in its own work folder (its own
collection and training; the held-out renders and the category set are the same for every
seed). This module holds the pure part: parsing ``--seeds``, the scores and differences
over seeds, and the report (``OUT/table.md``, ``OUT/chart.png``, ``OUT/results.json``).

A seed's run, as the functions here read it: ``{"results": {variant: WORK/eval/<v>.json},
"categories": {variant: WORK/eval/<v>.categories.json}}``.

Differences: per seed, a variant's per-unit scores (held-out objects for R@1 and the shape
1-NN, category-set instances for the category 1-NN) minus the baseline's on the same units
(:func:`metrics.paired_difference`); across seeds, the mean of those per-seed differences
and its standard error over the seeds (their standard deviation / sqrt(seeds)). A
difference "exceeds two s.e." when its mean is further from zero than twice that error.
"""

from __future__ import annotations

import math

import numpy as np

from curious_robot.evaluation import variants as rp

#: The variants ``--seeds`` trains when ``--variants`` is not given (the pretext signals
#: only when named).
DEFAULT_VARIANTS = (*rp.MAIN_ROWS, *rp.ABLATION_ROWS[1:])
#: key -> label of the report's main metrics (all at the report layer)
MAIN_METRICS = {"category": "category 1-NN (test)", "recall_at_1": "R@1",
                "nn_accuracy_all": "shape NN, all objects"}
#: comparison groups of the differences: key -> heading
GROUPS = {"contribution": "Each task's contribution: all tasks minus all tasks except it",
          "vs_random": "Minus random init", "vs_autoencoder": "Minus the auto-encoder"}
#: per-seed differences are printed in the table up to this many seeds
PRINT_PER_SEED = 5


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; distinct integers >= 0, else ``ValueError``."""
    parts = [p.strip() for p in str(text).split(",")]
    if not parts or any(not p for p in parts):
        raise ValueError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2")
    seeds = []
    for p in parts:
        try:
            s = int(p)
        except ValueError:
            raise ValueError(f"--seeds {text!r}: {p!r} is not an integer") from None
        if s < 0:
            raise ValueError(f"--seeds {text!r}: seeds must be >= 0, got {s}")
        if s in seeds:
            raise ValueError(f"--seeds {text!r}: seed {s} is given twice")
        seeds.append(s)
    return seeds


def _num(x) -> float | None:
    """JSON-safe float: NaN (an error from one value) becomes ``None``."""
    return None if x is None or not math.isfinite(x) else float(x)


def mean_se(values) -> tuple[float, float]:
    """Mean and its standard error (sample s.d. / sqrt(n)); the error is NaN for n < 2."""
    v = np.asarray(list(values), np.float64)
    if not len(v):
        return float("nan"), float("nan")
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))


def exceeds_two_se(mean: float | None, se: float | None) -> bool:
    """Is ``mean`` further from zero than two standard errors (a known, finite error)?"""
    return mean is not None and se is not None and math.isfinite(se) \
        and abs(mean) > 2.0 * se


# -- reading one seed's run ----------------------------------------------------------------


def val_score(run: dict, name: str, layer: str) -> float | None:
    """One variant's category 1-NN accuracy on the validation split (``None``: none)."""
    q = run.get("categories", {}).get(name, {}).get("val_by_layer", {}).get(layer, {})
    return q.get("nn_accuracy")


def best_layer(cells: dict) -> str | None:
    """The layer of the highest mean among ``{layer: over_seeds(...)}`` (the earlier layer
    on a tie); ``None`` when no layer has a score."""
    from curious_robot.learning.networks import LAYERS

    means = {L: c["mean"] for L, c in cells.items() if c["mean"] is not None}
    return max(means, key=lambda L: (means[L], -LAYERS.index(L))) if means else None


def category_layer(val_layers: dict, layer: str) -> tuple[str, str]:
    """The layer the report's category 1-NN is read at and how it was chosen, from the
    validation scores ``{variant: {layer: over_seeds(...)}}``: where ``all`` (all robot
    tasks) is best, mean over seeds; ``layer`` (the report layer) when there is no ``all``
    or no validation score. The test split never takes part in the choice."""
    chosen = best_layer(val_layers.get("all", {}))
    return (chosen, "validation") if chosen else (layer, "report layer")


def unit_scores(run: dict, name: str, metric: str, layer: str) -> dict | None:
    """Per-unit scores of one variant in one seed's run (``None`` when missing):
    category-set instances for ``category``, held-out objects otherwise."""
    if metric == "category":
        q = run.get("categories", {}).get(name, {}).get("by_layer", {}).get(layer, {})
        return q.get("per_instance")
    q = run.get("results", {}).get(name, {}).get("retrieval", {}).get(layer, {})
    return q.get("per_instance", {}).get(metric)


def score(run: dict, name: str, metric: str, layer: str) -> float | None:
    """One variant's score in one seed's run (``None`` when missing)."""
    if metric == "category":
        q = run.get("categories", {}).get(name, {}).get("by_layer", {}).get(layer, {})
        return q.get("nn_accuracy")
    return run.get("results", {}).get(name, {}).get("retrieval", {}).get(layer, {}).get(metric)


def over_seeds(values: dict) -> dict:
    """``{seed: value}`` -> mean, standard error over seeds, n and the values."""
    have = {s: v for s, v in values.items() if v is not None}
    m, se = mean_se(have.values())
    return {"mean": _num(m), "se": _num(se), "n_seeds": len(have),
            "per_seed": {str(s): v for s, v in have.items()}}


def seed_difference(runs: dict, a: str, b: str, metric: str, layer: str,
                    layer_b: str | None = None) -> dict | None:
    """``a`` minus ``b`` on ``metric`` (``b`` read at ``layer_b`` when given): per seed
    paired over the units both have, then the mean of the per-seed differences and its
    standard error over seeds; ``None`` when no seed has both."""
    from curious_robot.evaluation.metrics import paired_difference

    per_seed, unit_diffs = {}, {}
    for seed, run in runs.items():
        x = unit_scores(run, a, metric, layer)
        y = unit_scores(run, b, metric, layer_b or layer)
        if not x or not y:
            continue
        common = sorted(set(x) & set(y))
        if not common:
            continue
        d, se = paired_difference([x[k] for k in common], [y[k] for k in common])
        per_seed[seed] = {"difference": d, "se": _num(se), "n": len(common)}
        unit_diffs[seed] = {k: x[k] - y[k] for k in common}
    if not per_seed:
        return None
    m, se = mean_se(p["difference"] for p in per_seed.values())
    # Every seed sees the same objects / instances, so the seeds do not average their
    # sampling away: the error over units of the seed-averaged per-unit difference.
    units = sorted(set.intersection(*(set(u) for u in unit_diffs.values())))
    _, units_se = mean_se(np.mean([unit_diffs[s][k] for s in unit_diffs]) for k in units)
    return {"mean": _num(m), "se": _num(se), "n_seeds": len(per_seed),
            "exceeds_2se": exceeds_two_se(_num(m), _num(se)),
            "units_se": _num(units_se), "n_units": len(units),
            "exceeds_2_units_se": exceeds_two_se(_num(m), _num(units_se)),
            "per_seed": {str(s): p for s, p in per_seed.items()}}


def comparisons(names) -> dict[str, dict[str, tuple[str, str]]]:
    """``{group: {row: (variant, baseline)}}`` of :data:`GROUPS` for the variants run."""
    names = list(names)
    out: dict = {g: {} for g in GROUPS}
    if "all" in names:
        for t in rp.ALL_TASKS:
            ablated = f"no-{rp.TASK_NAMES[t]}"
            if ablated in names:
                out["contribution"][rp.TASK_NAMES[t]] = ("all", ablated)
    for group, base in (("vs_random", "random"), ("vs_autoencoder", "autoencoder")):
        if base in names:
            out[group] = {n: (n, base) for n in names if n != base}
    return out


def build(runs: dict, names, layer: str) -> dict:
    """Everything the report shows: scores over seeds, the differences of every
    comparison and metric (the category 1-NN at :func:`category_layer`, the others at
    ``layer``), the category accuracy at every layer on test and validation, and each
    variant's category test at its own best validation layer."""
    from curious_robot.learning.networks import LAYERS

    names = list(names)
    val_layers = {n: {L: over_seeds({s: val_score(r, n, L) for s, r in runs.items()})
                      for L in LAYERS} for n in names}
    cat_layer, chosen_by = category_layer(val_layers, layer)
    at = {m: cat_layer if m == "category" else layer for m in MAIN_METRICS}
    scores = {n: {m: over_seeds({s: score(r, n, m, at[m]) for s, r in runs.items()})
                  for m in MAIN_METRICS} for n in names}
    diffs: dict = {}
    for group, rows in comparisons(names).items():
        diffs[group] = {}
        for row, (a, b) in rows.items():
            cells = {m: seed_difference(runs, a, b, m, at[m]) for m in MAIN_METRICS}
            if any(cells.values()):
                diffs[group][row] = cells
    layers = {n: {L: over_seeds({s: score(r, n, "category", L) for s, r in runs.items()})
                  for L in LAYERS} for n in names}
    layer_diffs = {}
    if "random" in names:
        layer_diffs = {n: {L: seed_difference(runs, n, "random", "category", L)
                           for L in LAYERS} for n in names if n != "random"}
    own = {n: L for n in names if (L := best_layer(val_layers[n]))}
    own_scores = {n: {"layer": L, **over_seeds({s: score(r, n, "category", L)
                                                 for s, r in runs.items()})}
                  for n, L in own.items()}
    own_diffs = {}
    if "all" in own:
        own_diffs = {b: seed_difference(runs, "all", b, "category", own["all"], own[b])
                     for b in ("random", "autoencoder") if b in own}
    return {"layer": layer, "category_layer": cat_layer, "category_layer_chosen_by":
            chosen_by, "seeds": [int(s) for s in runs], "variants": names,
            "metrics": dict(MAIN_METRICS), "scores": scores, "differences": diffs,
            "category_layers": layers, "category_layers_val": val_layers,
            "category_layers_minus_random": layer_diffs,
            "category_own_layer": own_scores, "category_own_layer_all_minus": own_diffs}


# -- report --------------------------------------------------------------------------------


def _pm(cell: dict | None) -> str:
    if not cell or cell.get("mean") is None:
        return "-"
    se = cell.get("se")
    return f"{cell['mean']:.3f}" + ("" if se is None else f" ± {se:.3f}")


def _points(cell: dict | None, per_seed: bool) -> str:
    if not cell or cell.get("mean") is None:
        return "-"
    se = cell.get("se")
    text = f"{100 * cell['mean']:+.1f}" + ("" if se is None else f" ± {100 * se:.1f}")
    if per_seed:
        text += " (" + ", ".join(f"{100 * p['difference']:+.1f}"
                                 for p in cell["per_seed"].values()) + ")"
    return text


def _yes(cell: dict | None) -> str:
    return "-" if not cell or cell.get("mean") is None else \
        ("yes" if cell["exceeds_2se"] else "no")


def _label(name: str) -> str:
    return rp.VARIANTS[name][0] if name in rp.VARIANTS else name


def _work_minutes(seed_summary: dict) -> float:
    """Minutes of work on one seed, over every invocation that worked on its folder."""
    runs = seed_summary.get("invocations") or []
    return sum(r["minutes"] for r in runs) if runs else seed_summary["minutes"]


def _records(summary: dict, seeds) -> list[str]:
    """The sentence naming the seeds this invocation read back from their records."""
    read = [(s, ps) for s in seeds if (ps := summary["per_seed"][str(s)]).get("record")]
    if not read:
        return []
    return ["", "Seeds finished by an earlier invocation, read back from their records "
            "(made by code with the same fingerprint: `reproduce.code_fingerprint`): "
            + "; ".join(f"seed {s} ({_when(ps['record_made'])}, commit "
                        f"{(ps.get('record_commit') or 'unknown')[:12]})"
                        for s, ps in read) + "."]


def _when(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def render_table(summary: dict, res: dict) -> str:
    import time

    from curious_robot.learning.networks import LAYERS

    seeds, layer = res["seeds"], res["layer"]
    cat_layer = res.get("category_layer", layer)
    n = len(seeds)
    per_seed = n <= PRINT_PER_SEED
    cats = summary.get("categories") or {}
    ev = summary.get("evalset") or {}
    lines = [
        f"# The Curious Robot over {n} seeds",
        "",
        f"Generated by `curious-robot reproduce --scale {summary['scale']:g} --seeds "
        f"{','.join(str(s) for s in seeds)}` "
        f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(summary['finished']))}, "
        f"{rp.minutes(summary['minutes'])} this invocation). Each seed collected its own "
        "store and trained every variant from its own initialisation (random init: that "
        "seed's untrained network); the held-out renders and the category set are the "
        "same for every seed. Columns marked **(paper)** are the paper's own numbers "
        f"({rp.PAPER_SOURCE}), on its data sets: not comparable cell by cell with this "
        "project's columns, only the direction of each difference is.",
        *_records(summary, seeds),
        "",
        f"Metrics, frozen root features at layer `{layer}`, the category 1-NN at "
        f"`{cat_layer}`:",
        "",
        f"- **category 1-NN (test)**: everyday object categories "
        f"({cats.get('n_categories', '?')} categories, test split: "
        f"{cats.get('n_instances', '?')} instances, {cats.get('n_images', '?')} images; "
        "never trained on, and no recipe choice was made on this split): 1-nearest-"
        "neighbour (cosine) category accuracy, the neighbour always a view of another "
        f"instance; read at `{cat_layer}`, "
        + ("the layer where `all` (all robot tasks) scores best on the category set's "
           "validation split, mean over seeds: chosen by `reproduce` from validation "
           "instances, never from the test split;"
           if res.get("category_layer_chosen_by") == "validation" else
           "the report layer (no validation scores to choose from);"),
        f"- **R@1**: instance retrieval over the {ev.get('n_objects', '?')} held-out objects "
        "(another view of the same object nearest);",
        "- **shape NN, all objects**: shape family of the nearest image of another held-out "
        "object.",
        "",
        f"## Scores: mean over {n} seeds ± one standard error over seeds",
        "",
        "The error is the spread of the per-seed scores / sqrt(seeds): how much collection "
        "and training vary, on these fixed objects and instances.",
        "",
        "| features | " + " | ".join(f"{d} (paper)" for d in rp.PAPER_DATASETS) + " | "
        + " | ".join(MAIN_METRICS.values()) + " |",
        "|---|" + "---:|" * (len(rp.PAPER_DATASETS) + len(MAIN_METRICS)),
    ]
    for name in res["variants"]:
        paper = " | ".join(rp.fmt3(v) for v in rp.PAPER.get(name, (None,) * 3))
        ours = " | ".join(_pm(res["scores"][name][m]) for m in MAIN_METRICS)
        lines.append(f"| {_label(name)} | {paper} | {ours} |")
    lines += [
        "",
        "## Differences (points)",
        "",
        "Per seed, the variant's per-unit scores minus the baseline's on the same units "
        "(held-out objects for R@1 and shape, category instances for the category 1-NN), "
        f"paired; then the **mean of the {n} per-seed differences ± its standard error over "
        "seeds** (their standard deviation / sqrt(seeds))"
        + (", and in brackets each seed's difference" if per_seed else "")
        + ". **> 2 s.e.**: whether the mean is further from zero than two of those errors "
        f"(with {n} seeds the error itself is rough). That error is how much collection "
        "and training vary; every seed sees the same objects and instances, so it leaves "
        "out their sampling, whose error (over units, of the seed-averaged paired "
        "difference) is in `results.json` as `units_se`; differences that pass the first "
        "test but not this one are listed under each table.",
        "",
    ]
    head = ("| comparison | " + " | ".join(f"{label} | > 2 s.e." for label in
                                           MAIN_METRICS.values()) + " |")
    rule = "|---|" + "---:|---|" * len(MAIN_METRICS)
    for group, heading in GROUPS.items():
        rows = res["differences"].get(group) or {}
        if not rows:
            continue
        lines += [f"### {heading}", "", head, rule]
        for row, cells in rows.items():
            label = row if group == "contribution" else _label(row)
            lines.append(f"| {label} | " + " | ".join(
                f"{_points(cells.get(m), per_seed)} | {_yes(cells.get(m))}"
                for m in MAIN_METRICS) + " |")
        weak = [f"{row if group == 'contribution' else _label(row)}: {label} "
                f"({100 * c['mean']:+.1f}; ± {100 * c['units_se']:.1f} over "
                f"{c['n_units']} units)"
                for row, cells in rows.items() for m, label in MAIN_METRICS.items()
                if (c := cells.get(m)) and c["exceeds_2se"] and c["units_se"] is not None
                and not c["exceeds_2_units_se"]]
        if weak:
            lines += ["", "Over two s.e. across seeds, but within two s.e. over the objects "
                      "/ instances: " + "; ".join(weak) + "."]
        lines.append("")
    lines += [f"## Category 1-NN (test) at every layer, mean over {n} seeds", "",
              "| variant | " + " | ".join(LAYERS) + " |", "|---|" + "---:|" * len(LAYERS)]
    order = sorted(res["variants"], key=lambda v: (v != "random", v != "all"))
    for name in order:
        lines.append(f"| {name} | " + " | ".join(
            _pm({"mean": res["category_layers"][name][L]["mean"]}) for L in LAYERS) + " |")
    val = res.get("category_layers_val") or {}
    for name in order:
        if any((val.get(name, {}).get(L) or {}).get("mean") is not None for L in LAYERS):
            lines.append(f"| {name}, validation split | " + " | ".join(
                _pm({"mean": val[name][L]["mean"]}) for L in LAYERS) + " |")
    below = res["category_layers_minus_random"].get("all")
    if below:
        lines.append("| all minus random (points) | " + " | ".join(
            _points(below[L], False) for L in LAYERS) + " |")
        lower = [L for L in LAYERS if below[L] and below[L]["mean"] < 0]
        clearly = [L for L in lower if below[L]["exceeds_2se"]]
        lines += ["", ("`all` is not below random init at any layer (mean over seeds)."
                       if not lower else f"`all` is below random init at {', '.join(lower)}"
                       + (f", by more than two s.e. at {', '.join(clearly)}." if clearly
                          else ", by less than two s.e. at each.")),
                  "(Differences ± one standard error over seeds of the per-seed paired "
                  "differences.)"]
    own = res.get("category_own_layer") or {}
    if own:
        lines += ["", f"## Category 1-NN (test), each variant at its own best validation "
                  f"layer, mean over {n} seeds", "",
                  "The layer where each variant scores best on the validation split (mean "
                  "over seeds): no variant is judged at a layer chosen for another.", "",
                  "| variant | layer (chosen on validation) | category 1-NN (test) |",
                  "|---|---|---:|"]
        for name in order:
            if name in own:
                lines.append(f"| {_label(name)} | {own[name]['layer']} | "
                             f"{_pm(own[name])} |")
        for base, cell in (res.get("category_own_layer_all_minus") or {}).items():
            if cell:
                lines += ["", f"`all` at `{own['all']['layer']}` minus {_label(base)} at "
                          f"`{own[base]['layer']}`: {_points(cell, per_seed)} points "
                          f"({'more' if cell['exceeds_2se'] else 'not more'} than two "
                          "s.e.)."]
    lines += ["", "## Interactions trained on, per seed", "",
              "| seed | " + " | ".join(rp.TASK_NAMES[t] for t in rp.ALL_TASKS)
              + " | minutes of work |",
              "|---:|" + "---:|" * (len(rp.ALL_TASKS) + 1)]
    for s in seeds:
        ps = summary["per_seed"][str(s)]
        tasks = ps["store"]["tasks"]
        lines.append(f"| {s} | " + " | ".join(str(tasks.get(t, {}).get("train", "-"))
                                               for t in rp.ALL_TASKS)
                     + f" | {_work_minutes(ps):.1f} |")
    lines += ["", f"Training: {summary['steps']} steps per variant and seed. Chart: "
              "`chart.png`; all numbers, per seed too: `results.json`.", ""]
    return "\n".join(lines)


def render_chart(res: dict, path) -> None:
    """Top: each task's contribution (all minus all-but-it); bottom: each variant minus
    random init; per main metric, in points, bars ± two standard errors over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(g, t) for g, t in (("contribution", "Each task's contribution (all tasks "
                                                   "minus all except it)"),
                                  ("vs_random", "Minus random init"))
              if res["differences"].get(g)]
    fig, axes = plt.subplots(max(1, len(panels)), 1, squeeze=False,
                             figsize=(max(7.0, 1.2 * len(res["variants"]) + 2),
                                      3.8 * max(1, len(panels))))
    w = 0.8 / len(MAIN_METRICS)
    for ax, (group, title) in zip(axes[:, 0], panels):
        rows = list(res["differences"][group])
        x = np.arange(len(rows))
        for j, (metric, label) in enumerate(MAIN_METRICS.items()):
            cells = [res["differences"][group][r].get(metric) or {} for r in rows]
            ax.bar(x + (j - (len(MAIN_METRICS) - 1) / 2) * w,
                   [100 * (c.get("mean") or 0.0) for c in cells], w, label=label,
                   yerr=[200 * (c.get("se") or 0.0) for c in cells], capsize=3)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(rows, rotation=20, ha="right")
        ax.set_ylabel("points")
        ax.set_title(f"{title}\nmean over {len(res['seeds'])} seeds of the paired per-seed "
                     "differences, ± two standard errors over seeds", fontsize=9)
        ax.legend(ncol=3, fontsize=8, loc="best")
        ax.grid(axis="y", alpha=0.3)
    if not panels:
        axes[0][0].text(0.5, 0.5, "no differences to show", ha="center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
