"""Summary numbers of a cell, each computed from its per-image records."""

from __future__ import annotations

from typing import Any

import numpy as np

from advbench.runner import Records


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def iteration_stats(records: Records) -> dict[str, float | None]:
    """Mean, median, p90 and max of iterations-to-flip over the flipped images."""
    its = records.iterations[records.flipped]
    if len(its) == 0:
        return {"mean": None, "median": None, "p90": None, "max": None}
    return {
        "mean": _round(np.mean(its), 3),
        "median": _round(np.median(its), 3),
        "p90": _round(np.percentile(its, 90), 3),
        "max": int(np.max(its)),
    }


def clean_accuracy(records: Records) -> float:
    """Share of images the model gets right before any attack."""
    return _round(np.mean(records.clean_pred == records.label)) if len(records.label) else 0.0


def summarize(records: Records, seconds: float) -> dict[str, Any]:
    """The cell's metrics, as they appear in results.json and the report table."""
    n = len(records.index)
    attacked = records.attacked
    flipped = records.flipped
    n_flipped = int(flipped.sum())
    return {
        "n": n,
        "clean_accuracy": clean_accuracy(records),
        "adversarial_accuracy": _round(np.mean(records.adv_pred == records.label)) if n else 0.0,
        "attacked": int(attacked.sum()),
        "flipped": n_flipped,
        "flip_rate": _round(n_flipped / attacked.sum()) if attacked.any() else 0.0,
        "iterations_to_flip": iteration_stats(records),
        "mean_l2": _round(np.mean(records.l2[flipped])) if n_flipped else None,
        "mean_linf": _round(np.mean(records.linf[flipped])) if n_flipped else None,
        "seconds": _round(seconds, 3),
        "images_per_second": _round(n / seconds, 1) if seconds > 0 else None,
    }
