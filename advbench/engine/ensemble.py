"""Ensembles (AutoAttack): several attacks as one, each run only on the images still robust.

An attack whose `components(params)` is not None is an ensemble. The plan expands its cell into
one cell per component, keyed `ENSEMBLE/LABEL` (`autoattack/apgd-ce`), followed by the
ensemble's own cell. Component cells are ordinary cells — their own records, summary and
transaction — except that each attacks only the images that no earlier component of the same
ensemble broke, read back from the results database. A run killed mid-ensemble therefore
resumes from the last finished component: the finished ones are stored, the rest run on what
they left. The ensemble's cell combines the stored components, image by image: the first
component whose row left the true label broke the image (`Records.component`, its position;
`iterations`, the step within it), else the image is robust.

Why read the components back even when they ran a moment ago in this process: one code path,
so a resumed run and an uninterrupted one store the same ensemble records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from advbench.contract.attack import Attack
from advbench.contract.dataset import ImageSpec
from advbench.errors import AdvbenchError, ParamError
from advbench.output.records import DISTANCES, Cell, Records

if TYPE_CHECKING:
    from advbench.engine.runner import Sample

CellSpec = Any  # advbench.engine.run.CellSpec (which imports this module)

Resolve = Callable[[str], Attack]


class ComponentMissing(Exception):
    """An earlier component of the ensemble has not finished (it failed): nothing after it can
    know which images are still robust."""


def expand(spec: CellSpec, resolve: Resolve | None, images: ImageSpec) -> list[CellSpec]:
    """`spec` alone, or, for an ensemble, its component cells then `spec` itself (which then
    lists their keys). Every component's parameters are validated here, before any work, and
    fitted to the dataset's `images` (`Attack.for_dataset`)."""
    parts = resolved(spec.attack, spec.params, spec.key, resolve, images)
    if parts is None:
        return [spec]
    cells, keys = [], []
    for label, attack, params in parts:
        defaults = attack.for_dataset(attack.config(), images)
        varied = {k: v for k, v in params.items() if defaults.get(k) != v}
        key = f"{spec.key}/{label}"
        cells.append(
            replace(spec, attack=attack, params=params, varied=varied, name=key, after=tuple(keys))
        )
        keys.append(key)
    return [*cells, replace(spec, components=tuple(keys))]


def resolved(
    attack: Attack,
    params: dict[str, Any],
    key: str,
    resolve: Resolve | None,
    images: ImageSpec | None = None,
) -> list[tuple[str, Attack, dict[str, Any]]] | None:
    """(label, attack, validated parameters) of each component of an ensemble; None for a
    single attack. A missing or nested component is a one-line ParamError."""
    parts = attack.components(params)
    if parts is None:
        return None
    if resolve is None:
        raise ParamError(f"{key} is an ensemble: the plan needs the attack registry")
    out = []
    for label, name, overrides in parts:
        try:
            part = resolve(name)
        except AdvbenchError:
            raise ParamError(
                f"{key} needs attack {name!r} (component {label}), which is not registered"
            ) from None
        if part.components(part.config()) is not None:
            raise ParamError(f"{key}: component {label} is itself an ensemble")
        config = part.config(overrides)
        out.append((label, part, config if images is None else part.for_dataset(config, images)))
    return out


def _done(store: Any, run_id: str, model: str, keys: Sequence[str]) -> list[tuple[Cell, Records]]:
    """The stored cells `keys` of `model` with their records, in order; ComponentMissing if one
    has not finished."""
    cells = {c.key: c for c in store.load_run(run_id).cells if c.model == model and c.done}
    out = []
    for key in keys:
        if key not in cells:
            raise ComponentMissing(f"component {key} did not finish; it runs again on resume")
        out.append((cells[key], store.records(cells[key].id)))
    return out


def _positions(records: Records, sample: Sample) -> np.ndarray:
    """Each row's image position in `sample` (whose test-set indices are sorted)."""
    return np.searchsorted(sample.indices, records.index)


def broken(records: Records, sample: Sample) -> np.ndarray:
    """bool per image of `sample`: an attacked row of it left the true label (a misclassified
    point inside the budget — AutoAttack's criterion, whatever the component aimed at)."""
    out = np.zeros(len(sample), bool)
    left = records.attacked & (records.adv_pred != records.label)
    np.logical_or.at(out, _positions(records, sample), left)
    return out


def standing(store: Any, run_id: str, model: str, spec: CellSpec, sample: Sample) -> np.ndarray:
    """bool per image: not broken by the components before `spec` (what it attacks)."""
    alive = np.ones(len(sample), bool)
    for _, records in _done(store, run_id, model, spec.after or ()):
        alive &= ~broken(records, sample)
    return alive


class Combined(NamedTuple):
    """The ensemble's cell contents, from its stored components."""

    records: Records  # one row per image
    seconds: float  # the components' sum
    max_iterations: int | None  # the largest component step budget (iterations are per component)
    examples: np.ndarray | None  # the first broken images' adversarials, from the components
    originals: np.ndarray | None


def combine(store: Any, run_id: str, model: str, spec: CellSpec, sample: Sample) -> Combined:
    """The ensemble's records, image by image from the stored components (see the module)."""
    return combine_parts(_done(store, run_id, model, spec.components), sample)


def run_in_memory(
    loaded: Any,
    attack: Attack,
    params: dict[str, Any],
    sample: Sample,
    resolve: Resolve,
    seed: int,
    *,
    batch_size: int | None = None,
    timings: list[tuple[str, Records, float]] | None = None,
) -> Records:
    """The whole ensemble on `sample` without a results database (the conformance kit, the
    bench): the same components, the same standing images, the same combination, with the
    adversarial images kept. `timings`, when given, receives each component's (label, records,
    seconds)."""
    from advbench.engine import runner

    parts: list[tuple[Cell | None, Records]] = []
    alive = np.ones(len(sample), bool)
    batch = {"batch_size": batch_size} if batch_size else {}
    for label, part, part_params in (
        resolved(attack, params, attack.name, resolve, loaded.spec) or []
    ):
        spec = runner.AttackSpec(part, part_params, part.seed(part_params, seed))
        records, seconds = runner.run_attack(loaded, spec, sample, only=alive, **batch)
        if timings is not None:
            timings.append((label, records, seconds))
        alive &= ~broken(records, sample)
        parts.append((None, records))
    return combine_parts(parts, sample).records


def combine_parts(parts: Sequence[tuple[Cell | None, Records]], sample: Sample) -> Combined:
    """Combine components' (cell, records), in order: see the module. The adversarial images
    are combined too when every component's records carry them (not read from a database)."""
    n = len(sample)
    with_images = all(r.adversarial.shape[1:] == sample.images.shape[1:] for _, r in parts)
    adversarial = sample.images.copy() if with_images else np.zeros((n, 0), np.float32)
    component = np.full(n, -1, np.int64)
    adv_pred = sample.clean_pred.astype(np.int64).copy()
    iterations = np.zeros(n, np.int32)
    dist = (
        {name: np.zeros(n, getattr(parts[0][1], name).dtype) for name in DISTANCES} if parts else {}
    )
    confidence = np.full(n, np.nan)
    attacked = np.zeros(n, bool)
    shown: list[tuple[int, int, np.ndarray, np.ndarray | None]] = []  # (position, k, adv, orig)
    for k, (cell, rec) in enumerate(parts):
        pos = _positions(rec, sample)
        attacked[pos[rec.attacked]] = True
        alive = component[pos] < 0
        # robust so far: the image carries this component's final point (the last one wins)
        last = np.flatnonzero(rec.attacked & alive)
        if with_images:
            adversarial[pos[last]] = rec.adversarial[last]
        adv_pred[pos[last]], confidence[pos[last]] = rec.adv_pred[last], rec.confidence[last]
        for name, values in dist.items():
            values[pos[last]] = getattr(rec, name)[last]
        # broken here: the first of its rows that left the label
        left = np.flatnonzero(rec.attacked & alive & (rec.adv_pred != rec.label))
        images, first = np.unique(pos[left], return_index=True)
        rows = left[first]
        component[images] = k
        if with_images:
            adversarial[images] = rec.adversarial[rows]
        adv_pred[images], confidence[images] = rec.adv_pred[rows], rec.confidence[rows]
        for name, values in dist.items():
            values[images] = getattr(rec, name)[rows]
        # a row that left the label without the component's own success (a targeted component
        # that missed its target) still broke the image: it counts as flipped, at step >= 1
        iterations[images] = np.maximum(rec.iterations[rows], 1)
        examples = [] if cell is None or cell.examples is None else list(cell.examples)
        originals = list(cell.originals) if cell and cell.originals is not None else []
        originals += [None] * (len(examples) - len(originals))
        at = {int(p): j for j, p in enumerate(pos[np.flatnonzero(rec.flipped)[: len(examples)]])}
        shown += [(int(i), k, examples[at[i]], originals[at[i]]) for i in images if i in at]
    records = Records(
        index=sample.indices.astype(np.int64),
        label=sample.labels.astype(np.int64),
        target=np.full(n, -1, np.int64),
        clean_pred=sample.clean_pred.astype(np.int64),
        adv_pred=adv_pred,
        attacked=attacked,
        iterations=iterations,
        confidence=confidence,
        adversarial=adversarial,  # from a database: none (each component keeps its examples)
        component=component,
        **dist,
    )
    first8 = sorted(shown, key=lambda s: s[0])[:8]
    cells = [c for c, _ in parts if c is not None]
    budgets = [c.max_iterations for c in cells if c.max_iterations is not None]
    return Combined(
        records=records,
        seconds=sum(c.summary.seconds for c in cells if c.summary is not None),
        max_iterations=max(budgets) if budgets else None,
        examples=np.array([s[2] for s in first8], np.float32) if first8 else None,
        originals=(
            None
            if not first8 or any(s[3] is None for s in first8)
            else np.array([s[3] for s in first8], np.float32)
        ),
    )
