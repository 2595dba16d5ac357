"""The `advbench` command: run, report, train, eval, plugins, describe, bench, transfer, explain,
tutorial.

- run: benchmark models × attacks on a dataset's test set (resumable; results in a database);
- report: render a stored run again, list the runs, or compare two;
- train, eval: train a model's checkpoint; test accuracy of the checkpoints;
- plugins, describe: what is registered; a model's or attack's parameters;
- bench, transfer, explain, tutorial: the seed tutorials' lab (speed next to the alternatives,
  transferability across models, pictures of what a model learned, the tutorials' sections).

User mistakes (bad flags, unknown names, invalid values, corrupted data) raise `AdvbenchError`
and end as one line on stderr with exit status 2; anything else is a bug and keeps its traceback.
Each command lives in the module of its group (`run`, `catalogue`, `lab`), which only wires its
arguments to the engine, the output and the lab.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from advbench import __version__
from advbench.cli import catalogue, lab, run
from advbench.errors import AdvbenchError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader went away (`advbench plugins | head`)


class _Parser(argparse.ArgumentParser):
    """argparse whose errors become one-line `AdvbenchError`s instead of usage dumps."""

    def error(self, message: str):  # type: ignore[override]
        raise AdvbenchError(f"{self.prog}: {message}")


# (command, its options, its handler), in the order `advbench --help` lists them. Every handler
# takes the parsed arguments; `run` also takes the command line, which it records with the run.
AddOptions = Callable[[argparse._SubParsersAction], None]
COMMANDS: tuple[tuple[str, AddOptions, Callable[..., int]], ...] = (
    ("run", run.add_run, run.cmd_run),
    ("train", catalogue.add_train, catalogue.cmd_train),
    ("eval", catalogue.add_eval, catalogue.cmd_eval),
    ("bench", lab.add_bench, lab.cmd_bench),
    ("transfer", lab.add_transfer, lab.cmd_transfer),
    ("explain", lab.add_explain, lab.cmd_explain),
    ("tutorial", lab.add_tutorial, lab.cmd_tutorial),
    ("report", run.add_report, run.cmd_report),
    ("plugins", catalogue.add_plugins, catalogue.cmd_plugins),
    ("describe", catalogue.add_describe, catalogue.cmd_describe),
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line interface (described by this module's first paragraph)."""
    parser = _Parser(prog="advbench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"advbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for _, add, _ in COMMANDS:
        add(sub)
    return parser


def _quiet_stdout() -> None:
    """Send what is left of stdout to /dev/null, so the interpreter's last flush at exit does
    not raise BrokenPipeError again after the reader went away."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout replaced or closed (tests capturing it)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        handler = {name: cmd for name, _, cmd in COMMANDS}[args.command]
        status = handler(args, argv) if args.command == "run" else handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the policy below
        return status
    except AdvbenchError as exc:
        message = str(exc)
        if not message.startswith("advbench"):
            message = f"advbench: error: {message}"
        print(message, file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("advbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
