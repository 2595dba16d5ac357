"""Summary numbers of a cell, each computed from its per-row records."""

from __future__ import annotations

import numpy as np

from advbench.output.records import (
    Budget,
    IterationStats,
    QueryStats,
    Records,
    Summary,
    Targeted,
)


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def iteration_stats(records: Records) -> IterationStats:
    """Mean, median, p90 and max of iterations-to-flip over the flipped rows."""
    its = records.iterations[records.flipped]
    if len(its) == 0:
        return IterationStats(None, None, None, None)
    return IterationStats(
        mean=_round(np.mean(its), 3),
        median=_round(np.median(its), 3),
        p90=_round(np.percentile(its, 90), 3),
        max=int(np.max(its)),
    )


def _mean_or_none(values: np.ndarray, digits: int = 6) -> float | None:
    return _round(np.mean(values), digits) if len(values) else None


def _measured(values: np.ndarray, missing: np.ndarray) -> dict[str, float | None]:
    """Mean and median of a distance over the flipped rows, None where any row of them was
    stored before the distance was measured (`missing`) or none flipped."""
    if not len(values) or missing.any():
        return {"mean": None, "median": None}
    return {"mean": _round(np.mean(values)), "median": _round(np.median(values))}


def query_stats(records: Records) -> QueryStats | None:
    """Model evaluations per attacked row, when the attack counted them (else None)."""
    counted = records.attacked & (records.queries >= 0)
    if not counted.any():
        return None
    q = records.queries[counted]
    flipped = records.queries[counted & records.flipped]
    return QueryStats(
        mean=_round(np.mean(q), 1),
        median=_round(np.median(q), 1),
        p90=_round(np.percentile(q, 90), 1),
        max=int(np.max(q)),
        median_flipped=_round(np.median(flipped), 1) if len(flipped) else None,
    )


def summarize(
    records: Records,
    seconds: float,
    targeted: bool = False,
    budget: Budget | None = None,
    minimal_norm: str | None = None,
) -> Summary:
    """The cell's metrics, as they appear in results.json and the report tables.

    `flip_rate` is the share of attacked rows that reached the goal: the prediction left the
    true label (untargeted) or became the target (targeted, then also `success_rate`).
    """
    first = np.unique(records.index, return_index=True)[1]
    l1 = _measured(records.l1[records.flipped], np.isnan(records.l1[records.flipped]))
    l0 = _measured(records.l0[records.flipped], records.l0[records.flipped] < 0)
    n = len(first)
    attacked, flipped = records.attacked, records.flipped
    n_attacked, n_flipped = int(attacked.sum()), int(flipped.sum())
    ok = flipped
    flip_rate = _round(n_flipped / n_attacked) if n_attacked else 0.0
    goal = None
    if targeted:
        goal = Targeted(
            success_rate=flip_rate,
            mean_target_confidence=_mean_or_none(records.confidence[attacked]),
            per_target={
                str(c): _round(flipped[attacked & (records.target == c)].mean())
                for c in np.unique(records.target[attacked]).tolist()
                if c >= 0
            },
        )
    return Summary(
        n=n,
        rows=len(records.index),
        clean_accuracy=_mean_or_none(records.clean_pred[first] == records.label[first]) or 0.0,
        adversarial_accuracy=_mean_or_none(records.adv_pred == records.label) or 0.0,
        attacked=n_attacked,
        flipped=n_flipped,
        flip_rate=flip_rate,
        iterations_to_flip=iteration_stats(records),
        mean_l2=_mean_or_none(records.l2[ok]),
        median_l2=_round(np.median(records.l2[ok])) if n_flipped else None,
        mean_linf=_mean_or_none(records.linf[ok]),
        median_linf=_round(np.median(records.linf[ok])) if n_flipped else None,
        seconds=_round(seconds, 3),
        # None when nothing was attacked (an ensemble component with no image left): n over a
        # few microseconds is not a speed.
        images_per_second=_round(n / seconds, 1) if seconds > 0 and n_attacked else None,
        targeted=goal,
        budget=budget,
        minimal_norm=minimal_norm,
        mean_l1=l1["mean"],
        median_l1=l1["median"],
        mean_l0=l0["mean"],
        median_l0=l0["median"],
        queries=query_stats(records),
    )
