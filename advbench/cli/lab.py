"""The lab's commands, the seed tutorials' companions: `bench`, `transfer`, `explain`, `tutorial`.

Argument wiring only: which built-ins each one uses, what it measures and how it presents the
result live in `advbench.lab`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import advbench.cli.options as opt
from advbench.errors import AdvbenchError
from advbench.lab import imported_speed, speed, transfer


def add_bench(sub: argparse._SubParsersAction) -> None:
    """The `bench` command's options."""
    bench = sub.add_parser("bench", help="advbench's speed next to the alternatives, same run")
    bench.add_argument(
        "--limit", type=opt.positive_int, help="test images for advbench (default all)"
    )
    bench.add_argument(
        "--sample",
        type=opt.positive_int,
        default=40,
        help="images for the tutorial's one-image loop (default 40)",
    )
    bench.add_argument(
        "--naive-images",
        type=opt.positive_int,
        default=2000,
        help="images for the naive batched loop (default 2000)",
    )
    bench.add_argument(
        "--cnn-images",
        type=opt.positive_int,
        default=2000,
        help=f"images for {' and '.join(speed.FLOOR_ATTACKS)} on the {speed.FLOOR_MODEL} "
        "(default 2000)",
    )
    bench.add_argument(
        "--art-images",
        type=opt.positive_int,
        help="images for IBM ART's BIM, when installed (default: the same as advbench's)",
    )
    bench.add_argument(
        "--art-batch",
        type=opt.positive_int,
        default=128,
        help="ART's batch size (default 128, its fastest here)",
    )
    bench.add_argument(
        "--ensemble-images",
        type=opt.count,
        default=100,
        help="images for the worst-case rows (apgd vs its floor, the autoattack ensemble vs its "
        "components on every image and vs ART's AutoAttack) on cnn-pgd (default 100; 0 skips)",
    )
    bench.add_argument(
        "--imported-images",
        type=opt.count,
        default=500,
        help=f"images for {imported_speed.ATTACK} on the {imported_speed.NATIVE} built natively vs "
        "imported from a saved Keras file with the same weights (default 500; 0 skips)",
    )
    bench.add_argument(
        "--train-steps",
        type=opt.positive_int,
        default=20000,
        help=f"{speed.MODEL.upper()} training steps to time (default 20000)",
    )
    bench.add_argument(
        "--json", type=opt.path, dest="json_path", help="also write the figures as JSON"
    )
    opt.common(bench)


def add_transfer(sub: argparse._SubParsersAction) -> None:
    """The `transfer` command's options."""
    tr = sub.add_parser("transfer", help="flip rates of adversarial examples across models")
    tr.add_argument("--models", type=opt.csv_names, help="comma-separated models (default: all)")
    tr.add_argument(
        "--copy",
        action="append",
        default=[],
        metavar="MODEL:SEED",
        help="add a copy of MODEL trained with SEED (repeatable)",
    )
    tr.add_argument(
        "--attack", default=transfer.DEFAULT_ATTACK, help="the attack crafting the examples"
    )
    tr.add_argument("--set", action="append", default=[], metavar="ATTACK.PARAM=VALUE")
    tr.add_argument("--limit", type=opt.positive_int, help="only the first N test images")
    tr.add_argument(
        "--examples",
        type=opt.path,
        metavar="DIR",
        help="show the adversarial images a run saved (run --save-examples: DIR is "
        "OUT/examples) to the models instead of crafting new ones",
    )
    tr.add_argument("--seed", type=opt.seed, default=0, help="seed of the attack (default 0)")
    opt.out_option(tr, Path("reports") / "transfer", "output directory")
    opt.common(tr)


def add_explain(sub: argparse._SubParsersAction) -> None:
    """The `explain` command's options."""
    ex = sub.add_parser("explain", help="pictures of what a model learned (second tutorial)")
    ex.add_argument("model", help="model name")
    ex.add_argument(
        "--image",
        type=int,
        default=12,
        help="validation image for the activations (default 12, as the tutorial)",
    )
    ex.add_argument("--out", type=opt.path, help="output directory (default reports/explain-MODEL)")
    ex.add_argument("--model-seed", type=opt.seed, help="training seed (default: the model's own)")
    opt.common(ex)


def add_tutorial(sub: argparse._SubParsersAction) -> None:
    """The `tutorial` command's options."""
    tut = sub.add_parser("tutorial", help="list or run the seed tutorials' sections")
    tut.add_argument("section", nargs="?", help="section to run (default: list them)")
    opt.out_option(tut, Path("reports") / "tutorial", "pictures go to OUT/SECTION")
    opt.common(tut)


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure, print, and optionally write the figures as JSON."""
    if args.json_path:
        opt.writable_file(args.json_path, "--json")
    registry = opt.load_plugins(args)
    options = speed.Options(
        limit=args.limit,
        sample=args.sample,
        naive_images=args.naive_images,
        floor_images=args.cnn_images,
        art_images=args.art_images,
        art_batch=args.art_batch,
        train_steps=args.train_steps,
        ensemble_images=args.ensemble_images,
        imported_images=args.imported_images,
        dataset=opt.dataset(args, registry),
    )
    measured = speed.measure(registry, options)
    print(speed.render(measured))
    if args.json_path:
        speed.write_json(measured, args.json_path)
    return 0


def _copies(items: list[str], registry) -> list[tuple[str, int]]:
    """`--copy MODEL:SEED` values → (model, seed), each model checked before its seed."""
    copies = []
    for item in items:
        name, sep, seed_text = item.partition(":")
        if not sep:
            raise AdvbenchError(f"--copy {item!r}: expected MODEL:SEED")
        registry.models.get(name)
        copies.append((name, opt.checked(opt.seed, seed_text, f"--copy {item!r}")))
    return copies


def cmd_transfer(args: argparse.Namespace) -> int:
    """Craft on every member, show to every member, write the flip-rate matrix."""
    from advbench.engine import data

    registry = opt.load_plugins(args)
    attack = registry.attacks.get(args.attack)
    sets = opt.parse_sets(args.set, {attack.name})
    params = attack.config(sets.get(attack.name))
    members = transfer.members(registry, args.models, _copies(args.copy, registry))
    dataset = opt.dataset(args, registry)
    test = data.read_test_set(dataset)
    if args.examples is not None:
        paths = sorted(args.examples.glob("*.npz")) if args.examples.is_dir() else []
        if not paths:
            raise AdvbenchError(f"--examples {args.examples}: no .npz files there")
        result = transfer.from_examples(paths, members, test, dataset)
        print(transfer.write(result, args.out))
        print(f"\nwrote {args.out}/transfer.json, transfer.md, transfer.png")
        return 0
    n = min(args.limit or test.num_examples, test.num_examples)
    result = transfer.run(
        members, attack, params, args.seed, test.images[:n], test.labels_int[:n], dataset
    )
    print(transfer.write(result, args.out))
    print(f"\nwrote {args.out}/transfer.json, transfer.md, transfer.png")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    """Every view of the model `explain` supports, one file name per line."""
    from advbench.engine import zoo
    from advbench.lab import explain
    from advbench.output import figures

    registry = opt.load_plugins(args)
    model = registry.models.get(args.model)
    if not 0 <= args.image < 5000:
        raise AdvbenchError(f"--image {args.image}: the validation set has images 0..4999")
    # a model file's name holds a path: one plain folder name, as the run reports use
    out = args.out or Path("reports") / figures.file_name(f"explain-{model.name}")
    seed = opt.model_seed(model, args.model_seed)
    dataset = opt.dataset(args, registry)
    loaded = zoo.load(model, model.config(), seed, dataset)
    try:
        names = explain.explain(loaded, model.name, out, args.image, dataset)
    finally:
        loaded.close()
    for name in names:
        print(out / name)
    return 0


def cmd_tutorial(args: argparse.Namespace) -> int:
    """List the sections, or run one into OUT/SECTION."""
    from advbench.lab import tutorial

    if args.section is None:
        print(tutorial.listing())
        return 0
    section = tutorial.section(args.section)
    registry = opt.load_plugins(args)
    opt.mnist_only(args, registry, "the tutorials")
    out = args.out / section.key
    out.mkdir(parents=True, exist_ok=True)
    print(f"# {section.key} {section.title}")
    section.run(out, registry)
    return 0
