"""`cw-l2` (Carlini & Wagner's L2 attack): its successes survive the engine's confirmation, its
defaults come close to a ten times longer search, and its parameters fail in one line."""

from __future__ import annotations

import numpy as np
import pytest

from advbench.engine import runner
from advbench.errors import ParamError


def _run(registry, loaded, overrides, images, labels):
    attack = registry.attacks.get("cw-l2")
    spec = runner.AttackSpec(attack, attack.config(overrides), 0)
    return runner.run_attack(loaded, spec, runner.Sample.of(loaded, images, labels))[0]


def test_every_success_is_kept_by_the_confirmation(registry, shipped, test_set):
    """A point within float32 rounding of the boundary is no success: C&W used to keep such a
    point as its best and the engine then withdrew it (`keras-mlp`, first 50 images: 28 of 30
    at the old defaults, 19 of 30 at 1,000 steps a round). Now every attacked image flips."""
    images, labels = test_set.images[:50], test_set.labels_int[:50]
    rec = _run(registry, shipped("keras-mlp"), {}, images, labels)
    assert rec.attacked.sum() == 30
    assert rec.flipped.sum() == rec.attacked.sum()


@pytest.mark.slow  # 5 × 1,000 Adam steps on cnn-pgd: 3 min on two shared cores
def test_defaults_are_within_five_percent_of_ten_times_the_steps(registry, shipped, test_set):
    """Issue #18: the defaults' median L2 on the adversarially trained `cnn-pgd` (first 20
    images) is within 5 % of the paper's search given 10× the old defaults' steps per round
    (5 × 1,000, each round from x0). Measured: defaults 1.96, the reference 2.06; the old
    defaults (5 × 100 from x0, no warm start) 2.87, which this test rejects."""
    loaded = shipped("cnn-pgd")
    images, labels = test_set.images[:20], test_set.labels_int[:20]
    ours = _run(registry, loaded, {}, images, labels)
    longer = _run(registry, loaded, {"iterations": "1000", "warm_start": "false"}, images, labels)
    assert ours.flipped.sum() >= longer.flipped.sum()
    assert np.median(ours.l2[ours.flipped]) <= 1.05 * np.median(longer.l2[longer.flipped])


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("warm_start", "maybe", "invalid value 'maybe' for cw-l2.warm_start: expected bool"),
        ("iterations", "0", "cw-l2.iterations"),
        ("learning_rate", "0", "cw-l2.learning_rate"),
    ],
)
def test_bad_values_are_one_line_errors(registry, param, value, message):
    with pytest.raises(ParamError) as err:
        registry.attacks.get("cw-l2").config({param: value})
    assert message in str(err.value) and "\n" not in str(err.value)
