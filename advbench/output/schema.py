"""The results database's schema and the migrations that bring an older database up to it.

`PRAGMA user_version` holds the schema version; opening a database of an older version runs
each migration in order, under one write lock (`Store`), so users' databases written by earlier
advbench releases keep opening, resuming and rendering.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

from advbench.output.records import COLUMNS, RECORDS_TABLE

SCHEMA_VERSION = 7  # PRAGMA user_version; 0 is the schema before versions were recorded
#: The dataset of every run and cell stored before datasets had names (schema 2 and older).
LEGACY_DATASET = "mnist"
#: Every adversarial image of a cell (`--save-examples`): one compressed array per cell.
ADVERSARIAL_TABLE = """CREATE TABLE IF NOT EXISTS adversarial (
    cell_id INTEGER PRIMARY KEY REFERENCES cells(id) ON DELETE CASCADE,
    images BLOB NOT NULL
)"""
#: A distributed run's finished pieces of unfinished cells (`advbench.output.shards`): one row
#: per (cell, shard of images), written by the driver as each unit comes back, deleted when the
#: cell is stored whole.
SHARDS_TABLE = """CREATE TABLE IF NOT EXISTS shards (
    run_id TEXT NOT NULL REFERENCES runs(id),
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    shard INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (run_id, model, key, shard)
)"""
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    created TEXT NOT NULL,
    command TEXT NOT NULL,
    seed INTEGER NOT NULL,
    data_checksum TEXT NOT NULL,
    versions TEXT NOT NULL,
    plan TEXT NOT NULL,
    finished TEXT,
    dataset TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS runs_key ON runs(key)",
    """CREATE TABLE IF NOT EXISTS models (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    info TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
)""",
    """CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL,
    model TEXT NOT NULL,
    key TEXT NOT NULL,
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
    max_iterations INTEGER,
    examples BLOB,
    originals BLOB,
    created TEXT NOT NULL,
    dataset TEXT NOT NULL,
    digest TEXT,
    UNIQUE (run_id, model, key)
)""",
    RECORDS_TABLE,
    ADVERSARIAL_TABLE,
    SHARDS_TABLE,
)


def _migrate_0_to_1(db: sqlite3.Connection) -> None:
    """cells.label is the cell's key (records.label is the true class); cells gain the step
    budget and the examples' originals; confidence's -1 sentinel becomes NULL; the never
    written runs.n goes (where SQLite can drop a column: 3.35 and later)."""
    db.execute("ALTER TABLE cells RENAME COLUMN label TO key")
    db.execute("ALTER TABLE cells ADD COLUMN max_iterations INTEGER")
    db.execute("ALTER TABLE cells ADD COLUMN originals BLOB")
    db.execute("UPDATE records SET confidence = NULL WHERE confidence = -1")
    if sqlite3.sqlite_version_info >= (3, 35, 0):
        db.execute("ALTER TABLE runs DROP COLUMN n")


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Records gain `component`: which component of an ensemble broke the image (NULL: none,
    and every row of a single attack)."""
    db.execute("ALTER TABLE records ADD COLUMN component INTEGER")


def run_key(plan_description: dict) -> str:
    """Hash of everything that determines a run's numbers (its identity for resuming)."""
    return hashlib.sha256(json.dumps(plan_description, sort_keys=True).encode()).hexdigest()[:16]


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Runs and cells name their dataset; everything stored before is MNIST's. A run's
    identity gains the dataset's name, so its stored plan and key do too: the same command
    resumes the run after the upgrade."""
    for table in ("runs", "cells"):
        db.execute(
            f"ALTER TABLE {table} ADD COLUMN dataset TEXT NOT NULL DEFAULT '{LEGACY_DATASET}'"
        )
    for run_id, plan in db.execute("SELECT id, plan FROM runs").fetchall():
        try:
            identity = json.loads(plan)
        except json.JSONDecodeError:
            continue
        if isinstance(identity, dict) and "dataset" not in identity:
            identity["dataset"] = LEGACY_DATASET
            db.execute(
                "UPDATE runs SET plan = ?, key = ? WHERE id = ?",
                (json.dumps(identity), run_key(identity), run_id),
            )


def _migrate_3_to_4(db: sqlite3.Connection) -> None:
    """Every adversarial image of a cell, kept when a run asks (`--save-examples`), in a
    table of its own: one compressed array per cell, exported to .npz by `report`."""
    db.execute(ADVERSARIAL_TABLE)


def _migrate_4_to_5(db: sqlite3.Connection) -> None:
    """Each cell's seal (`advbench.output.integrity`); NULL for the cells stored before,
    which are read unchecked."""
    db.execute("ALTER TABLE cells ADD COLUMN digest TEXT")


def _migrate_5_to_6(db: sqlite3.Connection) -> None:
    """The shards of distributed runs' unfinished cells."""
    db.execute(SHARDS_TABLE)


def _migrate_6_to_7(db: sqlite3.Connection) -> None:
    """Records gain their L1 and L0 distances and the model queries an attack spent; rows
    stored before read them as not measured (NULL)."""
    for c in COLUMNS:
        if c.since == 7:
            db.execute(f"ALTER TABLE records ADD COLUMN {c.sql} {c.sql_type}")


MIGRATIONS = {
    0: _migrate_0_to_1,
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
    3: _migrate_3_to_4,
    4: _migrate_4_to_5,
    5: _migrate_5_to_6,
    6: _migrate_6_to_7,
}  # k to k + 1
