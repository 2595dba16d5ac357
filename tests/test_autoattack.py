"""`autoattack`: the ensemble as one attack — components run only on the images still robust,
per-image provenance, each component's contribution, resume from the last finished component,
one-line refusals of bad parameters; and `apgd`'s `target_rank` (APGD-T) it is built on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advbench.cli import main
from advbench.engine import runner
from advbench.errors import ParamError
from advbench.output.results import Store

EPS = "0.05"  # on the shipped mlp: APGD-CE leaves ~19 of 90 images, APGD-T breaks a few more
LIMIT = "100"
ENSEMBLE = f"autoattack(version=fast,eps={EPS})"
FAST = ["--attacks", "autoattack", "--set", "autoattack.version=fast"]
FAST += ["--set", f"autoattack.eps={EPS}"]


def _run(tmp: Path, *extra: str) -> int:
    base = ["run", "--models", "mlp", "--limit", LIMIT, "--no-figures"]
    return main([*base, "--db", str(tmp / "r.sqlite"), "--out", str(tmp / "out"), *extra])


def _cells(db: Path) -> dict[str, tuple[Any, Any]]:
    """key -> (cell, records) of the latest run's done cells."""
    store = Store(db)
    try:
        run = store.load_run(store.resolve_run(None))
        return {c.key: (c, store.records(c.id)) for c in run.cells if c.done}
    finally:
        store.close()


@pytest.fixture(scope="module")
def fast(tmp_path_factory) -> Path:
    """One uninterrupted CLI run: the fast ensemble and apgd alone at the same budget."""
    tmp = tmp_path_factory.mktemp("fast")
    assert _run(tmp, *FAST, "--attacks", "autoattack,apgd", "--set", f"apgd.eps={EPS}") == 0
    return tmp


def _components(cells: dict[str, tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    return [v for k, v in cells.items() if k.startswith(ENSEMBLE + "/")]


@pytest.mark.slow
def test_the_ensemble_is_at_least_as_strong_as_each_component_and_apgd(fast):
    cells = _cells(fast / "r.sqlite")
    ens, apgd = cells[ENSEMBLE][0].summary, cells[f"apgd(eps={EPS})"][0].summary
    parts = _components(cells)
    assert [c.key.split("/")[1] for c, _ in parts] == [
        "apgd-ce",
        *(f"apgd-t(target_rank={k})" for k in range(1, 10)),
    ]
    assert ens.budget is not None and (ens.budget.norm, ens.budget.eps) == ("linf", 0.05)
    assert ens.adversarial_accuracy <= apgd.adversarial_accuracy
    assert all(ens.adversarial_accuracy <= c.summary.adversarial_accuracy for c, _ in parts)
    # APGD-T finds what APGD-CE missed here: the ensemble is strictly stronger
    assert ens.adversarial_accuracy < parts[0][0].summary.adversarial_accuracy
    # a component's figure is conditional on the ones before it: reported at no budget
    assert all(c.budget is None for c, _ in parts)


@pytest.mark.slow
def test_each_component_attacks_exactly_the_images_still_robust(fast):
    cells = _cells(fast / "r.sqlite")
    parts = _components(cells)
    first = parts[0][1]
    alive = (first.clean_pred == first.label) & ~(first.attacked & (first.adv_pred != first.label))
    assert 0 < alive.sum() < first.attacked.sum()
    for _, rec in parts[1:]:
        np.testing.assert_array_equal(rec.index, first.index)
        np.testing.assert_array_equal(rec.attacked, alive)
        alive = alive & ~(rec.attacked & (rec.adv_pred != rec.label))


@pytest.mark.slow
def test_the_component_column_says_who_broke_each_image_and_when(fast):
    cells = _cells(fast / "r.sqlite")
    ens = cells[ENSEMBLE][1]
    parts = [rec for _, rec in _components(cells)]
    correct = ens.clean_pred == ens.label
    for i in range(len(ens.index)):
        k = ens.component[i]
        broke = [j for j, r in enumerate(parts) if r.attacked[i] and r.adv_pred[i] != r.label[i]]
        assert broke == ([k] if k >= 0 else []), i  # the first to break it, and no other after
        if k >= 0:
            assert ens.adv_pred[i] == parts[k].adv_pred[i] != ens.label[i]
            assert ens.iterations[i] == parts[k].iterations[i] > 0
            assert ens.linf[i] == parts[k].linf[i] <= 0.05 + 1e-6
        else:
            assert ens.adv_pred[i] == (ens.label[i] if correct[i] else ens.clean_pred[i])
            assert ens.iterations[i] == 0
    assert (ens.component >= 1).any(), "APGD-T broke nothing: the test shows nothing"
    summary = cells[ENSEMBLE][0].summary
    assert summary.adversarial_accuracy == pytest.approx((correct & (ens.component < 0)).mean())
    # NULL in the database, not a sentinel; the single attack's rows are all NULL
    con = sqlite3.connect(fast / "r.sqlite")
    nulls = con.execute("SELECT COUNT(*) FROM records WHERE component IS NULL").fetchone()[0]
    total = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    assert nulls == total - int((ens.component >= 0).sum())


@pytest.mark.slow
def test_report_and_results_give_each_components_contribution(fast):
    cells = _cells(fast / "r.sqlite")
    ens = cells[ENSEMBLE][1]
    doc = json.loads((fast / "out" / "results.json").read_text())
    (group,) = doc["ensembles"]
    assert group["key"] == ENSEMBLE and len(group["components"]) == 10
    broke = [p["broke"] for p in group["components"]]
    assert broke == [int((ens.component == k).sum()) for k in range(10)]
    after = [p["robust_accuracy"] for p in group["components"]]
    assert after == sorted(after, reverse=True)
    assert after[-1] == group["robust_accuracy"] == cells[ENSEMBLE][0].summary.adversarial_accuracy
    attacked = [p["attacked"] for p in group["components"]]
    assert attacked[1:] == [attacked[0] - sum(broke[: k + 1]) for k in range(9)]
    assert "## Ensembles" in (fast / "out" / "report.md").read_text()


@pytest.mark.slow
def test_a_run_failing_mid_ensemble_resumes_from_the_last_finished_component(
    fast, tmp_path, monkeypatch
):
    """The second component fails on the first try: the first is stored; the resumed run
    computes only the remaining components and ends with the uninterrupted run's records."""
    calls: list[str] = []
    failed: list[bool] = []
    real = runner.run_attack

    def flaky(loaded, spec, *args, **kwargs):
        calls.append(f"{spec.params.get('loss')}{spec.params.get('target_rank')}")
        if spec.params.get("target_rank") == 1 and not failed:
            failed.append(True)
            raise RuntimeError("killed in the second component")
        return real(loaded, spec, *args, **kwargs)

    monkeypatch.setattr(runner, "run_attack", flaky)
    assert _run(tmp_path, *FAST) == 1
    stored = _cells(tmp_path / "r.sqlite")
    assert list(stored) == [f"{ENSEMBLE}/apgd-ce"]
    calls.clear()
    assert _run(tmp_path, *FAST) == 0
    assert calls == [f"dlr{k}" for k in range(1, 10)]  # apgd-ce was not run again
    resumed, clean = _cells(tmp_path / "r.sqlite"), _cells(fast / "r.sqlite")
    for key, (cell, rec) in resumed.items():
        assert cell.summary.adversarial_accuracy == clean[key][0].summary.adversarial_accuracy
        for name in ("index", "attacked", "adv_pred", "iterations", "linf", "component"):
            np.testing.assert_array_equal(getattr(rec, name), getattr(clean[key][1], name))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("autoattack.n_target_classes=10", "n_target_classes: must be <= 9"),
        ("autoattack.version=bogus", "choose one of standard, fast, rand, custom"),
        ("autoattack.eot=0", "invalid value 0 for autoattack.eot"),
        ("autoattack.eps=0", "must be > 0.0"),
        ("autoattack.eps=-0.1", "must be > 0.0"),
        ("autoattack.norm=2", "eps must be set for norm=2"),
        ("autoattack.components=apgd-ce+bogus", "unknown: bogus"),
        ("autoattack.version=standard", "needs attack 'fab'"),
    ],
)
def test_bad_parameters_end_in_one_line(tmp_path, capsys, monkeypatch, setting, message):
    monkeypatch.setenv("ADVBENCH_PLUGINS_BLOCK", "fab")  # standard must not run without FAB
    extra = ["--set", "autoattack.version=custom"] if "components" in setting else []
    assert _run(tmp_path, "--attacks", "autoattack", *extra, "--set", setting) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err, err
    assert not (tmp_path / "r.sqlite").exists() or not _cells(tmp_path / "r.sqlite")


def test_apgd_target_rank_aims_at_the_runner_up_and_counts_any_error(registry, mlp_loaded, sample):
    images, labels, indices = (a[:100] for a in sample)
    data = runner.Sample.of(mlp_loaded, images, labels, indices)
    apgd = registry.attacks.get("apgd")
    with pytest.raises(ParamError, match="set one of them"):
        apgd.config({"target_rank": "1", "target": "3"})
    logits = _logits(mlp_loaded, images)
    ranked = np.argsort(-logits, axis=1, kind="stable")
    hits = []
    for rank in (1, 3):
        params = apgd.config({"loss": "dlr", "target_rank": str(rank), "eps": "0.1"})
        rec, _ = runner.run_attack(mlp_loaded, runner.AttackSpec(apgd, params, 0), data)
        assert (rec.target == -1).all()  # one untargeted row per image
        assert np.all(rec.adv_pred[rec.flipped] != rec.label[rec.flipped])
        hits.append(np.mean(rec.adv_pred[rec.flipped] == ranked[rec.flipped, rank]))
    # the pushed-to class is where most flips land (a wrong target would put few there)
    assert hits[0] > 0.8 and hits[1] > 0.5, hits


def _logits(loaded: Any, images: np.ndarray) -> np.ndarray:
    from advbench.contract.lazy_tf import tf

    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        out = loaded.network.logits(x)
    return loaded.session.run(out, {x: images})


def test_custom_components_run_in_autoattacks_order_with_their_losses(registry):
    """`version=custom` takes any of the kinds, untargeted DLR (ART's AutoAttack has it)
    included, and runs them in the fixed order whatever order they are listed in."""
    autoattack = registry.attacks.get("autoattack")
    params = autoattack.config(
        {"version": "custom", "components": "square+apgd-dlr+apgd-ce", "n_target_classes": "9"}
    )
    parts = autoattack.components(params)
    assert [p.label for p in parts] == ["apgd-ce", "apgd-dlr", "square"]
    losses = {p.label: p.overrides.get("loss") for p in parts}
    assert losses == {"apgd-ce": "ce", "apgd-dlr": "dlr", "square": None}
    assert "target_rank" not in parts[1].overrides  # untargeted: any misclassification


@pytest.mark.parametrize(("version", "eot", "draws"), [("rand", None, "20"), ("rand", "3", "3")])
def test_rand_is_apgd_ce_and_dlr_averaging_eot_draws(registry, version, eot, draws):
    """`version=rand` is the reference's: APGD-CE then untargeted APGD-DLR, one restart, each
    gradient the mean of 20 draws (`eot` changes it); the other versions add no `eot`."""
    autoattack = registry.attacks.get("autoattack")
    sets = {"version": version, "n_target_classes": "9", **({"eot": eot} if eot else {})}
    parts = autoattack.components(autoattack.config(sets))
    assert [p.label for p in parts] == ["apgd-ce", "apgd-dlr"]
    assert [p.overrides["loss"] for p in parts] == ["ce", "dlr"]
    assert all(p.overrides["eot"] == draws and p.overrides["restarts"] == "1" for p in parts)
    fast = autoattack.components(autoattack.config({"version": "fast", "n_target_classes": "2"}))
    assert all("eot" not in p.overrides for p in fast)


def test_rand_runs_from_the_cli(tmp_path):
    """The rand ensemble from the command line: both components stored as cells of their own,
    the ensemble at least as strong as its first component."""
    sets = ["--set", "autoattack.version=rand", "--set", "autoattack.eot=2"]
    sets += ["--set", f"autoattack.eps={EPS}", "--limit", "30"]
    assert _run(tmp_path, "--attacks", "autoattack", *sets) == 0
    cells = _cells(tmp_path / "r.sqlite")
    ensemble = next(k for k in cells if "/" not in k)
    assert ensemble.startswith("autoattack(version=rand")
    parts = sorted(k.split("/", 1)[1] for k in cells if "/" in k)
    assert parts == ["apgd-ce", "apgd-dlr"]
    first = cells[f"{ensemble}/apgd-ce"][0].summary.adversarial_accuracy
    assert cells[ensemble][0].summary.adversarial_accuracy <= first
