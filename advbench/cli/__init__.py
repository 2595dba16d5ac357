"""The `advbench` command: run, train, eval, plugins, describe.

User mistakes (bad flags, unknown names, invalid values, corrupted data) raise `AdvbenchError`
and end as one line on stderr with exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

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


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        help="results database (default $ADVBENCH_DB, else reports/advbench.sqlite)",
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
    run.add_argument("--out", type=Path, help="output directory (default reports/RUN-ID)")
    _db_option(run)
    run.add_argument(
        "--fresh",
        action="store_true",
        help="start a new run even if this exact run is stored (default: resume)",
    )
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

    bench = sub.add_parser("bench", help="advbench's speed next to the alternatives, same run")
    bench.add_argument("--limit", type=_positive_int, help="test images for advbench (default all)")
    bench.add_argument(
        "--sample",
        type=_positive_int,
        default=40,
        help="images for the tutorial's one-image loop (default 40)",
    )
    bench.add_argument(
        "--naive-images",
        type=_positive_int,
        default=2000,
        help="images for the naive batched loop (default 2000)",
    )
    bench.add_argument(
        "--cnn-images",
        type=_positive_int,
        default=2000,
        help="images for pgd on the cnn (default 2000)",
    )
    bench.add_argument(
        "--art-images",
        type=_positive_int,
        help="images for IBM ART's BIM, when installed (default: the same as advbench's)",
    )
    bench.add_argument(
        "--art-batch",
        type=_positive_int,
        default=128,
        help="ART's batch size (default 128, its fastest here)",
    )
    bench.add_argument(
        "--train-steps",
        type=_positive_int,
        default=20000,
        help="MLP training steps to time (default 20000)",
    )
    bench.add_argument("--json", type=Path, dest="json_path", help="also write the figures as JSON")
    _common(bench)

    tr = sub.add_parser("transfer", help="flip rates of adversarial examples across models")
    tr.add_argument("--models", type=_csv_names, help="comma-separated models (default: all)")
    tr.add_argument(
        "--copy",
        action="append",
        default=[],
        metavar="MODEL:SEED",
        help="add a copy of MODEL trained with SEED (repeatable)",
    )
    tr.add_argument("--attack", default="ifgsm", help="the attack crafting the examples")
    tr.add_argument("--set", action="append", default=[], metavar="ATTACK.PARAM=VALUE")
    tr.add_argument("--limit", type=_positive_int, help="only the first N test images")
    tr.add_argument("--seed", type=_seed, default=0, help="seed of the attack (default 0)")
    tr.add_argument(
        "--out",
        type=Path,
        default=Path("reports") / "transfer",
        help="output directory (default reports/transfer)",
    )
    _common(tr)

    ex = sub.add_parser("explain", help="pictures of what a model learned (second tutorial)")
    ex.add_argument("model", help="model name")
    ex.add_argument(
        "--image",
        type=int,
        default=12,
        help="validation image for the activations (default 12, as the tutorial)",
    )
    ex.add_argument("--out", type=Path, help="output directory (default reports/explain-MODEL)")
    ex.add_argument("--model-seed", type=_seed, help="training seed (default: the model's own)")
    _common(ex)

    tut = sub.add_parser("tutorial", help="list or run the seed tutorials' sections")
    tut.add_argument("section", nargs="?", help="section to run (default: list them)")
    tut.add_argument(
        "--out",
        type=Path,
        default=Path("reports") / "tutorial",
        help="pictures go to OUT/SECTION (default reports/tutorial)",
    )
    _common(tut)

    rep = sub.add_parser("report", help="render a stored run again, or compare two runs")
    rep.add_argument("run", nargs="?", help="run id or unique prefix (default: the latest)")
    _db_option(rep)
    rep.add_argument(
        "--format",
        choices=("markdown", "github", "latex", "plain"),
        default="markdown",
        help="table format (default markdown)",
    )
    rep.add_argument("--out", type=Path, help="output directory (default reports/RUN-ID)")
    rep.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="the difference of every metric between two runs",
    )
    rep.add_argument("--list", action="store_true", help="list the stored runs")
    rep.add_argument("--no-figures", action="store_true", help="skip the PNG pictures")
    _common(rep)

    plug = sub.add_parser("plugins", help="list plugins and what they register")
    plug.add_argument("--json", action="store_true", help="machine-readable output")
    _common(plug)

    desc = sub.add_parser("describe", help="a model's or attack's parameters and defaults")
    desc.add_argument("name", help="model or attack name")
    _common(desc)
    return parser


def _load_plugins(args: argparse.Namespace):
    from advbench.host import plugins

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
    from advbench.engine import progress, zoo

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
    from advbench.engine import zoo

    return zoo.load(
        model,
        config,
        seed,
        args.mnist_dir,
        on_train=_train_callback(bars, f"{model.name} (no checkpoint yet)"),
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from advbench.engine import data, progress, runner

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


def cmd_bench(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from advbench.engine import data, zoo
    from advbench.lab import speed as bench

    plugins = _load_plugins(args)
    model, attack = plugins.models.get("mlp"), plugins.attacks.get("ifgsm")
    config, params = model.config(), attack.config()
    test = data.read_test_set(args.mnist_dir)
    n = min(args.limit or test.num_examples, test.num_examples)
    loaded = zoo.load(model, config, model.default_seed, args.mnist_dir)
    try:
        rows, facts = bench.bench_ifgsm(
            loaded,
            model,
            attack,
            params,
            test.images[:n],
            test.labels_int[:n],
            args.sample,
            args.naive_images,
            args.art_images,
            args.art_batch,
        )
    finally:
        loaded.close()
    cnn, pgd = plugins.models.get("cnn"), plugins.attacks.get("pgd")
    loaded = zoo.load(cnn, cnn.config(), cnn.default_seed, args.mnist_dir)
    try:
        m = min(args.cnn_images, n)
        cnn_row = bench.bench_attack_vs_floor(
            loaded,
            cnn,
            pgd,
            pgd.config(),
            test.images[:m],
            test.labels_int[:m],
            facts["gemm_gflops"] * 1e9,
        )
    finally:
        loaded.close()
    memory = bench.peak_rss_mb()
    train_rows, trained = bench.bench_training(model, config, args.train_steps)
    ours, floor = rows[0], rows[3]
    table = [
        [
            r.name,
            f"{r.work:,.0f}",
            f"{r.seconds:.3f}",
            f"{r.per_unit * 1e6:.2f}",
            f"{r.per_unit / ours.per_unit:.1f}×",
            f"{ours.per_unit / floor.per_unit:.2f}×" if r is ours else "",
            r.note,
        ]
        for r in rows
    ]
    print(
        f"ifgsm on mlp (step {params['step']}, ≤{params['iterations']} iterations), "
        f"{n} test images; GEMM {facts['gemm_gflops']:.0f} GFLOP/s"
    )
    print(
        tabulate(
            table,
            headers=(
                "method",
                "image-iterations",
                "seconds",
                "µs per image-it",
                "vs advbench",
                "advbench vs floor",
                "note",
            ),
        )
    )
    print(
        "advbench vs the floor, each run against the GEMM rate measured right after it: "
        + ", ".join(f"{r:.2f}×" for r in facts["floor_ratios"])
    )
    print(
        f"per-image iterations-to-flip, tutorial loop vs advbench on the "
        f"{facts['reference_sample']}-image sample: {facts['reference_mismatches']} differ"
    )
    same = facts.get("art_same_task")
    if same:
        print(
            f"the same job on the first {same['images']} images (attack each until it flips or "
            f"{params['iterations']} steps): ART {same['art_seconds']:.2f} s, advbench "
            f"{same['advbench_seconds']:.2f} s: "
            f"{same['art_seconds'] / same['advbench_seconds']:.1f}× faster"
        )
    else:
        print("IBM ART not installed: pip install 'advbench[art]' to compare with its BIM")
    print(
        f"pgd (40 steps of 0.01, eps 0.3) on cnn, {m} images: {cnn_row.seconds:.2f} s for "
        f"{cnn_row.work:,.0f} image-iterations; {cnn_row.note}"
    )
    print(f"peak memory after the attack benchmarks: {memory:.0f} MiB")
    trainer = train_rows[-1]
    print()
    print(
        tabulate(
            [
                [
                    r.name,
                    f"{r.work:,.0f}",
                    f"{r.seconds:.2f}",
                    f"{r.per_unit * 1e6:.1f}",
                    f"{r.seconds / trainer.seconds:.1f}×" if r is not trainer else "",
                ]
                for r in train_rows
            ],
            headers=("mlp training", "steps", "seconds", "µs per step", "advbench is"),
        )
    )
    diffs = trained["max_abs_diff"]
    verdict = (
        "equal bit for bit"
        if trained["bit_identical"]
        else "DIFFER (largest |Δ|: " + ", ".join(f"{d:.3g}" for d in diffs) + ")"
    )
    rounds = trained["ratios_per_round"]
    for way, other in enumerate(("the tutorial's code", "the per-step loop")):
        print(
            f"in-graph trainer vs {other}, round by round: "
            + ", ".join(f"{r[way]:.1f}× faster" for r in rounds)
        )
    print(f"weights after training, all three ways: {verdict}")
    if args.json_path:
        out = {
            "attack": [vars(r) for r in rows],
            "training": [vars(r) for r in train_rows],
            "training_weights": trained,
            "pgd_cnn": vars(cnn_row),
            **facts,
            "peak_rss_mb": memory,
            "n": n,
        }
        args.json_path.write_text(json.dumps(out, indent=2) + "\n")
    return 0


def cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from advbench.engine import data, graph, progress
    from advbench.engine import run as benchmark
    from advbench.output import report, results

    plugins = _load_plugins(args)
    models = plugins.models.select(args.models)
    attacks = plugins.attacks.select(args.attacks)
    if not models or not attacks:
        raise AdvbenchError("nothing to run: no models or no attacks are registered")
    sets = parse_sets(args.set, {m.name for m in models} | {a.name for a in attacks})
    plan = benchmark.plan(
        models,
        attacks,
        sets,
        args.seed,
        args.model_seed,
        args.limit,
        args.batch_size,
        args.mnist_dir,
    )
    data.read_test_set(args.mnist_dir)  # a corrupted file fails here, before any output
    store = results.Store(args.db or results.default_db())
    try:
        key = results.run_key(benchmark.describe(plan))
        run_id = None if args.fresh else store.find_run(key)
        if run_id is None:
            command = "advbench " + shlex.join(argv)
            run_id = store.create_run(
                key, command, args.seed, data.checksum(), graph.versions(), benchmark.describe(plan)
            )
        else:
            done = len(store.done_keys(run_id))
            print(
                f"resuming {run_id}: {done} of {len(plan.cells) * len(plan.models)} cells "
                "already done",
                file=sys.stderr,
            )
        with progress.bars(args.progress) as bars:
            benchmark.execute(plan, store, run_id, bars=bars)
        store.finish_run(run_id)
        out = args.out or Path("reports") / run_id
        finished = report.render(store, run_id, out, pictures=not args.no_figures)
    finally:
        store.close()
    print(report.table(finished))
    failed = [c for c in finished.cells if not c.done]
    print(f"\nrun {run_id}: wrote {out}/report.md, results.json, records.csv")
    if failed:
        print(f"advbench: {len(failed)} cell(s) failed; see the table", file=sys.stderr)
        return 1
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from advbench.engine import data
    from advbench.lab import transfer
    from advbench.output import figures

    plugins = _load_plugins(args)
    attack = plugins.attacks.get(args.attack)
    sets = parse_sets(args.set, {attack.name})
    params = attack.config(sets.get(attack.name))
    members = [
        transfer.Member(m.name, m, m.config(), m.default_seed)
        for m in plugins.models.select(args.models)
    ]
    for item in args.copy:
        name, sep, seed_text = item.partition(":")
        if not sep:
            raise AdvbenchError(f"--copy {item!r}: expected MODEL:SEED")
        model = plugins.models.get(name)
        seed = _seed_value(seed_text, f"--copy {item!r}")
        members.append(transfer.Member(f"{name}@seed{seed}", model, model.config(), seed))
    test = data.read_test_set(args.mnist_dir)
    n = min(args.limit or test.num_examples, test.num_examples)
    result = transfer.run(
        members, attack, params, args.seed, test.images[:n], test.labels_int[:n], args.mnist_dir
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transfer.json").write_text(json.dumps(result, indent=2) + "\n")
    names = result["models"]
    rows = [
        [src, *[f"{v:.3f}" for v in row]]
        for src, row in zip(names, result["flip_rate"], strict=True)
    ]
    text = tabulate(rows, headers=["crafted on \\ evaluated on", *names], tablefmt="github")
    figures.heatmap(
        np.array(result["flip_rate"]),
        names,
        names,
        args.out / "transfer.png",
        f"transfer flip rate ({attack.name}, {n} images)",
    )
    (args.out / "transfer.md").write_text(
        f"# Transferability ({attack.name})\n\n{text}\n\n![transfer](transfer.png)\n"
    )
    print(text)
    print(f"\nwrote {args.out}/transfer.json, transfer.md, transfer.png")
    return 0


def _seed_value(text: str, where: str) -> int:
    try:
        return _seed(text)
    except argparse.ArgumentTypeError as exc:
        raise AdvbenchError(f"{where}: {exc}") from None


def cmd_explain(args: argparse.Namespace) -> int:
    from advbench.engine import zoo
    from advbench.lab import explain

    plugins = _load_plugins(args)
    model = plugins.models.get(args.model)
    if not 0 <= args.image < 5000:
        raise AdvbenchError(f"--image {args.image}: the validation set has images 0..4999")
    out = args.out or Path("reports") / f"explain-{model.name}"
    loaded = zoo.load(model, model.config(), _model_seed(model, args.model_seed), args.mnist_dir)
    try:
        names = explain.explain(loaded, model.name, out, args.image, args.mnist_dir)
    finally:
        loaded.close()
    for name in names:
        print(out / name)
    return 0


def cmd_tutorial(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from advbench.lab import tutorial

    if args.section is None:
        print(
            tabulate(
                [[s.key, s.tutorial, s.title] for s in tutorial.SECTIONS.values()],
                headers=("section", "tutorial", "what it does"),
            )
        )
        return 0
    section = tutorial.SECTIONS.get(args.section)
    if section is None:
        known = ", ".join(tutorial.SECTIONS)
        raise AdvbenchError(f"unknown tutorial section {args.section!r} (known: {known})")
    plugins = _load_plugins(args)
    out = args.out / section.key
    out.mkdir(parents=True, exist_ok=True)
    print(f"# {section.key} {section.title}")
    section.run(out, plugins)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from advbench.output import report, results

    db = Path(args.db or results.default_db())
    if not db.is_file():
        raise AdvbenchError(f"results database {db} does not exist")
    store = results.Store(db)
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
            print(report.compare(a, b, args.format))
            return 0
        run_id = store.resolve_run(args.run)
        out = args.out or Path("reports") / run_id
        rendered = report.render(store, run_id, out, args.format, pictures=not args.no_figures)
    finally:
        store.close()
    print(report.table(rendered, report.FORMATS[args.format]))
    print(f"\nrendered {run_id} into {out}")
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
            "bench": cmd_bench,
            "report": cmd_report,
            "transfer": cmd_transfer,
            "explain": cmd_explain,
            "tutorial": cmd_tutorial,
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
