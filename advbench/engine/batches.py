"""How one batch of an attack runs: on a thread Ctrl-C can interrupt within a step, under the
cell's time limit, with its progress reported from inside the step loop — and kept.

`KeptBatches` stores every batch of a cell as it finishes (the results database's `shards`
table, one transaction each) and hands them back when the cell runs again: a cell interrupted
by Ctrl-C, a kill or its time limit resumes after its last finished batch. A kept batch is
used only for exactly the same rows (the batch's row positions are stored with it), so a
resumed cell's records are bit-identical to an uninterrupted one's.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from advbench.contract.lazy_tf import tf

OUTPUTS = ("final_x", "done_at", "pred", "confidence", "queries")  # a batch's fetches, in order


class KeptBatches:
    """The finished batches of one cell of one run (module docstring)."""

    def __init__(self, store: Any, run_id: str, model: str, key: str) -> None:
        from advbench.output import shards

        self.store, self.run_id, self.model, self.key = store, run_id, model, key
        self._kept = {
            number: _unpack(blob)
            for number, blob in shards.stored_batches(store, run_id, model, key).items()
        }

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, number: int, rows: np.ndarray) -> list[np.ndarray] | None:
        """The outputs of batch `number` if it was kept for exactly these rows."""
        found = self._kept.get(number)
        if found is None or not np.array_equal(found["rows"], rows):
            return None
        if "queries" not in found:  # kept before queries were counted: none were
            found["queries"] = np.full(len(rows), -1, np.int64)
        return [found[name] for name in OUTPUTS]

    def seconds(self, number: int) -> float:
        return float(self._kept[number]["seconds"])

    def put(self, number: int, rows: np.ndarray, out: list[Any], seconds: float) -> None:
        """Keep a finished batch (one transaction)."""
        from advbench.output import shards

        arrays = {
            "rows": rows,
            "seconds": np.float64(seconds),
            **dict(zip(OUTPUTS, out, strict=True)),
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        shards.save_batch(self.store, self.run_id, self.model, self.key, number, buffer.getvalue())
        self._kept[number] = arrays


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


class Ticker:
    """The Python end of a step loop's per-step report (`driver.early_stopping_loop`'s
    `tick`): the graph holds this object, whoever runs a batch points `to` at a callback and
    sets `stop` to end the batch at its next step (Ctrl-C: `run_attack`)."""

    def __init__(self) -> None:
        self.to: Callable[[int, int], None] | None = None
        self.stop = False

    def __call__(self, step: Any, active: Any) -> np.int64:
        if self.stop:
            raise RuntimeError("advbench: batch stopped (interrupted)")
        if self.to is not None:
            self.to(int(step), int(active))
        return np.int64(0)


def interruptible(run: Callable[[], Any], ticker: Ticker) -> Any:
    """`run()` on a worker thread while this one waits in short slices: Ctrl-C reaches Python
    at once (a thread blocked inside `session.run` would only see it when the batch ends),
    sets `ticker.stop`, and the loop ends at its next step before KeyboardInterrupt goes on."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = run()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    ticker.stop = False
    worker = threading.Thread(target=work, name="advbench-batch", daemon=True)
    try:  # from the start: an interrupt at any point must stop the worker's loop
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
    except BaseException:
        ticker.stop = True
        if worker.is_alive():
            worker.join(30.0)  # the next step raises; then the session is free again
        raise
    if "error" in box:
        raise box["error"]
    return box["out"]


def default_cell_timeout(
    steps: int | None, clean_seconds: float, queries: int | None = None
) -> float:
    """How long a cell may run when `--cell-timeout` is not given: 10 minutes plus 20 times
    its work, at most 12 hours. The work per image is one forward and one backward pass
    (three clean passes' time) per step, or its query budget in forward passes where that is
    more (`Attack.query_budget`: HopSkipJump's 25,000 queries are ~500 a step). Every
    legitimate cell fits with room to spare (FAB's and DeepFool's class loops included); a
    hung loop, or `pgd.iterations=2000000000` on a robust model, fails its cell and the run
    goes on."""
    passes = max(3.0 * (steps or 1000), float(queries or 0))
    return min(600.0 + 20.0 * passes * clean_seconds, 12 * 3600.0)


class CellTimeout(Exception):
    """An attack ran past its cell's time limit (`advbench run --cell-timeout`)."""


def run_within(
    session: Any, fetches: list[Any], feed: dict[Any, Any], started: float, limit: float | None
) -> list[Any]:
    """`session.run`, cancelled by TensorFlow when the time since `started` reaches `limit`."""
    if limit is None:
        return session.run(fetches, feed)
    left = limit - (time.perf_counter() - started)
    message = f"ran past its time limit of {limit:g} s (--cell-timeout)"
    if left <= 0:
        raise CellTimeout(message)
    options = tf().compat.v1.RunOptions(timeout_in_ms=max(1, int(left * 1000)))
    try:
        return session.run(fetches, feed, options=options)
    except tf().errors.DeadlineExceededError:
        raise CellTimeout(message) from None


def within(
    on_progress: Callable[[float, int], None], before: int, size: int, steps: int, total: int
) -> Callable[[int, int], None]:
    """A step report inside a batch as images done: the batch's `size` images count in
    proportion to the steps run, after the `before` images of earlier batches."""
    return lambda step, _active: on_progress(before + size * min(step, steps) / steps, total)
