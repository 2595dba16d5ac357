"""Security-evaluation curves from minimum-norm attacks (`advbench.output.curves`)."""

from __future__ import annotations

import json

import numpy as np

from advbench.cli import main
from advbench.output import curves


def test_robust_accuracy_from_minimal_norms():
    """Misclassified images count 0, unbroken ones inf; robust at ε means a norm above ε."""
    c = curves.Curve("m", "a", "l2", np.sort(np.array([0.0, 0.5, 1.0, 2.0, np.inf])))
    assert c.robust(0.0) == 0.8  # only the misclassified image is lost at ε 0
    assert c.robust(0.5) == 0.6
    assert c.robust(1.5) == 0.4
    assert c.robust(100.0) == 0.2  # the unbroken image
    assert c.median() == 1.0


def test_a_run_with_a_minimum_norm_attack_draws_its_curve(tmp_path):
    """DeepFool's curve in report.md and security-curves.png, beside PGD's L2 points; at an ε
    beyond every norm found the curve is DeepFool's own adversarial accuracy."""
    out = tmp_path / "o"
    args = [
        "run", "--models", "mlp", "--attacks", "deepfool,pgd", "--limit", "60",
        "--set", "pgd.norm=2", "--set", "pgd.eps=1.0,2.0", "--db", str(tmp_path / "r.sqlite"),
        "--out", str(out), "--no-checks",
    ]  # fmt: skip
    assert main(args) == 0
    assert (out / "security-curves.png").is_file()
    report = (out / "report.md").read_text()
    section = report.split("## Security evaluation curves")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| mlp"))
    assert "deepfool" in row and "L2" in row
    cells = {c["label"]: c for c in json.loads((out / "results.json").read_text())["cells"]}
    assert cells["deepfool"]["minimal_norm"] == "l2"
    assert not any("minimal_norm" in c for k, c in cells.items() if k.startswith("pgd("))
    last = float(row.split("|")[-3])  # robust accuracy at ε 3 (every image broken by then?)
    assert last >= cells["deepfool"]["adversarial_accuracy"]
