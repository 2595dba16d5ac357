"""A stored cell's seal: its numbers as computed, or a refusal to show them.

Every cell is sealed when it is stored: a SHA-256 over its summary and every one of its
records, read back from the database inside the same transaction (so the seal covers exactly
what SQLite holds). Reading a cell's records checks the seal again, so a value edited in the
database afterwards — by hand, by another tool, by a damaged disk — is one line naming the
cell instead of a report that looks computed. Cells stored before seals existed have none and
are read as they are.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

from advbench.errors import AdvbenchError
from advbench.output.records import COLUMNS, SQL_COLUMNS

#: Positions (in a `SELECT row, SQL_COLUMNS` row) of the columns added after seals began
#: (schema 5); a NULL there is left out of the digest, so a cell sealed before the column
#: existed keeps its seal.
_LATER = frozenset(i + 1 for i, c in enumerate(COLUMNS) if c.since > 5)


def digest(db: sqlite3.Connection, cell_id: int) -> str:
    """SHA-256 of the cell's stored summary and records, as the database returns them."""
    h = hashlib.sha256()
    (summary,) = db.execute("SELECT summary FROM cells WHERE id = ?", (cell_id,)).fetchone()
    h.update((summary or "null").encode())
    cursor = db.execute(
        f"SELECT row, {SQL_COLUMNS} FROM records WHERE cell_id = ? ORDER BY row", (cell_id,)
    )
    for row in cursor:
        kept = [v for i, v in enumerate(row) if v is not None or i not in _LATER]
        h.update(json.dumps(kept).encode())
    return h.hexdigest()


def seal(db: sqlite3.Connection, cell_id: int) -> None:
    """Store the cell's digest (inside the transaction that stored the cell)."""
    db.execute("UPDATE cells SET digest = ? WHERE id = ?", (digest(db, cell_id), cell_id))


def check(db: sqlite3.Connection, cell_id: int, where: str) -> None:
    """Refuse a cell whose summary or records changed after it was sealed."""
    row = db.execute("SELECT model, key, digest FROM cells WHERE id = ?", (cell_id,)).fetchone()
    if row is None or row[2] is None:
        return  # stored before seals: nothing to check against
    if digest(db, cell_id) != row[2]:
        raise AdvbenchError(
            f"results database {where}: cell {row[0]} × {row[1]} was changed after it was "
            "stored (its checksum does not match); rerun it with --fresh"
        )
