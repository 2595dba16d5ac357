"""Measuring the indicators of attack failure (`advbench.output.checks` says what each means).

Model-level checks (`model_checks`) run once per loaded model on at most `MODEL_SAMPLE` clean
images, each as a few batched `sess.run`s: zero or disconnected gradients, predictions that
change under small noise, an unbounded ascent that fails, probabilities returned as logits, and
a forward pass that is not deterministic. Cell-level checks (`cell_checks`) run after an attack:
silent success and incomplete optimisation, on the rows the attack left unflipped.

Every random draw is counter-based (keyed by the check's seed and each image's test-set index),
so a check's value is the same with any batch and on every run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from advbench.contract.attack import Attack
from advbench.contract.dataset import ImageSpec
from advbench.contract.lazy_tf import tf
from advbench.contract.losses import margin
from advbench.contract.model import Network
from advbench.contract.norms import project
from advbench.contract.randomness import random_uniform
from advbench.contract.steps import BatchInputs, StepInputs
from advbench.engine.driver import early_stopping_loop
from advbench.engine.zoo import Loaded
from advbench.output.checks import MODEL_CHECKS, Check
from advbench.output.records import Records, Summary

MODEL_SAMPLE = 1000  # clean images the model-level checks use
UNBOUNDED_SAMPLE = 100  # correctly classified images the unbounded ascent attacks
UNBOUNDED_STEPS, UNBOUNDED_STEP = 50, 0.05  # L∞ sign steps of the margin, eps 1 (any image)
NOISE, NOISE_DRAWS = 0.01, 4
CHECK_SEED = 14  # the model checks' own noise; independent of the run's --seed
CONTINUE_SHARE = 0.1  # incomplete optimisation: this share of the attack's steps again


def _gradient(objective, x):
    """d sum(objective) / dx, or None where the graph does not connect them."""
    (grad,) = tf().gradients(tf().reduce_sum(objective), [x])
    return grad


def model_checks(loaded: Loaded, images: np.ndarray, labels: np.ndarray) -> list[Check]:
    """The model-level checks on the first `MODEL_SAMPLE` of `images` (test-set order)."""
    t = tf()
    images, labels = images[:MODEL_SAMPLE], labels[:MODEL_SAMPLE].astype(np.int64)
    index = np.arange(len(images), dtype=np.int64)
    net, spec = loaded.network, loaded.spec
    lo, hi = spec.value_range
    with loaded.graph.as_default(), t.name_scope("checks"):
        x = t.compat.v1.placeholder(t.float32, [None, spec.pixels])
        y = t.compat.v1.placeholder(t.int64, [None])
        idx = t.compat.v1.placeholder(t.int64, [None])
        logits = net.logits(x)
        pred = t.argmax(logits, 1)
        xent = t.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        grad = _gradient(xent, x)
        if grad is None:
            bad = t.ones_like(y, t.bool)  # disconnected: no image has a gradient
        else:
            finite = t.reduce_all(t.math.is_finite(grad), axis=1)
            bad = t.logical_or(t.logical_not(finite), t.reduce_all(t.equal(grad, 0.0), axis=1))
        # Small noise: the draws stacked into one batch, one forward pass.
        noise = NOISE * (hi - lo)
        noisy = [
            t.clip_by_value(
                x + noise * (2.0 * random_uniform(CHECK_SEED, idx, d, spec.pixels, 5) - 1), lo, hi
            )
            for d in range(NOISE_DRAWS)
        ]
        noisy_pred = t.reshape(t.argmax(net.logits(t.concat(noisy, 0)), 1), [NOISE_DRAWS, -1])
        unstable = t.reduce_any(t.not_equal(noisy_pred, pred[None, :]), axis=0)
        # what the model returns: an imported model's probabilities, before their logarithm
        raw = net.outputs(x)
        in_unit = t.reduce_all(t.logical_and(raw >= -1e-6, raw <= 1 + 1e-6), axis=1)
        sums_one = t.abs(t.reduce_sum(raw, axis=1) - 1.0) < 1e-3
        probability_like = t.logical_and(in_unit, sums_one)
        survived = _unbounded_ascent(net, x, y, spec)
    feed = {x: images, y: labels, idx: index}
    run = loaded.session.run
    first, clean, bad_v, unstable_v, prob_v = run(
        [logits, pred, bad, unstable, probability_like], feed
    )
    second = run(logits, feed)
    correct = clean == labels
    pick = np.flatnonzero(correct)[:UNBOUNDED_SAMPLE]
    left = run(survived, {x: images[pick], y: labels[pick]}) if len(pick) else None
    scale = 1.0 + float(np.max(np.abs(first))) if first.size else 1.0
    return [
        Check.measured("zero gradients", _share(bad_v)),
        Check.measured("unstable predictions", _share(unstable_v[correct])),
        Check.measured("unbounded attack fails", None if left is None else _share(left)),
        Check.measured("probabilities as logits", _share(prob_v)),
        Check.measured("randomness", float(np.max(np.abs(first - second))) / scale),
    ]


def _share(flags: np.ndarray) -> float | None:
    return float(np.mean(flags)) if len(flags) else None


def _unbounded_ascent(net: Network, x, y, spec: ImageSpec):
    """bool [k]: still correctly classified at every iterate of an L∞ sign ascent on the logit
    margin from the clean images, with eps the whole pixel range. No stop, no projection but
    the pixel range; a success anywhere on the path counts (nothing found is lost)."""
    t = tf()
    onehot = t.one_hot(y, spec.classes, dtype=t.float32)
    lo, hi = spec.value_range
    size = UNBOUNDED_STEP * (hi - lo)

    def body(i, xi, alive):
        logits = net.logits(xi)
        alive = t.logical_and(alive, t.equal(t.argmax(logits, 1), y))
        grad = _gradient(-margin(logits, y, onehot), xi)
        step = t.zeros_like(xi) if grad is None else size * t.sign(grad)
        return i + 1, t.clip_by_value(xi + step, lo, hi), alive

    alive0 = t.ones_like(y, t.bool)
    _, x_end, alive = t.compat.v1.while_loop(
        lambda i, *_: i < UNBOUNDED_STEPS, body, [t.constant(0), x, alive0], back_prop=False
    )
    return t.logical_and(alive, t.equal(t.argmax(net.logits(x_end), 1), y))


@dataclass(frozen=True)
class GraphMark:
    """What a graph held before an attack was built: its op count and function names (a
    `tf.while_loop` body is a function of the graph's library, not ops of the graph)."""

    ops: int
    functions: frozenset[str]


def _functions(graph: Any) -> dict[str, Any]:
    return {f.signature.name: f for f in graph.as_graph_def().library.function}


def mark(graph: Any) -> GraphMark:
    """The graph as it is now, to compare with after building an attack."""
    return GraphMark(len(graph.get_operations()), frozenset(_functions(graph)))


def _is_gradient(name: str) -> bool:
    return any(part.startswith("gradients") for part in name.split("/"))


def uses_gradients(graph: Any, since: GraphMark) -> bool:
    """Did the ops and loop bodies created since `since` (one attack's graph) call
    `tf.gradients`? It names all its ops under a `gradients` scope.

    A network's hand-written backward pass (the mlp's `loss_gradient`, which `loss=model`
    uses) is not seen: such a cell counts as gradient-free.
    """
    if any(_is_gradient(op.name) for op in graph.get_operations()[since.ops :]):
        return True
    new = [f for name, f in _functions(graph).items() if name not in since.functions]
    return any(_is_gradient(node.name) for f in new for node in f.node_def)


class _Continued(Attack):
    """`attack` run for `steps` more steps from given images, projected into its threat model;
    the step counter goes on from `offset` so that random draws are fresh ones."""

    def __init__(self, attack: Attack, start, steps: int, offset: int, bound) -> None:
        self.name = f"{attack.name}-continued"
        self.inner, self.start, self.steps, self.offset, self.bound = (
            attack,
            start,
            steps,
            offset,
            bound,
        )

    def is_targeted(self, params: Mapping[str, Any]) -> bool:
        return self.inner.is_targeted(params)

    def iterations(self, params: Mapping[str, Any]) -> int:
        return self.steps

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        return self.start

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        return self.inner.initial_state(net, s, params)

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        shifted = replace(s, iteration=s.iteration + self.offset)
        x, state = self.inner.step_with_state(net, shifted, params)
        if self.bound is not None:
            norm, eps = self.bound
            lo, hi = (
                params.get("clip_min", s.spec.value_range[0]),
                params.get("clip_max", s.spec.value_range[1]),
            )
            x = project(x, s.x0, "inf" if norm == "linf" else "2", eps, lo, hi)
        return x, state

    def success(self, net: Network, logits, s: StepInputs, params: Mapping[str, Any]):
        return self.inner.success(net, logits, s, params)


def cell_checks(
    loaded: Loaded,
    attack: Attack,
    params: Mapping[str, Any],
    seed: int,
    originals: np.ndarray,
    records: Records,
) -> list[Check]:
    """Silent success and incomplete optimisation of one finished cell.

    `originals` are the clean images of `records`' rows. Both look only at the attacked rows
    left unflipped. Silent success: the returned image meets the attack's own `success` (an
    attack with its own graph that lost the point it found), or — for step-loop attacks — the
    start point does (the driver scores iterates from the first step on, so an adversarial
    random start the steps then leave is lost). Incomplete optimisation: `CONTINUE_SHARE` of
    the attack's steps again from the returned images; an attack with its own graph (`build`)
    has no step to continue with (None).
    """
    t = tf()
    # a withdrawn claim meets the attack's criterion by construction: not a silent success
    left = np.flatnonzero(records.attacked & ~records.flipped & ~records.unconfirmed)
    attacked = int(records.attacked.sum())
    if attacked == 0:
        return [
            Check.measured("silent success", None),
            Check.measured("incomplete optimisation", None),
        ]
    own_graph = type(attack).build is not Attack.build
    iterations = attack.iterations(params)
    extra = max(1, math.ceil(CONTINUE_SHARE * iterations))
    threat = attack.threat_model(params)
    bound = (threat.norm, threat.eps) if threat.kind == "bounded" else None
    if len(left) == 0:
        return [
            Check.measured("silent success", 0.0),
            Check.measured("incomplete optimisation", None if own_graph else 0.0),
        ]
    with loaded.graph.as_default(), t.name_scope("cell_checks"):
        ph = t.compat.v1.placeholder
        spec = loaded.spec
        b = BatchInputs(
            ph(t.float32, [None, spec.pixels]),
            ph(t.int64, [None]),
            ph(t.int64, [None]),
            ph(t.int64, [None]),
            seed,
            spec,
        )
        returned = ph(t.float32, [None, spec.pixels])
        net = loaded.network

        def inputs(x, iteration):
            return StepInputs(
                x, b.x, b.labels, b.targets, b.index, t.constant(iteration), seed, (), spec
            )

        silent = attack.success(net, net.logits(returned), inputs(returned, iterations), params)
        continued = None
        if not own_graph:
            start = attack.initial(net, inputs(b.x, -1), params)
            silent = t.logical_or(
                silent, attack.success(net, net.logits(start), inputs(start, 0), params)
            )
            more = _Continued(attack, returned, extra, iterations, bound)
            continued = early_stopping_loop(more, net, b, params).done_at > 0
    targets = np.where(records.target >= 0, records.target, records.label)
    feed = {
        b.x: originals[left],
        b.labels: records.label[left],
        b.targets: targets[left],
        b.index: records.index[left],
        returned: records.adversarial[left],
    }
    silent_v, continued_v = loaded.session.run(
        [silent, silent if continued is None else continued], feed
    )
    return [
        Check.measured("silent success", float(np.sum(silent_v)) / attacked),
        Check.measured(
            "incomplete optimisation", None if own_graph else float(np.sum(continued_v)) / attacked
        ),
    ]


def model_info(loaded: Loaded, images: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    """The model-level checks as stored in the model's record (JSON objects); a network the
    checks cannot run on gets unmeasured (None) values rather than a failed run."""
    try:
        found = model_checks(loaded, images, labels)
    except Exception:
        found = [Check.measured(name, None) for name in MODEL_CHECKS]
    return [c.to_dict() for c in found]


def with_cell_checks(
    summary: Summary,
    loaded: Loaded,
    attack: Attack,
    params: Mapping[str, Any],
    seed: int,
    originals: np.ndarray,
    records: Records,
    since: GraphMark,
) -> Summary:
    """`summary` with the cell's checks and whether the attack's graph (built after `since`)
    used gradients; called before any check adds ops of its own."""
    gradients = uses_gradients(loaded.graph, since)
    try:
        found = cell_checks(loaded, attack, params, seed, originals, records)
    except Exception:  # an attack whose success or step cannot run outside its own loop
        found = [Check.measured(n, None) for n in ("silent success", "incomplete optimisation")]
    attacked = int(records.attacked.sum())
    share = float(records.unconfirmed.sum()) / attacked if attacked else None
    found = [*found, Check.measured("unconfirmed success", share)]
    return replace(summary, checks=tuple(found), uses_gradients=gradients)
