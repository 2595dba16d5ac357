"""Robust accuracy, worst case: per image, over every attack a run made at one threat model.

Each budgeted attack alone only bounds robustness from above; the figure to cite is the share
of images that survive *all* of them (as AutoAttack reports its ensemble). This module groups
a run's done cells by (model, norm, eps) of their reported budget (`Cell.budget`) and combines
their stored per-row records, image by image — nothing is recomputed, so `advbench report`
gives the same numbers from the database alone.

An image is robust at a budget iff the model classifies it correctly clean and no row of any
counted cell left the true label: an attacked row whose adversarial prediction is not the
label. Every row of a bounded attack lies within its eps (the conformance kit asserts it), so
such a row is a misclassified point inside the budget — for targeted cells that includes every
row that reached its target (with `target=all`, any target breaks the image). Cells without a
reported budget (unbounded, minimum-norm, or a by-product bound such as ifgsm's) are not
counted. When counted cells ran on different images (an attack's own image limit), a group is
computed on the images every one of them ran on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from advbench.output.records import Cell, Records, StoredRun


@dataclass(frozen=True)
class Contribution:
    """One counted cell of a group: its own figure and what it adds to the others."""

    key: str  # the cell's display key, pgd(eps=0.1)
    attack: str
    robust_accuracy: float  # this attack alone, on the group's images
    broken: int  # correctly classified images it broke
    broken_alone: int  # of those, images no other attack of the group broke
    cumulative: float  # worst-case robust accuracy after this attack and every earlier one


@dataclass(frozen=True)
class WorstCase:
    """The worst case of one model at one threat model."""

    model: str
    norm: str
    eps: float
    n: int  # images every counted cell ran on
    clean_accuracy: float
    robust_accuracy: float  # correct clean and broken by no counted cell
    attacks: tuple[Contribution, ...]  # in the run's cell order (the greedy order)

    def to_dict(self) -> dict[str, Any]:
        """The object results.json lists under "worst_case"."""
        out = asdict(self)
        out["cells"] = len(self.attacks)
        out["attacks"] = [asdict(a) for a in self.attacks]
        return out


def counted(cell: Cell) -> bool:
    """A done cell reported at a budget (norm, eps) takes part in a worst case."""
    return cell.done and cell.summary is not None and cell.budget is not None


def _round(value: float) -> float:
    return float(round(float(value), 6))


def _per_image(records: Records, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(correct clean, broken) of each of `images` (sorted test-set indices) from a cell's
    rows: correct if every row of the image says so, broken if any attacked row left the
    label."""
    keep = np.isin(records.index, images)
    at = np.searchsorted(images, records.index[keep])
    correct = np.ones(len(images), bool)
    broken = np.zeros(len(images), bool)
    np.logical_and.at(correct, at, (records.clean_pred == records.label)[keep])
    left = records.attacked & (records.adv_pred != records.label)
    np.logical_or.at(broken, at, left[keep])
    return correct, broken


def _group(model: str, norm: str, eps: float, members: list[tuple[Cell, Records]]) -> WorstCase:
    """Combine the counted cells of one (model, norm, eps) image by image."""
    images = np.unique(members[0][1].index)
    for _, rec in members[1:]:
        images = np.intersect1d(images, rec.index)
    per_cell = [_per_image(rec, images) for _, rec in members]
    correct = np.logical_and.reduce([c for c, _ in per_cell])
    broken = np.array([b & correct for _, b in per_cell]).reshape(len(members), len(images))
    n = len(images)

    def share(mask: np.ndarray) -> float:
        return _round(mask.sum() / n) if n else 0.0

    times_broken = broken.sum(axis=0)
    so_far = np.zeros(n, bool)
    contributions = []
    for (cell, _), b in zip(members, broken, strict=True):
        so_far |= b
        contributions.append(
            Contribution(
                key=cell.key,
                attack=cell.attack,
                robust_accuracy=share(correct & ~b),
                broken=int(b.sum()),
                broken_alone=int((b & (times_broken == 1)).sum()),
                cumulative=share(correct & ~so_far),
            )
        )
    return WorstCase(
        model=model,
        norm=norm,
        eps=eps,
        n=n,
        clean_accuracy=share(correct),
        robust_accuracy=share(correct & ~broken.any(axis=0)),
        attacks=tuple(contributions),
    )


def worst_cases(run: StoredRun, records: Mapping[int, Records]) -> list[WorstCase]:
    """One `WorstCase` per (model, norm, eps) of the run's counted cells, from their stored
    records (`records[cell.id]`); models in the run's order, then norm, then eps."""
    groups: dict[tuple[str, str, float], list[tuple[Cell, Records]]] = {}
    for cell in run.cells:
        if counted(cell) and cell.id in records:
            b = cell.budget
            assert b is not None
            groups.setdefault((cell.model, b.norm, round(b.eps, 9)), []).append(
                (cell, records[cell.id])
            )
    order = {m: i for i, m in enumerate(dict.fromkeys(c.model for c in run.cells))}
    return [
        _group(model, norm, eps, members)
        for (model, norm, eps), members in sorted(
            groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])
        )
    ]


def not_counted(run: StoredRun) -> list[str]:
    """Keys of the done cells without a reported budget (they join no worst case). An
    ensemble's components (`autoattack/apgd-ce`) are left out: their ensemble cell counts."""
    return list(
        dict.fromkeys(c.key for c in run.cells if c.done and not counted(c) and "/" not in c.key)
    )
