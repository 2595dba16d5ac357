"""`advbench run` (benchmark models × attacks into the results database) and `advbench report`
(render a stored run again, list runs, compare two)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import advbench.cli.cluster as cluster
import advbench.cli.options as opt
from advbench.errors import AdvbenchError


def add_run(sub: argparse._SubParsersAction) -> None:
    """The `run` command's options."""
    run = sub.add_parser("run", help="benchmark models × attacks on a dataset's test set")
    run.add_argument("--models", type=opt.csv_names, help="comma-separated models (default: all)")
    run.add_argument("--attacks", type=opt.csv_names, help="comma-separated attacks (default: all)")
    run.add_argument("--limit", type=opt.positive_int, help="only the first N test images")
    run.add_argument("--seed", type=opt.seed, default=0, help="seed of the attacks (default 0)")
    run.add_argument(
        "--model-seed",
        type=opt.seed,
        help="training seed of the models' checkpoints (default: each model's own)",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME.PARAM=VALUE",
        help="set a model or attack parameter (repeatable)",
    )
    run.add_argument(
        "--batch-size",
        type=opt.positive_int,
        default=None,
        help="images per attack batch (default: the model's own)",
    )
    run.add_argument("--out", type=opt.path, help="output directory (default reports/RUN-ID)")
    opt.db_option(run)
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start a new run even if this exact run is stored (default: resume)",
    )
    run.add_argument("--no-figures", action="store_true", help="skip the PNG pictures")
    run.add_argument(
        "--save-examples",
        action="store_true",
        help="keep every adversarial image (in the database) and write each cell's as "
        "OUT/examples/MODEL--CELL.npz",
    )
    run.add_argument(
        "--cell-timeout",
        type=opt.seconds,
        metavar="SECONDS",
        help="fail a cell that runs longer and go on with the next (default: 10 minutes plus "
        "20 times the cell's expected work, at most 12 hours)",
    )
    run.add_argument(
        "--no-checks",
        action="store_true",
        help="skip the indicators of attack failure (report.md, Checks)",
    )
    opt.progress_option(run, "progress bars (default: when stderr is a terminal)")
    cluster.add_options(run)
    opt.common(run)


def add_report(sub: argparse._SubParsersAction) -> None:
    """The `report` command's options."""
    rep = sub.add_parser("report", help="render a stored run again, or compare two runs")
    rep.add_argument("run", nargs="?", help="run id or unique prefix (default: the latest)")
    opt.db_option(rep)
    rep.add_argument(
        "--format",
        choices=("markdown", "github", "latex", "plain"),
        default="markdown",
        help="format of the printed table (default markdown); report.md is always Markdown, "
        "and latex also writes the table to OUT/table.tex",
    )
    rep.add_argument("--out", type=opt.path, help="output directory (default reports/RUN-ID)")
    rep.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="the difference of every metric between two runs",
    )
    rep.add_argument("--list", action="store_true", help="list the stored runs")
    rep.add_argument("--no-figures", action="store_true", help="skip the PNG pictures")
    rep.add_argument(
        "--save-examples",
        action="store_true",
        help="write each cell's adversarial images as OUT/examples/MODEL--CELL.npz (for runs "
        "stored with run --save-examples)",
    )
    # no --dataset, --mnist-dir or --plugins: a report reads only the database (its pictures'
    # images are stored with the cells), so they would be accepted and silently do nothing


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Plan (every name and parameter checked before TensorFlow), resume or create the run,
    execute it, render its report; exit 1 if a cell failed."""
    from advbench.engine import progress
    from advbench.engine import run as benchmark
    from advbench.output import figures, report, results

    registry = opt.load_plugins(args)
    models = registry.models.select(args.models)
    attacks = registry.attacks.select(args.attacks)
    dataset = opt.dataset(args, registry)  # bad data fails here, before any output
    if args.models is None:  # all models: those that take this dataset's images
        from advbench.engine import zoo

        models = [m for m in models if zoo.takes(m, dataset)]
    if not models or not attacks:
        raise AdvbenchError(
            f"nothing to run: no attacks, or no registered model takes {dataset.summary()}"
        )
    sets = opt.parse_sets(
        args.set, {m.name for m in models} | {a.name for a in attacks}, opt.aliases(models)
    )
    plan = benchmark.plan(
        models,
        attacks,
        sets,
        args.seed,
        args.model_seed,
        args.limit,
        args.batch_size,
        dataset,
        checks=not args.no_checks,
        resolve=registry.attacks.get,
        cell_timeout=args.cell_timeout,
        shard_size=cluster.shard_size(args),
    )
    if args.plan:
        return cluster.print_plan(args, plan)
    client = cluster.connect(args)  # an unreachable scheduler is one line, before any output
    if args.out is not None:
        opt.writable_dir(args.out, "--out")
    store = results.Store(opt.writable_file(args.db or results.default_db(), "--db"))
    try:
        opened = benchmark.open_run(store, plan, argv, fresh=args.fresh)
        run_id = opened.run_id
        out = opt.writable_dir(args.out or Path("reports") / figures.file_name(run_id), "--out")
        if opened.resumed:
            print(
                f"resuming {run_id}: {opened.done} of {len(plan.cells) * len(plan.models)} cells "
                "already done",
                file=sys.stderr,
            )
        with progress.bars(args.progress) as bars:
            if client is None:
                benchmark.execute(
                    plan, store, run_id, bars=bars, keep_adversarial=args.save_examples
                )
            else:
                cluster.execute(args, plan, store, run_id, client, bars)
        store.finish_run(run_id)
        finished = report.render(store, run_id, out, pictures=not args.no_figures)
        worst = report.worst_case_table(store, finished)
        saved = _export_examples(store, finished, out) if args.save_examples else None
    finally:
        store.close()
        if client is not None:
            cluster.close(client)
    print(report.terminal_table(finished))
    if worst:
        print(f"\n{worst}")
    failed = [c for c in finished.cells if not c.done]
    print(f"\nrun {run_id}: wrote {out}/report.md, results.json, records.csv")
    if saved:
        print(saved)
    if failed:
        print(f"advbench: {len(failed)} cell(s) failed; see the table", file=sys.stderr)
        return 1
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render a stored run (default: the latest), list the runs, or compare two."""
    from advbench.output import comparison, figures, report, results

    db = Path(args.db or results.default_db())
    if not db.is_file():
        raise AdvbenchError(f"results database {db} does not exist")
    try:
        store = results.Store(db)  # an older database is converted on the way
    except AdvbenchError:
        store = results.Store(db, read_only=True)  # read-only media: read without writing
    try:
        if args.list:
            from tabulate import tabulate

            print(
                tabulate(
                    [
                        [r["id"], r["cells"], r["finished"] or "unfinished", r["command"]]
                        for r in store.runs()
                    ],
                    headers=("run", "cells", "finished", "command"),
                )
            )
            return 0
        if args.compare:
            a, b = (store.load_run(store.resolve_run(r)) for r in args.compare)
            print(comparison.compare(a, b, args.format))
            return 0
        run_id = store.resolve_run(args.run)
        out = args.out or Path("reports") / figures.file_name(run_id)
        rendered = report.render(store, run_id, out, args.format, pictures=not args.no_figures)
        saved = _export_examples(store, rendered, out) if args.save_examples else None
    finally:
        store.close()
    terminal = "simple" if args.format == "markdown" else report.FORMATS[args.format]
    print(report.terminal_table(rendered, terminal))
    print(f"\nrendered {run_id} into {out}")
    if saved:
        print(saved)
    return 0


def _export_examples(store: Any, run: Any, out: Path) -> str:
    """Write a run's stored adversarial images as .npz files; the line saying what was done."""
    from advbench.output import examples

    written, without = examples.export(store, run, out)
    line = f"wrote the adversarial images of {len(written)} cells to {out / examples.FOLDER}"
    if without:
        line += (
            f"; {without} cells were stored without theirs (run them again with "
            "--fresh --save-examples)"
        )
    return line
