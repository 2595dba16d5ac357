"""One benchmark run: models × attacks × parameter sets, cell by cell, with nothing lost.

The command line resolves names and parameters (failing before any TensorFlow work) into a
`Plan`; `execute` loads each model once, runs each attack cell on it and hands every finished
cell to the output writers immediately, so an interrupted run keeps what it finished.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from advbench.attack import Attack
from advbench.errors import ParamError
from advbench.model import Model


@dataclass
class CellSpec:
    """One attack with one full parameter set."""

    attack: Attack
    params: dict[str, Any]
    varied: dict[str, Any]  # parameters that differ from the attack's defaults

    @property
    def label(self) -> str:
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
    batch_size: int
    data_dir: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def expand(attack: Attack, overrides: Mapping[str, str] | None) -> list[CellSpec]:
    """Parameter sets of a sweep: comma-separated values multiply into one cell each."""
    overrides = dict(overrides or {})
    keys = list(overrides)
    choices = [[v.strip() for v in overrides[k].split(",")] for k in keys]
    for key, values in zip(keys, choices, strict=True):
        if any(not v for v in values):
            raise ParamError(f"empty value in {attack.name}.{key}={overrides[key]!r}")
    defaults = attack.config()
    cells = []
    for combo in itertools.product(*choices) if keys else [()]:
        params = attack.config(dict(zip(keys, combo, strict=True)))
        varied = {k: v for k, v in params.items() if defaults.get(k) != v}
        cells.append(CellSpec(attack, params, varied))
    return cells


def plan(
    models: Sequence[Model],
    attacks: Sequence[Attack],
    sets: Mapping[str, Mapping[str, str]],
    seed: int,
    model_seed: int | None,
    limit: int | None,
    batch_size: int,
    data_dir: str | None,
) -> Plan:
    """Validate every model configuration and attack parameter set of a run."""
    resolved = []
    for m in models:
        overrides = dict(sets.get(m.name, {}))
        if any("," in v for v in overrides.values()):
            raise ParamError(f"model parameters take one value each ({m.name})")
        resolved.append(
            (m, m.config(overrides), m.default_seed if model_seed is None else model_seed)
        )
    cells = [c for a in attacks for c in expand(a, sets.get(a.name))]
    return Plan(resolved, cells, seed, limit, batch_size, data_dir)


@dataclass
class CellResult:
    """A finished cell: its identity, metrics and per-row records."""

    model: str
    spec: CellSpec
    summary: dict[str, Any]
    records: Any  # runner.Records


def execute(
    p: Plan,
    on_model: Callable[[dict[str, Any]], None],
    on_cell: Callable[[CellResult, np.ndarray], None],
    skip: Callable[[str, CellSpec], bool] = lambda model, spec: False,
    bars: Any = None,
) -> None:
    """Run the plan; `on_model`/`on_cell` receive results as soon as they exist."""
    from advbench import data, metrics, runner, zoo

    test = data.read_test_set(p.data_dir)
    n = min(p.limit or test.num_examples, test.num_examples)
    images, labels = test.images[:n], test.labels_int[:n]
    indices = np.arange(n, dtype=np.int64)
    for model, config, model_seed in p.models:
        todo = [c for c in p.cells if not skip(model.name, c)]
        if not todo:
            continue
        on_train = None
        if bars is not None:
            task = bars.add_task(f"train {model.name}", total=None, note="", visible=False)

            def on_train(step, total, acc, task=task):
                note = {} if acc is None else {"note": f"acc@1000 {acc:.3f}"}
                bars.update(task, completed=step, total=total, visible=True, **note)

        loaded = zoo.load(model, config, model_seed, p.data_dir, on_train=on_train)
        try:
            clean = runner.predict(loaded, images)
            on_model(
                {
                    "name": model.name,
                    "clean_accuracy": round(float(np.mean(clean == labels)), 6),
                    "n": n,
                    "seed": model_seed,
                    "config": config,
                    "checkpoint": str(loaded.folder),
                }
            )
            for spec in todo:
                progress = None
                if bars is not None:
                    task = bars.add_task(f"{model.name} × {spec.label}", total=None, note="")

                    def progress(done, total, task=task):
                        bars.update(task, completed=done, total=total)

                records, seconds = runner.run_attack(
                    loaded, spec.attack, spec.params, spec.attack.seed(spec.params, p.seed),
                    images, labels, indices, clean, p.batch_size, on_progress=progress,
                )  # fmt: skip
                if bars is not None:
                    bars.remove_task(task)
                targeted = spec.attack.is_targeted(spec.params)
                summary = metrics.summarize(records, seconds, targeted)
                on_cell(CellResult(model.name, spec, summary, records), images)
        finally:
            loaded.close()
