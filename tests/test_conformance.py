"""Every built-in model and attack passes the conformance kit shipped for plugin authors."""

from __future__ import annotations

import pytest

from advbench.host import plugins

BUILTIN = plugins.load()
MODELS = [e.name for e in BUILTIN.models.entries.values() if e.plugin in plugins.BUILTIN_NAMES]
ATTACKS = [e.name for e in BUILTIN.attacks.entries.values() if e.plugin in plugins.BUILTIN_NAMES]
# Keep the kit's run short: fewer iterations where the defaults are long.
QUICK = {
    "noise": {"iterations": "30"},
    "cw-l2": {"binary_steps": "2", "iterations": "30"},
    "square": {"iterations": "100"},
    "fooling": {"samples": "2"},
}


@pytest.mark.parametrize("name", MODELS)
def test_model_conforms(advbench_checks, name):
    advbench_checks.check_model(name)


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_conforms(advbench_checks, name):
    advbench_checks.check_attack(name, QUICK.get(name))


def test_targeted_variant_conforms(advbench_checks):
    rec = advbench_checks.check_attack("pgd", {"target": "7", "iterations": "20", "step": "0.03"})
    assert rec.flipped.any()


def test_the_kit_catches_a_broken_attack(advbench_checks, tmp_path, monkeypatch):
    """The kit can fail: an attack that leaves the pixel range is caught."""
    from advbench.contract.attack import CLIP_PARAMS, Attack
    from advbench.contract.params import Param

    class OutOfRange(Attack):
        name = "out-of-range"
        params = (Param("iterations", 2, "", int, minimum=1), *CLIP_PARAMS)

        def step(self, net, s, params):
            return s.x + 2.0

    advbench_checks.registry.attacks.add(OutOfRange(), "test")
    try:
        with pytest.raises(AssertionError, match="outside the valid range"):
            advbench_checks.check_attack("out-of-range")
    finally:
        advbench_checks.registry.attacks.entries.pop("out-of-range")
