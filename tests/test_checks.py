"""Indicators of attack failure: each fires on a model or attack built to trigger it and stays
quiet on the shipped `mlp` and a working attack.

The triggering models wrap the shipped mlp's network in its own graph and session (no
training): a quantisation step in front of it (gradient masking: tf.round has no gradient),
softmax probabilities returned as logits, and random noise added to its logits.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from advbench.cli import main
from advbench.contract.attack import CLIP_PARAMS, Attack
from advbench.contract.lazy_tf import tf
from advbench.contract.model import Network
from advbench.contract.params import Param
from advbench.contract.steps import BatchOutputs
from advbench.engine import checks, runner, zoo
from advbench.output import checks as flags
from advbench.output.records import Budget, Cell, IterationStats, StoredRun, Summary


class Wrapped(Network):
    """The mlp's network with something in front of or behind its logits."""

    def __init__(self, inner: Network, name: str, fn) -> None:
        self.inner, self.name, self.fn = inner, name, fn
        self.variables = inner.variables

    def logits(self, x):
        return self.memo(self.name, x, lambda x: self.fn(self.inner, x))

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


TRIGGERS = {
    "mlp": None,
    "quantised": lambda net, x: net.logits(tf().round(x * 255.0) / 255.0),
    "softmax-out": lambda net, x: tf().nn.softmax(net.logits(x)),
    "noisy": lambda net, x: net.logits(x) + 5.0 * tf().random.normal(tf().shape(net.logits(x))),
}


def _variant(mlp_loaded: zoo.Loaded, name: str) -> zoo.Loaded:
    """A Loaded sharing the mlp's graph and session (never closed here)."""
    if TRIGGERS[name] is None:
        return mlp_loaded
    with mlp_loaded.graph.as_default():
        net = Wrapped(mlp_loaded.network, name, TRIGGERS[name])
    return replace(mlp_loaded, network=net)


@pytest.fixture(scope="module")
def model_flags(mlp_loaded, test_set):
    """{model: {check name: Check}} for the mlp and each triggering variant."""
    return {
        name: {
            c.name: c
            for c in checks.model_checks(
                _variant(mlp_loaded, name), test_set.images, test_set.labels_int
            )
        }
        for name in TRIGGERS
    }


@pytest.mark.parametrize(
    ("check", "trigger"),
    [
        ("zero gradients", "quantised"),
        ("unbounded attack fails", "quantised"),
        ("probabilities as logits", "softmax-out"),
        ("randomness", "noisy"),
        ("unstable predictions", "noisy"),
    ],
)
def test_a_model_check_fires_on_its_trigger_and_is_quiet_on_mlp(model_flags, check, trigger):
    fired, quiet = model_flags[trigger][check], model_flags["mlp"][check]
    assert fired.fired and fired.value > fired.threshold, fired
    assert not quiet.fired and quiet.value is not None and quiet.value <= quiet.threshold, quiet


def test_the_shipped_mlp_fires_no_model_check(model_flags):
    assert not [c for c in model_flags["mlp"].values() if c.fired]
    assert model_flags["quantised"]["zero gradients"].value == 1.0  # disconnected: all rows
    assert model_flags["quantised"]["unbounded attack fails"].value == 1.0  # nothing moves


class Bouncer(Attack):
    """Starts from the inverted image (adversarial for most) and steps straight back to the
    original: the driver never scores the start, so the success found there is lost."""

    name = "bouncer"
    params = (Param("iterations", 3, "steps", int, minimum=1), *CLIP_PARAMS)

    def initial(self, net, s, params):
        return 1.0 - s.x0

    def step(self, net, s, params):
        return s.x0


class Forgetful(Attack):
    """Its own graph returns the inverted image but reports no success."""

    name = "forgetful"
    params = (Param("iterations", 3, "steps", int, minimum=1), *CLIP_PARAMS)

    def build(self, net, b, params):
        t = tf()
        x = 1.0 - b.x
        return BatchOutputs(x, t.zeros_like(b.labels, t.int32), t.argmax(net.logits(x), 1))


def _cell(registry, loaded, test_set, attack, overrides=None, n=200):
    attack = attack if isinstance(attack, Attack) else registry.attacks.get(attack)
    params = attack.config(overrides)
    sample = runner.Sample.of(loaded, test_set.images[:n], test_set.labels_int[:n])
    records, _ = runner.run_attack(loaded, runner.AttackSpec(attack, params, 0), sample)
    found = checks.cell_checks(loaded, attack, params, 0, test_set.images[records.index], records)
    return {c.name: c for c in found}, records


@pytest.mark.slow
@pytest.mark.parametrize("attack", [Bouncer(), Forgetful()])
def test_silent_success_fires_when_a_visited_success_is_not_returned(
    registry, mlp_loaded, test_set, attack
):
    found, records = _cell(registry, mlp_loaded, test_set, attack)
    assert records.flipped.sum() == 0
    assert found["silent success"].fired and found["silent success"].value > 0.5
    quiet, _ = _cell(registry, mlp_loaded, test_set, "pgd", {"eps": 0.05})
    assert quiet["silent success"].value == 0.0 and not quiet["silent success"].fired


@pytest.mark.slow
def test_incomplete_optimisation_fires_on_a_one_step_attack_and_not_on_pgd(
    registry, mlp_loaded, test_set
):
    found, records = _cell(registry, mlp_loaded, test_set, "fgsm", {"eps": 0.1})
    assert (records.attacked & ~records.flipped).sum() > 0
    assert found["incomplete optimisation"].fired, found["incomplete optimisation"]
    # PGD at a small eps leaves images unflipped, and 10 % more steps do not change that.
    quiet, records = _cell(registry, mlp_loaded, test_set, "pgd", {"eps": 0.05})
    assert (records.attacked & ~records.flipped).sum() > 20
    assert not quiet["incomplete optimisation"].fired, quiet["incomplete optimisation"]
    own, _ = _cell(registry, mlp_loaded, test_set, Forgetful())
    assert own["incomplete optimisation"].value is None  # no step to continue with


@pytest.mark.slow
def test_the_engine_sees_which_attacks_use_gradients(registry, mlp_loaded, test_set):
    seen = {}
    for name in ("pgd", "square"):
        before = checks.mark(mlp_loaded.graph)
        _cell(registry, mlp_loaded, test_set, name, {"iterations": 2}, n=20)
        seen[name] = checks.uses_gradients(mlp_loaded.graph, before)
    assert seen == {"pgd": True, "square": False}


def _summary(acc: float, uses_gradients: bool) -> Summary:
    its = IterationStats(None, None, None, None)
    return Summary(
        100, 100, 0.9, acc, 90, 0, 0.0, its, None, None, None, None, 1.0, 100.0,
        budget=Budget("linf", 0.3), uses_gradients=uses_gradients,
    )  # fmt: skip


@pytest.mark.parametrize(("white", "black", "fires"), [(0.9, 0.5, True), (0.5, 0.9, False)])
def test_black_box_beating_white_box_fires_above_two_tenths_of_a_point(white, black, fires):
    cells = [
        Cell("m", "pgd", "pgd", {}, 0, "", {}, summary=_summary(white, True)),
        Cell("m", "square", "square", {}, 0, "", {}, summary=_summary(black, False)),
    ]
    found = flags.black_box_checks(cells)
    assert set(found) == {("m", "square")}
    assert found[("m", "square")].fired is fires
    assert found[("m", "square")].value == pytest.approx(white - black)
    # 0.2 percentage points is the line: 0.0019 quiet, 0.0021 fires.
    for gap, expected in ((0.0019, False), (0.0021, True)):
        cells[1].summary = _summary(white - gap, False)
        assert flags.black_box_checks(cells)[("m", "square")].fired is expected
    run = StoredRun({}, [{"name": "m", "checks": []}], cells)
    assert any("black-box beats white-box" in line for line in flags.report_lines(run)) is (
        flags.black_box_checks(cells)[("m", "square")].fired
    )


def test_a_run_stores_and_reports_its_checks(tmp_path):
    out = tmp_path / "o"
    args = ["run", "--models", "mlp", "--attacks", "fgsm,pgd", "--limit", "100"]
    args += ["--set", "fgsm.eps=0.1", "--db", str(tmp_path / "r.sqlite"), "--out", str(out)]
    assert main([*args, "--no-figures"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert {c["name"] for c in res["models"][0]["checks"]} == set(flags.MODEL_CHECKS)
    by_cell = {c["label"]: {k["name"]: k for k in c["checks"]} for c in res["cells"]}
    assert set(by_cell["fgsm(eps=0.1)"]) == {
        *flags.MODEL_CHECKS,
        "silent success",
        "incomplete optimisation",
        "unconfirmed success",
    }
    assert by_cell["fgsm(eps=0.1)"]["incomplete optimisation"]["fired"]
    assert not by_cell["pgd"]["incomplete optimisation"]["fired"]
    report = (out / "report.md").read_text()
    section = report.split("## Checks")[1].split("##")[0]
    assert "mlp × fgsm(eps=0.1): **incomplete optimisation**" in section
    assert "pgd" not in section
    # --no-checks: nothing measured, the report says so.
    quiet = tmp_path / "q"
    args[-1] = str(quiet)
    assert main([*args, "--no-figures", "--no-checks", "--fresh"]) == 0
    assert "quiet: no check fired (0 measured" in (quiet / "report.md").read_text()
