"""Which process computes a cell, when identical runs share one stored run.

Two `advbench run` commands with the same identity started together open the same run (the
store finds or makes it under one write lock) and split its cells between them, never
computing one twice. Each cell has a lock file next to the database (`DB.locks/RUN/CELL`),
held with `fcntl.flock` while the cell is computed and stored; the kernel drops the lock when
its process ends, however it ends, so a killed run never leaves a cell claimed. A process
takes the free cells first, then waits for the ones another process holds: a cell that
process stored is skipped, one it left undone (it died) is computed here.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def lock_folder(database: Path, run_id: str) -> Path:
    """Where a run's cell locks live: beside its database, one folder per run."""
    return database.with_name(database.name + ".locks") / run_id


def claimed(
    cells: Iterable[T],
    folder: Path | None,
    name: Callable[[T], str],
    finished: Callable[[], set[str]],
) -> Iterator[T]:
    """The `cells` this process should compute, each yielded while its lock is held (it is
    released when the caller asks for the next): first the free ones, then, waiting, the
    ones another process held, unless `finished()` (the names of the stored cells) has them.
    Without a usable `folder` (None, or read-only) every cell is yielded, unlocked."""
    if folder is None or not _usable(folder):
        yield from cells
        return
    waiting = []
    for cell in cells:
        fd = _lock(folder / name(cell), wait=False)
        if fd is None:
            waiting.append(cell)
            continue
        try:
            if name(cell) not in finished():
                yield cell
        finally:
            os.close(fd)  # closing the file releases its lock
    for cell in waiting:
        fd = _lock(folder / name(cell), wait=True)
        try:
            if name(cell) not in finished():
                yield cell
        finally:
            if fd is not None:
                os.close(fd)


def _usable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.access(folder, os.W_OK)
    except OSError:
        return False


def _lock(path: Path, wait: bool) -> int | None:
    """An open descriptor holding the exclusive lock on `path`; None when another process
    holds it and `wait` is False."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd
