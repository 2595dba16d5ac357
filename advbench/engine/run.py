"""One benchmark run: models × attacks × parameter sets, cell by cell, with nothing lost.

The command line resolves names and parameters (failing before any TensorFlow work) into a
`Plan`; `execute` loads each model once, runs each attack cell on it and hands every finished
cell to the output writers immediately, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import itertools
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.contract.attack import Attack
from advbench.contract.dataset import Dataset, ImageSpec
from advbench.contract.model import Model
from advbench.contract.params import identity
from advbench.engine.batches import default_cell_timeout
from advbench.errors import ParamError
from advbench.output.records import Budget, Cell


@dataclass
class CellSpec:
    """One attack with one full parameter set."""

    attack: Attack
    params: dict[str, Any]
    varied: dict[str, Any]  # parameters that differ from the attack's defaults
    name: str | None = None  # an ensemble component's key, autoattack/apgd-ce
    after: tuple[str, ...] | None = None  # a component: the earlier components' keys
    components: tuple[str, ...] = ()  # an ensemble: its components' keys, in order

    @property
    def key(self) -> str:
        """The cell's display key: the attack, with the parameters that differ from its
        defaults or are swept, e.g. `pgd(eps=0.1)` (unique within a run); an ensemble's
        component is `ENSEMBLE/LABEL`."""
        if self.name is not None:
            return self.name
        if not self.varied:
            return self.attack.name
        inner = ",".join(f"{k}={v}" for k, v in self.varied.items())
        return f"{self.attack.name}({inner})"


@dataclass
class Plan:
    """Everything a run will do, resolved and validated."""

    models: list[tuple[Model, dict[str, Any], int]]  # model, config, training seed
    cells: list[CellSpec]
    seed: int
    limit: int | None
    batch_size: int | None  # None: each model's hints.attack_batch_size
    dataset: Dataset
    checks: bool = True  # measure the indicators of attack failure (advbench.engine.checks)
    cell_timeout: float | None = None  # seconds a cell may run (None: `default_cell_timeout`)
    shard_size: int | None = None  # a distributed run's images per unit; None: in-process


def expand(
    attack: Attack, overrides: Mapping[str, str] | None, images: ImageSpec
) -> list[CellSpec]:
    """Parameter sets of a sweep: comma-separated values multiply into one cell each, each
    fitted to the dataset's `images` (`Attack.for_dataset`)."""
    overrides = dict(overrides or {})
    keys = list(overrides)
    choices = [[v.strip() for v in overrides[k].split(",")] for k in keys]
    for key, values in zip(keys, choices, strict=True):
        if any(not v for v in values):
            raise ParamError(f"empty value in {attack.name}.{key}={overrides[key]!r}")
    defaults = attack.for_dataset(attack.config(), images)
    # a swept parameter labels every cell of the sweep, the one at the default value included
    swept = {k for k, values in zip(keys, choices, strict=True) if len(set(values)) > 1}
    cells = []
    for combo in itertools.product(*choices) if keys else [()]:
        params = attack.for_dataset(attack.config(dict(zip(keys, combo, strict=True))), images)
        varied = {k: v for k, v in params.items() if defaults.get(k) != v or k in swept}
        cells.append(CellSpec(attack, params, varied))
    return cells


def plan(
    models: Sequence[Model],
    attacks: Sequence[Attack],
    sets: Mapping[str, Mapping[str, str]],
    seed: int,
    model_seed: int | None,
    limit: int | None,
    batch_size: int | None,
    dataset: Dataset,
    checks: bool = True,
    resolve: Callable[[str], Attack] | None = None,
    cell_timeout: float | None = None,
    shard_size: int | None = None,
) -> Plan:
    """Validate every model configuration and attack parameter set of a run on `dataset`
    (each model must accept its images: one line naming both otherwise).

    `resolve` finds an ensemble's component attacks by name (the registry's `attacks.get`);
    each ensemble cell becomes its component cells followed by itself (`engine.ensemble`)."""
    from advbench.engine import ensemble, zoo

    images = dataset.spec
    resolved = []
    for m in models:
        zoo.check_accepts(m, dataset)
        overrides = dict(sets.get(m.name, {}))
        if any("," in v for v in overrides.values()):
            raise ParamError(f"model parameters take one value each ({m.name})")
        config = m.config(overrides)
        if m.pretrained:  # an imported file: read and checked now, before the run starts
            m.origin(config)
        resolved.append((m, config, m.default_seed if model_seed is None else model_seed))
    cells = [
        part
        for a in attacks
        for c in expand(a, sets.get(a.name), images)
        for part in ensemble.expand(c, resolve, images)
    ]
    return Plan(resolved, cells, seed, limit, batch_size, dataset, checks, cell_timeout, shard_size)


def describe(p: Plan) -> dict[str, Any]:
    """Everything that determines the run's numbers (its identity for resuming)."""
    return {
        # The batch size changes float rounding (README, "Reproducibility"), so it is part of
        # a run's identity: a rerun with another one is another run, never a resumption.
        "models": [
            {
                "name": m.name,
                "config": c,
                "seed": s,
                "batch_size": p.batch_size or m.hints.attack_batch_size,
                # an imported model's file: another content is another run
                **({"sha256": m.origin(c)["sha256"]} if m.pretrained else {}),
            }
            for m, c, s in p.models
        ],
        "cells": [
            {"attack": c.attack.name, "params": identity(c.attack.params, c.params)}
            for c in p.cells
        ],
        "seed": p.seed,
        "limit": p.limit,
        "data": p.dataset.checksum,
        "dataset": p.dataset.name,
        # a distributed run's shards are batches of their own: another size, another rounding
        **({"shard_size": p.shard_size} if p.shard_size is not None else {}),
    }


@dataclass(frozen=True)
class Opened:
    """The run `open_run` found or created; `done` counts its stored cells when resumed."""

    run_id: str
    resumed: bool
    done: int = 0


def open_run(store: Any, p: Plan, argv: Sequence[str], fresh: bool = False) -> Opened:
    """Resume the stored run with exactly this plan's identity (`describe`), or create one.

    `fresh` always creates a new run. A new run records the command line (`argv`, without
    the program name), the dataset, its checksum and the library versions next to the plan.
    """
    from advbench.engine import graph
    from advbench.output import results

    identity = describe(p)
    key = results.run_key(identity)
    command = "advbench " + shlex.join(argv)
    run_id, found = store.open_run(
        key,
        command,
        p.seed,
        p.dataset.checksum,
        graph.versions(),
        identity,
        p.dataset.name,
        reuse=not fresh,
    )
    return Opened(run_id, found, len(store.done_keys(run_id)) if found else 0)


class CellFailed(Exception):
    """An attack raised, or produced images that cannot be right (NaN, out of range)."""


def check_records(spec: CellSpec, records: Any, value_range: tuple[float, float]) -> None:
    """Refuse results that are silently wrong rather than record them as numbers: pixels
    outside the attack's clip range (default: the dataset's `value_range`)."""
    low, high = value_range
    adv = records.adversarial
    if not np.all(np.isfinite(adv)):
        raise CellFailed("adversarial images contain NaN or infinity")
    lo, hi = spec.params.get("clip_min", low), spec.params.get("clip_max", high)
    if adv.size and (adv.min() < lo - 1e-6 or adv.max() > hi + 1e-6):
        raise CellFailed(
            f"adversarial pixels outside [{lo}, {hi}]: {adv.min():.4g}..{adv.max():.4g}"
        )


def step_budget(spec: CellSpec) -> int | None:
    """The most steps the attack gives an image (the x-range of the iteration pictures).

    None for an attack that builds its own graph without an `iterations` parameter and does not
    say (the driver, which needs the number, never runs it)."""
    return spec.attack.step_budget(spec.params)


def cell_time_limit(spec: CellSpec, clean_seconds: float) -> float:
    """The default time limit of the cell (`--cell-timeout` unset): its steps' work, or its
    queries' for an attack that counts them, over `clean_seconds` per clean forward pass."""
    queries = spec.attack.query_budget(spec.params)
    return default_cell_timeout(step_budget(spec), clean_seconds, queries)


def summarize_cell(spec: CellSpec, records: Any, seconds: float) -> Any:
    """The cell's metrics, at the budget it is reported at: none for an ensemble's component
    (its accuracy is conditional on the earlier components, which it left alone), and the norm
    of a minimum-norm attack (its robustness curve, `output.curves`)."""
    from advbench.output import metrics

    threat = spec.attack.threat_model(spec.params)
    budget = threat.budget if spec.after is None else None
    return metrics.summarize(
        records,
        seconds,
        spec.attack.is_targeted(spec.params),
        None if budget is None else Budget(*budget),
        minimal_norm=threat.norm if threat.kind == "minimal" else None,
    )


def new_cell(
    p: Plan, model: str, spec: CellSpec, checkpoint: str, model_seed: int, versions: dict
) -> Cell:
    """A cell of the run before its attack runs: what identifies it and its numbers."""
    return Cell(
        model=model,
        key=spec.key,
        attack=spec.attack.name,
        params=spec.params,
        seed=spec.attack.seed(spec.params, p.seed),
        data_checksum=p.dataset.checksum,
        dataset=p.dataset.name,
        versions=versions,
        checkpoint=checkpoint,
        model_seed=model_seed,
    )


def model_info(
    p: Plan, model: Model, config: Mapping[str, Any], seed: int, loaded: Any, sample: Any
) -> dict[str, Any]:
    """What a run stores about one of its models: clean accuracy on the run's images, the
    checkpoint (or imported file) and, unless `--no-checks`, the model-level checks."""
    from advbench.engine import checks

    return {
        "name": model.name,
        "clean_accuracy": round(float(np.mean(sample.clean_pred == sample.labels)), 6),
        "n": len(sample),
        "seed": seed,
        "config": dict(config),
        "checkpoint": str(loaded.folder),
        **({"imported": loaded.record} if model.pretrained else {}),
        **({"checks": checks.model_info(loaded, sample.images, sample.labels)} if p.checks else {}),
    }


def execute(
    p: Plan,
    store: Any,
    run_id: str,
    bars: Any = None,
    on_cell: Callable[[Cell], None] | None = None,
    keep_adversarial: bool = False,
) -> None:
    """Run every cell of the plan not yet done in `run_id`, storing each as it finishes.

    A cell whose attack raises or returns NaN/out-of-range images is stored as failed with the
    reason, and the run goes on; failed cells are tried again when the run is resumed. An
    ensemble's component attacks only the images its earlier components left robust, and the
    ensemble's cell combines them (`advbench.engine.ensemble`); after a failed component, the
    later ones and the ensemble fail too (they would not know what is left) and run on resume.
    """
    from advbench.engine import batches, checks, claims, data, ensemble, graph, runner, zoo
    from advbench.engine.progress import training_task
    from advbench.output import figures, shards

    test = data.read_test_set(p.dataset)
    n = min(p.limit or test.num_examples, test.num_examples)
    images, labels = test.images[:n], test.labels_int[:n]
    indices = np.arange(n, dtype=np.int64)
    done = store.done_keys(run_id)
    versions = graph.versions()
    position = {
        (m.name, c.key): i
        for i, (m, c) in enumerate(itertools.product([m for m, _, _ in p.models], p.cells))
    }
    for model, config, model_seed in p.models:
        todo = [c for c in p.cells if (model.name, c.key) not in done]
        if not todo:
            continue
        on_train = None if bars is None else training_task(bars, model.name)
        loaded = zoo.load(model, config, model_seed, p.dataset, on_train=on_train)
        try:
            started = time.monotonic()
            sample = runner.Sample.of(loaded, images, labels, indices)
            clean_seconds = time.monotonic() - started  # one forward pass over the images
            store.save_model(run_id, model_info(p, model, config, model_seed, loaded, sample))
            database = getattr(store, "path", None)
            locks = claims.lock_folder(Path(database), run_id) if database else None

            def lock_name(spec: CellSpec, model: Model = model) -> str:
                return figures.file_name(f"{model.name}--{spec.key}")

            def finished(model: Model = model) -> set[str]:
                return {
                    figures.file_name(f"{m}--{k}")
                    for m, k in store.done_keys(run_id)
                    if m == model.name
                }

            # identical runs started together share this run: each cell is computed once
            for spec in claims.claimed(todo, locks, lock_name, finished):
                cell = new_cell(p, model.name, spec, str(loaded.folder), model_seed, versions)
                progress = None
                if bars is not None:
                    task = bars.add_task(f"{model.name} × {spec.key}", total=None, note="")

                    def progress(k, total, task=task):
                        bars.update(task, completed=k, total=total)

                records = combined = None
                try:
                    cell.max_iterations = step_budget(spec)
                    before = checks.mark(loaded.graph) if p.checks else None
                    if spec.components:  # an ensemble: its stored components, combined
                        combined = ensemble.combine(store, run_id, model.name, spec, sample)
                        records, seconds = combined.records, combined.seconds
                        cell.max_iterations = combined.max_iterations
                    else:
                        limit = p.cell_timeout or cell_time_limit(spec, clean_seconds)
                        records, seconds = runner.run_attack(
                            loaded,
                            runner.AttackSpec(spec.attack, spec.params, cell.seed),
                            sample,
                            kept=batches.KeptBatches(store, run_id, model.name, spec.key),
                            batch_size=p.batch_size or model.hints.attack_batch_size,
                            on_progress=progress,
                            time_limit=limit,
                            ticks=True,  # Ctrl-C stops a long batch within a step
                            only=None
                            if spec.after is None
                            else ensemble.standing(store, run_id, model.name, spec, sample),
                        )
                    check_records(spec, records, loaded.spec.value_range)
                    cell.summary = summarize_cell(spec, records, seconds)
                    if p.checks and not spec.components:  # an ensemble: its components' checks
                        cell.summary = checks.with_cell_checks(
                            cell.summary, loaded, spec.attack, spec.params, cell.seed,
                            images[records.index], records, before,
                        )  # fmt: skip
                    cell.status = "done"
                    if combined is not None:
                        cell.examples, cell.originals = combined.examples, combined.originals
                    else:
                        shown = np.flatnonzero(records.flipped)[:8]  # the first successes
                        # stored as [k, h, w, c]: the pictures need the images' shape
                        grid = (-1, *loaded.spec.shape)
                        cell.examples = records.adversarial[shown].reshape(grid)
                        cell.originals = images[records.index[shown]].reshape(grid)
                except Exception as exc:  # isolation: one broken cell never stops the run
                    cell.status, cell.error = "failed", f"{type(exc).__name__}: {exc}"
                    cell.summary = cell.examples = cell.originals = records = None
                finally:
                    if bars is not None:
                        bars.remove_task(task)
                where = position[(model.name, spec.key)]
                store.save_cell(run_id, where, cell, records, keep_adversarial)
                if cell.done:  # its kept batches are in the cell now
                    shards.drop(store, run_id, model.name, spec.key)
                if on_cell:
                    on_cell(cell)
        finally:
            loaded.close()
