"""Transferability: examples crafted on a model fool it, and mostly not a retrained copy."""

from __future__ import annotations

import json

from advbench.cli import main


def test_transfer_matrix_and_the_retraining_experiment(tmp_path, capsys):
    out = tmp_path / "t"
    args = [
        "transfer",
        "--models",
        "mlp,softmax",
        "--copy",
        "mlp:11",
        "--limit",
        "300",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    result = json.loads((out / "transfer.json").read_text())
    assert result["models"] == ["mlp", "softmax", "mlp@seed11"]
    rates = result["flip_rate"]
    for i in range(3):
        assert rates[i][i] == 1.0  # every crafted example fools its own model
        assert result["examples"][i][i] > 100
    assert rates[0][2] < 0.3  # mlp's examples mostly do not fool the mlp retrained with seed 11
    assert (out / "transfer.png").stat().st_size > 5000
    assert "mlp@seed11" in capsys.readouterr().out


def test_bad_copy_is_one_line(capsys):
    assert main(["transfer", "--copy", "mlp"]) == 2
    assert "expected MODEL:SEED" in capsys.readouterr().err
