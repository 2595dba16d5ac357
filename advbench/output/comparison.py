"""`advbench report --compare A B`: two stored runs side by side.

Every metric of the cells both runs hold, with the difference, and then the cells only one of
them holds — a comparison that silently dropped those would read as "nothing else changed".
"""

from __future__ import annotations

from tabulate import tabulate

from advbench.output.records import StoredRun
from advbench.output.report import FORMATS, fmt_value

COMPARED = ("clean_accuracy", "adversarial_accuracy", "flip_rate", "mean_l2", "median_l2")
COMPARED += ("mean_linf", "seconds")


def compare(a: StoredRun, b: StoredRun, fmt: str = "markdown") -> str:
    """The shared cells' metrics side by side, then each run's cells the other lacks."""
    done_a = {(c.model, c.key): c for c in a.cells if c.done and c.summary is not None}
    done_b = {(c.model, c.key): c for c in b.cells if c.done and c.summary is not None}
    rows = []
    for key, c in done_a.items():
        other = done_b.get(key)
        if other is None:
            continue
        for metric in COMPARED:
            x, y = getattr(c.summary, metric), getattr(other.summary, metric)
            diff = None if x is None or y is None else y - x
            rows.append([c.model, c.key, metric, fmt_value(x), fmt_value(y), fmt_value(diff)])
    headers = ("model", "attack", "metric", a.id, b.id, "difference")
    lines = [tabulate(rows, headers=headers, tablefmt=FORMATS[fmt])]
    for run, mine, theirs in ((a, done_a, done_b), (b, done_b, done_a)):
        only = [f"{model} × {key}" for model, key in mine if (model, key) not in theirs]
        if only:
            lines.append(f"only in {run.id} ({len(only)}): " + ", ".join(only))
    return "\n".join(lines)
