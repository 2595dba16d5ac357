"""report.md's table of what the main table leaves out: sparse distances and query counts.

The main table gives every cell's L2 and L∞; a sparse attack (L0, L1) is judged by how few
pixels or how little total change it needed, and a query-only attack by how many model
evaluations its result cost (the currency of a black-box threat model). This table shows
them for the cells where they are the result: minimum-norm or budgeted cells in L1 or L0,
and every cell whose attack counted its queries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from advbench.output.records import Cell

HEADERS = (
    "model",
    "attack",
    "flip/success",
    "median L1",
    "median L0",
    "queries mean",
    "queries median",
    "queries p90",
    "queries max",
    "queries to success (median)",
)
NOTE = (
    "L1, L0 (pixel values changed): medians over the successful images. Queries: model "
    "evaluations the attack spent per attacked image (each image of a batch counts one); "
    "to success: the median over the images it broke."
)


def _shown(cell: Cell) -> bool:
    s = cell.summary
    if not cell.done or s is None:
        return False
    sparse = s.minimal_norm in ("l1", "l0") or (
        s.budget is not None and s.budget.norm in ("l1", "l0")
    )
    return sparse or s.queries is not None


def _fmt(value: Any, digits: int) -> Any:
    return "—" if value is None else f"{value:.{digits}f}"


def rows(cells: Iterable[Cell]) -> list[list[Any]]:
    """One row per cell that has sparse distances or query counts to show."""
    out = []
    for c in cells:
        if not _shown(c):
            continue
        s, q = c.summary, c.summary.queries
        out.append(
            [
                c.model,
                c.key,
                f"{s.flip_rate:.4f}",
                _fmt(s.median_l1, 3),
                _fmt(s.median_l0, 0),
                _fmt(q and q.mean, 0),
                _fmt(q and q.median, 0),
                _fmt(q and q.p90, 0),
                "—" if q is None else q.max,
                _fmt(q and q.median_flipped, 0),
            ]
        )
    return out


def table(cells: Iterable[Cell]) -> tuple[list[list[Any]], tuple[str, ...]]:
    """`rows` under `HEADERS`, without the query columns when no cell counted queries."""
    found = rows(cells)
    if any(r[5] != "—" for r in found):
        return found, HEADERS
    return [r[:5] for r in found], HEADERS[:5]
