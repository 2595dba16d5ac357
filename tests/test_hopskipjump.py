"""`hopskipjump`: labels only (structurally), adversarial results whose L2 falls with budget,
queries as the algorithm spends them and within `max_queries`, reproducible, batch-independent,
near fmn on the shipped `mlp`, and at least as strong as IBM ART's HopSkipJump."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advbench.contract.steps import BatchInputs
from advbench.engine import checks, runner
from advbench.errors import ParamError

SMALL = {"iterations": "4", "max_eval": "200", "init_eval": "50"}


def _run(registry, loaded, sample, overrides, *, n=12, seed=0, batch_size=10000, name=None):
    attack = registry.attacks.get(name or "hopskipjump")
    params = attack.for_dataset(attack.config(overrides), loaded.spec)
    images, labels, indices = (a[:n] for a in sample)
    data = runner.Sample.of(loaded, images, labels, indices)
    spec = runner.AttackSpec(attack, params, seed)
    return runner.run_attack(loaded, spec, data, batch_size=batch_size)[0]


class _Spy:
    """The network, recording every logits tensor an attack builds."""

    def __init__(self, net):
        self.net, self.seen = net, []

    def logits(self, x):
        z = self.net.logits(x)
        self.seen.append(z)
        return z

    def __getattr__(self, name):
        return getattr(self.net, name)


@pytest.mark.parametrize("norm", ["2", "inf"])
def test_it_reads_nothing_but_labels(registry, shipped, norm):
    """Every logits tensor the attack builds feeds an ArgMax and nothing else; no gradients.
    On `softmax`: the mlp's hand-written backward pass hangs its own ops on its logits."""
    from advbench.contract.lazy_tf import tf

    t, loaded = tf(), shipped("softmax")
    attack = registry.attacks.get("hopskipjump")
    params = attack.for_dataset(attack.config({**SMALL, "norm": norm}), loaded.spec)
    spy = _Spy(loaded.network)
    before = checks.mark(loaded.graph)
    with loaded.graph.as_default():
        ph = t.compat.v1.placeholder
        b = BatchInputs(
            ph(t.float32, [None, loaded.spec.pixels]),
            *(ph(t.int64, [None]) for _ in range(3)),
            0,
            loaded.spec,
        )
        attack.build(spy, b, params)
    assert len(spy.seen) >= 5
    assert {op.type for z in spy.seen for op in z.consumers()} == {"ArgMax"}
    assert not checks.uses_gradients(loaded.graph, before)


def test_queries_are_what_the_algorithm_spends(registry, mlp_loaded, sample):
    """L2: each binary search takes exactly ⌈log2(1/θ)⌉ probes, iteration t n_t draws; what is
    left is noise draws (1 … init_size), step tries (1 … 25 per iteration) and the two final
    checks."""
    rec = _run(registry, mlp_loaded, sample, SMALL)
    a = rec.attacked & rec.flipped
    assert a.sum() >= 10
    searches = math.ceil(math.log2(784**1.5))
    draws = sum(min(int(50 * math.sqrt(i)), 200) for i in range(1, 5))
    rest = rec.queries[a] - (5 * searches + draws + 2)
    assert np.all(rest >= 1 + 4) and np.all(rest <= 100 + 25 * 4), rest


@pytest.mark.slow
def test_results_stay_adversarial_and_shrink_with_budget(registry, mlp_loaded, sample):
    short = _run(registry, mlp_loaded, sample, {**SMALL, "iterations": "1"}, n=10)
    long = _run(registry, mlp_loaded, sample, {**SMALL, "iterations": "6"}, n=10)
    capped = _run(
        registry, mlp_loaded, sample, {**SMALL, "iterations": "6", "max_queries": "900"}, n=6
    )
    for rec in (short, long, capped):
        assert np.all(rec.flipped[rec.attacked])  # MNIST noise: every start is found
        assert np.all(rec.adv_pred[rec.attacked] != rec.label[rec.attacked])
    a = long.attacked
    assert np.median(long.l2[a]) < 0.8 * np.median(short.l2[a])
    assert np.all(long.l2[a] <= short.l2[a] + 1e-4)  # the best point only improves
    assert capped.queries[capped.attacked].max() <= 900


def test_same_seed_same_numbers_and_batching_changes_nothing(registry, mlp_loaded, sample):
    """One graph run three ways; batches of 5 may round the model's products differently,
    so their distances agree to 0.1 %."""
    attack = registry.attacks.get("hopskipjump")
    params = attack.for_dataset(attack.config({**SMALL, "iterations": "2"}), mlp_loaded.spec)
    data = runner.Sample.of(mlp_loaded, *(a[:8] for a in sample))
    spec = runner.AttackSpec(attack, params, 0)
    graph = runner.build_attack_graph(mlp_loaded, spec)
    whole, again, split = (
        runner.run_attack(mlp_loaded, spec, data, graph=graph, batch_size=size)[0]
        for size in (8, 8, 5)
    )
    other = _run(registry, mlp_loaded, sample, {**SMALL, "iterations": "2"}, n=8, seed=1)
    np.testing.assert_array_equal(again.adversarial, whole.adversarial)
    np.testing.assert_array_equal(again.queries, whole.queries)
    np.testing.assert_array_equal(split.flipped, whole.flipped)
    np.testing.assert_allclose(split.l2, whole.l2, rtol=1e-3)
    assert not np.array_equal(other.adversarial, whole.adversarial)


def test_linf(registry, mlp_loaded, sample):
    linf = _run(registry, mlp_loaded, sample, {**SMALL, "norm": "inf"}, n=8)
    assert np.all(linf.flipped[linf.attacked])
    assert np.median(linf.linf[linf.attacked]) < 0.5


@pytest.mark.slow
def test_targeted(registry, mlp_loaded, sample):
    targeted = _run(registry, mlp_loaded, sample, {**SMALL, "target": "8"}, n=20)
    hit = targeted.flipped
    assert hit.sum() > 0 and np.all(targeted.adv_pred[hit] == 8)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("norm", "1", "hopskipjump.norm: choose one of 2, inf"),
        ("max_queries", "0", "hopskipjump.max_queries: must be >= 1"),
        ("overshoot", "2", "hopskipjump.overshoot: must be <= 1.0"),
    ],
)
def test_parameter_errors_name_the_parameter(registry, key, value, message):
    with pytest.raises(ParamError) as err:
        registry.attacks.get("hopskipjump").config({key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_median_l2_near_fmn_and_deepfool(registry, mlp_loaded, sample):
    """Default budget (~24,700 queries), first 30 images of the shipped mlp: measured median
    L2 0.72 against fmn 0.53 and deepfool 0.84 on 20 images; held within 1.6× of fmn and
    1.2× of deepfool."""
    hsj = _run(registry, mlp_loaded, sample, {}, n=30)
    both = hsj.attacked
    medians = {"hsj": float(np.median(hsj.l2[both]))}
    for name in ("fmn", "deepfool"):
        rec = _run(registry, mlp_loaded, sample, {}, n=30, name=name)
        medians[name] = float(np.median(rec.l2[rec.flipped]))
    assert np.all(hsj.flipped[both])
    assert medians["hsj"] <= 1.6 * medians["fmn"], medians
    assert medians["hsj"] <= 1.2 * medians["deepfool"], medians


@pytest.mark.slow
def test_at_least_as_strong_as_art(mlp_loaded):
    """ART 1.19's HopSkipJump and ours, same graph, images, iterations and draws (10
    iterations, 8 images): our success at least ART's, our median L2 at most 5 % above."""
    from advbench.lab import art_hsj

    if not art_hsj.available():
        pytest.skip("IBM ART is not installed")
    from advbench.engine import data
    from advbench.host import plugins

    attack = plugins.load().attacks.get("hopskipjump")
    params = attack.for_dataset(attack.config({"iterations": "10"}), mlp_loaded.spec)
    test = data.read_test_set()
    first = runner.Sample.of(mlp_loaded, test.images[:10], test.labels_int[:10])
    right = np.flatnonzero(first.clean_pred == first.labels)[:8]
    sample = runner.Sample(first.images[right], first.labels[right], right, first.labels[right])
    ours = art_hsj.advbench_side(mlp_loaded, attack, params, sample)
    theirs = art_hsj.art_side(mlp_loaded, params, sample.images, sample.labels)
    assert ours.success >= theirs.success
    assert ours.median_l2 <= 1.05 * theirs.median_l2, (ours, theirs)
