"""Turning results into what people read: a tabulate table, report.md, results.json, CSV."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tabulate import tabulate

CELL_HEADERS = (
    "model",
    "attack",
    "n",
    "clean acc",
    "adv acc",
    "flip/success",
    "its mean",
    "its median",
    "its p90",
    "its max",
    "mean L2",
    "median L2",
    "mean L∞",
    "seconds",
    "img/s",
)
RECORD_FIELDS = (
    "model",
    "attack",
    "index",
    "label",
    "target",
    "clean_pred",
    "adv_pred",
    "attacked",
    "flipped",
    "iterations",
    "l2",
    "linf",
    "confidence",
)


def _fmt(value: Any, digits: int = 4) -> Any:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return value


def cell_rows(cells: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """One table row per cell, in CELL_HEADERS order."""
    rows = []
    for c in cells:
        its = c["iterations_to_flip"]
        rows.append(
            [
                c["model"],
                c.get("label", c["attack"]),
                c["n"],
                _fmt(c["clean_accuracy"]),
                _fmt(c["adversarial_accuracy"]),
                _fmt(c["flip_rate"]),
                _fmt(its["mean"], 1),
                _fmt(its["median"], 1),
                _fmt(its["p90"], 1),
                _fmt(its["max"]),
                _fmt(c["mean_l2"], 3),
                _fmt(c.get("median_l2"), 3),
                _fmt(c["mean_linf"], 3),
                _fmt(c["seconds"], 2),
                _fmt(c["images_per_second"], 0),
            ]
        )
    return rows


def model_rows(models: Iterable[dict[str, Any]]) -> list[list[Any]]:
    return [[m["name"], m["n"], _fmt(m["clean_accuracy"]), m.get("checkpoint", "")] for m in models]


def robust_accuracy_rows(cells: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """Adversarial accuracy at each budget of the budgeted, untargeted cells."""
    rows = [
        [c["model"], c["attack"], c["budget"]["norm"], c["budget"]["eps"],
         _fmt(c["adversarial_accuracy"])]
        for c in cells
        if "budget" in c and "success_rate" not in c
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3]))


def table(results: dict[str, Any], fmt: str = "github") -> str:
    """The cells of a run as one text table."""
    return tabulate(cell_rows(results["cells"]), headers=CELL_HEADERS, tablefmt=fmt)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(out: Path, results: dict[str, Any]) -> None:
    """results.json, replaced atomically so a reader never sees half a file."""
    _write_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")


def write_markdown(out: Path, results: dict[str, Any], figures: list[str] | None = None) -> None:
    """report.md: the run's settings, the models, the cells and any pictures."""
    run = results["run"]
    lines = [
        "# advbench report",
        "",
        f"- command: `{run['command']}`",
        f"- seed: {run['seed']}, images: {run['n']}, data checksum: {run['data_checksum']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in run['versions'].items())}",
        "",
        "## Models",
        "",
        tabulate(
            model_rows(results["models"]),
            headers=("model", "n", "clean accuracy", "checkpoint"),
            tablefmt="github",
        ),
        "",
        "## Model × attack",
        "",
        table(results),
        "",
        "Flip rate: share of initially correct images whose prediction leaves the true label",
        "within the budget. Iterations-to-flip (its): attack steps applied when the prediction",
        "first left the true label, over flipped images (the tutorial prints this minus one).",
        "Mean L2/L∞: over flipped images. Per-image records: `records.csv`.",
        "",
    ]
    sweeps = robust_accuracy_rows(results["cells"])
    if sweeps:
        lines += [
            "## Robust accuracy by budget",
            "",
            tabulate(sweeps, headers=("model", "attack", "norm", "eps", "robust accuracy"),
                     tablefmt="github"),
            "",
        ]  # fmt: skip
    targeted = [c for c in results["cells"] if "success_rate" in c]
    if targeted:
        lines += [
            "## Targeted attacks",
            "",
            tabulate(
                [[c["model"], c.get("label", c["attack"]), c["attacked"], _fmt(c["success_rate"]),
                  _fmt(c["mean_target_confidence"]),
                  " ".join(f"{k}:{v:.2f}" for k, v in c["per_target"].items())]
                 for c in targeted],
                headers=("model", "attack", "rows", "success to target",
                         "mean target confidence", "success by target class"),
                tablefmt="github",
            ),
            "",
        ]  # fmt: skip
    lines += ["## Parameters", ""]
    for c in results["cells"]:
        params = ", ".join(f"{k}={v}" for k, v in c["params"].items())
        lines.append(f"- {c['model']} × {c.get('label', c['attack'])}: {params}")
    for fig in figures or []:
        lines += ["", f"![{fig}]({fig})"]
    _write_atomic(out / "report.md", "\n".join(lines) + "\n")


def append_records(out: Path, model: str, attack: str, rows: list[dict[str, Any]]) -> None:
    """Add one cell's per-image records to records.csv (header written once)."""
    path = out / "records.csv"
    new = not path.exists()
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=RECORD_FIELDS)
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({"model": model, "attack": attack, **row})
