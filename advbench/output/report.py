"""Turning stored results into what people read: tables, report.md, results.json, CSV, pictures.

Everything here reads the results database only, so `advbench report RUN` renders any stored
run again without recomputing, and renders it exactly as `advbench run` did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from advbench.output import checks, curves, ensemble, measures
from advbench.output.records import Cell, StoredRun, write_csv
from advbench.output.worst_case import WorstCase, not_counted, worst_cases

UNFINISHED = "- **unfinished**: the run stopped with {} cells stored; the same command resumes it"
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


def fmt_value(value: Any, digits: int = 4) -> Any:
    """A table's text for a figure: 4 decimals (or `digits`), a dash for none."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return value


def cell_rows(cells: Iterable[Cell]) -> list[list[Any]]:
    """One table row per cell, in CELL_HEADERS order (failed cells say why). An ensemble's
    components (`autoattack/apgd-ce`) are shown in its own section, not here: each attacks only
    the images the ones before it left, so its adv acc is not a robust accuracy."""
    rows = []
    for c in cells:
        if "/" in c.key and c.done:
            continue
        if not c.done or c.summary is None:
            rows.append([c.model, c.key, "FAILED", c.error or "", *[""] * 11])
            continue
        s, its = c.summary, c.summary.iterations_to_flip
        rows.append(
            [
                c.model,
                c.key,
                s.n,
                fmt_value(s.clean_accuracy),
                fmt_value(s.adversarial_accuracy),
                fmt_value(s.flip_rate),
                fmt_value(its.mean, 1),
                fmt_value(its.median, 1),
                fmt_value(its.p90, 1),
                fmt_value(its.max),
                fmt_value(s.mean_l2, 3),
                fmt_value(s.median_l2, 3),
                fmt_value(s.mean_linf, 3),
                fmt_value(s.seconds, 2),
                fmt_value(s.images_per_second, 0),
            ]
        )
    return rows


def robust_accuracy_rows(cells: Iterable[Cell]) -> list[list[Any]]:
    """Adversarial accuracy at each budget of the budgeted, untargeted cells."""
    rows = [
        [c.model, c.attack, c.budget.norm, c.budget.eps, fmt_value(c.summary.adversarial_accuracy)]
        for c in cells
        if c.done and c.summary is not None and c.budget is not None and not c.targeted
    ]
    return sorted(rows, key=lambda r: (r[0], r[1], r[2], r[3]))


WORST_HEADERS = (
    "model",
    "norm",
    "eps",
    "n",
    "clean acc",
    "robust acc, worst case",
    "attacks (images broken by it alone)",
)
CONTRIBUTION_HEADERS = (
    "model",
    "norm",
    "eps",
    "attack",
    "robust acc alone",
    "broke",
    "broke alone",
    "worst case so far",
)


def worst_case_rows(groups: Iterable[WorstCase]) -> list[list[Any]]:
    """One row per (model, norm, eps): its worst case and the attacks that make it up."""
    return [
        [
            g.model,
            g.norm,
            g.eps,
            g.n,
            fmt_value(g.clean_accuracy),
            fmt_value(g.robust_accuracy),
            ", ".join(f"{a.key} {a.broken_alone}" for a in g.attacks),
        ]
        for g in groups
    ]


def contribution_rows(groups: Iterable[WorstCase]) -> list[list[Any]]:
    """One row per attack of each group, in the greedy order (worst case after it)."""
    return [
        [
            g.model,
            g.norm,
            g.eps,
            a.key,
            fmt_value(a.robust_accuracy),
            a.broken,
            a.broken_alone,
            fmt_value(a.cumulative),
        ]
        for g in groups
        for a in g.attacks
    ]


def worst_case_table(store: Any, run: StoredRun, fmt: str = "simple") -> str:
    """The worst-case table of a stored run, for the terminal ("" when no cell has a budget),
    under headers short enough for 100 columns."""
    groups = worst_cases(run, {c.id: store.records(c.id) for c in run.cells if c.done})
    if not groups:
        return ""
    short = ("model", "norm", "eps", "n", "clean", "worst case", "attacks (broken by it alone)")
    return "Robust accuracy, worst case over the attacks at each budget:\n" + _tight(
        worst_case_rows(groups), short, fmt
    )


def _worst_case_section(run: StoredRun, groups: list[WorstCase], tablefmt: str) -> list[str]:
    """report.md's "Robust accuracy, worst case" section."""
    skipped = not_counted(run)
    lines = [
        "## Robust accuracy, worst case",
        "",
        tabulate(worst_case_rows(groups), headers=WORST_HEADERS, tablefmt=tablefmt),
        "",
        "Per image, over every attack run at the threat model (norm, eps): an image is robust",
        "if the model classifies it correctly and no attack's row left the true label (targeted",
        "attacks: any target reached breaks the image). Computed from the stored per-image",
        "records, on the images every attack of the group ran on. Attacks without a reported",
        "budget (unbounded, minimum-norm, or a bound that follows from steps × step size, as",
        "`ifgsm` and `noise`) are not counted"
        + (f": here {', '.join(skipped)}." if skipped else "."),
        "",
        tabulate(contribution_rows(groups), headers=CONTRIBUTION_HEADERS, tablefmt=tablefmt),
        "",
        "Broke: correctly classified images the attack broke; broke alone: of those, the ones no",
        "other attack of the group broke. Worst case so far: robust accuracy after this attack",
        "and every one above it (the attacks in the run's order, as AutoAttack reports).",
        "",
    ]
    return lines


def table(run: StoredRun, fmt: str = "github") -> str:
    """The cells of a run as one text table, every column (report.md, table.tex)."""
    return tabulate(cell_rows(run.cells), headers=CELL_HEADERS, tablefmt=fmt)


TERMINAL = ("model", "attack", "n", "clean acc", "adv acc", "flip/success", "its median")
TERMINAL += ("median L2", "mean L∞", "seconds")
TERMINAL_HEADERS = ("model", "attack", "n", "clean", "adv acc", "flipped", "its med", "L2 med")
TERMINAL_HEADERS += ("L∞ mean", "s")


def terminal_table(run: StoredRun, fmt: str = "simple") -> str:
    """The columns that fit a 100-column terminal, under short headers (every column is in
    report.md); a failed cell's error is cut to its first 50 characters."""
    keep = [CELL_HEADERS.index(h) for h in TERMINAL]
    rows = [[row[i] for i in keep] for row in cell_rows(run.cells)]
    for row in rows:
        if row[2] == "FAILED" and len(str(row[3])) > 50:
            row[3] = str(row[3])[:49] + "…"
    return _tight(rows, TERMINAL_HEADERS, fmt)


def _tight(rows: list[list[Any]], headers: tuple[str, ...], fmt: str) -> str:
    """A table without tabulate's two spaces of padding around each header (the "simple"
    format already separates columns by two): the terminal's 100 columns go to the data."""
    import tabulate as tabulate_module

    saved, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0
    try:
        return tabulate(rows, headers=headers, tablefmt=fmt)
    finally:
        tabulate_module.MIN_PADDING = saved


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process: no collisions
    tmp.write_text(text)
    os.replace(tmp, path)


def _ensemble_section(groups: list[ensemble.Ensemble], tablefmt: str) -> list[str]:
    """report.md's "Ensembles" section: each component's contribution."""
    return [
        "## Ensembles",
        "",
        tabulate(ensemble.rows(groups), headers=ensemble.HEADERS, tablefmt=tablefmt),
        "",
        "Each component attacks only the images the ones above it left robust (attacked); broke:",
        "the images it broke; robust acc after: the ensemble's robust accuracy once it has run",
        "(the last row is the ensemble's figure). Components are left out of the table above:",
        "each attacks only the images left to it, so its own adv acc is no robust accuracy.",
        "Image-iterations: steps spent (iterations-to-flip, or the step budget where none).",
        "",
    ]


def targeted_section(run: StoredRun, tablefmt: str) -> list[str]:
    """report.md's "Targeted attacks" section (none when no cell is targeted)."""
    targeted = [(c, c.summary.targeted) for c in run.cells if c.summary and c.summary.targeted]
    if not targeted:
        return []
    rows = [
        [
            c.model,
            c.key,
            c.summary.attacked,
            fmt_value(t.success_rate),
            fmt_value(t.mean_target_confidence),
            " ".join(f"{k}:{v:.2f}" for k, v in t.per_target.items()),
        ]
        for c, t in targeted
    ]
    headers = ("model", "attack", "rows", "success to target", "mean target confidence")
    headers += ("success by target class",)
    return ["## Targeted attacks", "", tabulate(rows, headers=headers, tablefmt=tablefmt), ""]


CURVES_NOTE = (
    "Robust accuracy at ε from the minimum-norm attacks' per-image norms (one run, the whole "
    "curve; an upper bound, as every attack's number): correct and not broken within ε. "
    "`security-curves.png` draws them with the fixed-ε cells of the same norm as points."
)


def markdown(
    run: StoredRun,
    fmt: str,
    figures: list[str],
    worst: list[WorstCase] | None = None,
    ensembles: list[ensemble.Ensemble] | None = None,
    curve_tables: list[tuple[list[list[Any]], list[str]]] | None = None,
) -> str:
    """report.md: settings, models, cells, worst cases, budgets, targeted results, parameters,
    pictures."""
    info = run.info
    tablefmt = FORMATS[fmt]
    lines = [
        "# advbench report",
        "",
        f"- run: `{info.get('id', '')}`",
        f"- command: `{info['command']}`",
        f"- dataset: {info.get('dataset')}, seed: {info['seed']}, images: {info['n']}, "
        f"data checksum: {info['data_checksum']}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in info['versions'].items())}",
        *([] if info.get("finished") else [UNFINISHED.format(len(run.cells))]),
        "",
        "## Models",
        "",
        tabulate(
            [
                [
                    m["name"],
                    m["n"],
                    fmt_value(m["clean_accuracy"]),
                    m.get("seed", "") if "imported" not in m else "imported",
                    Path(m.get("checkpoint", "")).name,
                ]
                for m in run.models
            ],
            headers=("model", "n", "clean accuracy", "training seed", "checkpoint"),
            tablefmt=tablefmt,
        ),
        "",
        "## Model × attack",
        "",
        table(run, tablefmt),
        "",
        "Flip/success: share of attacked images whose prediction left the true label (or, for",
        "targeted attacks, became the target) within the budget; images the model already",
        "misclassifies are not attacked. Iterations-to-flip (its): attack steps applied when that",
        "happened (the tutorial prints this minus one). L2/L∞: over successful images.",
        "",
    ]
    if worst:
        lines += _worst_case_section(run, worst, tablefmt)
    if ensembles:
        lines += _ensemble_section(ensembles, tablefmt)
    lines += ["## Checks", "", *checks.report_lines(run), ""]
    sweeps = robust_accuracy_rows(run.cells)
    if sweeps:
        lines += [
            "## Robust accuracy by budget",
            "",
            tabulate(
                sweeps,
                headers=("model", "attack", "norm", "eps", "robust accuracy"),
                tablefmt=tablefmt,
            ),
            "",
        ]
    if curve_tables:
        lines += ["## Security evaluation curves", "", CURVES_NOTE, ""]
        for rows, headers in curve_tables:
            lines += [tabulate(rows, headers=headers, tablefmt=tablefmt), ""]
    lines += targeted_section(run, tablefmt)
    found, headers = measures.table(run.cells)
    if found:
        lines += ["## Sparse distances and queries", "", measures.NOTE, ""]
        lines += [tabulate(found, headers=headers, tablefmt=tablefmt), ""]
    lines += ["## Parameters", ""]
    for c in run.cells:  # seed: the one used (a -1 default takes the run's)
        shown = {**c.params, "seed": c.seed} if "seed" in c.params else c.params
        lines.append(f"- {c.model} × {c.key}: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    if figures:
        lines += ["", "## Pictures", ""]
        lines += [f"![{fig}]({fig})" for fig in figures]
    return "\n".join(lines) + "\n"


def results_json(run: StoredRun) -> dict[str, Any]:
    """results.json: the stored run, each done cell with every check that applies to it (the
    model's, its own, and the comparison with the run's other cells)."""
    out = run.to_json()
    found = checks.run_checks(run)
    for cell, data in zip(run.cells, out["cells"], strict=True):
        if (cell.model, cell.key) in found:
            data["checks"] = [c.to_dict() for c in found[(cell.model, cell.key)]]
    return out


def render(
    store: Any, run_id: str, out: Path, fmt: str = "markdown", pictures: bool = True
) -> StoredRun:
    """Write results.json (with the worst cases), records.csv, report.md (Markdown whatever
    `fmt`; with latex also table.tex) and the pictures of a stored run."""
    from advbench.output import figures

    out.mkdir(parents=True, exist_ok=True)
    run = store.load_run(run_id)
    records = {c.id: store.records(c.id) for c in run.cells if c.done}
    worst = worst_cases(run, records)
    groups = ensemble.ensembles(run, records)
    doc = {
        **results_json(run),
        "worst_case": [g.to_dict() for g in worst],
        "ensembles": [g.to_dict() for g in groups],
    }
    _write_atomic(out / "results.json", json.dumps(doc, indent=2) + "\n")
    write_csv(out / "records.csv", ((c, records[c.id]) for c in run.cells if c.done))
    names = figures.render_all(run.cells, records, out) if pictures else []
    found = curves.curves(run.cells, records)
    curve_tables = curves.tables(found) if found else None
    _write_atomic(out / "report.md", markdown(run, "markdown", names, worst, groups, curve_tables))
    if fmt == "latex":  # report.md stays Markdown; the cells' table also as a LaTeX file
        _write_atomic(out / "table.tex", table(run, "latex") + "\n")
    return run
