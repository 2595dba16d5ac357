"""Checkpoints that are damaged, half-replaced or left behind by killed trainings: one line
that says how to recover, never a TensorFlow stack or a checkpoint that looks whole."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advbench.engine import zoo


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A softmax checkpoint trained through the CLI into a throw-away cache."""
    home = tmp_path_factory.mktemp("home")
    proc = _advbench(home, "train", "softmax", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    return next((home / "checkpoints").glob("softmax-mnist-s1-*"))


def _advbench(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "advbench", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ADVBENCH_HOME": str(home)},
        timeout=600,
    )


def _damaged_copy(trained: Path, tmp_path: Path, damage) -> tuple[Path, Path]:
    home = tmp_path / "home"
    folder = home / "checkpoints" / trained.name
    shutil.copytree(trained, folder)
    damage(folder)
    return home, folder


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "record.json").write_text(""), "record.json is unreadable"),
        (lambda f: (f / "record.json").write_bytes(b"\x89PNG\x00\xff"), "is unreadable"),
        (lambda f: (f / "record.json").write_text("[1, 2]"), "is not a checkpoint record"),
        (
            lambda f: (f / "model.ckpt.data-00000-of-00001").unlink(),
            "model.ckpt.data-00000-of-00001 is missing",
        ),
        (
            lambda f: (f / "model.ckpt.data-00000-of-00001").write_bytes(b"\x00" * 100),
            "is corrupted",
        ),
        (lambda f: (f / "model.ckpt.index").write_bytes(b"garbage"), "is corrupted"),
    ],
    ids=["empty-record", "binary-record", "not-a-record", "missing-data", "bad-data", "bad-index"],
)
def test_a_damaged_checkpoint_is_one_line_saying_how_to_recover(
    trained, tmp_path, damage, message, capsys, monkeypatch
):
    from advbench.cli import main

    home, folder = _damaged_copy(trained, tmp_path, damage)
    monkeypatch.setenv("ADVBENCH_HOME", str(home))
    assert main(["eval", "softmax", "--model-seed", "1", "--limit", "20"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert f"delete {folder} and it is retrained on next use" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_replacement_killed_while_the_old_checkpoint_is_deleted_leaves_the_new_one(
    registry, tmp_path, monkeypatch
):
    """The old checkpoint is renamed aside before the new one goes in, and deleted last: a
    kill during that deletion leaves the new checkpoint whole under the final name."""
    model = registry.models.get("softmax")
    config = model.config({"steps": "30"})
    first = zoo.train(model, config, seed=0, root=tmp_path)
    real_rmtree = shutil.rmtree

    def killed_while_deleting_the_old(path, *args, **kwargs):
        if ".old-" in str(path) and Path(path).exists():
            raise KeyboardInterrupt  # the process dies here
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_while_deleting_the_old)
    with pytest.raises(KeyboardInterrupt):
        zoo.train(model, config, seed=0, root=tmp_path)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    loaded = zoo.restore(model, config, first)  # verifies the seal of weights and record
    loaded.close()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers and all(".old-" in p for p in leftovers)


def test_leftovers_of_killed_trainings_are_removed(registry, tmp_path):
    model = registry.models.get("softmax")
    config = model.config({"steps": "30"})
    dead = 2**22 + 12345  # no such process on Linux (pid_max is at most 2^22)
    stale = [tmp_path / f".softmax-s0-x.tmp-{dead}", tmp_path / f".softmax-s0-x.old-{dead}"]
    for folder in stale:
        folder.mkdir(parents=True)
    mine = tmp_path / f".softmax-s0-x.tmp-{os.getpid()}"  # a live process's: kept
    mine.mkdir()
    zoo.train(model, config, seed=0, root=tmp_path)
    assert not any(f.exists() for f in stale)
    assert mine.exists()
