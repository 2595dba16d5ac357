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
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Row:
    """One measured way of doing the work."""

    name: str
    work: float  # image-iterations (attacks) or steps (training)
    seconds: float
    note: str = ""

    @property
    def per_unit(self) -> float:
        return self.seconds / self.work if self.work else float("nan")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_rate(seconds: float = 2.0) -> float:
    """float32 GEMM throughput of this machine (FLOP/s), TensorFlow on all cores."""
    from advbench.contract.lazy_tf import tf
    from advbench.engine.graph import session

    t = tf()
    n = 2048
    graph = t.Graph()
    with graph.as_default():
        a = t.Variable(t.random.uniform([n, n], seed=1))
        b = t.Variable(t.random.uniform([n, n], seed=2))
        reps = 8
        acc = a
        for _ in range(reps):
            acc = t.matmul(acc, b) * 1e-3
        out = t.reduce_sum(acc)
        init = t.compat.v1.global_variables_initializer()
    with session(graph) as sess:
        sess.run(init)
        sess.run(out)
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            sess.run(out)
            runs += 1
        elapsed = time.perf_counter() - started
    return runs * reps * 2.0 * n**3 / elapsed


def forward_flops(model: Any) -> float:
    """FLOPs of one forward pass for one image, counted by TensorFlow's profiler."""
    from tensorflow.python.framework import ops as tf_ops

    from advbench.contract.lazy_tf import tf

    t = tf()
    graph = t.Graph()
    with graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [1, 784])
        logits = model.build(model.config()).logits(x)
    # only the ops the logits depend on (not the variables' initialisers)
    seen, stack, total = set(), [logits.op], 0
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        try:
            stats = tf_ops.get_stats_for_node_def(graph, op.node_def, "flops")
            total += stats.value or 0
        except (ValueError, KeyError):
            pass
        stack.extend(i.op for i in op.inputs)
    return float(total)


def _work(records: Any, budget: int) -> float:
    """Image-iterations actually run: each attacked image until its first success, or the
    whole `budget` if it never succeeds."""
    return float(np.where(records.flipped, records.iterations, budget)[records.attacked].sum())


def _floor_flops(model: Any, work: float) -> float:
    """FLOPs of `work` image-iterations: one forward and one backward-to-input pass each (the
    backward to the input costs about one forward pass)."""
    return work * 2.0 * forward_flops(model)


def bench_attack_vs_floor(
    loaded: Any,
    model: Any,
    attack: Any,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    rate: float,
) -> Row:
    """An attack over `images` next to its floor: the FLOPs of the image-iterations it ran
    (`_floor_flops`) over the GEMM `rate`."""
    from advbench.engine import runner

    spec = runner.AttackSpec(attack, params, 0)
    sample = runner.Sample.of(loaded, images, labels)
    graph = runner.build_attack_graph(loaded, spec)
    # warm-up on the same images: graph optimisation and first-touch allocation are one-off
    attack_run = _attack_run(loaded, spec, sample, graph)
    attack_run()
    rec, seconds = attack_run()
    work = _work(rec, attack.iterations(params))
    floor = _floor_flops(model, work) / rate
    return Row(
        f"{attack.name} on {model.name}",
        work,
        seconds,
        f"floor {floor:.2f} s, {seconds / floor:.2f}× the floor",
    )


def _time(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def _median_of(repeats: int, fn: Callable[[], tuple[Any, float]]) -> tuple[Any, float]:
    """(the first run's output, the median seconds) of `repeats` runs of a timed `fn`."""
    runs = [fn() for _ in range(repeats)]
    return runs[0][0], float(np.median([seconds for _, seconds in runs]))


def _attack_run(loaded: Any, spec: Any, sample: Any, graph: Any) -> Callable[[], Any]:
    """A call running advbench's attack on `images`, returning (records, seconds).

    The seconds are the attack's own (feeding, the graph, fetching: what every report prints),
    not the per-image L2/L∞ bookkeeping afterwards, which the other ways do not do either.
    """
    from advbench.engine import runner

    return lambda: runner.run_attack(loaded, spec, sample, graph=graph)


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
) -> tuple[list[Row], dict[str, Any]]:
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
    rows: list[Row] = []
    budget = attack.iterations(params)

    # advbench, whole set: one warm-up run, then `repeats` runs, each followed by a measure of
    # the GEMM rate, so that the floor is measured side by side with the attack (this machine's
    # speed drifts); the figures are the medians, and every pair's own ratio is kept.
    graph = runner.build_attack_graph(loaded, spec)
    whole_set = _attack_run(loaded, spec, whole, graph)
    whole_set()
    runs, rates = [], []
    for _ in range(repeats):
        runs.append(whole_set())
        rates.append(matmul_rate(1.0))
    records = runs[0][0]
    seconds, rate = float(np.median([s for _, s in runs])), float(np.median(rates))
    work = _work(records, budget)
    flops = _floor_flops(model, work)
    floor_ratios = [s / (flops / r) for (_, s), r in zip(runs, rates, strict=True)]
    rows.append(
        Row(
            "advbench ifgsm (batched while_loop, early stop)",
            work,
            seconds,
            f"{int(records.attacked.sum())} images",
        )
    )

    # the tutorial's loop on a sample
    k = min(sample, n)
    reference.per_image_iterations(loaded, spec, whole.first(1))
    (ref_its, _), seconds = _median_of(
        repeats,
        lambda: _time(lambda: reference.per_image_iterations(loaded, spec, whole.first(k))),
    )
    attacked = clean[:k] == labels[:k]
    ref_work = np.where(ref_its > 0, ref_its, budget)[attacked].sum()
    rows.append(
        Row(
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
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        y = t.compat.v1.placeholder(t.float32, [None, 10])
        _, grad = loaded.network.loss_gradient(x, y)
        x_star = t.clip_by_value(x + params["step"] * t.sign(grad), 0.0, 1.0)
        pred = t.argmax(loaded.network.logits(x_star), 1)
    onehot = np.eye(10, dtype=np.float32)[labels[:m]]
    loaded.session.run([x_star, pred], {x: images[:m], y: onehot})  # warm-up

    def naive():
        current = images[:m]
        for _ in range(budget):
            current, _p = loaded.session.run([x_star, pred], {x: current, y: onehot})
        return current

    _, seconds = _time(naive)
    rows.append(
        Row(
            "naive batched loop (1 sess.run per iteration, no early stop)",
            float(m * budget),
            seconds,
            f"{m} images",
        )
    )

    rows.append(
        Row(
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
    art = _art_bim(loaded, params, images[:a], labels[:a], art_batch)
    if art is not None:
        rows.append(art)
        # the same job (these images, this budget) done by advbench: ART has no early stop
        same = rows[0].seconds
        if a < n:
            _, same = _median_of(
                repeats,
                _attack_run(loaded, spec, whole.first(a), graph),
            )
        facts["art_same_task"] = {"images": a, "art_seconds": art.seconds, "advbench_seconds": same}
    return rows, facts


@contextlib.contextmanager
def _logging_handlers_kept() -> Iterator[None]:
    """Importing ART runs `logging.config.dictConfig`, which closes every logging handler the
    host process has (pytest's log capture, an application's own): keep them open."""
    import logging.config

    clear = logging.config._clearExistingHandlers  # type: ignore[attr-defined]
    logging.config._clearExistingHandlers = lambda: None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        logging.config._clearExistingHandlers = clear  # type: ignore[attr-defined]


def _art_bim(
    loaded: Any, params: dict, images: np.ndarray, labels: np.ndarray, batch: int
) -> Row | None:
    """IBM ART's BasicIterativeMethod on the same graph and budget, if ART is installed.

    ART's batch size is ours to choose: 128 was its fastest here (32, its default, is about
    1.7× slower; 1,000 about 1.4× slower), so the comparison is against ART at its best.
    """
    import warnings

    try:
        with warnings.catch_warnings(), _logging_handlers_kept():
            warnings.simplefilter("ignore")  # ART warns about missing PyTorch at import
            from art.attacks.evasion import BasicIterativeMethod  # type: ignore[import-not-found]
            from art.estimators.classification import TensorFlowClassifier  # type: ignore
    except Exception:
        return None
    from advbench.contract.lazy_tf import tf

    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        y = t.compat.v1.placeholder(t.float32, [None, 10])
        logits = loaded.network.logits(x)
        loss = t.reduce_sum(loaded.network.loss(x, y))
        # ART builds its gradient ops in the default graph: ours, in graph mode
        classifier = TensorFlowClassifier(
            input_ph=x,
            output=logits,
            labels_ph=y,
            loss=loss,
            sess=loaded.session,
            clip_values=(0.0, 1.0),
        )
        iterations = int(params["iterations"])
        bim = BasicIterativeMethod(
            classifier,
            eps=params["step"] * iterations,
            eps_step=params["step"],
            max_iter=iterations,
            batch_size=batch,
            verbose=False,
        )
        onehot = np.eye(10)[labels]
        bim.generate(images[:batch], y=onehot[:batch])  # warm-up, as for every other row
        _, seconds = _time(lambda: bim.generate(images, y=onehot))
    return Row(
        "IBM ART BasicIterativeMethod (no early stop)",
        float(len(images) * iterations),
        seconds,
        f"{len(images)} images, batch {batch}",
    )


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
            out, seconds = _time(lambda train=train: train(steps))
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
