"""Per-image records of a sample of cells, written by one tree and compared with another's.

A refactoring must not move a number. `sample` runs every built-in model × every built-in
attack (default parameters, the published sweep's ε values for pgd) on the first N test
images through the command line, exactly as a user runs it, and writes the per-image records
sorted into one CSV. `diff` compares two such files row by row and exits 1 on any difference;
`published` compares a sample with the published records (`reports/published*`), which were
made with oneDNN at AVX-512: on another CPU path they differ where float rounding does
(README, "Which CPU gives which bits").

    python scripts/compare_records.py sample before.csv --limit 100   # on the old commit
    python scripts/compare_records.py sample after.csv --limit 100    # on the new one
    python scripts/compare_records.py diff before.csv after.csv
"""

from __future__ import annotations

import argparse
import csv
import gzip
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

MODELS = "mlp,softmax,keras-mlp,cnn-pgd,cnn"
ATTACKS = "noise,ifgsm,fgsm,pgd,mim,deepfool,square,targeted,fooling,cw-l2"
KEY = ("model", "attack", "index", "target")
# Cells are named by attack and parameters; the published run labels them the same way.
CELL = "attack"
DISCRETE = ("clean_pred", "adv_pred", "attacked", "flipped", "iterations")


def sample(out: Path, limit: int) -> None:
    """Run the grid on the first `limit` images through the CLI; write sorted records."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "advbench",
            "run",
            "--models",
            MODELS,
            "--attacks",
            ATTACKS,
            "--set",
            "pgd.eps=0.05,0.1,0.2,0.3",
            "--limit",
            str(limit),
            "--no-figures",
            "--db",
            f"{tmp}/db.sqlite",
            "--out",
            f"{tmp}/out",
            "--fresh",
            "--no-progress",
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = _read(Path(tmp) / "out" / "records.csv")
    _write(out, rows)
    print(f"{len(rows)} records -> {out}")


def _read(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    # advbench 0.1 wrote -1.0 for "no confidence" (rows not attacked); 0.2 leaves it empty.
    for r in rows:
        if r.get("confidence") == "-1.0":
            r["confidence"] = ""
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    rows = sorted(rows, key=lambda r: tuple(r[k] for k in KEY))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _index(rows: list[dict[str, str]], columns: list[str]) -> dict[tuple, tuple]:
    return {tuple(r[k] for k in KEY): tuple(r[c] for c in columns) for r in rows}


def diff(a: list[dict[str, str]], b: list[dict[str, str]], columns: list[str]) -> int:
    """Print the differing rows per model × attack; return how many differ."""
    ia, ib = _index(a, columns), _index(b, columns)
    only = set(ia) ^ set(ib)
    differ = Counter((k[0], k[1]) for k in set(ia) & set(ib) if ia[k] != ib[k])
    total = Counter((k[0], k[1]) for k in set(ia) & set(ib))
    for cell in sorted(total):
        print(f"{cell[0]:>10} × {cell[1]:<9} {differ[cell]:5d} of {total[cell]:5d} rows differ")
    if only:
        print(f"{len(only)} rows are in one file only, e.g. {sorted(only)[:3]}")
    print(f"{sum(differ.values())} of {sum(total.values())} rows differ")
    return sum(differ.values()) + len(only)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="run the grid on the first N images, write records")
    s.add_argument("out", type=Path)
    s.add_argument("--limit", type=int, default=100)
    d = sub.add_parser("diff", help="compare two sample files")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    p = sub.add_parser("published", help="compare a sample with the published records")
    p.add_argument("sample", type=Path)
    args = parser.parse_args()
    if args.command == "sample":
        sample(args.out, args.limit)
        return 0
    if args.command == "diff":
        a, b = _read(args.a), _read(args.b)
        return 1 if diff(a, b, [c for c in a[0] if c not in KEY]) else 0
    mine = _read(args.sample)
    indices = {r["index"] for r in mine}
    published = [
        r
        for f in sorted(Path("reports").glob("published*/records.csv.gz"))
        for r in _read(f)
        if r["index"] in indices
    ]
    # Only the columns both runs hold with equal meaning; cells the sample lacks are ignored.
    cells = {(r["model"], r["attack"]) for r in mine}
    published = [r for r in published if (r["model"], r["attack"]) in cells]
    # Across CPU paths the floats (L2, L∞, confidence) differ in their last digits anyway;
    # what a reader sees is whether each image's outcome is the same.
    discrete = [c for c in DISCRETE if c in mine[0] and c in published[0]]
    return 1 if diff(mine, published, discrete) else 0


if __name__ == "__main__":
    sys.exit(main())
