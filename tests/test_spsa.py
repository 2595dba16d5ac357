"""`spsa`: scores only (no gradient op in its graph), its queries as its parameters imply,
reproducible, independent of batching, and close to `pgd` on the shipped `mlp`."""

from __future__ import annotations

import numpy as np
import pytest

from advbench.engine import checks, runner
from advbench.errors import ParamError

N = 40
QUICK = {"iterations": "20", "samples": "16"}


def _run(registry, loaded, sample, overrides, *, n=N, seed=0, batch_size=10000, name="spsa"):
    attack = registry.attacks.get(name)
    params = attack.for_dataset(attack.config(overrides), loaded.spec)
    images, labels, indices = (a[:n] for a in sample)
    data = runner.Sample.of(loaded, images, labels, indices)
    spec = runner.AttackSpec(attack, params, seed)
    return runner.run_attack(loaded, spec, data, batch_size=batch_size)[0]


def test_spsa_never_differentiates_the_model(registry, mlp_loaded, sample):
    before = checks.mark(mlp_loaded.graph)
    _run(registry, mlp_loaded, sample, {"iterations": "2", "samples": "4"}, n=5)
    assert not checks.uses_gradients(mlp_loaded.graph, before)


def test_queries_are_what_the_parameters_imply(registry, mlp_loaded, sample):
    """1 for the start, then 2 · samples proposals + the new point's scores per step taken."""
    rec = _run(registry, mlp_loaded, sample, QUICK)
    a = rec.attacked
    steps = np.where(rec.flipped, rec.iterations, 20)
    np.testing.assert_array_equal(rec.queries[a], 1 + 33 * steps[a])
    assert np.all(rec.queries[~a] == -1)
    assert rec.flipped.sum() > 0 and (a & ~rec.flipped).sum() > 0  # both kinds of row seen


def test_square_counts_one_query_per_step(registry, mlp_loaded, sample):
    rec = _run(registry, mlp_loaded, sample, {"iterations": "30"}, name="square")
    steps = np.where(rec.flipped, rec.iterations, 30)
    np.testing.assert_array_equal(rec.queries[rec.attacked], 1 + steps[rec.attacked])


@pytest.mark.slow
def test_same_seed_same_numbers_and_batching_changes_nothing(registry, mlp_loaded, sample):
    """Batches of 7 give the same steps and queries; pixels agree to float32 rounding (the
    model's matrix products round differently for another batch size: 1e-6 seen)."""
    quick = {"iterations": "10", "samples": "8"}
    whole = _run(registry, mlp_loaded, sample, quick, n=20)
    again = _run(registry, mlp_loaded, sample, quick, n=20)
    split = _run(registry, mlp_loaded, sample, quick, n=20, batch_size=7)
    other = _run(registry, mlp_loaded, sample, quick, n=20, seed=1)
    np.testing.assert_array_equal(again.adversarial, whole.adversarial)
    for rec in (again, split):
        np.testing.assert_array_equal(rec.iterations, whole.iterations)
        np.testing.assert_array_equal(rec.queries, whole.queries)
        np.testing.assert_allclose(rec.adversarial, whole.adversarial, atol=1e-4)
    assert not np.array_equal(other.adversarial, whole.adversarial)


def test_targeted_spsa_reaches_its_targets(registry, mlp_loaded, sample):
    rec = _run(registry, mlp_loaded, sample, {**QUICK, "target": "3", "iterations": "40"})
    hit = rec.flipped
    assert hit.sum() >= 0.5 * rec.attacked.sum()
    assert np.all(rec.adv_pred[hit] == 3)
    assert np.all(rec.linf[rec.attacked] <= 0.3 + 1e-6)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("samples", "0", "spsa.samples: must be >= 1"),
        ("delta", "0", "spsa.delta: must be > 0.0"),
        ("samples", "1000000000", "spsa.samples: "),
    ],
)
def test_parameter_errors_name_the_parameter(registry, key, value, message):
    with pytest.raises(ParamError) as err:
        registry.attacks.get("spsa").config({key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_spsa_is_close_to_pgd_at_the_same_eps(registry, mlp_loaded, sample):
    """Robust accuracy on the first 100 images at L∞ 0.1, default SPSA (100 steps, 25,701
    queries at most) against 40-step PGD: measured 0.05 (spsa) and 0.03 (pgd) on the shipped
    mlp; SPSA may trail by at most 0.05."""
    eps = {"eps": "0.1"}
    spsa = _run(registry, mlp_loaded, sample, eps, n=100)
    pgd = _run(registry, mlp_loaded, sample, eps, n=100, name="pgd")
    robust = {k: float((r.attacked & ~r.flipped).sum()) / 100 for k, r in (("s", spsa), ("p", pgd))}
    assert robust["s"] <= robust["p"] + 0.05, robust


def test_the_default_time_limit_grows_with_a_query_budget(registry):
    """A query-based attack's work is its queries, not its steps: the default cell time limit
    covers SPSA's 1 + 257 × 100 = 25,701 forward passes an image (the most it recorded on
    `cnn-pgd`) and HopSkipJump's `max_queries`, where one forward and backward pass per step
    would allow 150 for HopSkipJump's 50 iterations (its CNN cells used to time out)."""
    from advbench.engine.batches import default_cell_timeout

    spsa, hsj, pgd = (registry.attacks.get(n) for n in ("spsa", "hopskipjump", "pgd"))
    assert spsa.query_budget(spsa.config()) == 25701
    assert hsj.query_budget(hsj.config()) == 25000
    assert pgd.query_budget(pgd.config()) is None
    clean = 0.01  # seconds: one clean forward pass over the cell's images
    by_steps = default_cell_timeout(50, clean)
    by_queries = default_cell_timeout(50, clean, hsj.query_budget(hsj.config()))
    assert by_steps == pytest.approx(600 + 20 * 150 * clean)
    assert by_queries == pytest.approx(600 + 20 * 25000 * clean)
    assert default_cell_timeout(100, clean, 10) == default_cell_timeout(100, clean)
