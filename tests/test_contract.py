"""The contract over every built-in: one table per kind, each row run through the conformance
kit that plugin authors get (`advbench.testing.check_model` / `check_attack`), then held to
what that built-in must achieve. A deliberately broken plugin shows the kit can fail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from advbench import testing
from advbench.engine import runner, zoo

# name, shipped checkpoint's accuracy floor, short-training overrides and the accuracy they
# must reach (chance is 10 %); None: test_mlp.py trains it (bit for bit, three ways).
MODELS = [
    ("mlp", 0.85, None, None),  # floor on the first 1,000 images, as the tutorial measures
    ("softmax", 0.91, {"steps": "100"}, 0.8),
    ("cnn", 0.988, {"steps": "150"}, 0.6),
    ("noisy-cnn", 0.988, None, None),  # the cnn's checkpoint and record (tests/test_eot.py)
    ("keras-mlp", 0.3, {}, 0.25),  # one epoch is the model's whole definition
    ("cnn-pgd", 0.95, {"steps": "40", "pgd_steps": "2", "warmup": "20"}, 0.5),
]
MODEL_NAMES = [name for name, *_ in MODELS]
# random at inference: no single accuracy to restore to (tests/test_eot.py tests its draws)
RANDOM = {"noisy-cnn"}

# Attacks on the shipped mlp, first N test images: overrides kept small for the default test
# run, and the smallest acceptable success rate (flipped / attacked).
N = 100
ATTACKS = [
    ("noise", {}, 0.0),
    ("noise", {"iterations": "40", "step": "0.05"}, 0.0),
    ("ifgsm", {}, 0.95),
    ("ifgsm", {"step": "0.01", "iterations": "20"}, 0.0),
    ("fgsm", {}, 0.5),
    ("fgsm", {"target": "3"}, 0.1),
    ("fgsm", {"eot": "2", "loss": "model"}, 0.5),
    ("pgd", {}, 0.99),
    ("pgd", {"norm": "2", "eps": "2.0", "step": "0.1", "loss": "cw"}, 0.9),
    ("pgd", {"target": "all", "iterations": "20", "step": "0.03"}, 0.8),
    ("pgd", {"eot": "3", "iterations": "20"}, 0.99),  # deterministic model: eot changes nothing
    ("mim", {}, 0.9),
    ("mim", {"eot": "2", "target": "3"}, 0.5),
    ("apgd", {}, 0.99),
    ("apgd", {"norm": "2", "eps": "2.0", "loss": "dlr", "iterations": "30"}, 0.9),
    ("apgd", {"target": "all", "loss": "dlr", "iterations": "20"}, 0.8),
    ("apgd", {"loss": "dlr", "target_rank": "2", "iterations": "30"}, 0.9),
    ("apgd", {"eot": "2", "iterations": "30"}, 0.99),
    ("autoattack", {"version": "fast", "n_target_classes": "2", "eps": "0.05"}, 0.8),
    ("fab", {}, 0.98),  # successes need the confirmation margin: 89 of 90 here
    ("fab", {"norm": "2", "eps": "1.5", "iterations": "50"}, 0.9),
    ("fab", {"minimal": "true", "iterations": "30"}, 0.98),
    ("fab", {"norm": "2", "minimal": "true", "iterations": "30"}, 0.99),
    ("fab", {"target": "5", "iterations": "50"}, 0.8),
    ("fab", {"target_rank": "1", "iterations": "30", "restarts": "2", "eps": "0.1"}, 0.7),
    ("deepfool", {}, 0.99),
    ("deepfool", {"clip_each_step": "false"}, 0.99),
    ("fmn", {}, 0.99),
    ("fmn", {"norm": "inf"}, 0.99),
    ("fmn", {"norm": "1", "iterations": "50"}, 0.95),
    ("fmn", {"norm": "0", "iterations": "50"}, 0.95),
    ("fmn", {"target": "5", "iterations": "50"}, 0.8),
    ("cw-l2", {"binary_steps": "3", "iterations": "60"}, 0.9),
    ("cw-l2", {"target": "5", "binary_steps": "3", "iterations": "60"}, 0.8),
    ("ead", {"binary_steps": "4", "iterations": "50", "initial_const": "0.1"}, 0.99),
    ("ead", {"target": "5", "binary_steps": "4", "iterations": "50", "initial_const": "0.1"}, 0.95),
    ("jsma", {"target": "5"}, 0.95),
    ("jsma", {"target": "all", "scores": "logits", "theta": "0.5"}, 0.75),  # 0.799 measured
    ("jsma", {"target": "3", "search": "top2"}, 0.9),
    ("square", {"iterations": "300"}, 0.9),
    ("spsa", {"iterations": "30", "samples": "32"}, 0.85),  # 0.878 measured
    ("hopskipjump", {"iterations": "2", "max_eval": "100"}, 0.99),
    ("targeted", {}, 0.1),
    ("fooling", {"samples": "3"}, 0.05),
]


def _key(name: str, overrides: Mapping[str, str]) -> str:
    return name + "".join(f" {k}={v}" for k, v in sorted(overrides.items()))


def test_every_builtin_model_is_in_the_table(registry):
    assert registry.builtin_names("models") == MODEL_NAMES


def test_every_builtin_attack_is_in_the_table(registry):
    assert {name for name, _, _ in ATTACKS} == set(registry.builtin_names("attacks"))


# ---- models


@pytest.mark.parametrize(("name", "floor"), [(m[0], m[1]) for m in MODELS], ids=MODEL_NAMES)
def test_model_contract(registry, shipped, sample, name, floor):
    images, labels, _ = sample
    testing.check_model(shipped(name), images, labels)
    record = shipped(name).record
    model = registry.models.get(name)
    assert record["model"] == zoo.owner(model, model.config())[0].name  # noisy-cnn: the cnn's
    key = "test_accuracy_first_1000" if name == "mlp" else "test_accuracy"
    assert record[key] >= floor


@pytest.mark.cpu_path
@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n not in RANDOM])
def test_shipped_checkpoint_restores_to_its_recorded_accuracy(shipped, test_set, name):
    loaded = shipped(name)
    pred = runner.predict(loaded, test_set.images)
    assert float(np.mean(pred == test_set.labels_int)) == loaded.record["test_accuracy"]


#: Models whose short training takes most of a minute on two cores: CI's `make test-slow`.
SLOW_TRAINING = {"cnn", "keras-mlp"}


@pytest.mark.parametrize(
    ("name", "overrides", "floor"),
    [
        pytest.param(m[0], m[2], m[3], marks=[pytest.mark.slow] if m[0] in SLOW_TRAINING else [])
        for m in MODELS
        if m[2] is not None
    ],
    ids=[m[0] for m in MODELS if m[2] is not None],
)
def test_short_training_learns_and_is_deterministic(registry, tmp_path, name, overrides, floor):
    model = registry.models.get(name)
    config = model.config(overrides)
    a = zoo.train(model, config, seed=3, root=tmp_path / "a")
    b = zoo.train(model, config, seed=3, root=tmp_path / "b")
    wa, wb = zoo.read_weights(a), zoo.read_weights(b)
    assert wa.keys() == wb.keys() and wa
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    record = json.loads((a / "record.json").read_text())
    assert record["test_accuracy"] >= floor
    assert record["seed"] == 3 and record["config"] == config


# ---- attacks


@pytest.fixture(scope="module")
def checked(registry, mlp_loaded, sample) -> Callable[[str, Mapping[str, str]], Any]:
    """`checked(name, overrides)`: the records of a table row that passed the kit's
    `check_attack`, run once per module (the comparisons below reuse them)."""
    done: dict[str, Any] = {}
    images, labels, _ = sample

    def get(name: str, overrides: Mapping[str, str]) -> Any:
        key = _key(name, overrides)
        if key not in done:
            attack = registry.attacks.get(name)
            done[key] = testing.check_attack(
                mlp_loaded, attack, overrides, images[:N], labels[:N], resolve=registry.attacks.get
            )
        return done[key]

    return get


# Rows that cost 10-30 s each and repeat what a quicker row of the same attack checks: run by
# `make test-slow` (and CI), not by the default `make test`.
SLOW = {
    "apgd iterations=20 loss=dlr target=all",
    "autoattack eps=0.05 n_target_classes=2 version=fast",
    "fab iterations=50 target=5",
    "fab iterations=30 minimal=true norm=2",
    "fab eps=0.1 iterations=30 restarts=2 target_rank=1",
    "cw-l2 binary_steps=3 iterations=60 target=5",
    "fmn iterations=50 target=5",
    "ead binary_steps=4 initial_const=0.1 iterations=50 target=5",
    "jsma scores=logits target=all theta=0.5",
}


@pytest.mark.parametrize(
    ("name", "overrides", "floor"),
    [
        pytest.param(n, o, f, id=_key(n, o), marks=[pytest.mark.slow] if _key(n, o) in SLOW else [])
        for n, o, f in ATTACKS
    ],
)
def test_attack_contract(checked, name, overrides, floor):
    records = checked(name, overrides)
    rate = records.flipped.sum() / max(records.attacked.sum(), 1)
    assert rate >= floor, f"{name}: success {rate:.3f} < {floor}"


@pytest.mark.parametrize(
    ("name", "overrides"),
    [(n, o) for n, o, _ in ATTACKS if n in ("ifgsm", "noise")],
    ids=[_key(n, o) for n, o, _ in ATTACKS if n in ("ifgsm", "noise")],
)
def test_stepping_attacks_stop_at_their_flip(registry, checked, name, overrides):
    """An image is stopped at its flip, so none is farther than its own steps × step."""
    records = checked(name, overrides)
    step = registry.attacks.get(name).config(overrides)["step"]
    its = records.iterations[records.flipped]
    assert np.all(records.linf[records.flipped] <= its * step + 1e-6)


def test_pgd_is_at_least_as_strong_as_fgsm(checked):
    pgd, fgsm = checked("pgd", {}), checked("fgsm", {})
    assert pgd.flipped.sum() >= fgsm.flipped.sum()
    # image by image: all that FGSM breaks, PGD breaks too (on this model)
    assert np.all(pgd.flipped[fgsm.flipped])


@pytest.mark.slow
def test_minimal_attacks_beat_the_smallest_flipping_fgsm(registry, mlp_loaded, sample, checked):
    """DeepFool and C&W: median L2 below the L2 of the smallest FGSM step that flips the image."""
    images, labels, indices = (a[:N] for a in sample)
    data = runner.Sample.of(mlp_loaded, images, labels, indices)
    fgsm = registry.attacks.get("fgsm")
    smallest = np.full(N, np.inf)
    for eps in np.arange(0.02, 0.31, 0.02):
        spec = runner.AttackSpec(fgsm, fgsm.config({"eps": f"{eps:.2f}"}), 0)
        rec, _ = runner.run_attack(mlp_loaded, spec, data)
        hit = rec.flipped & np.isinf(smallest)
        smallest[hit] = rec.l2[hit]
    for name, overrides in (("deepfool", {}), ("cw-l2", {"binary_steps": "3", "iterations": "60"})):
        rec = checked(name, overrides)
        both = rec.flipped & np.isfinite(smallest)
        assert both.sum() > 50
        assert np.median(rec.l2[both]) < np.median(smallest[both]), name


def test_targeted_all_covers_every_other_class(checked):
    rec = checked("pgd", {"target": "all", "iterations": "20", "step": "0.03"})
    attacked = rec.attacked
    for i in np.unique(rec.index[attacked]):
        rows = rec.target[attacked & (rec.index == i)]
        label = rec.label[rec.index == i][0]
        assert sorted(rows.tolist()) == [c for c in range(10) if c != label]


# ---- the kit can fail


def test_the_kit_catches_a_broken_attack(registry, mlp_loaded, sample):
    """An attack that leaves the pixel range fails `check_attack`."""
    from advbench.contract.attack import CLIP_PARAMS, Attack
    from advbench.contract.params import Param

    class OutOfRange(Attack):
        name = "out-of-range"
        params = (Param("iterations", 2, "", int, minimum=1), *CLIP_PARAMS)

        def step(self, net, s, params):
            return s.x + 2.0

    images, labels, _ = sample
    with pytest.raises(AssertionError, match="outside the valid range"):
        testing.check_attack(mlp_loaded, OutOfRange(), None, images[:20], labels[:20])


def test_the_kit_catches_a_wrong_gradient(shipped, sample, monkeypatch):
    """A model whose hand-written input gradient has the wrong sign fails `check_model`."""
    loaded = shipped("softmax")
    network = type(loaded.network)
    right = network.loss_gradient

    def negated(self, x, y_onehot):
        loss, grad = right(self, x, y_onehot)
        return loss, -grad

    monkeypatch.setattr(network, "loss_gradient", negated)
    images, labels, _ = sample
    with pytest.raises(AssertionError, match="loss_gradient differs"):
        testing.check_model(loaded, images, labels)
