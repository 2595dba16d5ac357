"""The results database's schema and the migrations that bring an older database up to it.

`PRAGMA user_version` holds the schema version; opening a database of an older version runs
each migration in order, under one write lock (`Store`), so users' databases written by earlier
advbench releases keep opening, resuming and rendering.
"""

from __future__ import annotations

import sqlite3

from advbench.output.records import RECORDS_TABLE

SCHEMA_VERSION = 2  # PRAGMA user_version; 0 is the schema before versions were recorded
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
    finished TEXT
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
    UNIQUE (run_id, model, key)
)""",
    RECORDS_TABLE,
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


MIGRATIONS = {0: _migrate_0_to_1, 1: _migrate_1_to_2}  # from version k to k + 1
