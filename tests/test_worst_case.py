"""Robust accuracy, worst case: per image over every attack at a threat model, from the stored
records alone — a hand-built store (no TensorFlow) where each answer is known, then one real run
whose numbers are recomputed here from records.csv."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

from advbench.output import metrics, report
from advbench.output.records import Budget, Cell, Records
from advbench.output.results import Store
from advbench.output.worst_case import worst_cases

LABELS = np.array([0, 1, 2, 3, 4, 5])
CLEAN = np.array([0, 1, 2, 3, 4, 9])  # image 5 is misclassified clean


def untargeted(broken: set[int], images: int = 6, attacks_misclassified: bool = False) -> Records:
    """One row per image; the rows in `broken` end on a wrong class (label + 1)."""
    label, clean = LABELS[:images], CLEAN[:images]
    correct = clean == label
    attacked = np.ones(images, bool) if attacks_misclassified else correct
    hit = np.isin(np.arange(images), list(broken)) & attacked
    adv = np.where(attacked, np.where(hit, (label + 1) % 10, label), clean)
    return _records(np.arange(images), label, np.full(images, -1), clean, adv, attacked, hit)


def targeted_all(reached: dict[int, int], left: dict[int, int] | None = None) -> Records:
    """target=all: 9 rows (one per other class) for each correct image, one unattacked row for
    a misclassified one. `reached` maps an image to the one target it reached; `left` maps an
    image to the class its first (failed) target row ended on, not the label."""
    left = left or {}
    rows = []  # (index, target, attacked, adv_pred, reached)
    for i, (y, c) in enumerate(zip(LABELS, CLEAN, strict=True)):
        if c != y:
            rows.append((i, -1, False, c, False))
            continue
        for k, t in enumerate(t for t in range(10) if t != y):
            if reached.get(i) == t:
                rows.append((i, t, True, t, True))
            else:
                rows.append((i, t, True, left[i] if k == 0 and i in left else y, False))
    index, target, attacked, adv, hit = (np.array(col) for col in zip(*rows, strict=True))
    return _records(index, LABELS[index], target, CLEAN[index], adv, attacked, hit)


def _records(index, label, target, clean, adv, attacked, hit) -> Records:
    rows = len(index)
    return Records(
        index=np.asarray(index, np.int64),
        label=np.asarray(label, np.int64),
        target=np.asarray(target, np.int64),
        clean_pred=np.asarray(clean, np.int64),
        adv_pred=np.asarray(adv, np.int64),
        attacked=np.asarray(attacked, bool),
        iterations=np.where(hit, 3, 0).astype(np.int32),
        l2=np.zeros(rows),
        linf=np.zeros(rows),
        confidence=np.full(rows, np.nan),
        adversarial=np.zeros((rows, 784), np.float32),
    )


def make_run(tmp_path, cells: list[tuple[str, str, Budget | None, Records, bool]]):
    """A stored run of (key, model, budget, records, targeted) cells; returns (store, run)."""
    store = Store(tmp_path / "wc.sqlite")
    run_id = store.open_run("w" * 16, "advbench run (hand-built)", 0, "abc", {}, {}, reuse=False)[0]
    for position, (key, model, budget, records, is_targeted) in enumerate(cells):
        cell = Cell(
            model=model,
            key=key,
            attack=key.split("(")[0],
            params={},
            seed=0,
            data_checksum="abc",
            versions={},
            summary=metrics.summarize(records, 1.0, is_targeted, budget),
        )
        store.save_cell(run_id, position, cell, records)
    return store, store.load_run(run_id)


def compute(store, run):
    return worst_cases(run, {c.id: store.records(c.id) for c in run.cells if c.done})


LINF3 = Budget("linf", 0.3)


def test_the_worst_case_is_the_union_of_the_breaks_and_each_attack_adds_its_own(tmp_path):
    store, run = make_run(
        tmp_path,
        [
            ("a", "m", LINF3, untargeted({1, 2}), False),
            ("b", "m", LINF3, untargeted({2, 3}), False),
        ],
    )
    [g] = compute(store, run)
    assert (g.model, g.norm, g.eps, g.n) == ("m", "linf", 0.3, 6)
    assert g.clean_accuracy == pytest.approx(5 / 6, abs=1e-6)
    # robust: correct (not 5) and broken by neither (not 1, 2, 3) → {0, 4}
    assert g.robust_accuracy == pytest.approx(2 / 6, abs=1e-6)
    a, b = g.attacks
    assert (a.key, a.broken, a.broken_alone) == ("a", 2, 1)  # alone: image 1
    assert (b.key, b.broken, b.broken_alone) == ("b", 2, 1)  # alone: image 3
    # each alone equals its cell's own adversarial accuracy; the greedy order accumulates
    for contribution, cell in zip(g.attacks, run.cells, strict=True):
        assert contribution.robust_accuracy == cell.summary.adversarial_accuracy
    assert a.robust_accuracy == pytest.approx(3 / 6, abs=1e-6)
    assert a.cumulative == a.robust_accuracy
    assert b.cumulative == pytest.approx(2 / 6, abs=1e-6) == g.robust_accuracy
    assert g.robust_accuracy <= min(c.robust_accuracy for c in g.attacks)


def test_a_target_reached_breaks_the_image_and_failed_targets_do_not(tmp_path):
    # image 4: one of its 9 rows reached target 7; image 0: a failed row still left label 0
    store, run = make_run(
        tmp_path,
        [
            ("a", "m", LINF3, untargeted({1}), False),
            ("t", "m", LINF3, targeted_all({4: 7}, left={0: 6}), True),
        ],
    )
    [g] = compute(store, run)
    a, t = g.attacks
    assert run.cells[1].summary.rows == 5 * 9 + 1  # 5 correct images × 9 targets, 1 unattacked
    assert (t.broken, t.broken_alone) == (2, 2)  # images 4 (target reached) and 0 (left label)
    assert (a.broken, a.broken_alone) == (1, 1)
    assert g.robust_accuracy == pytest.approx(2 / 6, abs=1e-6)  # {2, 3}
    assert t.robust_accuracy == pytest.approx(3 / 6, abs=1e-6)  # {1, 2, 3}: per image, not row


def test_targeted_rows_that_all_fail_break_nothing(tmp_path):
    store, run = make_run(tmp_path, [("t", "m", LINF3, targeted_all({}), True)])
    [g] = compute(store, run)
    assert g.robust_accuracy == g.clean_accuracy == pytest.approx(5 / 6, abs=1e-6)
    assert g.attacks[0].broken == 0


def test_misclassified_images_are_never_robust(tmp_path):
    # an attack that also attacks misclassified images and leaves image 5 on its true label
    moved = untargeted(set(), attacks_misclassified=True)
    moved.adv_pred[5] = LABELS[5]
    store, run = make_run(tmp_path, [("n", "m", LINF3, moved, False)])
    [g] = compute(store, run)
    assert run.cells[0].summary.adversarial_accuracy == pytest.approx(1.0)  # the cell's own
    assert g.robust_accuracy == pytest.approx(5 / 6, abs=1e-6)  # image 5 is not robust
    assert g.attacks[0].broken == 0


def test_groups_by_model_norm_and_eps_and_skips_cells_without_a_budget(tmp_path):
    store, run = make_run(
        tmp_path,
        [
            ("pgd(eps=0.1)", "m", Budget("linf", 0.1), untargeted({1}), False),
            ("pgd", "m", LINF3, untargeted({1, 2}), False),
            ("pgd(norm=2)", "m", Budget("l2", 0.3), untargeted({0, 1, 2, 3}), False),
            ("mim", "m", LINF3, untargeted({3}), False),
            ("ifgsm", "m", None, untargeted({0, 1, 2, 3, 4}), False),
            ("pgd", "other", LINF3, untargeted({4}), False),
        ],
    )
    groups = {(g.model, g.norm, g.eps): g for g in compute(store, run)}
    assert list(groups) == [
        ("m", "l2", 0.3),
        ("m", "linf", 0.1),
        ("m", "linf", 0.3),
        ("other", "linf", 0.3),
    ]
    assert [a.key for a in groups["m", "linf", 0.3].attacks] == ["pgd", "mim"]
    assert groups["m", "linf", 0.3].robust_accuracy == pytest.approx(2 / 6, abs=1e-6)
    assert groups["m", "linf", 0.1].robust_accuracy == pytest.approx(4 / 6, abs=1e-6)
    assert groups["m", "l2", 0.3].robust_accuracy == pytest.approx(1 / 6, abs=1e-6)
    assert groups["other", "linf", 0.3].robust_accuracy == pytest.approx(4 / 6, abs=1e-6)
    assert all("ifgsm" not in (a.key for a in g.attacks) for g in groups.values())


def test_cells_on_different_images_are_combined_on_the_images_all_ran_on(tmp_path):
    store, run = make_run(
        tmp_path,
        [("a", "m", LINF3, untargeted({1}), False), ("b", "m", LINF3, untargeted({2}, 3), False)],
    )
    [g] = compute(store, run)
    assert g.n == 3 and g.robust_accuracy == pytest.approx(1 / 3, abs=1e-6)  # {0}


def test_results_json_report_md_and_the_terminal_carry_the_worst_case(tmp_path):
    store, run = make_run(
        tmp_path,
        [
            ("a", "m", LINF3, untargeted({1, 2}), False),
            ("b", "m", LINF3, untargeted({2, 3}), False),
            ("ifgsm", "m", None, untargeted({4}), False),
        ],
    )
    out = tmp_path / "out"
    report.render(store, run.id, out, pictures=False)
    [g] = json.loads((out / "results.json").read_text())["worst_case"]
    assert (g["model"], g["norm"], g["eps"], g["n"], g["cells"]) == ("m", "linf", 0.3, 6, 2)
    assert g["robust_accuracy"] == pytest.approx(2 / 6, abs=1e-6)
    assert [(a["key"], a["broken_alone"]) for a in g["attacks"]] == [("a", 1), ("b", 1)]
    assert [a["cumulative"] for a in g["attacks"]] == pytest.approx([3 / 6, 2 / 6], abs=1e-6)
    md = (out / "report.md").read_text()
    section = md.split("## Robust accuracy, worst case")[1].split("\n## ")[0]
    assert "| m " in section and "0.3333" in section and "a 1, b 1" in section
    assert "not counted: here ifgsm." in section
    assert md.index("## Model × attack") < md.index("## Robust accuracy, worst case")
    assert "0.3333" in report.worst_case_table(store, run)
    store.close()


def test_a_run_without_budgets_has_no_worst_case(tmp_path):
    store, run = make_run(tmp_path, [("ifgsm", "m", None, untargeted({4}), False)])
    out = tmp_path / "out"
    report.render(store, run.id, out, pictures=False)
    assert json.loads((out / "results.json").read_text())["worst_case"] == []
    assert "worst case" not in (out / "report.md").read_text()
    assert report.worst_case_table(store, run) == ""
    store.close()


def test_end_to_end_the_worst_case_agrees_with_records_csv(tmp_path):
    """A real run: two budgets (a sweep), the worst case recomputed here from records.csv."""
    out = tmp_path / "run"
    eps = "0.05,0.3"
    proc = subprocess.run(
        [sys.executable, "-m", "advbench", "run", "--models", "mlp", "--attacks", "fgsm,pgd,mim"]
        + ["--limit", "100", "--no-figures", "--out", str(out), "--db", str(tmp_path / "r.db")]
        + [arg for a in ("fgsm", "pgd", "mim") for arg in ("--set", f"{a}.eps={eps}")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Robust accuracy, worst case" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    cells = {c["label"]: c for c in results["cells"]}
    robust: dict[float, dict[int, bool]] = defaultdict(dict)
    with (out / "records.csv").open() as fh:
        for r in csv.DictReader(fh):
            e = cells[r["attack"]]["budget"]["eps"]
            ok = r["clean_pred"] == r["label"] and r["adv_pred"] == r["label"]
            i = int(r["index"])
            robust[e][i] = robust[e].get(i, True) and ok
    groups = {g["eps"]: g for g in results["worst_case"]}
    assert sorted(groups) == [0.05, 0.3]
    for e, g in groups.items():
        members = [c for c in cells.values() if c["budget"]["eps"] == e]
        assert g["cells"] == len(members) == 3 and g["n"] == 100
        assert g["robust_accuracy"] == pytest.approx(np.mean(list(robust[e].values())), abs=1e-6)
        singles = [c["adversarial_accuracy"] for c in members]
        assert 0 <= g["robust_accuracy"] <= min(singles)
        assert [a["robust_accuracy"] for a in g["attacks"]] == pytest.approx(singles, abs=1e-6)
    assert groups[0.05]["robust_accuracy"] > 0  # a number with something to bound
