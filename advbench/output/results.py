"""The results database: runs, cells and per-image records in SQLite, nothing lost.

Every cell (model × attack × parameters) is written in one transaction together with its
records, the checkpoint's identity, the attack parameters, the seed, the data checksum and the
library versions. A run is identified by a hash of everything that determines its numbers, so
the same command started again finds its run and computes only the cells that are missing.
The per-image columns come from `advbench.output.records.COLUMNS`. The schema has a version
(PRAGMA user_version); a database written by an older advbench is migrated when opened.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from advbench.errors import AdvbenchError
from advbench.output import examples, integrity
from advbench.output.records import (
    COLUMNS,
    SQL_COLUMNS,
    Cell,
    Records,
    StoredRun,
    Summary,
    columns_of,
    records_from_rows,
)
from advbench.output.schema import LEGACY_DATASET, MIGRATIONS, SCHEMA, SCHEMA_VERSION
from advbench.output.schema import run_key as run_key  # re-exported: runs are keyed by it

DEFAULT_DB = Path("reports") / "advbench.sqlite"
ENV_DB = "ADVBENCH_DB"


def default_db() -> Path:
    """$ADVBENCH_DB, else reports/advbench.sqlite under the current directory."""
    env = os.environ.get(ENV_DB)
    return Path(env) if env else DEFAULT_DB


def _pack(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, images.astype(np.float32), allow_pickle=False)
    return buf.getvalue()


def unpack(blob: bytes | None) -> np.ndarray | None:
    """The example images stored with a cell."""
    return None if blob is None else np.load(io.BytesIO(blob), allow_pickle=False)


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write: `mode=ro`; where even that needs to write (a WAL
    database in a read-only folder cannot make its shared-memory file), `immutable=1`, which
    reads without locks — right for media nobody writes to."""
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


class Store:
    """A connection to the results database."""

    def __init__(self, path: str | Path = DEFAULT_DB, read_only: bool = False) -> None:
        """`read_only` (listing and rendering) writes nothing, not even SQLite's side files,
        so a database on read-only media, or someone else's, can be read."""
        self.path = Path(path)
        try:
            if read_only:
                self.db = _read_only(self.path)
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    raise AdvbenchError(
                        f"results database {self.path} has schema version {version}, this "
                        f"advbench {SCHEMA_VERSION}: open it once with write access to convert it"
                    )
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self._create_or_migrate()
        except sqlite3.DatabaseError as exc:
            raise AdvbenchError(
                f"results database {self.path}: {exc} (a full disk or read-only media? what "
                "was stored before is kept)"
            ) from None

    def _create_or_migrate(self) -> None:
        """Create the tables of a new database, or bring an older one up to SCHEMA_VERSION.

        Under one write lock, so two processes opening an old database migrate it once."""
        db = self.db
        if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # up to date: no write lock needed
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            fresh = not db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cells'"
            ).fetchone()
            if version > SCHEMA_VERSION:
                raise AdvbenchError(
                    f"results database {self.path} has schema version {version}; this advbench"
                    f" reads up to {SCHEMA_VERSION} (upgrade advbench)"
                )
            if fresh:
                for statement in SCHEMA:
                    db.execute(statement)
            else:
                for v in range(version, SCHEMA_VERSION):
                    MIGRATIONS[v](db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.commit()
        except BaseException:
            db.rollback()
            raise

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a write that fails (a full disk, media gone read-only) is one
        line, and everything committed before stays."""
        try:
            with self.db:
                yield self.db
        except sqlite3.OperationalError as exc:
            raise AdvbenchError(f"results database {self.path}: {exc}") from None

    # runs ------------------------------------------------------------------------------------
    def find_run(self, key: str) -> str | None:
        row = self.db.execute(
            "SELECT id FROM runs WHERE key = ? ORDER BY created DESC LIMIT 1", (key,)
        ).fetchone()
        return row[0] if row else None

    def open_run(
        self,
        key: str,
        command: str,
        seed: int,
        data_checksum: str,
        versions: dict[str, str],
        plan: dict[str, Any],
        dataset: str = LEGACY_DATASET,
        reuse: bool = True,
    ) -> tuple[str, bool]:
        """(run id, whether it was found): the latest run with identity `key` (when `reuse`),
        else a new one — found or made under one write lock, so identical runs started
        together share one run. A new id is readable and sortable: run-YYYYmmdd-HHMMSS-KEY6,
        with -2, -3, … when the same run was already created within that second."""
        base = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{key[:6]}"
        with self.transaction() as db:
            db.execute("BEGIN IMMEDIATE")  # the lookup and the insert, one writer at a time
            found = self.find_run(key) if reuse else None
            if found is not None:
                return found, True
            taken = {
                row[0]
                for row in db.execute(
                    "SELECT id FROM runs WHERE substr(id, 1, ?) = ?", (len(base), base)
                )
            }
            run_id = base
            for n in range(2, len(taken) + 2):
                if run_id not in taken:
                    break
                run_id = f"{base}-{n}"
            db.execute(
                "INSERT INTO runs (id, key, created, command, seed, data_checksum, versions, plan,"
                " dataset) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    key,
                    time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    command,
                    seed,
                    data_checksum,
                    json.dumps(versions),
                    json.dumps(plan),
                    dataset,
                ),
            )
        return run_id, False

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
        # A prefix, compared as text: '%' and '_' in it are characters, not LIKE patterns.
        rows = self.db.execute(
            "SELECT id FROM runs WHERE substr(id, 1, ?) = ?", (len(ref), ref)
        ).fetchall()
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

    def done_keys(self, run_id: str) -> set[tuple[str, str]]:
        """(model, cell key) of the cells that finished successfully."""
        cur = self.db.execute(
            "SELECT model, key FROM cells WHERE run_id = ? AND status = 'done'", (run_id,)
        )
        return set(cur.fetchall())

    def save_cell(
        self,
        run_id: str,
        position: int,
        cell: Cell,
        records: Records | None,
        keep_adversarial: bool = False,
    ) -> None:
        """One cell, its examples and all its records, atomically (a failed cell replaces
        nothing done); with `keep_adversarial`, every row's adversarial image too."""
        with self.transaction() as db:
            db.execute(
                "DELETE FROM cells WHERE run_id = ? AND model = ? AND key = ?",
                (run_id, cell.model, cell.key),
            )
            cur = db.execute(
                "INSERT INTO cells (run_id, position, model, key, attack, params, status, error,"
                " summary, checkpoint, model_seed, seed, data_checksum, versions,"
                " max_iterations, examples, originals, created, dataset)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    position,
                    cell.model,
                    cell.key,
                    cell.attack,
                    json.dumps(cell.params),
                    cell.status,
                    cell.error,
                    None if cell.summary is None else json.dumps(cell.summary.to_dict()),
                    cell.checkpoint,
                    cell.model_seed,
                    cell.seed,
                    cell.data_checksum,
                    json.dumps(cell.versions),
                    cell.max_iterations,
                    None if cell.examples is None else _pack(cell.examples),
                    None if cell.originals is None else _pack(cell.originals),
                    time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    cell.dataset or LEGACY_DATASET,
                ),
            )
            cell.id = cur.lastrowid
            if records is not None:
                marks = ", ".join("?" for _ in COLUMNS)
                rows = zip(range(len(records.index)), *columns_of(records), strict=True)
                db.executemany(
                    f"INSERT INTO records (cell_id, row, {SQL_COLUMNS}) VALUES"
                    f" ({cell.id}, ?, {marks})",
                    rows,
                )
            integrity.seal(db, cell.id)
            if records is not None and keep_adversarial and records.adversarial is not None:
                db.execute(
                    "INSERT INTO adversarial (cell_id, images) VALUES (?, ?)",
                    (cell.id, examples.pack(records.adversarial)),
                )

    def load_run(self, run_id: str) -> StoredRun:
        """Everything stored about a run: its settings, models and cells (with examples)."""
        command, seed, checksum, versions, created, finished, dataset = self.db.execute(
            "SELECT command, seed, data_checksum, versions, created, finished, dataset FROM runs "
            "WHERE id = ?",
            (run_id,),
        ).fetchone()
        models = [
            json.loads(r[0])
            for r in self.db.execute(
                "SELECT info FROM models WHERE run_id = ? ORDER BY rowid", (run_id,)
            )
        ]
        cells = [
            Cell(
                model=model,
                key=key,
                attack=attack,
                params=json.loads(params),
                seed=cseed,
                data_checksum=cchecksum,
                versions=json.loads(cversions),
                status=status,
                error=error,
                summary=None if summary is None else _summary(summary),
                checkpoint=checkpoint,
                model_seed=model_seed,
                max_iterations=max_iterations,
                dataset=cdataset,
                examples=unpack(examples),
                originals=unpack(originals),
                id=cell_id,
            )
            for (
                cell_id,
                model,
                key,
                attack,
                params,
                status,
                error,
                summary,
                checkpoint,
                model_seed,
                cseed,
                cchecksum,
                cversions,
                max_iterations,
                examples,
                originals,
                cdataset,
            ) in self.db.execute(
                "SELECT id, model, key, attack, params, status, error, summary, checkpoint,"
                " model_seed, seed, data_checksum, versions, max_iterations, examples, originals,"
                " dataset FROM cells WHERE run_id = ? ORDER BY position",
                (run_id,),
            )
        ]
        info = {
            "id": run_id,
            "command": command,
            "seed": seed,
            "n": models[0]["n"] if models else None,
            "dataset": dataset,
            "data_checksum": checksum,
            "versions": json.loads(versions),
            "started": created,
            "finished": finished,
        }
        return StoredRun(info, models, cells)

    def records(self, cell_id: int) -> Records:
        """A cell's per-row records (without the adversarial images, which are not stored)."""
        integrity.check(self.db, cell_id, str(self.path))  # edited after storing: refused
        rows = self.db.execute(
            f"SELECT {SQL_COLUMNS} FROM records WHERE cell_id = ? ORDER BY row", (cell_id,)
        ).fetchall()
        return records_from_rows(rows)


def _summary(text: str) -> Summary | None:
    """A stored summary (failed cells of old databases stored JSON null)."""
    parsed = json.loads(text)
    return None if parsed is None else Summary.from_dict(parsed)
