"""Indicators of attack failure: flags that say when a robustness number cannot be trusted.

After Pintor et al. (NeurIPS 2022, "Indicators of Attack Failure"), AutoAttack's own checks
(Croce & Hein 2020) and Carlini et al. (2019, "On Evaluating Adversarial Robustness"). Each
`Check` is plain data: the engine measures the model-level and cell-level ones
(`advbench.engine.checks`) and stores them with the model and the cell; the one that compares
cells (a black-box attack beating the white-box ones) is computed here from the stored cells,
so `advbench report` renders every flag from the database alone.

A check whose value is None could not be measured for that cell (the explanation of the
measure says where); it never fires.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Cells and runs (advbench.output.records) are typed Any here: records imports this module.
Cell = StoredRun = Any


@dataclass(frozen=True)
class Check:
    """One indicator: its measured value, the threshold above which it fires, and why."""

    name: str
    fired: bool
    value: float | None
    threshold: float
    explanation: str

    @classmethod
    def measured(cls, name: str, value: float | None) -> Check:
        """The check `name` (one of `EXPLANATIONS`) with `value`: fired when above threshold."""
        threshold, explanation = EXPLANATIONS[name]
        fired = value is not None and value > threshold
        return cls(name, fired, None if value is None else float(value), threshold, explanation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Check:
        return cls(d["name"], bool(d["fired"]), d["value"], d["threshold"], d["explanation"])


# name -> (threshold, one-line explanation of what the value measures).
EXPLANATIONS: dict[str, tuple[float, str]] = {
    "silent success": (
        0.0,
        "share of attacked rows reported not flipped although a point the attack visited (its "
        "start, or the returned image) meets its own success criterion",
    ),
    "unconfirmed success": (
        0.0,
        "share of attacked rows whose claimed success the engine withdrew: fed to the model "
        "again, the image does not meet the goal by a margin of 1e-5 × (1 + max |logit|) — it "
        "sits on the decision boundary, or a random model's fresh draw is not fooled — and "
        "counts as not flipped",
    ),
    "incomplete optimisation": (
        0.005,
        "share of attacked rows that 10 % more steps of the same attack, from the returned "
        "images and inside the same threat model, flip: the attack stopped too early",
    ),
    "zero gradients": (
        0.01,
        "share of clean images whose input gradient of the cross-entropy on the logits is NaN, "
        "all zero, or disconnected (tf.gradients gives None): 1.0",
    ),
    "unstable predictions": (
        0.02,
        "share of correctly classified images whose prediction changes under uniform noise of "
        "±0.01 per pixel (4 draws)",
    ),
    "unbounded attack fails": (
        0.02,
        "accuracy left by a 50-step L∞ ascent of the logit margin with eps 1 (any image) on up "
        "to 100 correctly classified images: it must reach ~0, else gradients are masked",
    ),
    "black-box beats white-box": (
        0.002,
        "robust accuracy of the best white-box attack minus this gradient-free attack's, at "
        "the same model and (norm, eps): above 0.2 percentage points means masked gradients",
    ),
    "probabilities as logits": (
        0.5,
        "share of clean images whose logits all lie in [0, 1] and sum to 1 ± 0.001: the model "
        "returns probabilities, whose saturation weakens every logit-based attack",
    ),
    "randomness": (
        1e-5,
        "largest difference of the logits of the same images computed twice, relative to 1 + "
        "their largest magnitude: a random forward pass makes every number irreproducible",
    ),
}
MODEL_CHECKS = (
    "zero gradients",
    "unstable predictions",
    "unbounded attack fails",
    "probabilities as logits",
    "randomness",
)


def parse(items: Iterable[Mapping[str, Any]] | None) -> list[Check]:
    """Checks from their stored JSON objects."""
    return [Check.from_dict(d) for d in items or ()]


def black_box_checks(cells: Sequence[Cell]) -> dict[tuple[str, str], Check]:
    """ "black-box beats white-box" for every done, untargeted, budgeted, gradient-free cell
    whose model has a white-box cell at the same (norm, eps); keyed by (model, cell key).

    Robust accuracies are shares (0.002 = 0.2 percentage points). Whether an attack used
    gradients is what the engine saw in its graph (`Summary.uses_gradients`); a cell of an old
    database that does not say takes no part.
    """
    groups: dict[tuple[str, str, float], list[Cell]] = defaultdict(list)
    for c in cells:
        s = c.summary
        usable = c.done and s is not None and s.budget is not None and not c.targeted
        if usable and s.uses_gradients is not None:
            groups[(c.model, s.budget.norm, s.budget.eps)].append(c)
    out = {}
    for group in groups.values():
        white = [c.summary.adversarial_accuracy for c in group if c.summary.uses_gradients]
        for c in group:
            if not c.summary.uses_gradients:
                value = min(white) - c.summary.adversarial_accuracy if white else None
                out[(c.model, c.key)] = Check.measured("black-box beats white-box", value)
    return out


def run_checks(run: StoredRun) -> dict[tuple[str, str], list[Check]]:
    """Every check of every done cell, keyed by (model, cell key): the model's own checks
    (shared by its cells), the cell's, then the comparison with the run's other cells."""
    model_checks = {m["name"]: parse(m.get("checks")) for m in run.models}
    compared = black_box_checks(run.cells)
    out = {}
    for c in run.cells:
        if not c.done or c.summary is None:
            continue
        key = (c.model, c.key)
        extra = [compared[key]] if key in compared else []
        out[key] = [*model_checks.get(c.model, []), *c.summary.checks, *extra]
    return out


def _value(check: Check) -> str:
    return f"{check.value:.4g} > {check.threshold:g}"


def report_lines(run: StoredRun) -> list[str]:
    """The report's "Checks" section: one line per fired flag (model-level ones once per
    model), or one line saying all were quiet."""
    lines = []
    for m in run.models:
        for check in parse(m.get("checks")):
            if check.fired:
                lines.append(
                    f"- {m['name']} (model, all its cells): **{check.name}** — "
                    f"{check.explanation} ({_value(check)})"
                )
    measured = 0
    for (model, key), checks in run_checks(run).items():
        for check in checks:
            measured += check.value is not None
            if check.fired and check.name not in MODEL_CHECKS:
                lines.append(
                    f"- {model} × {key}: **{check.name}** — {check.explanation} ({_value(check)})"
                )
    if not lines:
        lines = [f"quiet: no check fired ({measured} measured values over the run's cells)."]
    return lines
