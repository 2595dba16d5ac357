"""Progress bars for long work (rich, which Keras already installs), shown only on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class _Silent:
    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass

    def advance(self, *args: Any, **kwargs: Any) -> None:
        pass

    def remove_task(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def bars(enabled: bool | None = None) -> Iterator[Any]:
    """A rich `Progress` on stderr (or a silent stand-in when disabled / not a terminal)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        yield progress


def training_task(bars: Any, label: str) -> Callable[[int, int, float | None], None]:
    """A `zoo.train` progress callback drawing a "train LABEL" bar with the running accuracy
    on the first 1,000 test images. The bar stays hidden until the first step, so loading a
    model that needs no training shows nothing."""
    task = bars.add_task(f"train {label}", total=None, note="", visible=False)

    def on_progress(step: int, total: int, acc: float | None) -> None:
        note = {} if acc is None else {"note": f"acc@1000 {acc:.3f}"}
        bars.update(task, completed=step, total=total, visible=True, **note)

    return on_progress
