"""The finished pieces of a cell that runs in pieces: one shard of its images each.

A distributed run (`advbench.engine.distributed`) splits large cells into shards of images that
run on different workers. Each shard that comes back is stored by the driver at once, in one
transaction, so a driver killed at any moment loses no finished work: the same command resumes
the run and computes only the shards not stored. When every shard of a cell is there, the cell
is stored whole (`Store.save_cell`) and its shards are deleted.

A shard carries its rows' records with their adversarial images, the attack's seconds, the
counts behind the cell checks (so the cell's checks are the shards' counts summed, not a mean
of means), whether the attack's graph used gradients, and the worker that computed it.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from advbench.output.records import Records

#: The cell checks a shard counts (rows), each summed over the shards and divided by the
#: cell's attacked rows; a shard that could not measure one leaves it unmeasured (None).
COUNTED = ("silent success", "incomplete optimisation", "unconfirmed success")


@dataclass
class Shard:
    """One shard's results, as a worker returns them and the database keeps them."""

    records: Records
    seconds: float
    counts: dict[str, int | None] = field(default_factory=dict)  # `COUNTED` → rows
    uses_gradients: bool | None = None
    worker: str = ""

    def pack(self) -> bytes:
        """The shard as one compressed blob (the database's `shards.payload`)."""
        arrays = {f.name: getattr(self.records, f.name) for f in fields(Records)}
        meta = {
            "seconds": self.seconds,
            "counts": self.counts,
            "uses_gradients": self.uses_gradients,
            "worker": self.worker,
        }
        buffer = io.BytesIO()
        np.savez_compressed(buffer, meta=np.array(json.dumps(meta)), **arrays)
        return buffer.getvalue()

    @classmethod
    def unpack(cls, blob: bytes) -> Shard:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            # a shard kept before a field existed (schema 6: no L1, L0, queries) reads it unmeasured
            kept = {f.name: z[f.name] for f in fields(Records) if f.name in z.files}
            records = Records(**kept)
        return cls(records, meta["seconds"], meta["counts"], meta["uses_gradients"], meta["worker"])


def joined(parts: list[Shard]) -> Records:
    """The cell's records: the shards' rows in shard order (= image order, as a serial run
    lists them)."""
    names = [f.name for f in fields(Records)]
    return Records(**{n: np.concatenate([getattr(p.records, n) for p in parts]) for n in names})


def save(store: Any, run_id: str, model: str, key: str, number: int, shard: Shard) -> None:
    """Store one finished shard (replacing one stored before: a unit that ran twice)."""
    save_batch(store, run_id, model, key, number, shard.pack())


def stored(store: Any, run_id: str) -> dict[tuple[str, str], dict[int, Shard]]:
    """Every stored shard of the run: (model, cell key) → shard number → shard."""
    out: dict[tuple[str, str], dict[int, Shard]] = {}
    rows = store.db.execute(
        "SELECT model, key, shard, payload FROM shards WHERE run_id = ?", (run_id,)
    ).fetchall()
    for model, key, number, payload in rows:
        out.setdefault((model, key), {})[number] = Shard.unpack(payload)
    return out


def drop(store: Any, run_id: str, model: str, key: str) -> None:
    """Delete a cell's shards once the cell is stored whole."""
    with store.transaction() as db:
        db.execute(
            "DELETE FROM shards WHERE run_id = ? AND model = ? AND key = ?", (run_id, model, key)
        )


def save_batch(store: Any, run_id: str, model: str, key: str, number: int, blob: bytes) -> None:
    """Keep one finished batch of an in-process run's cell (`engine.batches.KeptBatches`); the
    same table as a distributed run's shards (a run is one or the other: its identity says)."""
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO shards (run_id, model, key, shard, payload)"
            " VALUES (?, ?, ?, ?, ?)",
            (run_id, model, key, number, blob),
        )


def stored_batches(store: Any, run_id: str, model: str, key: str) -> dict[int, bytes]:
    """The kept batches of one cell: number → blob."""
    rows = store.db.execute(
        "SELECT shard, payload FROM shards WHERE run_id = ? AND model = ? AND key = ?",
        (run_id, model, key),
    ).fetchall()
    return dict(rows)
