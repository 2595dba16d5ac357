"""The results database: killed runs resume, failures are recorded, reports re-render."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from advbench.cli import main


def _drop_in(tmp_path, name: str, source: str) -> None:
    """A drop-in plugin file in `tmp_path/plugs`, as a user writes one."""
    (tmp_path / "plugs").mkdir()
    (tmp_path / "plugs" / name).write_text(textwrap.dedent(source))


RUN = [
    "run",
    "--models",
    "mlp,softmax",
    "--attacks",
    "noise,ifgsm,fgsm",
    "--limit",
    "150",
    "--set",
    "noise.iterations=120",
]


def _cells_done(db) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM cells WHERE status='done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _numbers(path) -> dict:
    """results.json without what legitimately differs between two runs (ids, times)."""
    res = json.loads((path / "results.json").read_text())
    return {
        (c["model"], c["label"]): {
            k: v for k, v in c.items() if k not in ("seconds", "images_per_second")
        }
        for c in res["cells"]
    }


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    db = tmp_path / "killed.sqlite"
    cmd = [sys.executable, "-m", "advbench", *RUN, "--db", str(db), "--out", str(tmp_path / "k")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _cells_done(db) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = _cells_done(db)
    assert 2 <= done_before < 6, "the kill should land mid-run"
    with sqlite3.connect(db) as con:
        before = {row[0]: row[1] for row in con.execute("SELECT key || model, created FROM cells")}
        records_before = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    assert records_before > 0
    partial = tmp_path / "partial"  # a killed run's report says so, and how to finish it
    assert main(["report", "--db", str(db), "--out", str(partial), "--no-figures"]) == 0
    assert (
        f"**unfinished**: the run stopped with {done_before} cells stored"
        in (partial / "report.md").read_text()
    )

    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{done_before} of 6 cells already done" in resumed.stderr
    with sqlite3.connect(db) as con:
        after = {row[0]: row[1] for row in con.execute("SELECT key || model, created FROM cells")}
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    assert len(after) == 6
    for key, created in before.items():  # finished cells untouched, not duplicated
        assert after[key] == created

    clean = tmp_path / "clean.sqlite"
    assert main([*RUN, "--db", str(clean), "--out", str(tmp_path / "c"), "--no-figures"]) == 0
    assert _numbers(tmp_path / "k") == _numbers(tmp_path / "c")
    assert "unfinished" not in (tmp_path / "k" / "report.md").read_text()


def test_a_failing_attack_is_recorded_and_the_rest_completes(tmp_path, capsys):
    _drop_in(
        tmp_path,
        "broken_attack.py",
        """
        from advbench import hookimpl
        from advbench.contract.attack import Attack, CLIP_PARAMS
        from advbench.contract.params import Param

        class Exploding(Attack):
            name = "exploding"
            params = (Param("iterations", 3, "", int, minimum=1), *CLIP_PARAMS)
            def step(self, net, s, params):
                return s.x * float("nan")

        class Raising(Attack):
            name = "raising"
            params = (Param("iterations", 3, "", int, minimum=1), *CLIP_PARAMS)
            def step(self, net, s, params):
                raise RuntimeError("this attack is broken")

        @hookimpl
        def register_attacks(register):
            register(Exploding())
            register(Raising())
    """,
    )
    args = [
        "run",
        "--models",
        "mlp",
        "--attacks",
        "exploding,raising,fgsm",
        "--limit",
        "50",
        "--plugins",
        str(tmp_path / "plugs"),
        "--db",
        str(tmp_path / "r.sqlite"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(args) == 1  # non-zero: something failed, but everything was written
    cells = {c["label"]: c for c in json.loads((tmp_path / "o/results.json").read_text())["cells"]}
    assert cells["exploding"]["status"] == "failed"
    assert "NaN" in cells["exploding"]["error"]
    assert cells["raising"]["status"] == "failed"
    assert "this attack is broken" in cells["raising"]["error"]
    assert cells["fgsm"]["status"] == "done" and cells["fgsm"]["n"] == 50
    assert "2 cell(s) failed" in capsys.readouterr().err


@pytest.mark.slow
def test_report_rerenders_exactly_and_compares(tmp_path, capsys):
    db = str(tmp_path / "r.sqlite")
    base = [
        "run",
        "--models",
        "mlp",
        "--attacks",
        "ifgsm,pgd",
        "--set",
        "pgd.eps=0.1,0.2",
        "--db",
        db,
    ]
    assert main([*base, "--limit", "80", "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--limit", "60", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    runs = json.loads((tmp_path / "a/results.json").read_text())["run"]["id"]
    assert main(["report", runs, "--db", db, "--out", str(tmp_path / "again")]) == 0
    for name in ("results.json", "report.md", "records.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    pictures = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert pictures == sorted(p.name for p in (tmp_path / "again").glob("*.png"))
    # a reused folder holds only this run's pictures: an earlier run's extra picture (listed
    # in the manifest) goes, a file advbench did not write stays
    again = tmp_path / "again"
    (again / "cnn-07-square.png").write_bytes(b"earlier run")
    (again / "mine.png").write_bytes(b"the user's")
    manifest = again / ".advbench-pictures"
    manifest.write_text(manifest.read_text() + "cnn-07-square.png\n../outside.png\n")
    (tmp_path / "outside.png").write_bytes(b"not advbench's either")
    assert main(["report", runs, "--db", db, "--out", str(again)]) == 0
    assert sorted(p.name for p in again.glob("*.png")) == sorted([*pictures, "mine.png"])
    assert (tmp_path / "outside.png").exists()
    assert {
        "iterations-cdf.png",
        "accuracy-vs-iterations.png",
        "robust-accuracy-vs-eps.png",
    } <= set(pictures)
    for p in (tmp_path / "a").glob("*.png"):
        assert p.stat().st_size > 2000
        assert f"({p.name})" in (tmp_path / "a/report.md").read_text()
    assert (
        main(
            [
                "report",
                runs,
                "--db",
                db,
                "--format",
                "latex",
                "--out",
                str(tmp_path / "tex"),
                "--no-figures",
            ]
        )
        == 0
    )
    report_md = (tmp_path / "tex/report.md").read_text()  # Markdown whatever --format says
    assert "\\begin{tabular}" not in report_md and "|---" in report_md.replace(":", "-")
    assert "seed=-1" not in report_md and "seed=0" in report_md  # the seed used, not -1
    assert "\\begin{tabular}" in (tmp_path / "tex/table.tex").read_text()
    other = json.loads((tmp_path / "b/results.json").read_text())["run"]["id"]
    capsys.readouterr()
    assert main(["report", "--compare", runs, other, "--db", db]) == 0
    out = capsys.readouterr().out
    assert "adversarial_accuracy" in out and "difference" in out and "pgd(eps=0.1)" in out
    assert "only in" not in out  # the two runs hold the same cells
    fewer = [*base[:4], "ifgsm", *base[7:], "--limit", "60", "--out", str(tmp_path / "c")]
    assert main(fewer) == 0
    third = json.loads((tmp_path / "c/results.json").read_text())["run"]["id"]
    capsys.readouterr()
    assert main(["report", "--compare", runs, third, "--db", db]) == 0
    out = capsys.readouterr().out  # the cells one run lacks are named, not dropped
    assert f"only in {runs} (2): mlp × pgd(eps=0.1), mlp × pgd(eps=0.2)" in out
    assert f"only in {third}" not in out and "ifgsm" in out
    assert main(["report", "no-such-run", "--db", db]) == 2


@pytest.mark.slow  # a subprocess or two, ~20 s: CI runs it in make test-slow
def test_a_hanging_attack_fails_its_cell_after_the_time_limit_and_the_run_goes_on(tmp_path, capsys):
    """An endless loop (2e9 steps that never succeed) and a step that sleeps in Python each
    fail their cell at `--cell-timeout`; the next cell runs on the same session."""
    _drop_in(
        tmp_path,
        "hanging.py",
        """
        import time
        from advbench import hookimpl, tf
        from advbench.contract.attack import Attack, CLIP_PARAMS
        from advbench.contract.params import Param

        class Sleepy(Attack):
            name = "sleepy"
            params = (Param("iterations", 100, "", int, minimum=1), *CLIP_PARAMS)
            def step(self, net, s, params):
                def nap(x):
                    time.sleep(0.5)
                    return x
                out = tf().compat.v1.py_func(nap, [s.x], tf().float32, stateful=True)
                out.set_shape(s.x.shape)
                return out

        @hookimpl
        def register_attacks(register):
            register(Sleepy())
    """,
    )
    started = time.monotonic()
    args = [
        "run", "--models", "mlp", "--attacks", "noise,sleepy,fgsm", "--limit", "30",
        "--set", "noise.iterations=2000000000", "--set", "noise.step=1e-12",
        "--cell-timeout", "3", "--plugins", str(tmp_path / "plugs"),
        "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "o"), "--no-figures",
    ]  # fmt: skip
    assert main(args) == 1
    assert time.monotonic() - started < 120
    cells = {c["attack"]: c for c in json.loads((tmp_path / "o/results.json").read_text())["cells"]}
    for hung in ("noise", "sleepy"):
        assert cells[hung]["status"] == "failed", cells[hung]
        assert "ran past its time limit of 3 s (--cell-timeout)" in cells[hung]["error"]
    assert cells["fgsm"]["status"] == "done" and cells["fgsm"]["n"] == 30
    assert "2 cell(s) failed" in capsys.readouterr().err


def _shell() -> None:
    """A child's SIGINT as a user's terminal hands it over: delivered (unblocked) and at its
    default disposition, whatever this test process inherited or set for itself (a signal
    mask or an ignored SIGINT would pass to the child, which would then ignore Ctrl-C)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow  # a subprocess or two, ~20 s: CI runs it in make test-slow
def test_ctrl_c_stops_a_long_batch_within_seconds_and_keeps_finished_cells(tmp_path):
    """SIGINT while one batch would run for hours (2e9 steps): the process ends within
    seconds, not when the batch would have ended; the cells finished before are stored and
    the same command resumes."""
    db = tmp_path / "r.sqlite"
    cmd = [
        sys.executable, "-m", "advbench", "run", "--models", "mlp", "--attacks", "fgsm,noise",
        "--limit", "30", "--set", "noise.iterations=2000000000", "--set", "noise.step=1e-12",
        "--db", str(db), "--out", str(tmp_path / "o"), "--no-figures",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_shell
    )
    deadline = time.time() + 300
    while _cells_done(db) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert _cells_done(db) == 1, "fgsm did not finish in time"
    time.sleep(3)  # well inside noise's endless batch
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert time.monotonic() - sent < 30, "Ctrl-C took too long"
    assert proc.returncode == 130 and "interrupted" in err, err
    assert _cells_done(db) == 1  # fgsm kept; the interrupted cell is not stored half-done


def _kept_batches(db) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM shards").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow  # three subprocesses, ~40 s: CI runs it in make test-slow
def test_ctrl_c_keeps_the_finished_batches_of_the_interrupted_cell(tmp_path):
    """SIGINT in the middle of a cell of many batches: the batches it finished are kept, the
    same command resumes after them, and the records equal an uninterrupted run's."""
    args = [
        "run", "--models", "cnn-pgd", "--attacks", "pgd", "--limit", "400", "--batch-size", "40",
        "--no-figures",
    ]  # fmt: skip
    db = tmp_path / "r.sqlite"
    cmd = [sys.executable, "-m", "advbench", *args, "--db", str(db), "--out", str(tmp_path / "o")]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=_shell
    )
    deadline = time.time() + 300
    while _kept_batches(db) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    kept = _kept_batches(db)
    assert 3 <= kept < 10 and _cells_done(db) == 0
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _kept_batches(db) == 0  # in the stored cell now
    whole = tmp_path / "w"
    assert main([*args, "--db", str(tmp_path / "w.sqlite"), "--out", str(whole)]) == 0
    assert (tmp_path / "o/records.csv").read_text() == (whole / "records.csv").read_text()


@pytest.mark.slow  # a subprocess or two, ~20 s: CI runs it in make test-slow
def test_identical_runs_started_together_share_one_run_and_compute_each_cell_once(tmp_path):
    """Two processes, the same command, started together: one run in the database, every
    cell computed by exactly one of them (each attack logs which process built it), and both
    end with the whole report."""
    _drop_in(
        tmp_path,
        "logged.py",
        """
        import os, time
        from advbench import hookimpl, tf
        from advbench.contract.attack import Attack, CLIP_PARAMS
        from advbench.contract.params import Param

        LOG = os.environ["LOGGED_ATTACKS"]

        def logged(label):
            class Logged(Attack):
                name = label
                params = (Param("iterations", 4, "", int, minimum=1), *CLIP_PARAMS)
                def step(self, net, s, params):
                    with open(LOG, "a") as f:
                        f.write(f"{label} {os.getpid()}\\n")
                    def nap(x):
                        time.sleep(0.25)
                        return x
                    out = tf().compat.v1.py_func(nap, [s.x], tf().float32, stateful=True)
                    out.set_shape(s.x.shape)
                    return out
            return Logged()

        @hookimpl
        def register_attacks(register):
            for label in ("la", "lb", "lc", "ld", "le", "lf"):
                register(logged(label))
    """,
    )
    log = tmp_path / "built.log"
    env = {
        **os.environ,
        "LOGGED_ATTACKS": str(log),
        "ADVBENCH_PLUGINS_DIR": str(tmp_path / "plugs"),
    }
    cmd = [
        sys.executable, "-m", "advbench", "run", "--models", "mlp",
        "--attacks", "la,lb,lc,ld,le,lf", "--limit", "20", "--no-checks",
        "--db", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "o"), "--no-figures",
    ]  # fmt: skip
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)]
    procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
    built = [line.split() for line in log.read_text().splitlines()]
    by_cell = {label: [pid for name, pid in built if name == label] for label, _ in built}
    assert sorted(by_cell) == ["la", "lb", "lc", "ld", "le", "lf"]
    assert all(len(pids) == 1 for pids in by_cell.values()), by_cell  # never twice
    assert len({pids[0] for pids in by_cell.values()}) == 2, "both processes took cells"
    with sqlite3.connect(tmp_path / "r.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
        assert con.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0] == 6
    results = json.loads((tmp_path / "o/results.json").read_text())
    assert len(results["cells"]) == 6


@pytest.mark.slow  # a subprocess or two, ~20 s: CI runs it in make test-slow
def test_a_full_disk_is_one_line_and_keeps_what_was_stored(tmp_path):
    """No file may grow past 64 KiB (RLIMIT_FSIZE: what a full disk looks like to a
    process): the run ends in one line naming the database, not an SQLite traceback."""
    import resource

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    cmd = [
        sys.executable, "-m", "advbench", "run", "--models", "softmax", "--attacks", "fgsm",
        "--limit", "20", "--no-figures", "--db", str(tmp_path / "r.sqlite"),
        "--out", str(tmp_path / "o"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=full_disk, timeout=300)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and "Traceback" not in err and "\n" not in err, err
    assert "r.sqlite" in err and ("full disk" in err or "disk I/O error" in err)
