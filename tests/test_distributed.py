"""Runs beyond one process, for real: a `dask scheduler` and two `dask worker` processes on
127.0.0.1, started as a user starts them, and `advbench run --scheduler` as a user runs it.

Each test starts its own cluster (one kills a worker) and tears it down. Marked slow: every
process imports TensorFlow; CI runs them in `make test-slow`.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")
pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
GRID = ["--models", "mlp,softmax", "--attacks", "fgsm,pgd", "--limit", "300", "--no-figures"]


class Cluster:
    """A scheduler and its workers, each a `dask` command in its own process (workers without
    a nanny: killing one is a machine going down, nothing restarts it)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.file = root / "scheduler.json"
        self.scheduler = self._start(
            "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"
        )
        self.workers: list[subprocess.Popen] = []
        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def _start(self, kind: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.root / f"{kind}-{time.time_ns()}.log", "w")  # noqa: SIM115
        return subprocess.Popen(
            [str(BIN / "dask"), kind, "--scheduler-file", str(self.file), *args],
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def add_workers(self, count: int, env: dict[str, str] | None = None) -> None:
        for _ in range(count):
            self.workers.append(
                self._start("worker", "--nthreads", "1", "--no-nanny", "--no-dashboard", env=env)
            )
        self.wait_for(len(self.workers))

    def wait_for(self, count: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(count, timeout=120)

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        **os.environ,
        "ADVBENCH_HOME": str(home),
        "ADVBENCH_THREADS": "1",  # the serial reference with the workers' one thread
        "PYTHONWARNINGS": "ignore",
    }


@pytest.fixture
def cluster(tmp_path: Path, env: dict[str, str]) -> Iterator[Cluster]:
    c = Cluster(tmp_path, env)
    try:
        c.add_workers(2)
        yield c
    finally:
        c.close()


def advbench(env: dict[str, str], *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "python"), "-m", "advbench", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=kw.get("timeout", 600),
    )


def records(out: Path) -> dict[tuple[str, ...], dict[str, str]]:
    with open(out / "records.csv") as f:
        return {(r["model"], r["attack"], r["index"], r["target"]): r for r in csv.DictReader(f)}


def test_a_grid_on_two_workers_equals_the_serial_run(tmp_path, env, cluster):
    """Shards of the whole cell give the serial run's records bit for bit (same threads per
    process); the run resumes as done; the cells say which workers computed nothing wrong."""
    dist, serial = tmp_path / "dist", tmp_path / "serial"
    db = ["--db", str(tmp_path / "r.sqlite")]
    proc = advbench(
        env, *GRID, *db, "--scheduler", cluster.address, "--shard-size", "300", "--out", str(dist)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = advbench(env, *GRID, "--db", str(tmp_path / "s.sqlite"), "--out", str(serial))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert records(dist) == records(serial)
    # the same command again: every cell stored, nothing computed
    proc = advbench(
        env, *GRID, *db, "--scheduler", cluster.address, "--shard-size", "300", "--out", str(dist)
    )
    assert proc.returncode == 0 and "4 of 4 cells already done" in proc.stderr
    with sqlite3.connect(tmp_path / "r.sqlite") as db_:
        assert db_.execute("SELECT COUNT(*) FROM shards").fetchone()[0] == 0


def test_smaller_shards_change_rounding_only(tmp_path, env, cluster):
    """Shards of 100 images are batches of their own: float rounding differs from the one-shard
    run in the last bits, never a label; the same shard size reproduces itself exactly."""
    outs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        proc = advbench(
            env, *GRID, "--db", str(tmp_path / f"{k}.sqlite"), "--out", str(out),
            "--scheduler", cluster.address, "--shard-size", "100",
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(records(out))
    assert outs[0] == outs[1]


def test_a_worker_killed_mid_run_costs_only_its_unit(tmp_path, env, cluster):
    """SIGKILL one worker while units run: the scheduler gives its unit to the other, the run
    finishes with every cell done, and the records equal an undisturbed run's."""
    args = ["--models", "cnn-pgd", "--attacks", "pgd", "--limit", "160", "--no-figures"]
    args += ["--scheduler", cluster.address, "--shard-size", "40"]
    proc = subprocess.Popen(
        [str(BIN / "python"), "-m", "advbench", "run", *args,
         "--db", str(tmp_path / "k.sqlite"), "--out", str(tmp_path / "k")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not _busy(cluster, cluster.workers[0]):
        time.sleep(0.2)
    os.killpg(cluster.workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    quiet = advbench(env, *args, "--db", str(tmp_path / "q.sqlite"), "--out", str(tmp_path / "q"))
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert records(tmp_path / "k") == records(tmp_path / "q")


def _busy(cluster: Cluster, proc: subprocess.Popen) -> bool:
    """Is a unit running on the worker process `proc`?"""
    from distributed import Client

    with Client(cluster.address, timeout="30s") as client:
        pids = {a: w.get("pid") for a, w in client.scheduler_info()["workers"].items()}
        processing = client.processing()
    return any(processing.get(a) for a, pid in pids.items() if pid == proc.pid)


def test_a_killed_driver_resumes_with_nothing_lost_or_twice(tmp_path, env, cluster):
    """SIGKILL the driver once some shards are stored; the same command finishes the run, and
    its records equal an uninterrupted run's."""
    args = ["--models", "mlp", "--attacks", "deepfool,pgd", "--limit", "400", "--no-figures"]
    args += ["--scheduler", cluster.address, "--shard-size", "50"]
    db = tmp_path / "d.sqlite"
    run = [str(BIN / "python"), "-m", "advbench", "run", *args, "--db", str(db)]
    proc = subprocess.Popen([*run, "--out", str(tmp_path / "d")], env=env)
    deadline = time.time() + 300
    while time.time() < deadline and _stored_shards(db) < 2:
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    again = advbench(env, *args, "--db", str(db), "--out", str(tmp_path / "d"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming" in again.stderr
    whole = advbench(env, *args, "--db", str(tmp_path / "w.sqlite"), "--out", str(tmp_path / "w"))
    assert whole.returncode == 0
    assert records(tmp_path / "d") == records(tmp_path / "w")


def _stored_shards(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM shards").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_a_worker_without_the_plugin_fails_its_units_in_one_line(tmp_path, env):
    """A drop-in attack that workers started without the plugins directory cannot load: its
    cell fails naming the worker and the cause, the other cells finish, exit 1."""
    plugs = tmp_path / "plugs"
    plugs.mkdir()
    (plugs / "only_here.py").write_text(
        textwrap.dedent(
            """
            import os
            if os.environ.get("ADVBENCH_TEST_NO_PLUGIN"):
                raise ImportError("this machine lacks the plugin's dependencies")
            from advbench import hookimpl
            from advbench_plugins.fgsm import FGSM
            class Mine(FGSM):
                name = "mine"
            @hookimpl
            def register_attacks(register):
                register(Mine())
            """
        )
    )
    broken = tmp_path / "broken"
    broken.mkdir()
    other = Cluster(broken, {**env, "ADVBENCH_TEST_NO_PLUGIN": "1"})
    try:
        other.add_workers(1)
        proc = advbench(
            env, "--models", "mlp", "--attacks", "mine,fgsm", "--limit", "100", "--no-figures",
            "--plugins", str(plugs), "--scheduler", other.address,
            "--db", str(tmp_path / "p.sqlite"), "--out", str(tmp_path / "p"),
        )  # fmt: skip
    finally:
        other.close()
    assert proc.returncode == 1, proc.stderr[-2000:]
    cells = {c["attack"]: c for c in json.loads((tmp_path / "p/results.json").read_text())["cells"]}
    assert cells["fgsm"]["status"] == "done"
    error = cells["mine"]["error"]
    assert "worker tcp://127.0.0.1:" in error and "mine" in error and "\n" not in error


def test_an_unreachable_scheduler_is_one_line(tmp_path, env):
    proc = advbench(
        env, *GRID, "--scheduler", "tcp://127.0.0.1:9", "--db", str(tmp_path / "u.sqlite"),
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "scheduler tcp://127.0.0.1:9 unreachable" in lines[0]
    assert not (tmp_path / "u.sqlite").exists()


def test_local_workers_and_the_plan(tmp_path, env):
    """`--workers 2` starts its own cluster; `--plan` lists the units with estimates taken
    from the run just stored, and the projection."""
    db = ["--db", str(tmp_path / "l.sqlite")]
    proc = advbench(env, *GRID, *db, "--workers", "2", "--out", str(tmp_path / "l"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = advbench(env, *GRID, *db, "--plan", "--shard-size", "100")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "12 units of up to 100 images; 12 estimated" in plan.stdout
    assert "critical path" in plan.stdout and "100" in plan.stdout.splitlines()[-1]
