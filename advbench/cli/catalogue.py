"""What is registered and how good the models are: `plugins`, `describe`, `train`, `eval`.

`plugins` and `describe` answer without importing TensorFlow (a test checks it).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import advbench.cli.options as opt


def add_train(sub: argparse._SubParsersAction) -> None:
    """The `train` command's options."""
    train = sub.add_parser("train", help="train a model and cache its checkpoint")
    train.add_argument("model", help="model name")
    train.add_argument("--steps", type=opt.positive_int, help="training steps (default: model's)")
    train.add_argument("--seed", type=opt.seed, help="training seed (default: model's)")
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
    opt.progress_option(train)
    opt.common(train)


def add_eval(sub: argparse._SubParsersAction) -> None:
    """The `eval` command's options."""
    ev = sub.add_parser("eval", help="test accuracy of models from their checkpoints")
    ev.add_argument("models", nargs="?", type=opt.csv_names, help="comma-separated (default: all)")
    ev.add_argument("--limit", type=opt.positive_int, help="only the first N test images")
    ev.add_argument("--model-seed", type=opt.seed, help="training seed (default: each model's own)")
    ev.add_argument("--json", type=opt.path, dest="json_path", help="also write results as JSON")
    _set_option(ev)
    opt.progress_option(ev)
    opt.common(ev)


def add_plugins(sub: argparse._SubParsersAction) -> None:
    """The `plugins` command's options."""
    plug = sub.add_parser("plugins", help="list plugins and what they register")
    plug.add_argument("--json", action="store_true", help="machine-readable output")
    opt.common(plug)


def add_describe(sub: argparse._SubParsersAction) -> None:
    """The `describe` command's options."""
    desc = sub.add_parser("describe", help="a model's or attack's parameters and defaults")
    desc.add_argument("name", help="model, attack or dataset name (or keras:PATH, npz:FILE, ...)")
    _set_option(desc)
    opt.common(desc)


def _set_option(parser: argparse.ArgumentParser) -> None:
    """`--set MODEL.PARAM=VALUE` where a model file needs it (`graph.input=x:0`)."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.PARAM=VALUE",
        help="set a model parameter (repeatable; e.g. an imported graph's tensor names)",
    )


def cmd_plugins(args: argparse.Namespace) -> int:
    """Every plugin: version, source, what it registers, and whether it loaded."""
    from tabulate import tabulate

    registry = opt.load_plugins(args)
    infos = list(registry.info.values())
    if args.json:
        print(json.dumps([vars(i) for i in infos], indent=2))
        return 0

    def names(table, listed: list[str]) -> str:
        entries = table.entries
        marked = [
            n + ("" if getattr(entries[n].obj, "in_every", True) else "*") if n in entries else n
            for n in listed
        ]
        return ", ".join(marked) or "—"

    rows = [
        [
            i.name,
            i.version,
            i.source,
            names(registry.models, i.models),
            names(registry.attacks, i.attacks),
            ", ".join(i.datasets) or "—",
            i.error or "ok",
        ]
        for i in infos
    ]
    headers = ("plugin", "version", "source", "models", "attacks", "datasets", "status")
    print(tabulate(rows, headers=headers))
    if any("*" in r[3] + r[4] for r in rows):
        print("*: runs only when named (--models / --attacks), not in a run that names none")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """A model's or attack's description and parameters (type, default, range, meaning); a
    dataset's shape, classes, splits and checksum (read and checked)."""
    from tabulate import tabulate

    from advbench.host.imported import split
    from advbench.host.registry import lookup

    registry = opt.load_plugins(args)
    if ":" in args.name and not split(args.name):  # a dataset loader's PREFIX:PATH
        return _describe_dataset(registry, args.name)
    entry = lookup(args.name, registry.models, registry.attacks, registry.datasets)
    if entry.name in registry.datasets.entries:
        return _describe_dataset(registry, args.name)
    kind = "attack" if entry.name in registry.attacks.entries else "model"
    obj = entry.obj
    print(f"{kind} {obj.name} (plugin {entry.plugin}): {obj.description}")
    rows = [[p.name, p.kind.__name__, p.default, p.range_text(), p.doc] for p in obj.params]
    print(tabulate(rows, headers=("parameter", "type", "default", "range", "meaning")))
    if kind == "model" and obj.pretrained:  # its file, checked against --dataset's images
        from advbench.engine.matching import check_accepts

        check_accepts(obj, opt.dataset(args, registry))
        sets = opt.parse_sets(args.set, {obj.name}, opt.aliases([obj]))
        print(_origin_text(obj.origin(obj.config(sets.get(obj.name)))))
    return 0


def _describe_dataset(registry, name: str) -> int:
    dataset = registry.datasets.get(name)
    plugin = registry.datasets.entries.get(name) or registry.datasets.entries.get(
        name.partition(":")[0] + ":"
    )
    print(f"dataset {dataset.name} (plugin {plugin.plugin}): {dataset.description}")
    spec = dataset.spec
    print(f"images: {spec.text()}, values in [{spec.value_range[0]:g}, {spec.value_range[1]:g}]")
    print(f"splits: train {len(dataset.train)}, validation {len(dataset.validation)}, ", end="")
    print(f"test {len(dataset.test)}; checksum {dataset.checksum}; read from {dataset.source}")
    print("classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(dataset.class_names)))
    return 0


def _origin_text(o: dict[str, Any]) -> str:
    """An imported model's file, digest and conversions, as `describe` shows them."""
    inp, out = o["input"], o["output"]
    scores = o["scores"]
    if scores == "probabilities":
        scores += " (a softmax: attacked through its input)" if out["softmax"] else " (log p)"
    elif scores == "auto":
        scores = "detected on real images when loaded (logits unless rows sum to 1)"
    return "\n".join(
        (
            f"file      {o['file']} ({o['format']}, sha256 {o['sha256']})",
            f"input     {inp['tensor']} {inp['dtype']} {tuple(inp['shape'])}: layout "
            f"{o['layout']}, pixel range {o['range']}",
            f"output    {out['tensor']}: {scores}",
        )
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train one model (its config, `--set`/`--steps` applied) and cache the checkpoint."""
    from advbench.engine import progress, zoo

    registry = opt.load_plugins(args)
    model = registry.models.get(args.model)
    sets = opt.parse_sets(args.set, {model.name}).get(model.name, {})
    if args.steps is not None:
        sets["steps"] = str(args.steps)
    config = model.config(sets)
    seed = opt.model_seed(model, args.seed)
    dataset = opt.dataset(args, registry)
    zoo.check_accepts(model, dataset)
    root = zoo.SHIPPED if args.ship else None
    with progress.bars(args.progress) as bars:
        folder = zoo.train(
            model,
            config,
            seed,
            dataset,
            root=root,
            on_progress=progress.training_task(bars, model.name),
        )
    record = json.loads((folder / "record.json").read_text())
    print(
        f"{model.name} on {dataset.name}, seed {seed}: test accuracy {record['test_accuracy']:.4f} "
        f"(first 1,000: {record['test_accuracy_first_1000']:.4f}) "
        f"in {record['train_seconds']:.1f} s -> {folder}"
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Test accuracy of the selected models' checkpoints (trained first where missing)."""
    from tabulate import tabulate

    from advbench.engine import data, progress, runner, zoo

    registry = opt.load_plugins(args)
    models = registry.models.select(args.models)
    sets = opt.parse_sets(args.set, {m.name for m in models}, opt.aliases(models))
    if args.json_path:
        opt.writable_file(args.json_path, "--json")
    dataset = opt.dataset(args, registry)
    if args.models is None:  # all models: those that take this dataset's images
        models = [m for m in models if zoo.takes(m, dataset)]
    for model in models:
        zoo.check_accepts(model, dataset)
    test = data.read_test_set(dataset)
    n = min(args.limit or test.num_examples, test.num_examples)
    with progress.bars(args.progress) as bars:
        out = runner.evaluate(
            models, args.model_seed, test.images[:n], test.labels_int[:n], dataset, bars, sets
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
