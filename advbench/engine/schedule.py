"""What a run will cost before it starts: each unit's seconds from stored throughput, and how
the grid would finish on W workers.

A unit's estimate is its images times the seconds per image of the same model and cell key in
the newest stored cell of any run in the database (else the same model and attack, else
unknown). The projection schedules the units longest first onto W identical workers (LPT: the
makespan is within 4/3 of the best schedule), and reports the critical path: the longest
single unit, below which no number of workers brings the wall time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Estimate:
    """One unit of a plan with its estimated seconds (None: nothing stored to go by)."""

    model: str
    cell: str
    shard: int
    images: int
    seconds: float | None


def throughput(cells: Iterable[Any]) -> dict[tuple[str, str], float]:
    """Seconds per image by (model, cell key) and by (model, attack name), from stored done
    cells in the order given (later ones win: pass them oldest first)."""
    out: dict[tuple[str, str], float] = {}
    for c in cells:
        s = c.summary
        if not c.done or s is None or not s.n or s.seconds is None:
            continue
        per = float(s.seconds) / s.n
        out[(c.model, c.key)] = per
        out[(c.model, "attack:" + c.attack)] = per
    return out


def estimate(
    units: Sequence[tuple[str, str, int, int, int]],
    attacks: dict[str, str],
    rates: dict[tuple[str, str], float],
) -> list[Estimate]:
    """`units` as `distributed.plan_units` lists them; `attacks` maps a cell key to its attack."""
    out = []
    for model, key, shard, lo, hi in units:
        per = rates.get((model, key), rates.get((model, "attack:" + attacks[key])))
        out.append(Estimate(model, key, shard, hi - lo, None if per is None else per * (hi - lo)))
    return out


def makespan(costs: Sequence[float], workers: int) -> float:
    """Wall seconds of `costs` scheduled longest first onto `workers` identical workers."""
    loads = [0.0] * max(1, workers)
    heapq.heapify(loads)
    for cost in sorted(costs, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + cost)
    return max(loads) if costs else 0.0


def projection(costs: Sequence[float], workers: Iterable[int]) -> list[tuple[int, float, float]]:
    """(workers, wall seconds, speed-up over one) for each count of workers."""
    one = sum(costs)
    return [(w, makespan(costs, w), one / makespan(costs, w) if costs else 1.0) for w in workers]
