"""The typed results: per-image `Records`, a cell's `Summary`, the stored `Cell` and `StoredRun`.

The engine fills them (`advbench.engine.runner`, `advbench.engine.run`); the output side
summarises, stores and renders them without importing the engine. The per-image columns are
defined once, in `COLUMNS`: the SQL table, the database reader and records.csv derive from it.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from advbench.output.checks import Check


@dataclass
class Records:
    """Per-row results of one model × attack cell; a row is an image (× target).

    Records read back from the database carry no adversarial images (the database keeps only
    a cell's examples): their `adversarial` has zero width.
    """

    index: np.ndarray  # test-set index, int64
    label: np.ndarray  # true label
    target: np.ndarray  # target class, -1 for untargeted attacks and unattacked rows
    clean_pred: np.ndarray
    adv_pred: np.ndarray
    attacked: np.ndarray  # bool: this row was attacked
    iterations: np.ndarray  # steps applied at success; 0 = never succeeded / not attacked
    l2: np.ndarray  # ‖x_adv − x‖₂
    linf: np.ndarray  # ‖x_adv − x‖∞
    confidence: np.ndarray  # probability of the target (targeted) or of adv_pred; NaN unattacked
    adversarial: np.ndarray = field(repr=False)  # float32 [rows, pixels] final images
    # An ensemble's cell: the position of the component that broke the image (-1: none, NULL
    # in the database); iterations are then steps within that component. -1 for other attacks.
    component: np.ndarray | None = None
    # Rows whose claimed success the engine withdrew when it classified the image again
    # (`advbench.engine.confirmation`); known only to the process that ran the attack.
    unconfirmed: np.ndarray | None = field(default=None, repr=False)
    l1: np.ndarray | None = None  # ‖x_adv − x‖₁; NaN where not measured (stored before schema 7)
    l0: np.ndarray | None = None  # pixel values changed; -1 where not measured (before schema 7)
    # Model evaluations the attack spent on the row (a query-only attack's cost); -1 where the
    # attack does not count them.
    queries: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.index)
        if self.component is None:
            self.component = np.full(n, -1, np.int64)
        if self.unconfirmed is None:
            self.unconfirmed = np.zeros(n, bool)
        if self.l1 is None:
            self.l1 = np.full(n, np.nan)
        if self.l0 is None:
            self.l0 = np.full(n, -1, np.int64)
        if self.queries is None:
            self.queries = np.full(n, -1, np.int64)

    @property
    def flipped(self) -> np.ndarray:
        """Attacked rows that reached the attack's goal within its budget."""
        return self.iterations > 0


#: The distances every row records, named as `Records` and the threat models' norms name them.
DISTANCES = ("l2", "linf", "l1", "l0")


def distances(adversarial: np.ndarray, originals: np.ndarray) -> dict[str, np.ndarray]:
    """Each row's distance from its original in every norm of `DISTANCES`, in float64 (L0:
    how many pixel values differ at all)."""
    delta = adversarial.astype(np.float64) - originals.astype(np.float64)
    rows = len(delta)
    if not rows:
        return {"l2": np.zeros(0), "linf": np.zeros(0), "l1": np.zeros(0), "l0": np.zeros(0, int)}
    return {
        "l2": np.sqrt(np.sum(delta * delta, axis=1)),
        "linf": np.max(np.abs(delta), axis=1),
        "l1": np.sum(np.abs(delta), axis=1),
        "l0": np.count_nonzero(delta, axis=1).astype(np.int64),
    }


@dataclass(frozen=True)
class Column:
    """One per-image column, as the database, the reader and records.csv all see it."""

    name: str  # the `Records` attribute and the records.csv header
    sql: str  # the column in the SQL `records` table
    sql_type: str  # its declaration
    dtype: Any  # numpy dtype of the array read back
    derived: bool = False  # a `Records` property: stored for readers of the table, not read back
    null: Any = None  # the in-memory value that NULL stands for (None: NaN, float columns)
    #: The schema version that added the column: a cell sealed before it has NULL there, and
    #: its seal (`advbench.output.integrity`) covers the column only where it holds a value.
    since: int = 0

    @property
    def nullable(self) -> bool:
        return "NOT NULL" not in self.sql_type

    def values(self, array: np.ndarray) -> list[Any]:
        """Python values of one column for sqlite3 and csv alike: bools stay bools (SQLite
        stores 1/0, csv writes True/False), NaN in a nullable column is None (NULL / empty)."""
        if self.dtype is bool:
            return np.asarray(array, bool).tolist()
        values = np.asarray(array).tolist()
        if self.nullable and self.null is not None:
            return [None if v == self.null else v for v in values]
        if self.nullable:
            return [None if v != v else v for v in values]  # v != v: NaN
        return values

    def read(self, values: list[Any]) -> np.ndarray:
        """The array of one column read from the database (NULL becomes NaN, or `null`)."""
        if self.null is not None:
            values = [self.null if v is None else v for v in values]
        return np.array(values, dtype=self.dtype)


# Order = the SQL table's column order and records.csv's (after "model" and "attack").
COLUMNS: tuple[Column, ...] = (
    Column("index", "idx", "INTEGER NOT NULL", np.int64),  # "index" is an SQL keyword
    Column("label", "label", "INTEGER NOT NULL", np.int64),
    Column("target", "target", "INTEGER NOT NULL", np.int64),
    Column("clean_pred", "clean_pred", "INTEGER NOT NULL", np.int64),
    Column("adv_pred", "adv_pred", "INTEGER NOT NULL", np.int64),
    Column("attacked", "attacked", "INTEGER NOT NULL", bool),
    Column("flipped", "flipped", "INTEGER NOT NULL", bool, derived=True),
    Column("iterations", "iterations", "INTEGER NOT NULL", np.int32),
    Column("l2", "l2", "REAL NOT NULL", np.float64),
    Column("linf", "linf", "REAL NOT NULL", np.float64),
    Column("confidence", "confidence", "REAL", np.float64),
    Column("component", "component", "INTEGER", np.int64, null=-1),
    Column("l1", "l1", "REAL", np.float64, since=7),
    Column("l0", "l0", "INTEGER", np.int64, null=-1, since=7),
    Column("queries", "queries", "INTEGER", np.int64, null=-1, since=7),
)
CSV_HEADER = ("model", "attack", *(c.name for c in COLUMNS))
SQL_COLUMNS = ", ".join(c.sql for c in COLUMNS)
RECORDS_TABLE = (
    "CREATE TABLE IF NOT EXISTS records (\n"
    "    cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,\n"
    "    row INTEGER NOT NULL,\n"
    + "".join(f"    {c.sql} {c.sql_type},\n" for c in COLUMNS)
    + "    PRIMARY KEY (cell_id, row)\n)"
)


def columns_of(records: Records) -> list[list[Any]]:
    """Every column of `records` as Python values, in `COLUMNS` order."""
    return [c.values(getattr(records, c.name)) for c in COLUMNS]


def rows_of(records: Records) -> list[tuple[Any, ...]]:
    """The rows of `records` as tuples of Python values, in `COLUMNS` order."""
    return list(zip(*columns_of(records), strict=True))


def records_from_rows(rows: list[tuple[Any, ...]]) -> Records:
    """`Records` from rows in `COLUMNS` order (as the database returns them)."""
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
    arrays = {c.name: c.read(list(v)) for c, v in zip(COLUMNS, cols, strict=True) if not c.derived}
    return Records(**arrays, adversarial=np.zeros((len(rows), 0), np.float32))


@dataclass(frozen=True)
class IterationStats:
    """Iterations-to-flip over the flipped rows (all None when nothing flipped)."""

    mean: float | None
    median: float | None
    p90: float | None
    max: int | None


@dataclass(frozen=True)
class QueryStats:
    """Model evaluations per attacked row: what a query-only attack's result cost."""

    mean: float
    median: float
    p90: float
    max: int
    #: Median over the rows the attack broke: the queries a success took.
    median_flipped: float | None


#: Summary figures results.json shows only when measured (cells stored before schema 7 and
#: cells where nothing flipped have none).
SPARSE_NORMS = ("mean_l1", "median_l1", "mean_l0", "median_l0")


@dataclass(frozen=True)
class Targeted:
    """What only targeted cells report."""

    success_rate: float
    mean_target_confidence: float | None
    per_target: dict[str, float]  # success rate by target class ("0".."9")


@dataclass(frozen=True)
class Budget:
    """The threat model a budgeted cell's robust accuracy is reported at."""

    norm: str  # "linf" | "l2"
    eps: float


@dataclass(frozen=True)
class Summary:
    """A finished cell's metrics (advbench.output.metrics), as results.json shows them."""

    n: int
    rows: int
    clean_accuracy: float
    adversarial_accuracy: float
    attacked: int
    flipped: int
    flip_rate: float
    iterations_to_flip: IterationStats
    mean_l2: float | None
    median_l2: float | None
    mean_linf: float | None
    median_linf: float | None
    seconds: float
    images_per_second: float | None
    targeted: Targeted | None = None
    #: L1 and L0 distances of the flipped rows (None: nothing flipped, or stored before
    #: schema 7 measured them).
    mean_l1: float | None = None
    median_l1: float | None = None
    mean_l0: float | None = None
    median_l0: float | None = None
    #: Model evaluations per attacked row, for attacks that count them (query-only attacks).
    queries: QueryStats | None = None
    budget: Budget | None = None
    #: The cell's own indicators of attack failure (advbench.output.checks), as measured.
    checks: tuple[Check, ...] = ()
    #: Did the attack's graph differentiate the model (None: not recorded)?
    uses_gradients: bool | None = None
    #: A minimum-norm attack's norm: its per-image distances are minimal norms (a curve).
    minimal_norm: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: the common metrics, then the targeted ones, then the budget (the
        order results.json has always had; absent groups are absent, not null)."""
        late = ("targeted", "budget", "checks", "uses_gradients", "minimal_norm", "queries")
        late += SPARSE_NORMS
        out = {k: v for k, v in asdict(self).items() if k not in late}
        out.update({k: getattr(self, k) for k in SPARSE_NORMS if getattr(self, k) is not None})
        if self.queries is not None:
            out["queries"] = asdict(self.queries)
        if self.targeted is not None:
            out.update(asdict(self.targeted))
        if self.budget is not None:
            out["budget"] = asdict(self.budget)
        if self.uses_gradients is not None:
            out["uses_gradients"] = self.uses_gradients
        if self.minimal_norm is not None:
            out["minimal_norm"] = self.minimal_norm
        if self.checks:
            out["checks"] = [c.to_dict() for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Summary:
        """Parse the stored JSON object (a metric an old database lacks reads as None)."""
        its = d.get("iterations_to_flip") or {}
        targeted = budget = None
        if "success_rate" in d:
            targeted = Targeted(d["success_rate"], d.get("mean_target_confidence"), d["per_target"])
        if "budget" in d:
            budget = Budget(d["budget"]["norm"], d["budget"]["eps"])
        return cls(
            n=d["n"],
            rows=d.get("rows", d["n"]),
            clean_accuracy=d["clean_accuracy"],
            adversarial_accuracy=d["adversarial_accuracy"],
            attacked=d.get("attacked", 0),
            flipped=d.get("flipped", 0),
            flip_rate=d["flip_rate"],
            iterations_to_flip=IterationStats(
                its.get("mean"), its.get("median"), its.get("p90"), its.get("max")
            ),
            mean_l2=d.get("mean_l2"),
            median_l2=d.get("median_l2"),
            mean_linf=d.get("mean_linf"),
            median_linf=d.get("median_linf"),
            seconds=d.get("seconds", 0.0),
            images_per_second=d.get("images_per_second"),
            targeted=targeted,
            budget=budget,
            checks=tuple(Check.from_dict(c) for c in d.get("checks", ())),
            uses_gradients=d.get("uses_gradients"),
            minimal_norm=d.get("minimal_norm"),
            **{k: d.get(k) for k in SPARSE_NORMS},
            queries=QueryStats(**d["queries"]) if d.get("queries") else None,
        )


@dataclass
class Cell:
    """One model × attack × parameter set of a run, as stored (done or failed)."""

    model: str
    key: str  # the cell's display key: the attack, with the parameters that differ, pgd(eps=0.1)
    attack: str
    params: dict[str, Any]
    seed: int  # the attack's seed
    data_checksum: str
    versions: dict[str, str]
    status: str = "done"  # "done" | "failed"
    error: str | None = None  # why it failed
    summary: Summary | None = None  # None while running and when failed
    checkpoint: str | None = None
    model_seed: int | None = None
    max_iterations: int | None = None  # the attack's step budget; None in old databases
    dataset: str | None = None  # the dataset's name (its checksum: data_checksum)
    examples: np.ndarray | None = field(default=None, repr=False)  # first successes, ≤ 8
    originals: np.ndarray | None = field(default=None, repr=False)  # their clean images
    id: int | None = None  # the database row, once stored

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def targeted(self) -> bool:
        return self.summary is not None and self.summary.targeted is not None

    @property
    def budget(self) -> Budget | None:
        return None if self.summary is None else self.summary.budget

    def to_json(self) -> dict[str, Any]:
        """The cell as results.json shows it ("label" there is the cell's key)."""
        out: dict[str, Any] = {
            "model": self.model,
            "attack": self.attack,
            "label": self.key,
            "params": self.params,
            "status": self.status,
            "checkpoint": self.checkpoint,
            "seed": self.seed,
        }
        if self.done and self.summary is not None:
            out.update(self.summary.to_dict())
        else:
            out["error"] = self.error
        return out


@dataclass
class StoredRun:
    """Everything stored about one run."""

    info: dict[str, Any]  # id, command, seed, n, dataset, data_checksum, versions, started, …
    models: list[dict[str, Any]]  # what the engine recorded about each model
    cells: list[Cell]

    @property
    def id(self) -> str:
        return self.info["id"]

    def to_json(self) -> dict[str, Any]:
        """results.json."""
        return {
            "run": self.info,
            "models": self.models,
            "cells": [c.to_json() for c in self.cells],
        }


def write_csv(path: Path, records: Iterable[tuple[Cell, Records]]) -> None:
    """records.csv: one row per model × attack × image (× target), columns as `CSV_HEADER`
    (a confidence that does not exist, on rows not attacked, is an empty field)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process: no collisions
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_HEADER)
        for cell, r in records:
            n = len(r.index)
            writer.writerows(zip([cell.model] * n, [cell.key] * n, *columns_of(r), strict=True))
    os.replace(tmp, path)
