"""The tutorial's attacks under the batched driver: reference loop, batching, seeds.

Their contract (range, budget, real successes) is in test_contract.py."""

from __future__ import annotations

import numpy as np
import pytest

from advbench.engine import runner
from advbench.lab import reference


def _run(registry, loaded, name, overrides, sample, n, seed=0, batch=runner.DEFAULT_BATCH):
    attack = registry.attacks.get(name)
    spec = runner.AttackSpec(attack, attack.config(overrides), seed)
    data = runner.Sample.of(loaded, *(a[:n] for a in sample))
    records, _ = runner.run_attack(loaded, spec, data, batch_size=batch)
    return spec, data, records


def test_ifgsm_is_far_stronger_than_noise(registry, mlp_loaded, sample):
    _, _, grad = _run(registry, mlp_loaded, "ifgsm", {}, sample, 200)
    _, _, noise = _run(registry, mlp_loaded, "noise", {}, sample, 200)
    assert grad.flipped.sum() > 0.9 * grad.attacked.sum()
    assert grad.flipped.sum() > 1.5 * noise.flipped.sum()


@pytest.mark.cpu_path
@pytest.mark.parametrize(("name", "n"), [("ifgsm", 40), ("noise", 12)])
def test_batched_driver_equals_the_tutorial_loop_bit_for_bit(registry, mlp_loaded, sample, name, n):
    """The driver's bookkeeping (compaction, early stop, scatter) is exact: fed one image per
    batch it does the per-image loop's arithmetic on the same shapes, so iterations-to-flip
    and final images equal the reference loop's bit for bit on every CPU kind."""
    spec, data, records = _run(registry, mlp_loaded, name, {}, sample, n, batch=1)
    ref_its, ref_final = reference.per_image_iterations(mlp_loaded, spec, data)
    np.testing.assert_array_equal(records.iterations, ref_its)
    np.testing.assert_array_equal(records.adversarial, ref_final)


@pytest.mark.cpu_path
def test_whole_batch_driver_follows_the_tutorial_loop_but_for_rounding(
    registry, mlp_loaded, sample
):
    """At the full batch, the GEMM's blocking differs from the one-image loop's, so float
    rounding differs, and with it the sign of a gradient component that is almost zero: such
    an image takes another path. Which images do depends on the CPU kind (README,
    "Reproducibility"); what holds on every kind is that few do, and that both ways still
    end on an adversarial (or the same unflipped) prediction.
    """
    n = 200
    spec, data, records = _run(registry, mlp_loaded, "ifgsm", {}, sample, n)
    ref_its, ref_final = reference.per_image_iterations(mlp_loaded, spec, data)
    attacked = records.attacked.sum()
    diverged = (np.abs(records.adversarial - ref_final) > 1e-6).any(axis=1)
    assert diverged.sum() <= 0.05 * attacked
    assert (records.iterations != ref_its).sum() <= 0.02 * attacked
    assert np.array_equal(records.iterations > 0, ref_its > 0)
    np.testing.assert_array_equal(records.adv_pred, runner.predict(mlp_loaded, ref_final))


def test_batch_size_does_not_change_noise(registry, mlp_loaded, sample):
    """Noise is keyed by image index, so batching never changes an image's noise."""
    _, _, a = _run(registry, mlp_loaded, "noise", {"iterations": "60"}, sample, 100, batch=100)
    _, _, b = _run(registry, mlp_loaded, "noise", {"iterations": "60"}, sample, 100, batch=7)
    np.testing.assert_array_equal(a.iterations, b.iterations)
    np.testing.assert_array_equal(a.adversarial, b.adversarial)


@pytest.mark.cpu_path
def test_same_seed_same_numbers_other_seed_other_noise(registry, mlp_loaded, sample):
    _, _, a = _run(registry, mlp_loaded, "noise", {"iterations": "60"}, sample, 100, seed=1)
    _, _, b = _run(registry, mlp_loaded, "noise", {"iterations": "60"}, sample, 100, seed=1)
    _, _, c = _run(registry, mlp_loaded, "noise", {"iterations": "60"}, sample, 100, seed=2)
    np.testing.assert_array_equal(a.adversarial, b.adversarial)
    assert not np.array_equal(a.adversarial, c.adversarial)


def test_counter_based_randomness_is_fair_and_independent(mlp_loaded):
    from advbench.contract.lazy_tf import tf
    from advbench.contract.randomness import random_normal, random_signs, random_uniform

    t = tf()
    with mlp_loaded.graph.as_default():
        idx = t.constant(np.arange(200, dtype=np.int64))
        ops = [
            random_signs(0, idx, t.constant(3), 784),
            random_signs(0, idx, t.constant(4), 784),
            random_signs(1, idx, t.constant(3), 784),
            random_uniform(0, idx, t.constant(3), 784),
            random_normal(0, idx, t.constant(3), 784),
        ]
    a, b, c, u, z = mlp_loaded.session.run(ops)
    assert set(np.unique(a)) == {-1.0, 1.0}
    assert abs(a.mean()) < 0.01
    assert abs((a * b).mean()) < 0.01  # iterations are uncorrelated
    assert abs((a * c).mean()) < 0.01  # seeds are uncorrelated
    assert abs((a[:-1] * a[1:]).mean()) < 0.01  # neighbouring images are uncorrelated
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1) < 0.02


@pytest.mark.cpu_path
def test_driver_when_every_row_succeeds_on_a_conv_net(registry, test_set):
    """Every row flips before the budget, so the loop ends with an empty batch: the final
    scoring pass must cope (oneDNN convolutions reject an empty batch) and still agree with
    the tutorial's per-image loop."""
    from advbench.engine import zoo

    model, attack = registry.models.get("cnn"), registry.attacks.get("ifgsm")
    params = attack.config({"step": "0.05", "iterations": "60"})
    loaded = zoo.restore(model, model.config(), zoo.find(model, model.config(), 0))
    try:
        n = 12
        data = runner.Sample.of(loaded, test_set.images[:n], test_set.labels_int[:n])
        spec = runner.AttackSpec(attack, params, 0)
        records, _ = runner.run_attack(loaded, spec, data)
        assert records.flipped[records.attacked].all()
        ref_its, _ = reference.per_image_iterations(loaded, spec, data)
        np.testing.assert_array_equal(records.iterations, ref_its)
    finally:
        loaded.close()


def test_progress_moves_inside_a_batch_and_changes_no_number(registry, mlp_loaded, sample):
    """With a progress callback the step loop reports every step from inside the graph (one
    long batch no longer sits at 0 until it ends); the records are the same without it."""
    images, labels, indices = sample
    data = runner.Sample.of(mlp_loaded, images, labels, indices)
    ifgsm = registry.attacks.get("ifgsm")
    spec = runner.AttackSpec(ifgsm, ifgsm.config(), 0)
    seen: list[tuple[float, int]] = []
    ticked, _ = runner.run_attack(
        mlp_loaded, spec, data, batch_size=100, on_progress=lambda k, n: seen.append((k, n))
    )
    plain, _ = runner.run_attack(mlp_loaded, spec, data, batch_size=100)
    for name in ("adv_pred", "iterations", "linf", "adversarial"):
        assert np.array_equal(getattr(ticked, name), getattr(plain, name)), name
    total = int(ticked.attacked.sum())
    done = [k for k, n in seen]
    assert all(n == total for _, n in seen) and done[-1] == total
    assert done == sorted(done)  # never backwards
    inside = [k for k in done if k < 100]
    assert len(inside) > 10 and 0 < inside[0] < 1, inside[:3]  # moved within the first batch
