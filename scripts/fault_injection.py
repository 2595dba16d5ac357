"""Fault injection: advbench as a hostile or careless user drives it, counted.

    python scripts/fault_injection.py [--family NAME] [--list]

Every case runs the real command line in a throw-away home, database and output folder, and
is "handled" when advbench does what a demanding user expects: bad input ends in one line on
stderr naming what is wrong and exit status 2 (never a traceback, never silently wrong
numbers); a killed, interrupted or concurrent run keeps what it finished and resumes to the
same numbers; nothing is written outside the folders given. The families follow README
"Reliability": bad command-line values, corrupt data, damaged checkpoints, hostile plugins,
hostile databases, files and disks (a file where a folder should be, a read-only filesystem,
a full disk: RLIMIT_FSIZE), kills and interrupts (SIGKILL mid-run, SIGINT inside a batch),
concurrent identical runs. Prints each case and the totals tried / handled / not handled;
exit status 1 when any case is not handled. About 5 minutes on two cores.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "advbench" / "engine" / "data" / "mnist"
QUICK = ["--models", "softmax", "--attacks", "fgsm", "--limit", "20", "--no-figures"]


@dataclass
class Case:
    family: str
    name: str
    check: Callable[[Path], str | None]  # None: handled; else what went wrong


def cli(work: Path, *args: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """`python -m advbench ARGS` with its own home, database and output under `work`."""
    full = {**os.environ, "ADVBENCH_HOME": str(work / "home"), **(env or {})}
    full.pop("ADVBENCH_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "advbench", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=work,
        timeout=600,
        **kw,
    )


def one_line(proc: subprocess.CompletedProcess, *needles: str, code: int = 2) -> str | None:
    """None when the command failed cleanly: exit `code`, one stderr line with `needles`."""
    err = proc.stderr.strip()
    if "Traceback" in proc.stderr:
        return "traceback: " + err.splitlines()[-1][:120]
    if proc.returncode != code:
        return f"exit {proc.returncode}, expected {code}: {err[-160:]}"
    if err.count("\n"):
        return f"{err.count(chr(10)) + 1} lines on stderr: {err[:160]}"
    missing = [n for n in needles if n not in err]
    return f"message lacks {missing}: {err[:160]}" if missing else None


def run_db(work: Path, *extra: str) -> list[str]:
    return ["run", *QUICK, "--db", str(work / "r.sqlite"), "--out", str(work / "o"), *extra]


# --- bad command-line values ---------------------------------------------------------------
BAD_VALUES = [
    (["--limit", "0"], "--limit"),
    (["--limit", "-3"], "--limit"),
    (["--limit", "ten"], "--limit"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "99999999999"], "--seed"),
    (["--batch-size", "0"], "--batch-size"),
    (["--cell-timeout", "0"], "--cell-timeout"),
    (["--cell-timeout", "inf"], "--cell-timeout"),
    (["--set", "fgsm.eps=-1"], "fgsm.eps"),
    (["--set", "fgsm.eps=nan"], "fgsm.eps"),
    (["--set", "fgsm.eps=0.1,,0.2"], "fgsm.eps"),
    (["--set", "fgsm.bogus=1"], "bogus"),
    (["--set", "nosuch.eps=1"], "nosuch"),
    (["--set", "fgsm.seed=1000000000000000000000000000000"], "fgsm.seed"),
    (["--set", "pgd.iterations=2147483648", "--attacks", "pgd"], "pgd.iterations"),
    (["--set", "noequals"], "noequals"),
    (["--models", "nosuch"], "nosuch"),
    (["--attacks", "nosuch"], "nosuch"),
    (["--dataset", "nosuch"], "nosuch"),
    (["--dataset", "npz:/nonexistent.npz"], "/nonexistent.npz"),
    (["--out", ""], "--out"),
    (["--db", ""], "--db"),
    (["--set", "autoattack.n_target_classes=10", "--attacks", "autoattack"], "n_target_classes"),
    (["--set", "softmax.steps=0"], "softmax.steps"),
]


def bad_value(args: list[str], needle: str) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        proc = cli(work, *run_db(work), *args)
        return one_line(proc, needle)

    return check


# --- corrupt data ----------------------------------------------------------------------------
def mnist_copy(work: Path, damage: Callable[[Path], None]) -> Path:
    folder = work / "mnist"
    shutil.copytree(MNIST, folder)
    damage(folder)
    return folder


def _regzip(path: Path, data: bytes) -> None:
    path.write_bytes(gzip.compress(data))


DATA_DAMAGE = {
    "truncated gzip": lambda f: (f / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (f / "t10k-labels-idx1-ubyte.gz").read_bytes()[:100]
    ),
    "not gzip": lambda f: (f / "train-images-idx3-ubyte.gz").write_bytes(b"hello"),
    "missing file": lambda f: (f / "t10k-images-idx3-ubyte.gz").unlink(),
    "wrong magic": lambda f: _regzip(
        f / "t10k-labels-idx1-ubyte.gz",
        b"\x00\x00\x09\x09" + gzip.decompress((f / "t10k-labels-idx1-ubyte.gz").read_bytes())[4:],
    ),
    "label out of range": lambda f: _regzip(
        f / "t10k-labels-idx1-ubyte.gz",
        gzip.decompress((f / "t10k-labels-idx1-ubyte.gz").read_bytes())[:8] + b"\x0c" * 10000,
    ),
    "one pixel changed": lambda f: _regzip(
        f / "t10k-images-idx3-ubyte.gz",
        (lambda b: b[:500] + bytes([b[500] ^ 1]) + b[501:])(
            gzip.decompress((f / "t10k-images-idx3-ubyte.gz").read_bytes())
        ),
    ),
    "gzip bomb": lambda f: (f / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08\x01\x00\x00\x27\x10" + b"\x00" * 200_000_000)
    ),
}


def corrupt_data(damage: Callable[[Path], None]) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        folder = mnist_copy(work, damage)
        proc = cli(work, *run_db(work, "--mnist-dir", str(folder)))
        return one_line(proc, "ubyte") or (
            "results were written" if (work / "r.sqlite").exists() and _cells(work) else None
        )

    return check


def bad_npz(kind: str) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        import numpy as np

        path = work / "d.npz"
        x = np.zeros((10, 8, 8), np.uint8)
        y = np.zeros(10, np.int64)
        if kind == "pickled objects":
            np.savez(path, x_train=np.array([object()] * 10), y_train=y, x_test=x, y_test=y)
        elif kind == "shapes differ":
            np.savez(path, x_train=x, y_train=y[:5], x_test=x, y_test=y)
        elif kind == "missing split":
            np.savez(path, x_train=x, y_train=y)
        else:
            path.write_bytes(b"PK\x03\x04 not really")
        proc = cli(work, "describe", f"npz:{path}")
        return one_line(proc, "d.npz")

    return check


# --- damaged checkpoints ---------------------------------------------------------------------
def checkpoint_damage(damage: Callable[[Path], None], needle: str) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        proc = cli(work, "train", "softmax", "--seed", "3", "--steps", "200")
        if proc.returncode != 0:
            return "could not train: " + proc.stderr[-160:]
        folder = next((work / "home" / "checkpoints").glob("softmax-mnist-s3-*"))
        damage(folder)
        proc = cli(
            work,
            "eval",
            "softmax",
            "--model-seed",
            "3",
            "--limit",
            "20",
            "--set",
            "softmax.steps=200",
        )
        return one_line(proc, needle)

    return check


# --- hostile plugins -------------------------------------------------------------------------
PLUGINS = {
    "sys.exit at import": ("import sys\nsys.exit(0)\n", "plugin", 0),
    "raises at import": ("raise RuntimeError('boom')\n", "boom", 0),
    "NaN images": (
        """
        from advbench import hookimpl, Attack, CLIP_PARAMS, Param
        class A(Attack):
            name = "nanny"
            params = (Param("iterations", 3, "", int, minimum=1), *CLIP_PARAMS)
            def step(self, net, s, params):
                return s.x * float("nan")
        @hookimpl
        def register_attacks(register):
            register(A())
        """,
        "NaN",
        1,
    ),
    "exceeds its declared budget": (
        """
        from advbench import hookimpl, Attack, CLIP_PARAMS, Param, ThreatModel, clip
        class A(Attack):
            name = "liar"
            params = (Param("iterations", 3, "", int, minimum=1), *CLIP_PARAMS)
            def threat_model(self, params):
                return ThreatModel.bounded("linf", 0.01)
            def step(self, net, s, params):
                return clip(s.x0 + 0.5, params)
        @hookimpl
        def register_attacks(register):
            register(A())
        """,
        "farther than the declared linf bound",
        1,
    ),
    "claims success it did not get": (
        """
        from advbench import hookimpl, Attack, CLIP_PARAMS, Param, tf
        class A(Attack):
            name = "boaster"
            params = (Param("iterations", 3, "", int, minimum=1), *CLIP_PARAMS)
            def success(self, net, logits, s, params):
                return tf().ones_like(s.labels, dtype=tf().bool)
            def step(self, net, s, params):
                return s.x
        @hookimpl
        def register_attacks(register):
            register(A())
        """,
        "",
        -1,
    ),
}


def hostile_plugin(source: str, needle: str, mode: int) -> Callable[[Path], str | None]:
    """mode 0: listed as broken, the rest usable; 1: its cell fails, the run goes on
    (exit 1); -1: whatever it claims, no image it left unchanged counts as fooled."""

    def check(work: Path) -> str | None:
        (work / "plugs").mkdir()
        (work / "plugs" / "hostile.py").write_text(textwrap.dedent(source))
        env = {"ADVBENCH_PLUGINS_DIR": str(work / "plugs")}
        if mode == 0:
            proc = cli(work, "plugins", env=env)
            if proc.returncode != 0 or needle not in proc.stdout + proc.stderr:
                return f"plugins: exit {proc.returncode}, {proc.stderr[-160:]}"
            proc = cli(work, *run_db(work), env=env)
            return None if proc.returncode == 0 else f"run: exit {proc.returncode}"
        name = {1: None}.get(mode) or source.split('name = "')[1].split('"')[0]
        proc = cli(work, *run_db(work)[:3], "--attacks", f"{name},fgsm", *run_db(work)[5:], env=env)
        results = work / "o" / "results.json"
        if not results.exists():
            return f"no results: {proc.stderr[-160:]}"
        cells = {c["attack"]: c for c in json.loads(results.read_text())["cells"]}
        if cells.get("fgsm", {}).get("status") != "done":
            return "the other cell did not complete"
        mine = cells.get(name, {})
        if mode == 1:
            return (
                None
                if mine.get("status") == "failed" and needle in mine.get("error", "")
                else f"{name}: {mine.get('status')} {mine.get('error')}"
            )
        return (
            None
            if mine.get("adversarial_accuracy") == mine.get("clean_accuracy")
            and mine.get("flip_rate") == 0
            else f"unflipped images counted as fooled: {mine}"
        )

    return check


# --- hostile databases -----------------------------------------------------------------------
def _cells(work: Path) -> int:
    try:
        with sqlite3.connect(work / "r.sqlite") as con:
            return con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    except sqlite3.Error:
        return 0


def hostile_db(kind: str) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        db = work / "r.sqlite"
        if kind == "not a database":
            db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 500)
            return one_line(cli(work, "report", "--db", str(db), "--list"), "r.sqlite")
        proc = cli(work, *run_db(work))
        if proc.returncode != 0:
            return "setup run failed"
        with sqlite3.connect(db) as con:
            if kind == "model name ../../x":
                con.execute("UPDATE cells SET model = '../../escaped'")
                con.execute("UPDATE models SET name = '../../escaped'")
            elif kind == "run id prefix with %":
                pass
            else:
                con.execute("UPDATE records SET adv_pred = (adv_pred + 1) % 10")
        out = work / "deep" / "out"
        if kind == "run id prefix with %":
            return one_line(cli(work, "report", "%", "--db", str(db)), "%")
        proc = cli(work, "report", "--db", str(db), "--out", str(out), "--no-figures")
        if kind == "model name ../../x":
            outside = [p for p in work.rglob("*escaped*") if out not in p.parents]
            return f"wrote outside --out: {outside}" if outside else None
        return one_line(proc, "checksum")

    return check


# --- files and disks -------------------------------------------------------------------------
def files(kind: str) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        (work / "afile").write_text("x")
        if kind == "--out is a file":
            return one_line(cli(work, *run_db(work)[:-2], "--out", str(work / "afile")), "afile")
        if kind == "--db is a directory":
            (work / "adir").mkdir()
            return one_line(cli(work, "run", *QUICK, "--db", str(work / "adir")), "adir")
        if kind == "ADVBENCH_HOME is a file":
            proc = cli(
                work,
                "train",
                "softmax",
                "--seed",
                "5",
                "--steps",
                "10",
                env={"ADVBENCH_HOME": str(work / "afile")},
            )
            return one_line(proc, "afile")
        if kind == "read-only filesystem":
            return one_line(cli(work, *run_db(work)[:-2], "--out", "/proc/advbench-out"), "/proc")
        if kind == "eval --json is a directory":
            (work / "jdir").mkdir()
            return one_line(
                cli(work, "eval", "softmax", "--limit", "10", "--json", str(work / "jdir")), "jdir"
            )

        # a full disk: no file may grow past 64 KiB, so the results cannot be written
        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

        proc = cli(work, *run_db(work), preexec_fn=limit)
        return one_line(proc, "", code=proc.returncode if proc.returncode in (1, 2) else 2)

    return check


# --- kills, interrupts, concurrency ----------------------------------------------------------
def killed(sig: int) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        args = [
            "run",
            "--models",
            "softmax",
            "--attacks",
            "fgsm,noise,pgd,ifgsm",
            "--limit",
            "300",
            "--set",
            "noise.iterations=2000000000",
            "--set",
            "noise.step=1e-12",
            "--cell-timeout",
            "20",
            "--db",
            str(work / "r.sqlite"),
            "--out",
            str(work / "o"),
            "--no-figures",
        ]
        env = {**os.environ, "ADVBENCH_HOME": str(work / "home")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "advbench", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while _cells(work) < 1 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(2)  # inside noise's endless batch
        sent = time.monotonic()
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        took = time.monotonic() - sent
        if sig == signal.SIGINT and (proc.returncode != 130 or took > 15):
            return f"SIGINT: exit {proc.returncode} after {took:.1f} s"
        if _cells(work) != 1:
            return f"{_cells(work)} cells stored after the kill, expected the first"
        again = cli(work, *args)  # resume: noise times out, the rest completes
        done = _cells(work)
        return (
            None
            if again.returncode == 1 and done == 4
            else f"resume: exit {again.returncode}, {done} cells"
        )

    return check


def concurrent(work: Path) -> str | None:
    cmd = [
        sys.executable,
        "-m",
        "advbench",
        "run",
        "--models",
        "softmax,mlp",
        "--attacks",
        "fgsm,pgd,ifgsm",
        "--limit",
        "200",
        "--no-figures",
        "--db",
        str(work / "r.sqlite"),
        "--out",
        str(work / "o"),
    ]
    env = {**os.environ, "ADVBENCH_HOME": str(work / "home")}
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    codes = [p.wait(timeout=600) for p in procs]
    with sqlite3.connect(work / "r.sqlite") as con:
        runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
        cells = con.execute("SELECT COUNT(*), MAX(id) FROM cells").fetchone()
    if codes != [0, 0] or runs != 1 or cells[0] != 6:
        return f"exits {codes}, {runs} runs, {cells[0]} cells"
    return None if cells[1] == 6 else f"a cell was computed twice (ids up to {cells[1]})"


def cases() -> list[Case]:
    out = [Case("bad values", " ".join(a), bad_value(a, n)) for a, n in BAD_VALUES]
    out += [Case("corrupt data", k, corrupt_data(d)) for k, d in DATA_DAMAGE.items()]
    out += [
        Case("corrupt data", f"npz: {k}", bad_npz(k))
        for k in ("pickled objects", "shapes differ", "missing split", "not an npz")
    ]
    damages = {
        "empty record.json": (lambda f: (f / "record.json").write_text(""), "unreadable"),
        "binary record.json": (
            lambda f: (f / "record.json").write_bytes(b"\x89\x00"),
            "unreadable",
        ),
        "edited accuracy": (
            lambda f: (f / "record.json").write_text(
                (f / "record.json")
                .read_text()
                .replace('"test_accuracy": 0.', '"test_accuracy": 1.')
            ),
            "record.json",
        ),
        "missing .data": (lambda f: (f / "model.ckpt.data-00000-of-00001").unlink(), "missing"),
        "zeroed .data": (
            lambda f: (f / "model.ckpt.data-00000-of-00001").write_bytes(b"\x00" * 64),
            "corrupted",
        ),
        "garbage .index": (lambda f: (f / "model.ckpt.index").write_bytes(b"xx"), "corrupted"),
    }
    out += [
        Case("damaged checkpoints", k, checkpoint_damage(d, n)) for k, (d, n) in damages.items()
    ]
    out += [Case("hostile plugins", k, hostile_plugin(*v)) for k, v in PLUGINS.items()]
    out += [
        Case("hostile databases", k, hostile_db(k))
        for k in ("not a database", "model name ../../x", "run id prefix with %", "edited records")
    ]
    out += [
        Case("files and disks", k, files(k))
        for k in (
            "--out is a file",
            "--db is a directory",
            "ADVBENCH_HOME is a file",
            "read-only filesystem",
            "eval --json is a directory",
            "full disk",
        )
    ]
    out += [Case("kills and concurrency", "SIGKILL mid-run, then resume", killed(signal.SIGKILL))]
    out += [Case("kills and concurrency", "SIGINT inside a long batch", killed(signal.SIGINT))]
    out += [Case("kills and concurrency", "two identical runs at once", concurrent)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", help="only this family")
    parser.add_argument("--list", action="store_true", help="list the cases")
    args = parser.parse_args()
    chosen = [c for c in cases() if args.family in (None, c.family)]
    if args.list:
        for c in chosen:
            print(f"{c.family}: {c.name}")
        return 0
    handled, failed = 0, []
    for c in chosen:
        with tempfile.TemporaryDirectory(prefix="advbench-fault-") as tmp:
            try:
                problem = c.check(Path(tmp))
            except Exception as exc:  # the case itself broke: counted, not hidden
                problem = f"the case raised {type(exc).__name__}: {exc}"
        mark = "handled" if problem is None else f"NOT HANDLED: {problem}"
        print(f"[{c.family}] {c.name}: {mark}", flush=True)
        handled += problem is None
        if problem is not None:
            failed.append(c)
    print(f"\ntried {len(chosen)}, handled {handled}, not handled {len(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
