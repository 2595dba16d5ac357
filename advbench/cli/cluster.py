"""`advbench run`'s options for runs beyond one process: `--workers`, `--scheduler`,
`--shard-size` and `--plan` (`advbench.engine.distributed` does the work)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import advbench.cli.options as opt
from advbench.errors import AdvbenchError

SCHEDULER_ENV = "ADVBENCH_SCHEDULER"
DEFAULT_SHARD = 1000  # = engine.units.DEFAULT_SHARD (not imported: --help stays light)


def add_options(run: argparse.ArgumentParser) -> None:
    run.add_argument(
        "--workers",
        type=opt.positive_int,
        metavar="N",
        help="run the cells on a local Dask cluster of N worker processes (the cores shared "
        "out); needs the [dask] extra",
    )
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help=f"run on an existing Dask cluster, e.g. tcp://host:8786 (default ${SCHEDULER_ENV})",
    )
    run.add_argument(
        "--shard-size",
        type=opt.positive_int,
        metavar="IMAGES",
        help=f"images per unit of a distributed run (default {DEFAULT_SHARD}); part of the "
        "run's identity, since each shard is a batch of its own",
    )
    run.add_argument(
        "--resources",
        metavar="NAME=N[,NAME=N]",
        type=_resources,
        default=None,
        help="what each unit needs of a worker, e.g. GPU=1: only workers started with "
        "`dask worker --resources GPU=1` take units, one per GPU at a time",
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="print the run's units with their estimated seconds (from the throughput stored "
        "in --db) and the wall time on 1 … 100 workers; run nothing",
    )


def _resources(text: str) -> dict[str, float]:
    """`GPU=1,MEMORY=8e9`: Dask worker resources a unit asks for."""
    out = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not name.strip() or not amount > 0:
            raise argparse.ArgumentTypeError(f"expected NAME=N with N > 0, got {item!r}")
        out[name.strip()] = amount
    return out


def scheduler(args: argparse.Namespace) -> str | None:
    return args.scheduler or os.environ.get(SCHEDULER_ENV) or None


def distributed(args: argparse.Namespace) -> bool:
    return bool(args.workers or scheduler(args))


def shard_size(args: argparse.Namespace) -> int | None:
    """The plan's shard size: None for an in-process run (`--shard-size` alone is refused)."""
    if not distributed(args):
        if args.shard_size is not None and not args.plan:
            raise AdvbenchError("--shard-size: only for distributed runs (--workers, --scheduler)")
        return args.shard_size
    return args.shard_size or DEFAULT_SHARD


def connect(args: argparse.Namespace) -> Any:
    """A Dask client, or None for an in-process run."""
    if not distributed(args):
        return None
    if args.resources and not scheduler(args):
        raise AdvbenchError("--resources: only with --scheduler (a local cluster has none)")
    if args.workers and scheduler(args):
        raise AdvbenchError("--workers starts a local cluster; --scheduler joins one: not both")
    from advbench.engine import distributed as engine

    return engine.connect(args.workers, scheduler(args))


def close(client: Any) -> None:
    from advbench.engine import distributed as engine

    engine.close(client)


def _dataset_ref(args: argparse.Namespace) -> str:
    """The dataset as `registry.datasets.get` takes it on a worker (`opt.dataset`'s name)."""
    if args.mnist_dir:
        return f"{args.dataset}:{Path(args.mnist_dir).resolve()}"
    return args.dataset


def execute(
    args: argparse.Namespace, plan: Any, store: Any, run_id: str, client: Any, bars: Any
) -> None:
    """The distributed run, with one progress bar counting units."""
    from advbench.engine import distributed as engine

    task = bars.add_task("units", total=None, note="") if bars is not None else None

    def on_unit(k: int, total: int) -> None:
        if task is not None:
            bars.update(task, completed=k, total=total)

    plugins_dir = args.plugins_dir or os.environ.get("ADVBENCH_PLUGINS_DIR")
    engine.execute(
        plan,
        store,
        run_id,
        client,
        dataset_ref=_dataset_ref(args),
        plugins_dir=str(Path(plugins_dir).resolve()) if plugins_dir else None,
        shard_size=plan.shard_size,
        on_unit=on_unit,
        keep_adversarial=args.save_examples,
        resources=args.resources,
    )


def print_plan(args: argparse.Namespace, plan: Any) -> int:
    """`--plan`: every unit with its estimated seconds, the totals, and the projection."""
    from tabulate import tabulate

    from advbench.engine import distributed as engine
    from advbench.engine import schedule
    from advbench.output import results

    size = plan.shard_size or DEFAULT_SHARD
    total = len(plan.dataset.test.labels)
    n = min(plan.limit or total, total)
    units = engine.plan_units(plan, n, size)
    attacks = {c.key: c.attack.name for c in plan.cells}
    path = args.db or results.default_db()
    rates: dict[tuple[str, str], float] = {}
    if Path(path).is_file():
        store = results.Store(path, read_only=True)
        try:
            for run in store.runs():
                rates.update(schedule.throughput(store.load_run(run["id"]).cells))
        finally:
            store.close()
    found = schedule.estimate(units, attacks, rates)
    rows = [
        [e.model, e.cell, e.shard, e.images, "?" if e.seconds is None else f"{e.seconds:.1f}"]
        for e in found
    ]
    print(tabulate(rows, headers=["model", "cell", "shard", "images", "est. s"]))
    known = [e.seconds for e in found if e.seconds is not None]
    print(
        f"\n{len(found)} units of up to {size} images; {len(known)} estimated from {path} "
        f"({len(found) - len(known)} without a stored throughput)"
    )
    if known:
        print(f"serial: {sum(known):.0f} s; critical path (longest unit): {max(known):.1f} s")
        table = [
            [w, f"{wall:.0f}", f"{speed:.1f}×"]
            for w, wall, speed in schedule.projection(known, (1, 2, 10, 100))
        ]
        print(tabulate(table, headers=["workers", "wall s", "speed-up"]))
    sys.stdout.flush()
    return 0
