"""Claimed successes are confirmed by the engine (`advbench.engine.confirmation`).

The defects: DeepFool added its 1e-4 to the logit gap instead of to the distance, so its
"adversarial" images sat on the decision boundary — adversarial in the attack's batch, not in
float64 and not when fed again; and an attack could claim success for images it never changed
and have them counted as flipped.
"""

from __future__ import annotations

import numpy as np
import pytest

from advbench.contract.attack import Attack
from advbench.contract.params import Param
from advbench.engine import confirmation, runner


def _float64_logits(loaded, images: np.ndarray) -> np.ndarray:
    """The `mlp`'s logits recomputed in float64 from its restored weights (sigmoid hidden
    layer, as the tutorial's network): an independent check of the graph's float32."""
    w1, b1, w2, b2 = (v.astype(np.float64) for v in loaded.session.run(loaded.network.variables))
    hidden = 1.0 / (1.0 + np.exp(-(images.astype(np.float64) @ w1 + b1)))
    return hidden @ w2 + b2


def _deepfool(registry, loaded, images, labels, batch: int):
    attack = registry.attacks.get("deepfool")
    spec = runner.AttackSpec(attack, attack.config(), 0)
    sample = runner.Sample.of(loaded, images, labels)
    return runner.run_attack(loaded, spec, sample, batch_size=batch)[0]


@pytest.mark.slow
def test_deepfool_flips_hold_in_float64_and_when_fed_again(registry, mlp_loaded, sample):
    """Every DeepFool success on the `mlp` is adversarial in float64 with a margin, when fed
    alone, and in any batch; the set of flipped images does not depend on the batch size."""
    images, labels, _ = sample
    whole = _deepfool(registry, mlp_loaded, images, labels, batch=len(images))
    odd = _deepfool(registry, mlp_loaded, images, labels, batch=37)
    assert whole.flipped.sum() > 0.8 * whole.attacked.sum()
    np.testing.assert_array_equal(whole.flipped, odd.flipped)
    np.testing.assert_array_equal(whole.adv_pred, odd.adv_pred)
    # distances: float32 rounding of another batch shape may take a step more or less on a
    # few rows (here 2 of 300, by < 0.3 %), never a flip
    close = np.isclose(whole.l2, odd.l2, rtol=1e-4, atol=1e-6)
    assert close.mean() >= 0.98 and np.allclose(whole.l2, odd.l2, rtol=1e-2)
    rows = np.flatnonzero(whole.flipped)
    z = _float64_logits(mlp_loaded, whole.adversarial[rows])
    gap = confirmation.margins(z, whole.label[rows], targeted=False)
    assert (gap > 0).all(), f"{int((gap <= 0).sum())} flips are not adversarial in float64"
    alone = np.concatenate(
        [runner.predict(mlp_loaded, whole.adversarial[r : r + 1]) for r in rows[:60]]
    )
    assert (alone != whole.label[rows[:60]]).all()
    assert not whole.unconfirmed.any()
    # flip rate and adversarial accuracy tell the same story: an attacked row is misclassified
    # exactly when it is flipped (a point within rounding of a tie is the label's)
    a = whole.attacked
    np.testing.assert_array_equal(whole.adv_pred[a] != whole.label[a], whole.flipped[a])


class _Boaster(Attack):
    """Claims success for every image at the first step and changes nothing."""

    name = "boaster"
    params = (Param("iterations", 3, "most steps", int, minimum=1),)

    def success(self, net, logits, s, params):
        from advbench.contract.lazy_tf import tf

        return tf().ones_like(s.labels, dtype=tf().bool)

    def step(self, net, s, params):
        return s.x


def test_a_claim_the_model_does_not_confirm_is_withdrawn(mlp_loaded, sample):
    """The boaster's claims are all withdrawn: no flip, its predictions the model's own, and
    the withdrawn rows are marked for the "unconfirmed success" check."""
    images, labels, _ = sample
    attack = _Boaster()
    spec = runner.AttackSpec(attack, attack.config(), 0)
    s = runner.Sample.of(mlp_loaded, images[:50], labels[:50])
    rec, _ = runner.run_attack(mlp_loaded, spec, s)
    assert rec.attacked.sum() > 40
    assert not rec.flipped.any()
    np.testing.assert_array_equal(rec.unconfirmed, rec.attacked)
    np.testing.assert_array_equal(rec.adv_pred, s.clean_pred)


def test_margins_and_tolerance():
    """Untargeted: best other − label; targeted: target − best other; ties are not met."""
    z = np.array([[1.0, 3.0, 2.0], [5.0, 5.0, 0.0]], np.float32)
    np.testing.assert_allclose(confirmation.margins(z, np.array([0, 0]), False), [2.0, 0.0])
    np.testing.assert_allclose(confirmation.margins(z, np.array([1, 1]), True), [1.0, 0.0])
    assert (confirmation.tolerance(z) > 0).all()
