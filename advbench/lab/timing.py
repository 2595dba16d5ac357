"""The measuring tools of `advbench bench`: a measured row, timers, and the arithmetic floor.

The floor of an attack is the FLOPs it must do (one forward and one backward-to-input pass per
image and iteration actually run) over this machine's float32 matrix-multiply rate, measured
in the same process, so every speed can be read against what the hardware allows.
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
    """FLOPs of one forward pass for one image of the shape the model declares, counted by
    TensorFlow's profiler."""
    from tensorflow.python.framework import ops as tf_ops

    from advbench.contract.lazy_tf import tf

    t = tf()
    graph = t.Graph()
    with graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [1, int(np.prod(model.input_shape))])
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


def forward_seconds(loaded: Any, images: np.ndarray, repeats: int = 5) -> float:
    """Median wall seconds of one forward pass of the loaded model over `images` as one batch
    (the ops built and run once first: graph optimisation is not a forward pass's cost)."""
    from advbench.contract.lazy_tf import tf

    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, images.shape[1]])
        logits = loaded.network.logits(x)
    run = lambda: loaded.session.run(logits, {x: images})  # noqa: E731
    run()
    return median_of(repeats, lambda: time_call(run))[1]


def work(records: Any, budget: int) -> float:
    """Image-iterations actually run: each attacked image until its first success, or the
    whole `budget` if it never succeeds."""
    return float(np.where(records.flipped, records.iterations, budget)[records.attacked].sum())


def floor_flops(model: Any, work: float) -> float:
    """FLOPs of `work` image-iterations: one forward and one backward-to-input pass each (the
    backward to the input costs about one forward pass)."""
    return work * 2.0 * forward_flops(model)


def time_call(fn: Callable[[], Any]) -> tuple[Any, float]:
    """(`fn()`, the wall seconds it took)."""
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def median_of(repeats: int, fn: Callable[[], tuple[Any, float]]) -> tuple[Any, float]:
    """(the first run's output, the median seconds) of `repeats` runs of a timed `fn`."""
    runs = [fn() for _ in range(repeats)]
    return runs[0][0], float(np.median([seconds for _, seconds in runs]))


def attack_vs_floor(
    loaded: Any,
    model: Any,
    attack: Any,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    rate: float,
) -> Row:
    """An attack over `images` next to its floor: the FLOPs of the image-iterations it ran
    (`floor_flops`) over the GEMM `rate`."""
    from advbench.engine import runner

    spec = runner.AttackSpec(attack, params, 0)
    sample = runner.Sample.of(loaded, images, labels)
    graph = runner.build_attack_graph(loaded, spec)
    # warm-up on the same images: graph optimisation and first-touch allocation are one-off
    timed = attack_run(loaded, spec, sample, graph)
    timed()
    rec, seconds = timed()
    done = work(rec, attack.iterations(params))
    floor = floor_flops(model, done) / rate
    return Row(
        f"{attack.name} on {model.name}",
        done,
        seconds,
        f"floor {floor:.2f} s, {seconds / floor:.2f}× the floor",
    )


def attack_run(loaded: Any, spec: Any, sample: Any, graph: Any) -> Callable[[], Any]:
    """A call running advbench's attack on `images`, returning (records, seconds).

    The seconds are the attack's own (feeding, the graph, fetching: what every report prints),
    not the per-image L2/L∞ bookkeeping afterwards, which the other ways do not do either.
    """
    from advbench.engine import runner

    return lambda: runner.run_attack(loaded, spec, sample, graph=graph)
