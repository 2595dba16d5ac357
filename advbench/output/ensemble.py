"""Each component's contribution to an ensemble (AutoAttack), from the stored records alone.

An ensemble's cell (`autoattack`) stores, per image, the position of the component that broke
it (`Records.component`, -1: none); its components are the cells keyed `ENSEMBLE/LABEL` of the
same model, in the run's order. The contribution table gives, after each component, the images
it broke, the robust accuracy left (the ensemble's, once the last has run) and what it cost:
the images it attacked — only those still robust — and the steps it spent on them, counted as
image-iterations (a flipped image's iterations-to-flip, else the whole step budget).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from advbench.output.records import Cell, Records, StoredRun


@dataclass(frozen=True)
class Part:
    """One component of an ensemble, in the order it ran."""

    key: str  # autoattack/apgd-ce
    attacked: int  # images it attacked: the ones the earlier components left robust
    broke: int  # of those, the images it broke
    robust_accuracy: float  # the ensemble's robust accuracy after this component
    seconds: float
    image_iterations: int  # steps it spent, summed over the images it attacked


@dataclass(frozen=True)
class Ensemble:
    """One ensemble cell of a model, with its components' contributions."""

    model: str
    key: str
    n: int
    clean_accuracy: float
    robust_accuracy: float
    components: tuple[Part, ...]

    def to_dict(self) -> dict[str, Any]:
        """The object results.json lists under "ensembles"."""
        out = asdict(self)
        out["components"] = [asdict(p) for p in self.components]
        return out


def image_iterations(cell: Cell, records: Records) -> int:
    """Steps a cell spent: iterations-to-flip of each flipped row, the step budget of each
    attacked row that never flipped."""
    spent = int(records.iterations[records.attacked & records.flipped].sum())
    budget = cell.max_iterations or 0
    return spent + budget * int((records.attacked & ~records.flipped).sum())


def ensembles(run: StoredRun, records: Mapping[int, Records]) -> list[Ensemble]:
    """Every done ensemble cell of the run (a cell whose key prefixes other cells' keys with a
    slash), with its components' contributions, in the run's order."""
    out = []
    done = [c for c in run.cells if c.done and c.id in records]
    for cell in done:
        parts = [c for c in done if c.model == cell.model and c.key.startswith(cell.key + "/")]
        if not parts:
            continue
        rec = records[cell.id]
        n = len(rec.index)
        correct = rec.clean_pred == rec.label
        steps = []
        for k, part in enumerate(parts):
            broke = rec.component == k
            still = correct & ~((rec.component >= 0) & (rec.component <= k))
            steps.append(
                Part(
                    key=part.key,
                    attacked=int(records[part.id].attacked.sum()),
                    broke=int(broke.sum()),
                    robust_accuracy=round(float(still.mean()), 6) if n else 0.0,
                    seconds=part.summary.seconds if part.summary is not None else 0.0,
                    image_iterations=image_iterations(part, records[part.id]),
                )
            )
        robust = correct & (rec.component < 0)
        out.append(
            Ensemble(
                model=cell.model,
                key=cell.key,
                n=n,
                clean_accuracy=round(float(correct.mean()), 6) if n else 0.0,
                robust_accuracy=round(float(robust.mean()), 6) if n else 0.0,
                components=tuple(steps),
            )
        )
    return out


HEADERS = (
    "model",
    "ensemble",
    "component",
    "attacked",
    "broke",
    "robust acc after",
    "image-iterations",
    "seconds",
)


def rows(groups: list[Ensemble]) -> list[list[Any]]:
    """One table row per component of each ensemble."""
    return [
        [
            g.model,
            g.key,
            p.key.removeprefix(g.key + "/"),
            p.attacked,
            p.broke,
            f"{p.robust_accuracy:.4f}",
            p.image_iterations,
            f"{p.seconds:.2f}",
        ]
        for g in groups
        for p in g.components
    ]
