"""Training the tutorial's MLP three ways, timed, with the weights compared (`advbench bench`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from advbench.lab.timing import Row, time_call


def bench_training(
    model: Any, config: dict, steps: int, seed: int = 0, repeats: int = 3
) -> tuple[list[Row], dict[str, Any]]:
    """Training the tutorial's MLP three ways on the same batches, with the weights compared.

    The tutorial's own code (`reference.tutorial_training`), advbench's trainer one `sess.run`
    per step (its graph, one thread), and advbench's trainer with the steps inside the graph.
    Each way is run once on a short slice before the clock starts (first-use costs of the
    process), then the three are run in turn, `repeats` rounds, so that a slow spell of this
    machine falls on all of them alike; the figures are the medians, and each round's ratios to
    the in-graph trainer are returned too. Also returned: whether every way ended with the
    in-graph trainer's weights — bit for bit, because this training amplifies any rounding
    difference (README) — and the largest difference if not.
    """
    import tempfile
    from pathlib import Path

    from advbench.engine import data as mnist
    from advbench.engine import zoo
    from advbench.lab import reference

    def tutorial(n: int) -> dict[str, np.ndarray]:
        return reference.tutorial_training(mnist.read_data_sets(one_hot=True, seed=seed), n, seed)

    def advbench_trainer(in_graph: bool) -> Callable[[int], dict[str, np.ndarray]]:
        def train(n: int) -> dict[str, np.ndarray]:
            with tempfile.TemporaryDirectory() as tmp:
                folder = zoo.train(
                    model, {**config, "steps": n}, seed, root=Path(tmp), in_graph=in_graph
                )
                return zoo.read_weights(folder)

        return train

    ways = (
        ("the tutorial's code (section 5.5, tf.Session() defaults)", tutorial),
        ("advbench, 1 sess.run per step (1 thread)", advbench_trainer(False)),
        ("advbench trainer (steps inside the graph)", advbench_trainer(True)),
    )
    for _, train in ways:
        train(min(steps, 1000))  # warm-up
    times: list[list[float]] = [[] for _ in ways]
    weights: list[dict[str, np.ndarray]] = []
    for round_ in range(repeats):
        for way, (_, train) in enumerate(ways):
            out, seconds = time_call(lambda train=train: train(steps))
            times[way].append(seconds)
            if round_ == 0:
                weights.append(out)
    medians = [float(np.median(t)) for t in times]
    rows = [Row(name, float(steps), m) for (name, _), m in zip(ways, medians, strict=True)]
    rounds = [[t[r] / times[-1][r] for t in times[:-1]] for r in range(repeats)]
    ours = weights[-1]
    diffs = [max(float(np.max(np.abs(w[k] - ours[k]))) for k in ours) for w in weights[:-1]]
    return rows, {
        "bit_identical": all(d == 0.0 for d in diffs),
        "max_abs_diff": diffs,
        "ratios_per_round": rounds,
    }
