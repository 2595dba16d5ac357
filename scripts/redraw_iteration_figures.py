"""Redraw a published run's iterations pictures from its results.json and records.csv.gz.

The published directories keep no database, so `advbench report` cannot re-render them; their
per-image records are all the pictures need. Each cell's step budget is asked of the attack
(`Attack.iterations`), as a run stores it since advbench 0.2: C&W's is binary_steps × iterations
(500 by default), where 0.1 drew its curves only to its `iterations` parameter (100).

    python scripts/redraw_iteration_figures.py reports/published-cw-l2
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

from advbench.host import plugins
from advbench.output import figures
from advbench.output.records import COLUMNS, Cell, Summary, records_from_rows


def redraw(folder: Path) -> list[str]:
    """Write iterations-cdf.png and accuracy-vs-iterations.png of `folder`'s run."""
    run = json.loads((folder / "results.json").read_text())
    registry = plugins.load()
    with gzip.open(folder / "records.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    cells, records = [], {}
    for cell_id, c in enumerate(run["cells"]):
        if c["status"] != "done":
            continue
        attack = registry.attacks.get(c["attack"])
        summary = Summary.from_dict(c)
        mine = [r for r in rows if r["model"] == c["model"] and r["attack"] == c["label"]]
        records[cell_id] = records_from_rows(
            [tuple(_value(col, r[col.name]) for col in COLUMNS) for r in mine]
        )
        cells.append(
            Cell(
                model=c["model"],
                key=c["label"],
                attack=c["attack"],
                params=c["params"],
                seed=c["seed"],
                data_checksum=run["run"].get("data_checksum", ""),
                versions=run["run"].get("versions", {}),
                summary=summary,
                max_iterations=attack.iterations(c["params"]),
                id=cell_id,
            )
        )
    return figures.render_all(cells, records, folder)


def _value(column, text: str):
    if column.dtype is bool:
        return text == "True"
    if text == "" or (column.name == "confidence" and text == "-1.0"):
        return None
    return float(text) if column.sql_type.startswith("REAL") else int(text)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(arg, redraw(Path(arg)))
