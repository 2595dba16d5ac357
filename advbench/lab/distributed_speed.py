"""What a distributed run costs and gains on this machine (`make bench-distributed`).

Three measurements, each a whole `advbench run` started as a user starts it (a fresh database
each time, so nothing resumes), alternated so that the machine's drift falls on both sides:

1. a fixed grid in-process vs `--workers 2` (a local Dask cluster, default shards);
2. the same grid on `--workers 2` with shards of `SMALL` images: the extra wall time over the
   default shards, divided by the extra units, is the cost of one unit (a task's round trip,
   its shard's clean forward pass and cell checks, one SQLite transaction);
3. Dask's own round trip for an empty task on a local cluster of two workers.

Usage: python -m advbench.lab.distributed_speed [--limit N] [--repeats K]
       python -m advbench.lab.distributed_speed --project results.json [results.json …]
(`--project`: the grid of those stored runs on 1 … 100 workers, each unit costing its cell's
seconds per image × its images, from the cells' own timings; nothing is run.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["--models", "mlp,cnn", "--attacks", "fgsm,pgd,deepfool", "--no-figures", "--no-checks"]
SMALL = 50  # images per unit in the overhead measurement


def _run(extra: list[str], limit: int) -> float:
    """Wall seconds of one `advbench run` of the grid (a fresh database)."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [*GRID, "--limit", str(limit), "--db", f"{tmp}/r.sqlite", "--out", f"{tmp}/o"]
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "advbench", "run", *args, *extra],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"advbench run {' '.join(extra)} failed: {proc.stderr[-500:]}")
    return seconds


def _units(limit: int, shard: int) -> int:
    """Units of the grid: 2 models × 3 attacks × shards."""
    return 6 * -(-limit // shard)


def empty_task_seconds(tasks: int = 200) -> float:
    """Median seconds of an empty task's round trip through a local two-worker cluster."""
    from distributed import Client, LocalCluster

    times = []
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        for i in range(tasks):
            started = time.perf_counter()
            client.submit(int, i, pure=False).result()
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def project(paths: list[str], start: float = 0.0) -> str:
    """The projection of stored runs' cells (their results.json) onto 1 … 100 workers, for
    shards of 1,000 and 250 images; `start`: seconds each worker spends before its first unit
    (TensorFlow's import, the models, the attack graphs)."""
    import json

    from advbench.engine.schedule import projection

    cells = [
        (c["seconds"], c["n"])
        for path in paths
        for c in json.loads(Path(path).read_text())["cells"]
        if c.get("status", "done") == "done" and c.get("seconds")
    ]
    lines = [f"{len(cells)} cells, {sum(s for s, _ in cells):.0f} s of cells' time"]
    for shard in (1000, 250):
        costs = [s / -(-n // shard) for s, n in cells for _ in range(-(-n // shard))]
        lines.append(f"shards of {shard}: {len(costs)} units, longest {max(costs):.0f} s")
        for workers, wall, _ in projection(costs, (1, 2, 10, 100)):
            lines.append(
                f"  {workers:>3} workers: {wall + start:7.0f} s wall "
                f"({(sum(costs) / (wall + start)):.1f}× one worker's {sum(costs):.0f} s)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="alternations (default 2)")
    parser.add_argument("--project", nargs="+", metavar="RESULTS_JSON", help="project, not run")
    parser.add_argument(
        "--start", type=float, default=20.0, help="a worker's seconds before its first unit"
    )
    args = parser.parse_args(argv)
    if args.project:
        print(project(args.project, args.start))
        return 0
    modes = {
        "in-process": [],
        "--workers 2": ["--workers", "2"],
        f"--workers 2 --shard-size {SMALL}": ["--workers", "2", "--shard-size", str(SMALL)],
    }
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for mode, extra in modes.items():
            times[mode].append(_run(extra, args.limit))
            print(f"  {mode}: {times[mode][-1]:.1f} s", file=sys.stderr)
    best = {m: min(v) for m, v in times.items()}
    serial, two = best["in-process"], best["--workers 2"]
    small = best[f"--workers 2 --shard-size {SMALL}"]
    extra_units = _units(args.limit, SMALL) - _units(args.limit, 1000)
    print(f"grid: advbench run {' '.join(GRID)} --limit {args.limit}")
    for mode, seconds in best.items():
        print(f"{mode:32s} {seconds:7.1f} s  (best of {args.repeats})")
    print(f"speed-up of --workers 2: {serial / two:.2f}×")
    print(
        f"cost of a unit: {(small - two) / extra_units:.3f} s "
        f"({extra_units} more units of {SMALL} images)"
    )
    print(f"Dask's round trip for an empty task: {empty_task_seconds() * 1000:.2f} ms")
    print(f"this machine: {_cpu()}, {os.cpu_count()} cores")
    return 0


def _cpu() -> str:
    from advbench.engine.graph import cpu_kind

    return cpu_kind()


if __name__ == "__main__":
    raise SystemExit(main())
