"""Security-evaluation curves: robust accuracy as a function of ε, from one minimum-norm run.

A minimum-norm attack (`deepfool`, `cw-l2`, `fab minimal=true`: `Summary.minimal_norm`) gives
each image the size of the smallest perturbation it found. An image is robust at ε when it is
classified correctly and that size exceeds ε (an image the attack could not break, at every ε),
so the whole curve comes from one run's per-image records. Each size is an upper bound on the
true minimal norm, hence the curve is an upper bound on robust accuracy — as every fixed-ε
attack's number is; the fixed-ε cells of the same model and norm are drawn as points beside it,
and a point below the curve shows where the minimum-norm attack fell short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advbench.contract.threat import NORM_LABELS
from advbench.output.records import Cell, Records

#: The ε at which report.md tabulates each curve, per norm (MNIST-scale pixels in [0, 1]).
TABLE_EPS = {
    "l2": (0.5, 1.0, 1.5, 2.0, 3.0),
    "linf": (0.05, 0.1, 0.2, 0.3),
    "l1": (2.0, 5.0, 10.0, 20.0),
    "l0": (5.0, 10.0, 20.0, 50.0),
}


@dataclass(frozen=True)
class Curve:
    """One minimum-norm cell's curve: per image the minimal norm found (0 for an image the
    model misclassifies clean, inf for one the attack did not break)."""

    model: str
    cell: str
    norm: str
    sizes: np.ndarray  # sorted

    def robust(self, eps: float | np.ndarray) -> float | np.ndarray:
        """Robust accuracy at `eps`: the share of images whose minimal norm exceeds it."""
        n = len(self.sizes)
        below = np.searchsorted(self.sizes, eps, side="right")
        return (n - below) / n if n else np.nan

    def median(self) -> float:
        """The ε at which robust accuracy falls to half of the images."""
        return float(np.median(self.sizes)) if len(self.sizes) else float("nan")


def curves(cells: list[Cell], records: dict[int, Records]) -> list[Curve]:
    """A curve for every done, untargeted minimum-norm cell (one row per image)."""
    out = []
    for c in cells:
        s = c.summary
        if not c.done or s is None or s.minimal_norm is None or s.targeted is not None:
            continue
        r = records[c.id]
        distance = getattr(r, s.minimal_norm).astype(np.float64)
        if np.isnan(distance).any() or (distance < 0).any():
            continue  # stored before this norm was measured
        size = np.where(r.flipped, distance, np.inf)
        size = np.where(r.clean_pred == r.label, size, 0.0)
        out.append(Curve(c.model, c.key, s.minimal_norm, np.sort(size)))
    return out


def points(cells: list[Cell], model: str, norm: str) -> list[tuple[float, float, str]]:
    """(ε, robust accuracy, cell key) of the fixed-ε cells of `model` at `norm`."""
    return [
        (c.budget.eps, c.summary.adversarial_accuracy, c.key)
        for c in cells
        if c.done and c.summary is not None and c.budget is not None and not c.targeted
        and c.model == model and c.budget.norm == norm
    ]  # fmt: skip


def tables(found: list[Curve]) -> list[tuple[list[list[object]], list[str]]]:
    """report.md's tables, one per norm (each with its own ε columns): robust accuracy at
    `TABLE_EPS` and the median minimal norm."""
    out = []
    for norm in (n for n in TABLE_EPS if any(c.norm == n for c in found)):
        eps = TABLE_EPS[norm]
        rows = [
            [
                c.model,
                c.cell,
                NORM_LABELS[norm],
                *(f"{c.robust(e):.4f}" for e in eps),
                f"{c.median():.3g}",
            ]
            for c in found
            if c.norm == norm
            for median in [f"{c.median():.3g}"]
        ]
        out.append((rows, ["model", "attack", "norm", *(f"ε {e:g}" for e in eps), "median norm"]))
    return out
