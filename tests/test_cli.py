"""The command line as a user runs it: end to end on a slice, and one-line errors."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest
from advbench_plugins import datasets

from advbench.cli import main


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "advbench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def test_end_to_end_run_on_a_slice(tmp_path):
    out = tmp_path / "run"
    proc = _cli(
        "run",
        "--models",
        "mlp",
        "--attacks",
        "noise,ifgsm",
        "--limit",
        "60",
        "--set",
        "noise.iterations=50",
        "--out",
        str(out),
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no TensorFlow noise, no progress bars off a terminal
    table = proc.stdout.split("\n\n")[0].splitlines()  # the cells' table, 100 columns at most
    assert table[0].split()[:4] == ["model", "attack", "n", "clean"], table
    assert any(line.startswith("mlp ") and "noise(iterations=50)" in line for line in table)
    assert max(len(line) for line in table) <= 100, proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["models"][0]["name"] == "mlp" and results["models"][0]["n"] == 60
    cells = {c["attack"]: c for c in results["cells"]}
    assert set(cells) == {"noise", "ifgsm"}
    keys = {
        "model",
        "attack",
        "params",
        "n",
        "clean_accuracy",
        "adversarial_accuracy",
        "flip_rate",
        "iterations_to_flip",
        "mean_l2",
        "mean_linf",
        "seconds",
        "images_per_second",
    }
    for cell in cells.values():
        assert keys <= set(cell)
        assert set(cell["iterations_to_flip"]) == {"mean", "median", "p90", "max"}
    assert cells["noise"]["params"]["iterations"] == 50
    with (out / "records.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 120
    # every number in the report traces to the per-image records
    ifgsm = [r for r in rows if r["attack"] == "ifgsm"]
    attacked = [r for r in ifgsm if r["label"] == r["clean_pred"]]
    flipped = [r for r in attacked if r["flipped"] == "True"]
    assert cells["ifgsm"]["flip_rate"] == pytest.approx(len(flipped) / len(attacked), abs=1e-6)
    its = sorted(int(r["iterations"]) for r in flipped)
    assert cells["ifgsm"]["iterations_to_flip"]["max"] == its[-1]
    report_md = (out / "report.md").read_text()
    assert "| noise(iterations=50) |" in report_md and "| ifgsm " in report_md
    assert (out / "mlp-02-ifgsm.png").stat().st_size > 1000
    assert "resuming" not in proc.stderr


def test_image_3_as_in_the_tutorial(tmp_path):
    """Section 6.2/6.4 on test image 3: noise leaves it a 0, ifgsm flips it."""
    out = tmp_path / "r"
    args = [
        "run",
        "--models",
        "mlp",
        "--attacks",
        "noise,ifgsm",
        "--limit",
        "4",
        "--out",
        str(out),
        "--db",
        str(tmp_path / "r.sqlite"),
    ]
    assert main([*args, "--no-figures"]) == 0
    with (out / "records.csv").open() as fh:
        rows = {(r["attack"], r["index"]): r for r in csv.DictReader(fh)}
    noise, ifgsm = rows[("noise", "3")], rows[("ifgsm", "3")]
    assert noise["label"] == noise["clean_pred"] == noise["adv_pred"] == "0"
    assert ifgsm["flipped"] == "True" and ifgsm["adv_pred"] != "0"
    assert int(ifgsm["iterations"]) == 102  # default mlp checkpoint (tutorial's weights: 85)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--models", "mpl"], "unknown model 'mpl'"),
        (["run", "--attacks", "fgsmm,ifgsm"], "unknown attack 'fgsmm' (known: "),
        (["run", "--set", "ifgsm.step=-1"], "invalid value -1.0 for ifgsm.step: must be > 0.0"),
        (["run", "--set", "ifgsm.step=abc"], "invalid value 'abc' for ifgsm.step"),
        (["run", "--set", "ifgsm.steps=3"], "unknown parameter ifgsm.steps"),
        (["run", "--attacks", "ifgsm", "--set", "pgd.eps=3"], "'pgd' is not a selected model"),
        (["run", "--set", "pgd.eps=0.1,,0.2"], "empty value in pgd.eps"),
        (["run", "--set", "pgd.norm=1"], "invalid value '1' for pgd.norm: choose one of inf, 2"),
        (["run", "--set", "mlp.steps=5,6"], "model parameters take one value each (mlp)"),
        (["run", "--set", "noisy"], "expected NAME.PARAM=VALUE"),
        (["run", "--limit", "0"], "--limit: must be >= 1"),
        (["run", "--bogus"], "unrecognized arguments: --bogus"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "--plugins", "/nonexistent/dir"], "plugin directory '/nonexistent/dir'"),
        (
            ["run", "--attacks", "ifgsm", "--set", "ifgsm.iterations=2147483648"],
            "ifgsm.iterations: 2147483648 steps is outside 0..2147483647",
        ),
        (["run", "--set", "pgd.seed=" + "9" * 30], "for pgd.seed: must be <= 2147483647"),
        (["run", "--out", ""], "--out: expected a path, got an empty string"),
        (["run", "--out", __file__], f"--out {__file__} is a file, not a directory"),
        (["run", "--db", os.path.dirname(__file__)], "is a directory, not a file"),
        (["eval", "--json", os.path.dirname(__file__)], "--json"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys, monkeypatch):
    def no_run(*a, **k):
        raise AssertionError("bad input reached the benchmark")

    monkeypatch.setattr("advbench.engine.run.execute", no_run)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_corrupted_data_directory_is_one_line(tmp_path):
    for f in (datasets.SHIPPED / "mnist").glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    proc = _cli(
        "run",
        "--limit",
        "5",
        "--mnist-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "o"),
        "--db",
        str(tmp_path / "r.sqlite"),
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "corrupted or truncated gzip file (Not a gzipped file (b'no'))"
    )
    assert "t10k-labels-idx1-ubyte.gz" in proc.stderr and proc.stderr.count("\n") == 1


def test_plugins_and_describe_answer_without_tensorflow():
    proc = _cli("plugins")
    assert proc.returncode == 0
    assert "mlp" in proc.stdout and "ifgsm" in proc.stdout and "builtin" in proc.stdout
    code = (
        "import sys, advbench.cli as c; c.main(['describe', 'noise']); "
        "print('tensorflow' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().endswith("False")
    assert "step" in proc.stdout and "0.01" in proc.stdout


def test_eval_prints_and_writes_json(tmp_path):
    path = tmp_path / "eval.json"
    assert main(["eval", "mlp", "--limit", "1000", "--json", str(path)]) == 0
    got = json.loads(path.read_text())["models"][0]
    assert got["name"] == "mlp" and got["n"] == 1000
    assert got["clean_accuracy"] == pytest.approx(0.87)


def test_help_names_every_command(capsys):
    from advbench.cli import COMMANDS, build_parser

    help_text = build_parser().format_help()
    description = help_text.split("positional arguments")[0]
    names = [name for name, _, _ in COMMANDS]
    assert len(names) == 10
    for name in names:
        assert name in description  # the description itself, not only argparse's list
        assert f"\n    {name} " in help_text


def test_describe_suggests_the_nearest_name(capsys):
    assert main(["describe", "pdg"]) == 2
    err = capsys.readouterr().err
    assert "unknown model, attack or dataset 'pdg'" in err and "did you mean 'pgd'?" in err
    assert err.count("\n") == 1


def test_a_closed_pipe_ends_quietly():
    """`advbench plugins | head -1`: no BrokenPipeError traceback once the reader is gone."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "advbench", "plugins"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader went away before advbench wrote anything
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert err == ""


def test_an_attack_whose_step_budget_overflows_is_refused_up_front():
    """A plugin's own `iterations()` is checked too: the driver's counter is int32, so 10^12
    steps would silently run 0 or 1 (today refused with the attack's name)."""
    from advbench import Attack, Param
    from advbench.errors import ParamError

    class Huge(Attack):
        name = "huge"
        params = (Param("iterations", 10, "steps", int, minimum=1),)

        def iterations(self, params):
            return 10**12

    with pytest.raises(ParamError, match=r"huge.iterations: 1000000000000 steps is outside"):
        Huge().config()


def test_another_batch_size_is_another_run(tmp_path, capsys):
    """The batch size changes float rounding, so a rerun with another one never resumes a run
    computed with the first (it would report the other batch's numbers as its own)."""
    args = ["run", "--models", "softmax", "--attacks", "fgsm", "--limit", "20", "--no-figures"]
    args += ["--db", str(tmp_path / "db.sqlite"), "--out", str(tmp_path / "out")]
    assert main([*args, "--batch-size", "7"]) == 0
    capsys.readouterr()
    assert main([*args, "--batch-size", "7"]) == 0
    assert "resuming" in capsys.readouterr().err
    assert main(args) == 0
    assert "resuming" not in capsys.readouterr().err


def test_a_run_id_prefix_is_text_not_a_like_pattern(tmp_path, capsys):
    """'%' and '_' in a prefix are characters: 'run-%' matches no run id (before: every one)."""
    db = tmp_path / "db.sqlite"
    args = ["--models", "softmax", "--attacks", "fgsm", "--limit", "10", "--no-figures"]
    assert main(["run", *args, "--db", str(db), "--out", str(tmp_path / "a")]) == 0
    assert main(["run", *args, "--db", str(db), "--out", str(tmp_path / "b"), "--fresh"]) == 0
    capsys.readouterr()
    assert main(["report", "run-%", "--db", str(db), "--no-figures"]) == 2
    assert "no run in" in capsys.readouterr().err
    assert main(["report", "run-", "--db", str(db), "--no-figures"]) == 2
    assert "2 runs in" in capsys.readouterr().err


def test_the_tutorial_reads_mnist_from_mnist_dir(tmp_path, monkeypatch, capsys):
    """`tutorial --mnist-dir DIR` reads MNIST there (it used to take the package's copy
    whatever the flag said): a missing file is named, a good copy is used for every read."""
    monkeypatch.delenv("ADVBENCH_MNIST_DIR", raising=False)  # restored after the test
    copy = tmp_path / "mnist"
    copy.mkdir()
    out = ["--out", str(tmp_path / "tut")]
    assert main(["tutorial", "2.4", "--mnist-dir", str(copy), *out]) == 2
    assert "train-images-idx3-ubyte.gz: MNIST file not found" in capsys.readouterr().err
    for f in (datasets.SHIPPED / "mnist").glob("*.gz"):
        shutil.copy(f, copy / f.name)
    assert main(["tutorial", "2.4", "--mnist-dir", str(copy), *out]) == 0
    assert os.environ["ADVBENCH_MNIST_DIR"] == str(copy.resolve())
    assert datasets.published_dir("mnist") == copy.resolve()
    assert main(["tutorial", "2.4", "--dataset", "fashion-mnist", *out]) == 2
    assert "the tutorials are written for MNIST only" in capsys.readouterr().err


def test_report_takes_no_data_options(capsys):
    """`report` reads only its database: a data flag would be accepted and do nothing."""
    assert main(["report", "--mnist-dir", "/tmp", "--list"]) == 2
    assert "unrecognized arguments: --mnist-dir" in capsys.readouterr().err
