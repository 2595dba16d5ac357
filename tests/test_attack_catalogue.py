"""One parametrized table of every built-in attack with what it must achieve on the `mlp`."""

from __future__ import annotations

import numpy as np
import pytest

from advbench.engine import runner
from advbench.host import plugins

N = 100
# attack, overrides, smallest acceptable success rate on the default mlp (first 100 images)
TABLE = [
    ("noise", {"iterations": "50"}, 0.0),
    ("ifgsm", {}, 0.95),
    ("fgsm", {}, 0.5),
    ("fgsm", {"target": "3"}, 0.1),
    ("pgd", {}, 0.99),
    ("pgd", {"norm": "2", "eps": "2.0", "step": "0.1", "loss": "cw"}, 0.9),
    ("pgd", {"target": "all", "iterations": "20", "step": "0.03"}, 0.8),
    ("mim", {}, 0.9),
    ("apgd", {}, 0.99),
    ("apgd", {"norm": "2", "eps": "2.0", "loss": "dlr", "iterations": "30"}, 0.9),
    ("apgd", {"target": "all", "loss": "dlr", "iterations": "20"}, 0.8),
    ("deepfool", {}, 0.99),
    ("cw-l2", {"binary_steps": "3", "iterations": "60"}, 0.9),
    ("cw-l2", {"target": "5", "binary_steps": "3", "iterations": "60"}, 0.8),
    ("square", {"iterations": "300"}, 0.9),
    ("targeted", {}, 0.1),
    ("fooling", {"samples": "3"}, 0.05),
]


def test_every_builtin_attack_is_in_the_table():
    loaded = plugins.load()
    builtin = {e.name for e in loaded.attacks.entries.values() if e.plugin in plugins.BUILTIN_NAMES}
    assert {name for name, _, _ in TABLE} == builtin


def _run(registry, loaded, sample, name, overrides, seed=0):
    attack = registry.attacks.get(name)
    params = attack.config(overrides)
    images, labels, indices = (a[:N] for a in sample)
    clean = runner.predict(loaded, images)
    records, _ = runner.run_attack(loaded, attack, params, seed, images, labels, indices, clean)
    return attack, params, records, images


@pytest.fixture(scope="module")
def results(registry, mlp_loaded, sample):
    return {
        (name, tuple(sorted(o.items()))): _run(registry, mlp_loaded, sample, name, o)
        for name, o, _ in TABLE
    }


@pytest.mark.parametrize(("name", "overrides", "floor"), TABLE)
def test_attack_contract(results, mlp_loaded, name, overrides, floor):
    attack, params, records, images = results[(name, tuple(sorted(overrides.items())))]
    adv = records.adversarial
    # valid pixels
    assert adv.min() >= params["clip_min"] - 1e-7 and adv.max() <= params["clip_max"] + 1e-7
    # inside the budget
    threat = attack.threat_model(params)
    linf, l2 = threat.bound("linf"), threat.bound("l2")
    if linf is not None:
        assert records.linf.max() <= linf + 1e-5
    if l2 is not None:
        assert records.l2.max() <= l2 + 1e-4
    # never counts what was not attacked; unattacked rows are untouched
    assert not records.flipped[~records.attacked].any()
    if not attack.attacks_misclassified:
        assert not records.attacked[records.clean_pred != records.label].any()
        np.testing.assert_array_equal(
            adv[~records.attacked], images[records.index[~records.attacked]]
        )
    # success is real: re-classify the adversarial images
    pred = runner.predict(mlp_loaded, adv[records.flipped])
    np.testing.assert_array_equal(pred, records.adv_pred[records.flipped])
    if attack.is_targeted(params):
        assert np.all(pred == records.target[records.flipped])  # the target, not any class
    else:
        assert np.all(pred != records.label[records.flipped])
    rate = records.flipped.sum() / max(records.attacked.sum(), 1)
    assert rate >= floor, f"{name}: success {rate:.3f} < {floor}"


def test_pgd_is_at_least_as_strong_as_fgsm(results):
    _, _, pgd, _ = results[("pgd", ())]
    _, _, fgsm, _ = results[("fgsm", ())]
    assert pgd.flipped.sum() >= fgsm.flipped.sum()
    # image by image: all that FGSM breaks, PGD breaks too (on this model)
    assert np.all(pgd.flipped[fgsm.flipped])


def test_minimal_attacks_beat_the_smallest_flipping_fgsm(registry, mlp_loaded, sample, results):
    """DeepFool and C&W: median L2 below the L2 of the smallest FGSM step that flips the image."""
    images, labels, indices = (a[:N] for a in sample)
    clean = runner.predict(mlp_loaded, images)
    fgsm = registry.attacks.get("fgsm")
    smallest = np.full(N, np.inf)
    for eps in np.arange(0.02, 0.31, 0.02):
        rec, _ = runner.run_attack(
            mlp_loaded, fgsm, fgsm.config({"eps": f"{eps:.2f}"}), 0, images, labels, indices, clean
        )
        hit = rec.flipped & np.isinf(smallest)
        smallest[hit] = rec.l2[hit]
    for key in (("deepfool", ()), ("cw-l2", (("binary_steps", "3"), ("iterations", "60")))):
        _, _, rec, _ = results[key]
        both = rec.flipped & np.isfinite(smallest)
        assert both.sum() > 50
        assert np.median(rec.l2[both]) < np.median(smallest[both]), key[0]


def test_targeted_all_covers_every_other_class(results):
    _, _, rec, _ = results[("pgd", (("iterations", "20"), ("step", "0.03"), ("target", "all")))]
    attacked = rec.attacked
    for i in np.unique(rec.index[attacked]):
        rows = rec.target[attacked & (rec.index == i)]
        label = rec.label[rec.index == i][0]
        assert sorted(rows.tolist()) == [c for c in range(10) if c != label]
