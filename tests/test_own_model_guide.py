"""docs/own-model.md, run as written: its Python trains and saves a Keras model, its three
commands describe it and benchmark it; the guide cannot rot unnoticed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "own-model.md"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", GUIDE.read_text(), flags=re.S)


@pytest.mark.slow  # three processes that each start TensorFlow, and a training
def test_the_guide_goes_from_a_keras_model_to_a_report(tmp_path):
    (python,) = _blocks("python")
    (commands,) = _blocks("sh")
    (tmp_path / "train_my_cnn.py").write_text(python)
    lines = [line for line in commands.splitlines() if line.strip()]
    assert len(lines) == 3, "the guide promises three commands"
    outputs = []
    for line in lines:
        argv = shlex.split(line)
        program = [sys.executable] if argv[0] == "python" else [sys.executable, "-m", argv[0]]
        proc = subprocess.run(
            [*program, *argv[1:]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=600,
        )
        assert proc.returncode == 0, f"{line}: {proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    assert (tmp_path / "my_cnn.keras").is_file()
    assert "probabilities (a softmax: attacked through its input)" in outputs[1]
    assert "keras:my_cnn.keras" in outputs[2] and "pgd" in outputs[2]
    (report,) = (tmp_path / "reports").glob("*/report.md")
    assert "**probabilities as logits**" in report.read_text()
