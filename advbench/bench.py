"""`advbench bench`: advbench's speed next to the alternatives, measured in the same run.

For the tutorial's section 6.4 attack (`ifgsm`) on the `mlp`, on the same checkpoint and images:
- the tutorial's own loop: one image at a time, two `sess.run` per iteration, stop at the flip;
- a naive batched loop: every image in one feed, one `sess.run` per iteration, no early stop;
- advbench's `ifgsm` over the test set;
- the arithmetic floor: the FLOPs the attack must do (one forward and one backward-to-input pass
  per image and iteration actually run, from the per-image iterations-to-flip) over this
  machine's float32 matrix-multiply rate, measured here;
- IBM ART's BasicIterativeMethod, when `adversarial-robustness-toolbox` is installed.
And for training the `mlp`: the tutorial's 20,000 `sess.run` steps vs advbench's trainer.
Every figure is per image-iteration (or per step), so the ratios compare the same work.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
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
    from advbench.graph import session, tf

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

    from advbench.graph import tf

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


def bench_attack_vs_floor(
    loaded: Any,
    model: Any,
    attack: Any,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    rate: float,
) -> Row:
    """An attack over `images` next to its floor: (forward + backward-to-input) FLOPs per
    image-iteration actually run (backward to the input costs about one forward pass)."""
    from advbench import runner

    idx = np.arange(len(images), dtype=np.int64)
    clean = runner.predict(loaded, images)
    graph = runner.build_attack_graph(loaded, attack, params, 0)
    runner.run_attack(
        loaded, attack, params, 0, images[:50], labels[:50], idx[:50], clean[:50], graph=graph
    )  # warm-up: graph optimisation is not the attack's cost
    (rec, _), seconds = _time(
        lambda: runner.run_attack(
            loaded, attack, params, 0, images, labels, idx, clean, graph=graph
        )
    )
    its = np.where(rec.flipped, rec.iterations, attack.iterations(params))[rec.attacked]
    work = float(its.sum())
    floor = work * 2.0 * forward_flops(model) / rate
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


def bench_ifgsm(
    loaded: Any,
    model: Any,
    attack: Any,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    sample: int,
    naive_images: int,
) -> tuple[list[Row], dict[str, Any]]:
    """The attack measured four ways on the same model and images."""
    from advbench import reference, runner
    from advbench.graph import tf

    t = tf()
    n = len(images)
    idx = np.arange(n, dtype=np.int64)
    clean = runner.predict(loaded, images)
    rows: list[Row] = []

    # advbench, whole set
    (records, _), seconds = _time(
        lambda: runner.run_attack(loaded, attack, params, 0, images, labels, idx, clean)
    )
    its = np.where(records.flipped, records.iterations, attack.iterations(params))
    work = float(its[records.attacked].sum())
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
    (ref_its, _), seconds = _time(
        lambda: reference.per_image_iterations(
            loaded, attack, params, 0, images[:k], labels[:k], idx[:k]
        )
    )
    attacked = clean[:k] == labels[:k]
    ref_work = np.where(ref_its > 0, ref_its, attack.iterations(params))[attacked].sum()
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

    def naive():
        current = images[:m]
        for _ in range(attack.iterations(params)):
            current, _p = loaded.session.run([x_star, pred], {x: current, y: onehot})
        return current

    _, seconds = _time(naive)
    rows.append(
        Row(
            "naive batched loop (1 sess.run per iteration, no early stop)",
            float(m * attack.iterations(params)),
            seconds,
            f"{m} images",
        )
    )

    rate = matmul_rate()
    floor = work * 2.0 * forward_flops(model) / rate  # forward + backward to the input
    rows.append(
        Row(
            "arithmetic floor (FLOPs / measured GEMM rate)",
            work,
            floor,
            f"{rate / 1e9:.0f} GFLOP/s",
        )
    )

    art = _art_bim(loaded, params, images[:k], labels[:k])
    if art is not None:
        rows.append(art)
    return rows, {
        "gemm_gflops": rate / 1e9,
        "reference_mismatches": mismatches,
        "reference_sample": k,
        "gemm_rate": rate,
    }


def _art_bim(loaded: Any, params: dict, images: np.ndarray, labels: np.ndarray) -> Row | None:
    """IBM ART's BasicIterativeMethod on the same graph and budget, if ART is installed."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ART warns about missing PyTorch at import
            from art.attacks.evasion import BasicIterativeMethod  # type: ignore[import-not-found]
            from art.estimators.classification import TensorFlowClassifier  # type: ignore
    except Exception:
        return None
    from advbench.graph import tf

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
        iterations = 300
        bim = BasicIterativeMethod(
            classifier,
            eps=params["step"] * iterations,
            eps_step=params["step"],
            max_iter=iterations,
            verbose=False,
        )
        _, seconds = _time(lambda: bim.generate(images, y=np.eye(10)[labels]))
    return Row(
        "IBM ART BasicIterativeMethod (no early stop)",
        float(len(images) * iterations),
        seconds,
        f"{len(images)} images",
    )


def bench_training(model: Any, config: dict, steps: int) -> list[Row]:
    """The tutorial's per-step `sess.run` loop vs advbench's trainer, same math and batches."""
    import tempfile
    from pathlib import Path

    from advbench import zoo

    cfg = {**config, "steps": steps}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, in_graph in (
            ("tutorial loop (1 sess.run per step)", False),
            ("advbench trainer (steps inside the graph)", True),
        ):
            _, seconds = _time(
                lambda in_graph=in_graph, name=name: zoo.train(
                    model, cfg, 0, root=Path(tmp) / name[:8], in_graph=in_graph
                )
            )
            rows.append(Row(name, float(steps), seconds))
    return rows
