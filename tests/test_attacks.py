"""The tutorial's attacks under the batched driver: range, budget, reference loop, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from advbench.engine import runner
from advbench.lab import reference

# (attack, parameter overrides) kept small enough for the default test run.
CASES = [
    ("ifgsm", {}),
    ("ifgsm", {"step": "0.01", "iterations": "20"}),
    ("noise", {"iterations": "40", "step": "0.05"}),
    ("noise", {}),
]


def _run(registry, loaded, name, overrides, sample, n, seed=0, batch=runner.DEFAULT_BATCH):
    attack = registry.attacks.get(name)
    params = attack.config(overrides)
    images, labels, indices = (a[:n] for a in sample)
    clean = runner.predict(loaded, images)
    records, _ = runner.run_attack(
        loaded, attack, params, seed, images, labels, indices, clean, batch_size=batch
    )
    return attack, params, records


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_outputs_stay_in_range_and_budget(registry, mlp_loaded, sample, name, overrides):
    attack, params, records = _run(registry, mlp_loaded, name, overrides, sample, 200)
    adv = records.adversarial
    assert adv.min() >= params["clip_min"] and adv.max() <= params["clip_max"]
    budget = attack.threat_model(params).bound("linf")
    assert np.all(records.linf <= budget + 1e-6)
    # flipped images were stopped at their flip, so none exceeds its own steps × step
    its = records.iterations[records.flipped]
    assert np.all(records.linf[records.flipped] <= its * params["step"] + 1e-6)
    # images already misclassified are never attacked nor counted as flipped
    wrong = ~records.attacked
    assert not records.flipped[wrong].any()
    np.testing.assert_array_equal(adv[wrong], sample[0][:200][wrong])
    # a flipped image's recorded prediction really is wrong on its adversarial image
    again = runner.predict(mlp_loaded, adv[records.flipped])
    np.testing.assert_array_equal(again, records.adv_pred[records.flipped])
    assert np.all(records.adv_pred[records.flipped] != records.label[records.flipped])


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
    attack, params, records = _run(registry, mlp_loaded, name, {}, sample, n, batch=1)
    images, labels, indices = (a[:n] for a in sample)
    ref_its, ref_final = reference.per_image_iterations(
        mlp_loaded, attack, params, 0, images, labels, indices
    )
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
    attack, params, records = _run(registry, mlp_loaded, "ifgsm", {}, sample, n)
    images, labels, indices = (a[:n] for a in sample)
    ref_its, ref_final = reference.per_image_iterations(
        mlp_loaded, attack, params, 0, images, labels, indices
    )
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
            random_signs(0, idx, t.constant(3)),
            random_signs(0, idx, t.constant(4)),
            random_signs(1, idx, t.constant(3)),
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
        images, labels = test_set.images[:n], test_set.labels_int[:n]
        indices = np.arange(n, dtype=np.int64)
        clean = runner.predict(loaded, images)
        records, _ = runner.run_attack(loaded, attack, params, 0, images, labels, indices, clean)
        assert records.flipped[records.attacked].all()
        ref_its, _ = reference.per_image_iterations(
            loaded, attack, params, 0, images, labels, indices
        )
        np.testing.assert_array_equal(records.iterations, ref_its)
    finally:
        loaded.close()
