"""The `advbench` command: run, train, eval, plugins, describe.

User mistakes (bad flags, unknown names, invalid values, corrupted data) raise `AdvbenchError`
and end as one line on stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from advbench import __version__
from advbench.errors import AdvbenchError, ParamError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become one-line `AdvbenchError`s instead of usage dumps."""

    def error(self, message: str):  # type: ignore[override]
        raise AdvbenchError(f"{self.prog}: {message}")


def _csv_names(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2^31-1, got {value}")
    return value


def parse_sets(items: Sequence[str], known: set[str]) -> dict[str, dict[str, str]]:
    """`NAME.PARAM=VALUE` strings → {name: {param: text}}; names must be selected plugins."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, param = key.strip().partition(".")
        if not sep or not dot or not name or not param or not value.strip():
            raise ParamError(f"--set {item!r}: expected NAME.PARAM=VALUE")
        if name not in known:
            raise ParamError(
                f"--set {item!r}: {name!r} is not a selected model or attack "
                f"(selected: {', '.join(sorted(known))})"
            )
        out.setdefault(name, {})[param.strip()] = value.strip()
    return out


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mnist-dir",
        help="directory with the four MNIST IDX .gz files "
        "(default: $ADVBENCH_MNIST_DIR, else the copy inside the package)",
    )
    parser.add_argument(
        "--plugins",
        metavar="DIR",
        dest="plugins_dir",
        help="directory of drop-in plugin *.py files ($ADVBENCH_PLUGINS_DIR)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line interface."""
    parser = _Parser(prog="advbench", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"advbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="benchmark models × attacks on the MNIST test set")
    run.add_argument("--models", type=_csv_names, help="comma-separated models (default: all)")
    run.add_argument("--attacks", type=_csv_names, help="comma-separated attacks (default: all)")
    run.add_argument("--limit", type=_positive_int, help="only the first N test images")
    run.add_argument("--seed", type=_seed, default=0, help="seed of the attacks (default 0)")
    run.add_argument(
        "--model-seed",
        type=_seed,
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
        type=_positive_int,
        default=None,
        help="images per attack batch (default 2000)",
    )
    run.add_argument("--out", type=Path, help="output directory (default reports/run-TIMESTAMP)")
    run.add_argument("--no-figures", action="store_true", help="skip the PNG pictures")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: when stderr is a terminal)",
    )
    _common(run)

    train = sub.add_parser("train", help="train a model and cache its checkpoint")
    train.add_argument("model", help="model name")
    train.add_argument("--steps", type=_positive_int, help="training steps (default: model's)")
    train.add_argument("--seed", type=_seed, help="training seed (default: model's)")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.PARAM=VALUE",
        help="set a model parameter (repeatable)",
    )
    train.add_argument(
        "--ship",
        action="store_true",
        help="write into the package's shipped checkpoints (maintainers)",
    )
    train.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    _common(train)

    ev = sub.add_parser("eval", help="test accuracy of models from their checkpoints")
    ev.add_argument("models", nargs="?", type=_csv_names, help="comma-separated (default: all)")
    ev.add_argument("--limit", type=_positive_int, help="only the first N test images")
    ev.add_argument("--model-seed", type=_seed, help="training seed (default: each model's own)")
    ev.add_argument("--json", type=Path, dest="json_path", help="also write results as JSON")
    ev.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    _common(ev)

    plug = sub.add_parser("plugins", help="list plugins and what they register")
    plug.add_argument("--json", action="store_true", help="machine-readable output")
    _common(plug)

    desc = sub.add_parser("describe", help="a model's or attack's parameters and defaults")
    desc.add_argument("name", help="model or attack name")
    _common(desc)
    return parser


def _load_plugins(args: argparse.Namespace):
    from advbench import plugins

    loaded = plugins.load(args.plugins_dir)
    for info in loaded.errors:
        print(
            f"advbench: warning: plugin {info.name!r} ({info.source}) {info.error}", file=sys.stderr
        )
    return loaded


def cmd_plugins(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    loaded = _load_plugins(args)
    infos = list(loaded.info.values())
    if args.json:
        print(json.dumps([vars(i) for i in infos], indent=2))
        return 0
    rows = [
        [
            i.name,
            i.version,
            i.source,
            ", ".join(i.models) or "—",
            ", ".join(i.attacks) or "—",
            i.error or "ok",
        ]
        for i in infos
    ]
    print(tabulate(rows, headers=("plugin", "version", "source", "models", "attacks", "status")))
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    loaded = _load_plugins(args)
    if args.name in loaded.models.entries:
        entry, kind = loaded.models.entries[args.name], "model"
    elif args.name in loaded.attacks.entries:
        entry, kind = loaded.attacks.entries[args.name], "attack"
    else:
        known = sorted([*loaded.models.names(), *loaded.attacks.names()])
        raise AdvbenchError(f"unknown model or attack {args.name!r} (known: {', '.join(known)})")
    obj = entry.obj
    print(f"{kind} {obj.name} (plugin {entry.plugin}): {obj.description}")
    rows = []
    for p in obj.params:
        rng = []
        if p.minimum is not None:
            rng.append(f"{'>' if p.min_exclusive else '>='} {p.minimum}")
        if p.maximum is not None:
            rng.append(f"<= {p.maximum}")
        if p.choices:
            rng.append("one of " + ", ".join(map(str, p.choices)))
        rows.append([p.name, p.kind.__name__, p.default, " ".join(rng), p.doc])
    print(tabulate(rows, headers=("parameter", "type", "default", "range", "meaning")))
    return 0


def _model_seed(model, given: int | None) -> int:
    return model.default_seed if given is None else given


def _train_callback(progress, label: str):
    task = progress.add_task(f"train {label}", total=None, note="")

    def on_progress(step: int, total: int, acc: float | None) -> None:
        note = {} if acc is None else {"note": f"acc@1000 {acc:.3f}"}
        progress.update(task, completed=step, total=total, **note)

    return on_progress


def cmd_train(args: argparse.Namespace) -> int:
    from advbench import progress, zoo

    loaded = _load_plugins(args)
    model = loaded.models.get(args.model)
    sets = parse_sets(args.set, {model.name}).get(model.name, {})
    if args.steps is not None:
        sets["steps"] = str(args.steps)
    config = model.config(sets)
    seed = _model_seed(model, args.seed)
    root = zoo.SHIPPED if args.ship else None
    with progress.bars(args.progress) as bars:
        folder = zoo.train(
            model,
            config,
            seed,
            args.mnist_dir,
            root=root,
            on_progress=_train_callback(bars, model.name),
        )
    record = json.loads((folder / "record.json").read_text())
    print(
        f"{model.name} seed {seed}: test accuracy {record['test_accuracy']:.4f} "
        f"(first 1,000: {record['test_accuracy_first_1000']:.4f}) "
        f"in {record['train_seconds']:.1f} s -> {folder}"
    )
    return 0


def _load_model(model, config, seed, args, bars):
    from advbench import zoo

    return zoo.load(
        model,
        config,
        seed,
        args.mnist_dir,
        on_train=_train_callback(bars, f"{model.name} (no checkpoint yet)"),
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from advbench import data, progress, runner

    loaded_plugins = _load_plugins(args)
    models = loaded_plugins.models.select(args.models)
    test = data.read_test_set(args.mnist_dir)
    n = min(args.limit or test.num_examples, test.num_examples)
    out = []
    with progress.bars(args.progress) as bars:
        for model in models:
            seed = _model_seed(model, args.model_seed)
            loaded = _load_model(model, model.config(), seed, args, bars)
            try:
                pred = runner.predict(loaded, test.images[:n])
            finally:
                loaded.close()
            acc = float((pred == test.labels_int[:n]).mean())
            out.append(
                {
                    "name": model.name,
                    "clean_accuracy": acc,
                    "n": n,
                    "checkpoint": str(loaded.folder),
                    "seed": seed,
                }
            )
    print(
        tabulate(
            [
                [m["name"], m["seed"], m["n"], f"{m['clean_accuracy']:.4f}", m["checkpoint"]]
                for m in out
            ],
            headers=("model", "seed", "n", "accuracy", "checkpoint"),
        )
    )
    if args.json_path:
        args.json_path.write_text(json.dumps({"models": out}, indent=2) + "\n")
    return 0


def _default_out() -> Path:
    base = Path("reports") / time.strftime("run-%Y%m%d-%H%M%S")
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from advbench import benchmark, data, figures, graph, progress, report, runner

    plugins = _load_plugins(args)
    models = plugins.models.select(args.models)
    attacks = plugins.attacks.select(args.attacks)
    if not models or not attacks:
        raise AdvbenchError("nothing to run: no models or no attacks are registered")
    sets = parse_sets(args.set, {m.name for m in models} | {a.name for a in attacks})
    plan = benchmark.plan(
        models, attacks, sets, args.seed, args.model_seed, args.limit,
        args.batch_size or runner.DEFAULT_BATCH, args.mnist_dir,
    )  # fmt: skip
    data.read_test_set(args.mnist_dir)  # a corrupted file fails here, before any output
    out = args.out or _default_out()
    out.mkdir(parents=True, exist_ok=True)
    (out / "records.csv").unlink(missing_ok=True)
    results: dict[str, Any] = {
        "run": {
            "command": "advbench " + shlex.join(argv),
            "seed": args.seed,
            "n": None,
            "data_checksum": data.checksum(),
            "versions": graph.versions(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "models": [],
        "cells": [],
    }
    pictures: list[str] = []

    def on_model(info: dict[str, Any]) -> None:
        results["models"].append(info)
        results["run"]["n"] = info["n"]

    def on_cell(cell: benchmark.CellResult, images: np.ndarray) -> None:
        label = cell.spec.label
        entry = {"model": cell.model, "attack": cell.spec.attack.name, "label": label,
                 "params": cell.spec.params, **cell.summary}  # fmt: skip
        budget = cell.spec.attack.budget(cell.spec.params)
        if budget:
            entry["budget"] = {"norm": budget[0], "eps": budget[1]}
        results["cells"].append(entry)
        report.append_records(out, cell.model, label, cell.records.rows())
        if not args.no_figures:
            name = f"{cell.model}-{len(results['cells']):02d}-{cell.spec.attack.name}.png"
            if figures.adversarial_grid(
                cell.records, images, out / name, f"{cell.model} × {label}"
            ):
                pictures.append(name)
        report.write_json(out, results)

    with progress.bars(args.progress) as bars:
        benchmark.execute(plan, on_model, on_cell, bars=bars)
    results["run"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    report.write_json(out, results)
    report.write_markdown(out, results, pictures)
    print(report.table(results))
    print(f"\nwrote {out}/report.md, results.json, records.csv")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        if args.command == "run":
            return cmd_run(args, argv)
        return {
            "plugins": cmd_plugins,
            "describe": cmd_describe,
            "train": cmd_train,
            "eval": cmd_eval,
        }[args.command](args)
    except AdvbenchError as exc:
        message = str(exc)
        if not message.startswith("advbench"):
            message = f"advbench: error: {message}"
        print(message, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("advbench: interrupted", file=sys.stderr)
        return 130
