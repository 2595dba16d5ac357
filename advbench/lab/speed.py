"""`advbench bench`: advbench's speed next to the alternatives, measured in the same run.

For the tutorial's section 6.4 attack (`ifgsm`) on the `mlp`, on the same checkpoint and images:
- the tutorial's own loop: one image at a time, two `sess.run` per iteration, stop at the flip;
- a naive batched loop: every image in one feed, one `sess.run` per iteration, no early stop;
- advbench's `ifgsm` over the test set;
- the arithmetic floor: the FLOPs the attack must do (one forward and one backward-to-input pass
  per image and iteration actually run, from the per-image iterations-to-flip) over this
  machine's float32 matrix-multiply rate, measured here;
- IBM ART's BasicIterativeMethod, when `adversarial-robustness-toolbox` is installed, and
  the same job (the same images, the same budget) done by advbench: ART has no early stop, so
  its per-image-iteration speed and its time for the job are different ratios; both are shown.
And for training the `mlp`: the tutorial's 20,000 `sess.run` steps vs advbench's trainer.
Every figure is per image-iteration (or per step), so the ratios compare the same work.

This module picks the built-ins, measures (`measure`) and renders (`render`, `write_json`); the
tools are in `timing` (rows, timers, the floor), `art` (the optional ART row) and
`train_speed` (training three ways).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.lab import art, ensemble_speed, imported_speed, timing, train_speed

MODEL, ATTACK = "mlp", "ifgsm"  # the tutorial's section 6.4, measured every way
FLOOR_MODEL = "cnn"  # a second model, where PGD and APGD are measured against their floor alone
# at L∞ ε 0.05 most of the cnn's images survive every step (at 0.3 one step breaks nearly all):
# the rows then measure a step's cost, not a graph run's fixed costs
FLOOR_EPS = 0.05
FLOOR_ATTACKS = ("pgd", "apgd")


@dataclass(frozen=True)
class Options:
    """How much `advbench bench` measures (the command line's flags)."""

    limit: int | None  # test images for advbench (None: all)
    sample: int  # images for the tutorial's one-image loop
    naive_images: int  # images for the naive batched loop
    floor_images: int  # images for FLOOR_ATTACKS on FLOOR_MODEL
    art_images: int | None  # images for ART (None: as many as advbench's)
    art_batch: int
    train_steps: int
    ensemble_images: int = 0  # images for the worst-case rows (0: skipped)
    imported_images: int = 0  # images for the imported-model row (0: skipped)
    dataset: Any = None  # advbench.Dataset; None: the default (MNIST)


@dataclass
class Bench:
    """Everything one `advbench bench` measured, in the order it was measured."""

    params: dict[str, Any]  # ATTACK's parameters
    n: int  # test images attacked by advbench
    rows: list[timing.Row]  # advbench, tutorial loop, naive loop, floor, [ART]
    facts: dict[str, Any]
    floor_rows: list[timing.Row]  # FLOOR_ATTACKS on FLOOR_MODEL
    floor_images: int
    memory_mb: float  # peak resident memory after the attack benchmarks
    train_rows: list[timing.Row]
    trained: dict[str, Any]
    worst_case: ensemble_speed.EnsembleBench | None = None
    imported: imported_speed.ImportedBench | None = None


def bench_ifgsm(
    loaded: Any,
    model: Any,
    attack: Any,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    sample: int,
    naive_images: int,
    art_images: int | None = None,
    art_batch: int = 128,
    repeats: int = 3,
) -> tuple[list[timing.Row], dict[str, Any]]:
    """The attack measured every way on the same model and images.

    Every way gets its graph built and run once before the clock starts (graph optimisation
    and first-touch allocation are one-off costs, not the attack's). advbench's and the
    tutorial loop's figures are the median of `repeats` runs; the naive loop and ART, whose
    runs are long, are timed once.
    """
    from advbench.contract.lazy_tf import tf
    from advbench.engine import runner
    from advbench.lab import reference

    t = tf()
    n = len(images)
    spec = runner.AttackSpec(attack, params, 0)
    whole = runner.Sample.of(loaded, images, labels)
    clean = whole.clean_pred
    rows: list[timing.Row] = []
    budget = attack.iterations(params)

    # advbench, whole set: one warm-up run, then `repeats` runs, each followed by a measure of
    # the GEMM rate, so that the floor is measured side by side with the attack (this machine's
    # speed drifts); the figures are the medians, and every pair's own ratio is kept.
    graph = runner.build_attack_graph(loaded, spec)
    whole_set = timing.attack_run(loaded, spec, whole, graph)
    whole_set()
    runs, rates = [], []
    for _ in range(repeats):
        runs.append(whole_set())
        rates.append(timing.matmul_rate(1.0))
    records = runs[0][0]
    seconds, rate = float(np.median([s for _, s in runs])), float(np.median(rates))
    work = timing.work(records, budget)
    flops = timing.floor_flops(model, work)
    floor_ratios = [s / (flops / r) for (_, s), r in zip(runs, rates, strict=True)]
    rows.append(
        timing.Row(
            "advbench ifgsm (batched while_loop, early stop)",
            work,
            seconds,
            f"{int(records.attacked.sum())} images",
        )
    )

    # the tutorial's loop on a sample
    k = min(sample, n)
    reference.per_image_iterations(loaded, spec, whole.first(1))
    (ref_its, _), seconds = timing.median_of(
        repeats,
        lambda: timing.time_call(
            lambda: reference.per_image_iterations(loaded, spec, whole.first(k))
        ),
    )
    attacked = clean[:k] == labels[:k]
    ref_work = np.where(ref_its > 0, ref_its, budget)[attacked].sum()
    rows.append(
        timing.Row(
            "tutorial loop (1 image, 2 sess.run per iteration)",
            float(ref_work),
            seconds,
            f"sample of {k} images",
        )
    )
    mismatches = int(np.sum(ref_its != records.iterations[:k]))

    # naive batched loop: one feed of all images, one sess.run per iteration, no early stop
    m = min(naive_images, n)
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, loaded.spec.pixels])
        y = t.compat.v1.placeholder(t.float32, [None, loaded.spec.classes])
        _, grad = loaded.network.loss_gradient(x, y)
        x_star = t.clip_by_value(x + params["step"] * t.sign(grad), 0.0, 1.0)
        pred = t.argmax(loaded.network.logits(x_star), 1)
    onehot = np.eye(loaded.spec.classes, dtype=np.float32)[labels[:m]]
    loaded.session.run([x_star, pred], {x: images[:m], y: onehot})  # warm-up

    def naive():
        current = images[:m]
        for _ in range(budget):
            current, _p = loaded.session.run([x_star, pred], {x: current, y: onehot})
        return current

    _, seconds = timing.time_call(naive)
    rows.append(
        timing.Row(
            "naive batched loop (1 sess.run per iteration, no early stop)",
            float(m * budget),
            seconds,
            f"{m} images",
        )
    )

    rows.append(
        timing.Row(
            "arithmetic floor (FLOPs / measured GEMM rate)",
            work,
            flops / rate,
            f"{rate / 1e9:.0f} GFLOP/s",
        )
    )

    facts: dict[str, Any] = {
        "gemm_gflops": rate / 1e9,
        "floor_ratios": floor_ratios,
        "reference_mismatches": mismatches,
        "reference_sample": k,
    }
    a = min(art_images or n, n)
    art_row = art.bim(loaded, params, images[:a], labels[:a], art_batch)
    if art_row is not None:
        rows.append(art_row)
        # the same job (these images, this budget) done by advbench: ART has no early stop
        same = rows[0].seconds
        if a < n:
            _, same = timing.median_of(
                repeats,
                timing.attack_run(loaded, spec, whole.first(a), graph),
            )
        facts["art_same_task"] = {
            "images": a,
            "art_seconds": art_row.seconds,
            "advbench_seconds": same,
        }
    return rows, facts


def measure(registry: Any, options: Options) -> Bench:
    """Every measurement of `advbench bench`, on the registered built-ins it names."""
    from advbench.engine import data, zoo

    model, attack = registry.models.get(MODEL), registry.attacks.get(ATTACK)
    config, params = model.config(), attack.config()
    test = data.read_test_set(options.dataset)
    n = min(options.limit or test.num_examples, test.num_examples)
    loaded = zoo.load(model, config, model.default_seed, options.dataset)
    try:
        rows, facts = bench_ifgsm(
            loaded,
            model,
            attack,
            params,
            test.images[:n],
            test.labels_int[:n],
            options.sample,
            options.naive_images,
            options.art_images,
            options.art_batch,
        )
    finally:
        loaded.close()
    model_2 = registry.models.get(FLOOR_MODEL)
    loaded = zoo.load(model_2, model_2.config(), model_2.default_seed, options.dataset)
    m = min(options.floor_images, n)
    try:
        # each at the same budget: the same images, the same threat model
        floor_rows = [
            timing.attack_vs_floor(
                loaded,
                model_2,
                attack,
                attack.for_dataset(attack.config({"eps": FLOOR_EPS}), loaded.spec),
                test.images[:m],
                test.labels_int[:m],
                timing.matmul_rate(1.0),
            )
            for attack in map(registry.attacks.get, FLOOR_ATTACKS)
        ]
    finally:
        loaded.close()
    worst_case = None
    if options.ensemble_images:
        worst_case = ensemble_speed.measure(
            registry, min(options.ensemble_images, n), options.dataset
        )
    imported = None
    if options.imported_images:
        k = min(options.imported_images, n)
        imported = imported_speed.measure(
            registry, test.images[:k], test.labels_int[:k], options.dataset
        )
    memory = timing.peak_rss_mb()
    train_rows, trained = train_speed.bench_training(model, config, options.train_steps)
    return Bench(
        params, n, rows, facts, floor_rows, m, memory, train_rows, trained, worst_case, imported
    )


def render(b: Bench) -> str:
    """The tables and verdicts `advbench bench` prints."""
    from tabulate import tabulate

    params, facts = b.params, b.facts
    ours, floor = b.rows[0], b.rows[3]
    table = [
        [
            r.name,
            f"{r.work:,.0f}",
            f"{r.seconds:.3f}",
            f"{r.per_unit * 1e6:.2f}",
            f"{r.per_unit / ours.per_unit:.1f}×",
            f"{ours.per_unit / floor.per_unit:.2f}×" if r is ours else "",
            r.note,
        ]
        for r in b.rows
    ]
    headers = (
        "method",
        "image-iterations",
        "seconds",
        "µs per image-it",
        "vs advbench",
        "advbench vs floor",
        "note",
    )
    lines = [
        f"{ATTACK} on {MODEL} (step {params['step']}, ≤{params['iterations']} iterations), "
        f"{b.n} test images; GEMM {facts['gemm_gflops']:.0f} GFLOP/s",
        tabulate(table, headers=headers),
        "advbench vs the floor, each run against the GEMM rate measured right after it: "
        + ", ".join(f"{r:.2f}×" for r in facts["floor_ratios"]),
        f"per-image iterations-to-flip, tutorial loop vs advbench on the "
        f"{facts['reference_sample']}-image sample: {facts['reference_mismatches']} differ",
    ]
    same = facts.get("art_same_task")
    if same:
        lines.append(
            f"the same job on the first {same['images']} images (attack each until it flips or "
            f"{params['iterations']} steps): ART {same['art_seconds']:.2f} s, advbench "
            f"{same['advbench_seconds']:.2f} s: "
            f"{same['art_seconds'] / same['advbench_seconds']:.1f}× faster"
        )
    else:
        lines.append("IBM ART not installed: pip install 'advbench[art]' to compare with its BIM")
    budgets = {"pgd": "40 steps of 0.01", "apgd": "100 steps from 2ε, ce"}
    lines += [
        f"{row.name.split()[0]} ({budgets.get(row.name.split()[0], '')}, eps {FLOOR_EPS}), "
        f"{b.floor_images} images: {row.seconds:.2f} s for {row.work:,.0f} image-iterations "
        f"({row.per_unit * 1e6:.0f} µs each); {row.note}"
        for row in b.floor_rows
    ]
    if b.worst_case is not None:
        lines += ensemble_speed.render(b.worst_case)
    if b.imported is not None:
        lines += imported_speed.render(b.imported)
    lines += [
        f"peak memory after the attack benchmarks: {b.memory_mb:.0f} MiB",
        "",
    ]
    trainer = b.train_rows[-1]
    lines.append(
        tabulate(
            [
                [
                    r.name,
                    f"{r.work:,.0f}",
                    f"{r.seconds:.2f}",
                    f"{r.per_unit * 1e6:.1f}",
                    f"{r.seconds / trainer.seconds:.1f}×" if r is not trainer else "",
                ]
                for r in b.train_rows
            ],
            headers=(f"{MODEL} training", "steps", "seconds", "µs per step", "advbench is"),
        )
    )
    trained = b.trained
    diffs = trained["max_abs_diff"]
    verdict = (
        "equal bit for bit"
        if trained["bit_identical"]
        else "DIFFER (largest |Δ|: " + ", ".join(f"{d:.3g}" for d in diffs) + ")"
    )
    for way, other in enumerate(("the tutorial's code", "the per-step loop")):
        lines.append(
            f"in-graph trainer vs {other}, round by round: "
            + ", ".join(f"{r[way]:.1f}× faster" for r in trained["ratios_per_round"])
        )
    lines.append(f"weights after training, all three ways: {verdict}")
    return "\n".join(lines)


def write_json(b: Bench, path: Path) -> None:
    """Every figure of the run as JSON (`advbench bench --json`)."""
    out = {
        "attack": [vars(r) for r in b.rows],
        "training": [vars(r) for r in b.train_rows],
        "training_weights": b.trained,
        **{f"{r.name.split()[0]}_cnn": vars(r) for r in b.floor_rows},
        **b.facts,
        "worst_case": ensemble_speed.as_json(b.worst_case) if b.worst_case else None,
        "imported": imported_speed.as_json(b.imported) if b.imported else None,
        "peak_rss_mb": b.memory_mb,
        "n": b.n,
    }
    path.write_text(json.dumps(out, indent=2) + "\n")
