"""Turning stored results into what people read: tables, report.md, results.json, CSV, pictures.

Everything here reads the results database only, so `advbench report RUN` renders any stored
run again without recomputing, and renders it exactly as `advbench run` did.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from advbench.output.results import RECORD_COLUMNS

FORMATS = {"markdown": "github", "github": "github", "latex": "latex", "plain": "plain"}
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
RECORD_FIELDS = ("model", "attack", "index", *RECORD_COLUMNS[1:])
COMPARED = (
    "clean_accuracy",
    "adversarial_accuracy",
    "flip_rate",
    "mean_l2",
    "median_l2",
    "mean_linf",
    "seconds",
)


def _fmt(value: Any, digits: int = 4) -> Any:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return value


def cell_rows(cells: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """One table row per cell, in CELL_HEADERS order (failed cells say why)."""
    rows = []
    for c in cells:
        if c.get("status", "done") != "done":
            rows.append([c["model"], c["label"], "FAILED", c.get("error", ""), *[""] * 11])
            continue
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


def robust_accuracy_rows(cells: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """Adversarial accuracy at each budget of the budgeted, untargeted cells."""
    rows = [
        [
            c["model"],
            c["attack"],
            c["budget"]["norm"],
            c["budget"]["eps"],
            _fmt(c["adversarial_accuracy"]),
        ]
        for c in cells
        if "budget" in c and "success_rate" not in c and c.get("status", "done") == "done"
    ]
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3]))


def table(results: dict[str, Any], fmt: str = "github") -> str:
    """The cells of a run as one text table."""
    return tabulate(cell_rows(results["cells"]), headers=CELL_HEADERS, tablefmt=fmt)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def markdown(results: dict[str, Any], fmt: str, figures: list[str]) -> str:
    """report.md: settings, models, cells, budgets, targeted results, parameters, pictures."""
    run = results["run"]
    tf = FORMATS[fmt]
    lines = [
        "# advbench report",
        "",
        f"- run: `{run.get('id', '')}`",
        f"- command: `{run['command']}`",
        f"- seed: {run['seed']}, images: {run['n']}, data checksum: {run['data_checksum']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in run['versions'].items())}",
        "",
        "## Models",
        "",
        tabulate(
            [
                [
                    m["name"],
                    m["n"],
                    _fmt(m["clean_accuracy"]),
                    m.get("seed", ""),
                    Path(m.get("checkpoint", "")).name,
                ]
                for m in results["models"]
            ],
            headers=("model", "n", "clean accuracy", "training seed", "checkpoint"),
            tablefmt=tf,
        ),
        "",
        "## Model × attack",
        "",
        table(results, tf),
        "",
        "Flip/success: share of attacked images whose prediction left the true label (or, for",
        "targeted attacks, became the target) within the budget; images the model already",
        "misclassifies are not attacked. Iterations-to-flip (its): attack steps applied when that",
        "happened (the tutorial prints this minus one). L2/L∞: over successful images.",
        "",
    ]
    sweeps = robust_accuracy_rows(results["cells"])
    if sweeps:
        lines += [
            "## Robust accuracy by budget",
            "",
            tabulate(
                sweeps, headers=("model", "attack", "norm", "eps", "robust accuracy"), tablefmt=tf
            ),
            "",
        ]
    targeted = [c for c in results["cells"] if "success_rate" in c]
    if targeted:
        lines += [
            "## Targeted attacks",
            "",
            tabulate(
                [
                    [
                        c["model"],
                        c["label"],
                        c["attacked"],
                        _fmt(c["success_rate"]),
                        _fmt(c["mean_target_confidence"]),
                        " ".join(f"{k}:{v:.2f}" for k, v in c["per_target"].items()),
                    ]
                    for c in targeted
                ],
                headers=(
                    "model",
                    "attack",
                    "rows",
                    "success to target",
                    "mean target confidence",
                    "success by target class",
                ),
                tablefmt=tf,
            ),
            "",
        ]
    lines += ["## Parameters", ""]
    for c in results["cells"]:
        params = ", ".join(f"{k}={v}" for k, v in c["params"].items())
        lines.append(f"- {c['model']} × {c['label']}: {params}")
    if figures:
        lines += ["", "## Pictures", ""]
        lines += [f"![{fig}]({fig})" for fig in figures]
    return "\n".join(lines) + "\n"


def render(
    store: Any, run_id: str, out: Path, fmt: str = "markdown", pictures: bool = True
) -> dict[str, Any]:
    """Write results.json, records.csv, report.md and the pictures of a stored run."""
    from advbench.output import figures

    out.mkdir(parents=True, exist_ok=True)
    results = store.load_run(run_id)
    for c in results["cells"]:
        c.pop("cell_id", None)
    _write_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    stored = store.load_run(run_id)["cells"]
    tmp = out / ".records.csv.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(RECORD_FIELDS)
        for c in stored:
            if c["status"] != "done":
                continue
            r = store.records(c["cell_id"])
            for i in range(len(r["idx"])):
                writer.writerow(
                    [
                        c["model"],
                        c["label"],
                        r["idx"][i],
                        r["label"][i],
                        r["target"][i],
                        r["clean_pred"][i],
                        r["adv_pred"][i],
                        bool(r["attacked"][i]),
                        bool(r["flipped"][i]),
                        r["iterations"][i],
                        r["l2"][i],
                        r["linf"][i],
                        r["confidence"][i],
                    ]
                )
    os.replace(tmp, out / "records.csv")
    names = figures.render_all(store, stored, out) if pictures else []
    _write_atomic(out / "report.md", markdown(results, fmt, names))
    return results


def compare(a: dict[str, Any], b: dict[str, Any], fmt: str = "markdown") -> str:
    """Every metric of the cells two runs share, side by side with the difference."""
    index = {(c["model"], c["label"]): c for c in b["cells"] if c.get("status") == "done"}
    rows = []
    for c in a["cells"]:
        other = index.get((c["model"], c["label"]))
        if other is None or c.get("status") != "done":
            continue
        for key in COMPARED:
            x, y = c.get(key), other.get(key)
            diff = None if x is None or y is None else y - x
            rows.append(
                [
                    c["model"],
                    c["label"],
                    key,
                    _fmt(x),
                    _fmt(y),
                    _fmt(diff) if diff is not None else "—",
                ]
            )
    return tabulate(
        rows,
        headers=("model", "attack", "metric", a["run"]["id"], b["run"]["id"], "difference"),
        tablefmt=FORMATS[fmt],
    )
