"""A run fanned out over a Dask cluster: cells split into shards of images, one store.

`advbench run --workers N` starts a local cluster of N worker processes; `--scheduler ADDRESS`
(or `$ADVBENCH_SCHEDULER`) joins one started with `dask scheduler` and `dask worker` (or by
dask-jobqueue on Slurm or PBS). The driver — the process the user started — does what must
happen once: it plans, loads each model to store its clean accuracy and model checks (training
a missing checkpoint then, once, and sending its files to the workers), and it alone writes the
SQLite database. Each unit (`engine.units`) is a shard of a cell; an ensemble's component
waits for the same shard of the components before it (Dask's dependencies), and the
ensemble's own cell is combined by the driver from its stored components, as in a serial run.

Every shard that comes back is stored at once (`output.shards`, one transaction), and a cell
whose shards are all there is stored whole, so a driver killed at any moment and started again
with the same command computes only the units not stored. A worker that dies mid-unit costs
only that unit: the scheduler runs it again elsewhere.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import numpy as np

from advbench.engine import units
from advbench.engine.run import (
    CellSpec,
    Plan,
    cell_time_limit,
    check_records,
    new_cell,
    step_budget,
    summarize_cell,
)
from advbench.errors import AdvbenchError
from advbench.output import shards
from advbench.output.checks import Check
from advbench.output.records import Cell, Records

SCHEDULER_ENV = "ADVBENCH_SCHEDULER"
CONNECT_TIMEOUT = "10s"


def connect(workers: int | None, scheduler: str | None) -> Any:
    """A Dask client: of a new local cluster of `workers` processes (the cores shared out
    evenly), or of the scheduler at `scheduler`. One line when Dask is missing or the
    scheduler cannot be reached."""
    try:
        import logging

        from distributed import Client, LocalCluster
    except ImportError:
        raise AdvbenchError(
            "--workers and --scheduler need Dask: pip install 'advbench[dask]'"
        ) from None
    if scheduler:
        try:
            return Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise AdvbenchError(f"scheduler {scheduler} unreachable: {exc}") from None
    count = int(workers or 1)
    cluster = LocalCluster(
        n_workers=count,
        threads_per_worker=max(1, (os.cpu_count() or 1) // count),
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster)


def close(client: Any) -> None:
    """Close the client and, for a local cluster, the cluster it started."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) image ranges of `size` (the last one shorter) covering the first `n` images."""
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def cell_images(spec: CellSpec, n: int) -> int:
    """How many of the run's first `n` images the cell looks at (`Attack.max_images`)."""
    limit = spec.attack.max_images(spec.params)
    return n if limit is None else min(n, int(limit))


def execute(
    p: Plan,
    store: Any,
    run_id: str,
    client: Any,
    *,
    dataset_ref: str,
    plugins_dir: str | None,
    shard_size: int = units.DEFAULT_SHARD,
    on_cell: Callable[[Cell], None] | None = None,
    on_unit: Callable[[int, int], None] | None = None,
    keep_adversarial: bool = False,
    resources: dict[str, float] | None = None,
) -> None:
    """Run every unit of the plan not yet stored in `run_id` on `client`'s workers (module)."""
    from distributed import as_completed

    from advbench.engine import data, ensemble, graph, runner, zoo
    from advbench.engine.run import model_info

    test = data.read_test_set(p.dataset)
    n = min(p.limit or test.num_examples, test.num_examples)
    images, labels = test.images[:n], test.labels_int[:n]
    done = store.done_keys(run_id)
    kept = shards.stored(store, run_id)
    for model_name, key in set(kept) & done:  # a driver killed after storing the cell
        shards.drop(store, run_id, model_name, key)
    versions = graph.versions()
    pairs = [(m.name, c.key) for m, _, _ in p.models for c in p.cells]
    position = {pair: i for i, pair in enumerate(pairs)}
    futures: dict[Any, tuple[Any, CellSpec, int]] = {}  # future → (model, cell, shard)
    waiting: dict[tuple[str, str], set[int]] = {}  # cells still running → shards missing
    context: dict[str, dict[str, Any]] = {}
    for model, config, model_seed in p.models:
        todo = [c for c in p.cells if (model.name, c.key) not in done]
        if not todo:
            continue
        loaded = zoo.load(model, config, model_seed, p.dataset)  # trains a missing one, once
        try:
            started = time.monotonic()
            sample = runner.Sample.of(loaded, images, labels, np.arange(n, dtype=np.int64))
            clean_seconds = time.monotonic() - started
            store.save_model(run_id, model_info(p, model, config, model_seed, loaded, sample))
            record, folder, spec_images = loaded.record, loaded.folder, loaded.spec
        finally:
            loaded.close()
        files = None
        if not model.pretrained and not str(folder).startswith(str(zoo.SHIPPED)):  # trained here
            files = client.scatter(units.checkpoint_files(folder), broadcast=True, hash=False)
        context[model.name] = {
            "sample": sample,
            "spec": spec_images,
            "folder": folder,
            "seed": model_seed,
        }
        submitted: dict[tuple[str, int], Any] = {}
        for spec in todo:
            if spec.components:
                continue  # combined by the driver from its stored components
            ranges = shard_ranges(cell_images(spec, n), shard_size)
            have = kept.get((model.name, spec.key), {})
            missing = {i for i in range(len(ranges)) if i not in have}
            waiting[(model.name, spec.key)] = missing
            for i, (lo, hi) in enumerate(ranges):
                if i not in missing:
                    continue
                share = clean_seconds * (hi - lo) / max(n, 1)
                unit = units.Unit(
                    run_id=run_id,
                    model=model.name,
                    model_config=dict(config),
                    model_seed=model_seed,
                    weights_sha256=None if model.pretrained else record.get("weights_sha256"),
                    origin_sha256=record.get("sha256") if model.pretrained else None,
                    checkpoint=folder.name,
                    dataset=dataset_ref,
                    data_checksum=p.dataset.checksum,
                    cell=spec.key,
                    attack=spec.attack.name,
                    params=dict(spec.params),
                    seed=spec.attack.seed(spec.params, p.seed),
                    shard=i,
                    lo=lo,
                    hi=hi,
                    batch_size=p.batch_size or model.hints.attack_batch_size,
                    checks=p.checks,
                    time_limit=p.cell_timeout or cell_time_limit(spec, share),
                    plugins_dir=plugins_dir,
                    after=tuple(spec.after or ()),
                )
                deps = [
                    submitted[(k, i)]
                    if (k, i) in submitted
                    else _earlier(store, run_id, kept, model.name, k, i, lo, hi)
                    for k in unit.after
                ]
                future = client.submit(
                    units.run_unit,
                    unit,
                    files,
                    *deps,
                    key=unit.name,
                    pure=False,
                    resources=resources,
                )
                submitted[(spec.key, i)] = future
                futures[future] = (model, spec, i)
    total = len(futures)
    failed: dict[tuple[str, str], str] = {}

    def store_cell(model: Any, spec: CellSpec) -> None:
        ctx = context[model.name]
        cell = new_cell(p, model.name, spec, str(ctx["folder"]), ctx["seed"], versions)
        cell.max_iterations = step_budget(spec)
        error = failed.get((model.name, spec.key))
        records = None
        if error is None:
            try:
                if spec.components:
                    combined = ensemble.combine(store, run_id, model.name, spec, ctx["sample"])
                    records = combined.records
                    cell.max_iterations = combined.max_iterations
                    cell.summary = _summary(spec, records, combined.seconds, None, p.checks)
                    cell.examples, cell.originals = combined.examples, combined.originals
                else:
                    parts = kept.get((model.name, spec.key), {})
                    ordered = [parts[i] for i in sorted(parts)]
                    records = shards.joined(ordered)
                    check_records(spec, records, ctx["spec"].value_range)
                    seconds = sum(s.seconds for s in ordered)
                    cell.summary = _summary(spec, records, seconds, ordered, p.checks)
                    shown = np.flatnonzero(records.flipped)[:8]
                    grid = (-1, *ctx["spec"].shape)
                    cell.examples = records.adversarial[shown].reshape(grid)
                    cell.originals = images[records.index[shown]].reshape(grid)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            cell.status, cell.error = "failed", error
            cell.summary = cell.examples = cell.originals = records = None
        store.save_cell(run_id, position[(model.name, spec.key)], cell, records, keep_adversarial)
        if cell.done:
            shards.drop(store, run_id, model.name, spec.key)
        if on_cell:
            on_cell(cell)

    def settle(model: Any) -> None:
        """Store every cell of `model` whose units are all back, ensembles last."""
        for spec in p.cells:
            key = (model.name, spec.key)
            if key in done or spec.components or waiting.get(key) != set():
                continue
            done.add(key)
            store_cell(model, spec)
        for spec in p.cells:
            key = (model.name, spec.key)
            parts = [(model.name, k) for k in spec.components]
            if spec.components and key not in done and all(k in done for k in parts):
                done.add(key)
                if any(k in failed for k in parts):
                    failed[key] = "a component failed; it runs again on resume"
                store_cell(model, spec)

    for model, _, _ in p.models:
        if model.name in context:
            settle(model)  # cells whose shards were all stored before a restart
    for finished_units, future in enumerate(as_completed(list(futures)), start=1):
        model, spec, i = futures.pop(future)
        key = (model.name, spec.key)
        try:
            shard = future.result()
        except Exception as exc:  # UnitFailed: one line naming the worker; KilledWorker: …
            failed.setdefault(key, _first_line(exc))
            waiting[key].discard(i)
        else:
            shards.save(store, run_id, model.name, spec.key, i, shard)
            kept.setdefault(key, {})[i] = shard
            waiting[key].discard(i)
        if on_unit:
            on_unit(finished_units, total)
        if key in failed:
            waiting[key] = set()
        settle(model)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _earlier(
    store: Any, run_id: str, kept: dict, model: str, key: str, i: int, lo: int, hi: int
) -> shards.Shard:
    """The same shard of an earlier ensemble component that is stored already (as a shard, or
    inside its stored cell); ComponentMissing (the unit fails) when it is not."""
    if i in kept.get((model, key), {}):
        return kept[(model, key)][i]
    from advbench.engine.ensemble import _done

    ((_, records),) = _done(store, run_id, model, [key])
    inside = (records.index >= lo) & (records.index < hi)
    part = Records(**{f.name: getattr(records, f.name)[inside] for f in fields(Records)})
    return shards.Shard(part, 0.0)


def _summary(
    spec: CellSpec, records: Any, seconds: float, parts: list[shards.Shard] | None, checks: bool
) -> Any:
    """The cell's metrics; its checks are the shards' counts summed over its attacked rows."""
    summary = summarize_cell(spec, records, seconds)
    if not checks or parts is None:
        return summary
    attacked = int(records.attacked.sum())
    found = []
    for name in shards.COUNTED:
        counts = [s.counts.get(name) for s in parts]
        value = None
        if attacked and all(c is not None for c in counts):
            value = sum(counts) / attacked
        found.append(Check.measured(name, value))
    used = {s.uses_gradients for s in parts}
    gradients = used.pop() if len(used) == 1 else None
    return replace(summary, checks=tuple(found), uses_gradients=gradients)


def plan_units(p: Plan, n: int, shard_size: int) -> list[tuple[str, str, int, int, int]]:
    """(model, cell key, shard, lo, hi) of every unit of the plan (ensembles: none of their
    own; their components are units)."""
    out = []
    for model, _, _ in p.models:
        for spec in p.cells:
            if spec.components:
                continue
            for i, (lo, hi) in enumerate(shard_ranges(cell_images(spec, n), shard_size)):
                out.append((model.name, spec.key, i, lo, hi))
    return out
