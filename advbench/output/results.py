"""The results database: runs, cells and per-image records in SQLite, nothing lost.

Every cell (model × attack × parameters) is written in one transaction together with its
records, the checkpoint's identity, the attack parameters, the seed, the data checksum and the
library versions. A run is identified by a hash of everything that determines its numbers, so
the same command started again finds its run and computes only the cells that are missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from advbench.errors import AdvbenchError

DEFAULT_DB = Path("reports") / "advbench.sqlite"
ENV_DB = "ADVBENCH_DB"


def default_db() -> Path:
    """$ADVBENCH_DB, else reports/advbench.sqlite under the current directory."""
    env = os.environ.get(ENV_DB)
    return Path(env) if env else DEFAULT_DB


SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created TEXT NOT NULL,
    command TEXT NOT NULL,
    seed INTEGER NOT NULL,
    n INTEGER,
    data_checksum TEXT NOT NULL,
    versions TEXT NOT NULL,
    plan TEXT NOT NULL,
    finished TEXT
);
CREATE INDEX IF NOT EXISTS runs_key ON runs(key);
CREATE TABLE IF NOT EXISTS models (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    label TEXT NOT NULL,
    attack TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    error TEXT,
    summary TEXT,
    checkpoint TEXT,
    model_seed INTEGER,
    seed INTEGER NOT NULL,
    data_checksum TEXT NOT NULL,
    versions TEXT NOT NULL,
    examples BLOB,
    created TEXT NOT NULL,
    UNIQUE (run_id, model, label)
);
CREATE TABLE IF NOT EXISTS records (
    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    row INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    label INTEGER NOT NULL,
    target INTEGER NOT NULL,
    clean_pred INTEGER NOT NULL,
    adv_pred INTEGER NOT NULL,
    attacked INTEGER NOT NULL,
    flipped INTEGER NOT NULL,
    iterations INTEGER NOT NULL,
    l2 REAL NOT NULL,
    linf REAL NOT NULL,
    confidence REAL,
    PRIMARY KEY (cell_id, row)
);
"""

RECORD_COLUMNS = (
    "idx",
    "label",
    "target",
    "clean_pred",
    "adv_pred",
    "attacked",
    "flipped",
    "iterations",
    "l2",
    "linf",
    "confidence",
)


def run_key(plan_description: dict[str, Any]) -> str:
    """Hash of everything that determines a run's numbers."""
    return hashlib.sha256(json.dumps(plan_description, sort_keys=True).encode()).hexdigest()[:16]


def _pack(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, images.astype(np.float32), allow_pickle=False)
    return buf.getvalue()


def unpack(blob: bytes | None) -> np.ndarray | None:
    """The example images stored with a cell."""
    return None if blob is None else np.load(io.BytesIO(blob), allow_pickle=False)


class Store:
    """A connection to the results database."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AdvbenchError(f"results database {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    # runs ------------------------------------------------------------------------------------
    def find_run(self, key: str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM runs WHERE key = ? ORDER BY created DESC LIMIT 1", (key,)
        ).fetchone()
        return row[0] if row else None

    def create_run(
        self,
        key: str,
        command: str,
        seed: int,
        data_checksum: str,
        versions: dict[str, str],
        plan: dict[str, Any],
    ) -> str:
        """A new run; its id is readable and sortable: run-YYYYmmdd-HHMMSS-KEY6."""
        run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{key[:6]}"
        with self.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, key, created, command, seed, data_checksum, versions, plan)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    key,
                    time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    command,
                    seed,
                    data_checksum,
                    json.dumps(versions),
                    json.dumps(plan),
                ),
            )
        return run_id

    def finish_run(self, run_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished = ? WHERE id = ?",
                (time.strftime("%Y-%m-%dT%H:%M:%S%z"), run_id),
            )

    def resolve_run(self, ref: str | None) -> str:
        """A run id from an id, a unique prefix, or None for the latest run."""
        if ref is None:
            row = self.db.execute(
                "SELECT id FROM runs ORDER BY created DESC, id DESC LIMIT 1"
            ).fetchone()
            if not row:
                raise AdvbenchError(f"no runs in {self.path}")
            return row[0]
        rows = self.db.execute("SELECT id FROM runs WHERE id LIKE ?", (ref + "%",)).fetchall()
        if len(rows) != 1:
            what = "no run" if not rows else f"{len(rows)} runs"
            raise AdvbenchError(f"{what} in {self.path} match {ref!r}")
        return rows[0][0]

    def runs(self) -> list[dict[str, Any]]:
        cur = self.db.execute(
            "SELECT r.id, r.created, r.finished, r.command, COUNT(c.id) FROM runs r "
            "LEFT JOIN cells c ON c.run_id = r.id GROUP BY r.id ORDER BY r.created"
        )
        return [
            dict(zip(("id", "created", "finished", "command", "cells"), row, strict=True))
            for row in cur
        ]

    # models and cells ------------------------------------------------------------------------
    def save_model(self, run_id: str, info: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO models (run_id, name, info) VALUES (?, ?, ?)",
                (run_id, info["name"], json.dumps(info)),
            )

    def done_labels(self, run_id: str) -> set[tuple[str, str]]:
        """(model, cell label) of the cells that finished successfully."""
        cur = self.db.execute(
            "SELECT model, label FROM cells WHERE run_id = ? AND status = 'done'", (run_id,)
        )
        return set(cur.fetchall())

    def save_cell(
        self,
        run_id: str,
        position: int,
        cell: dict[str, Any],
        records: Any | None,
        examples: np.ndarray | None,
    ) -> None:
        """One cell and all its records, atomically (a failed cell replaces nothing done)."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM cells WHERE run_id = ? AND model = ? AND label = ?",
                (run_id, cell["model"], cell["label"]),
            )
            cur = db.execute(
                "INSERT INTO cells (run_id, position, model, label, attack, params, status, error,"
                " summary, checkpoint, model_seed, seed, data_checksum, versions, examples,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    position,
                    cell["model"],
                    cell["label"],
                    cell["attack"],
                    json.dumps(cell["params"]),
                    cell["status"],
                    cell.get("error"),
                    json.dumps(cell.get("summary")),
                    cell.get("checkpoint"),
                    cell.get("model_seed"),
                    cell["seed"],
                    cell["data_checksum"],
                    json.dumps(cell["versions"]),
                    None if examples is None else _pack(examples),
                    time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                ),
            )
            if records is not None:
                cell_id = cur.lastrowid
                rows = zip(
                    range(len(records.index)),
                    records.index.tolist(),
                    records.label.tolist(),
                    records.target.tolist(),
                    records.clean_pred.tolist(),
                    records.adv_pred.tolist(),
                    records.attacked.astype(int).tolist(),
                    records.flipped.astype(int).tolist(),
                    records.iterations.tolist(),
                    records.l2.tolist(),
                    records.linf.tolist(),
                    np.nan_to_num(records.confidence, nan=-1.0).tolist(),
                    strict=True,
                )
                db.executemany(
                    f"INSERT INTO records (cell_id, row, {', '.join(RECORD_COLUMNS)}) VALUES "
                    f"({cell_id}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def load_run(self, run_id: str) -> dict[str, Any]:
        """Everything stored about a run, in the shape of results.json."""
        row = self.db.execute(
            "SELECT command, seed, n, data_checksum, versions, created, finished FROM runs "
            "WHERE id = ?",
            (run_id,),
        ).fetchone()
        command, seed, _, checksum, versions, created, finished = row
        models = [
            json.loads(r[0])
            for r in self.db.execute(
                "SELECT info FROM models WHERE run_id = ? ORDER BY rowid", (run_id,)
            )
        ]
        cells = []
        for r in self.db.execute(
            "SELECT id, model, attack, label, params, status, error, summary, checkpoint, seed "
            "FROM cells WHERE run_id = ? ORDER BY position",
            (run_id,),
        ):
            cell_id, model, attack, label, params, status, error, summary, checkpoint, cseed = r
            entry = {
                "model": model,
                "attack": attack,
                "label": label,
                "params": json.loads(params),
                "status": status,
                "cell_id": cell_id,
                "checkpoint": checkpoint,
                "seed": cseed,
            }
            if status == "done":
                entry.update(json.loads(summary))
            else:
                entry["error"] = error
            cells.append(entry)
        n = models[0]["n"] if models else None
        return {
            "run": {
                "id": run_id,
                "command": command,
                "seed": seed,
                "n": n,
                "data_checksum": checksum,
                "versions": json.loads(versions),
                "started": created,
                "finished": finished,
            },
            "models": models,
            "cells": cells,
        }

    def records(self, cell_id: int) -> dict[str, np.ndarray]:
        """A cell's per-row records as arrays."""
        rows = self.db.execute(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM records WHERE cell_id = ? ORDER BY row",
            (cell_id,),
        ).fetchall()
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in RECORD_COLUMNS]
        return {name: np.array(col) for name, col in zip(RECORD_COLUMNS, cols, strict=True)}

    def examples(self, cell_id: int) -> np.ndarray | None:
        row = self.db.execute("SELECT examples FROM cells WHERE id = ?", (cell_id,)).fetchone()
        return unpack(row[0]) if row else None
