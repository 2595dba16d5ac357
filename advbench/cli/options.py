"""What the commands share: option types, `--set` parsing, common options, plugin loading.

Option types raise `argparse.ArgumentTypeError`, which argparse turns into a one-line usage
error naming the flag; values parsed outside argparse (`--copy MODEL:SEED`) go through
`checked` to get the same message as an `AdvbenchError`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from advbench.errors import AdvbenchError, ParamError


def csv_names(text: str) -> list[str]:
    """`a,b, c` → ["a", "b", "c"]; at least one name."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of names")
    return names


def _whole_number(text: str, low: int, high: int | None, bound: str) -> int:
    """`text` as an int within [low, high] (`high` None: unbounded); `bound` words the range."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
    return value


def positive_int(text: str) -> int:
    """A count: a whole number >= 1."""
    return _whole_number(text, 1, None, ">= 1")


def seconds(text: str) -> float:
    """A duration in seconds: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {text!r}")
    return value


def count(text: str) -> int:
    """A count that may be zero (0: skip that part)."""
    return _whole_number(text, 0, None, ">= 0")


def seed(text: str) -> int:
    """A seed TensorFlow and NumPy both accept: 0 to 2^31-1."""
    return _whole_number(text, 0, 2**31 - 1, "between 0 and 2^31-1")


def checked(kind: Callable[[str], Any], text: str, where: str) -> Any:
    """`kind(text)` for a value argparse did not parse; a bad one is one line naming `where`."""
    try:
        return kind(text)
    except argparse.ArgumentTypeError as exc:
        raise AdvbenchError(f"{where}: {exc}") from None


def parse_sets(
    items: Sequence[str], known: set[str], aliases: Mapping[str, str] | None = None
) -> dict[str, dict[str, str]]:
    """`NAME.PARAM=VALUE` strings → {name: {param: text}}; names must be selected plugins.

    An imported model's name holds a path, dots included (`keras:m.keras.range=0..255`): the
    parameter is then what follows the last dot. `aliases` maps a short name to a selected
    one (`keras` → the only selected `keras:` model)."""
    aliases = aliases or {}
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, param = key.strip().partition(".")
        if name not in known and name not in aliases and ":" in name:
            name, dot, param = key.strip().rpartition(".")
        name = aliases.get(name, name) if name not in known else name
        if not sep or not dot or not name or not param or not value.strip():
            raise ParamError(f"--set {item!r}: expected NAME.PARAM=VALUE")
        if name not in known:
            raise ParamError(
                f"--set {item!r}: {name!r} is not a selected model or attack "
                f"(selected: {', '.join(sorted(known))})"
            )
        out.setdefault(name, {})[param.strip()] = value.strip()
    return out


def common(parser: argparse.ArgumentParser) -> None:
    """`--dataset`, `--mnist-dir` and `--plugins`, which every command takes."""
    from advbench.contract.dataset import DEFAULT_DATASET

    parser.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        metavar="NAME",
        help=f"dataset (default {DEFAULT_DATASET}): a registered name (mnist, fashion-mnist), "
        "or your own files: idx:DIR, npz:FILE, folder:DIR",
    )
    parser.add_argument(
        "--mnist-dir",
        help="directory with the four MNIST IDX .gz files, for --dataset mnist "
        "(default: $ADVBENCH_MNIST_DIR, else the copy inside the package)",
    )
    parser.add_argument(
        "--plugins",
        metavar="DIR",
        dest="plugins_dir",
        help="directory of drop-in plugin *.py files ($ADVBENCH_PLUGINS_DIR)",
    )


def path(text: str) -> Path:
    """A path argument; an empty one (`--out ''`) would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return Path(text)


def writable_dir(folder: Path, what: str) -> Path:
    """`folder`, created if missing, after checking files can be written there: a run finds
    out before its first cell, not after its last, that its reports cannot be written."""
    if folder.exists() and not folder.is_dir():
        raise AdvbenchError(f"{what} {folder} is a file, not a directory")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".advbench-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise AdvbenchError(f"{what} {folder} is not writable ({exc.strerror or exc})") from None
    return folder


def writable_file(file: Path, what: str) -> Path:
    """`file` can be created or replaced: not a directory, in a writable directory."""
    if file.is_dir():
        raise AdvbenchError(f"{what} {file} is a directory, not a file")
    writable_dir(file.parent if str(file.parent) else Path("."), f"{what}'s directory")
    return file


def db_option(parser: argparse.ArgumentParser) -> None:
    """`--db`, the results database (run, report)."""
    parser.add_argument(
        "--db",
        type=path,
        default=None,
        help="results database (default $ADVBENCH_DB, else reports/advbench.sqlite)",
    )


def out_option(parser: argparse.ArgumentParser, default: Path | None, where: str) -> None:
    """`--out DIR`; `where` words the default in the help."""
    parser.add_argument("--out", type=path, default=default, help=f"{where} (default {default})")


def progress_option(parser: argparse.ArgumentParser, text: str | None = None) -> None:
    """`--progress/--no-progress`; unset means: bars when stderr is a terminal."""
    parser.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help=text
    )


def load_plugins(args: argparse.Namespace) -> Any:
    """The plugin registry (`advbench.host.plugins.Plugins`); a plugin that failed to load is
    a warning on stderr, not an error, so the others stay usable."""
    from advbench.host import plugins

    registry = plugins.load(args.plugins_dir)
    for info in registry.errors:
        print(
            f"advbench: warning: plugin {info.name!r} ({info.source}) {info.error}", file=sys.stderr
        )
    return registry


def dataset(args: argparse.Namespace, registry: Any) -> Any:
    """The `advbench.Dataset` of `--dataset` (with `--mnist-dir`, MNIST from that directory),
    read and checked now: bad data is one line before any other work."""
    from advbench.contract.dataset import DEFAULT_DATASET

    name = args.dataset
    if args.mnist_dir:
        if name != DEFAULT_DATASET:
            raise AdvbenchError(
                f"--mnist-dir is the {DEFAULT_DATASET} dataset's directory; for --dataset "
                f"{name} name the files in --dataset (idx:DIR, npz:FILE, folder:DIR)"
            )
        name = f"{DEFAULT_DATASET}:{args.mnist_dir}"
    chosen = registry.datasets.get(name)
    chosen.load()
    return chosen


def mnist_only(args: argparse.Namespace, registry: Any, what: str) -> None:
    """For code written for MNIST (the tutorials): refuse another `--dataset` in one line, and
    make `--mnist-dir` the directory every MNIST read of this process uses (the `mnist`
    dataset's `$ADVBENCH_MNIST_DIR`), after checking its files."""
    from advbench.contract.dataset import DEFAULT_DATASET, MNIST_DIR_ENV

    if args.dataset != DEFAULT_DATASET:
        raise AdvbenchError(f"--dataset {args.dataset}: {what} are written for MNIST only")
    dataset(args, registry)  # bad files: one line now
    if args.mnist_dir:
        os.environ[MNIST_DIR_ENV] = str(Path(args.mnist_dir).resolve())


def model_seed(model: Any, given: int | None) -> int:
    """The training seed of a model's checkpoint: `given`, else the model's own."""
    return model.default_seed if given is None else given


def aliases(models: Sequence[Any]) -> dict[str, str]:
    """Short `--set` names of imported models: the format (`keras`, `savedmodel`, `graph`)
    stands for the one selected model of that format, when there is exactly one."""
    from advbench.host.imported import split

    formats: dict[str, list[str]] = {}
    for m in models:
        parts = split(m.name)
        if parts:
            formats.setdefault(parts[0], []).append(m.name)
    return {fmt: names[0] for fmt, names in formats.items() if len(names) == 1}
