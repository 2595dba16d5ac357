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


def test_saved_examples_come_out_whole_and_transfer_reads_them(tmp_path, capsys):
    """`run --save-examples` writes every attacked image of every cell as .npz (not only the
    8 of the pictures), `report --save-examples` exports the same from the database, and
    `transfer --examples` shows them to other models; a bad file is one line."""
    import csv

    import numpy as np

    db, out = str(tmp_path / "r.sqlite"), tmp_path / "run"
    run = ["run", "--models", "mlp", "--attacks", "fgsm", "--limit", "60", "--db", db]
    assert main([*run, "--out", str(out), "--no-figures", "--save-examples"]) == 0
    assert "wrote the adversarial images of 1 cells" in capsys.readouterr().out
    saved = np.load(out / "examples" / "mlp--fgsm.npz", allow_pickle=False)
    assert saved["adversarial"].shape == (60, 28, 28, 1) and str(saved["model"]) == "mlp"
    rows = list(csv.DictReader((out / "records.csv").open()))
    assert [int(r["index"]) for r in rows] == saved["index"].tolist()
    assert [r["flipped"] == "True" for r in rows] == saved["flipped"].tolist()
    assert saved["flipped"].sum() > 8  # all of them, not the pictures' few
    linf = np.abs(saved["adversarial"].reshape(60, -1) - _test_images(60)).max(axis=1)
    np.testing.assert_allclose(linf, [float(r["linf"]) for r in rows], atol=1e-6)

    assert main(["report", "--db", db, "--out", str(tmp_path / "again"), "--save-examples"]) == 0
    again = np.load(tmp_path / "again" / "examples" / "mlp--fgsm.npz", allow_pickle=False)
    for name in saved.files:
        assert np.array_equal(saved[name], again[name]), name

    capsys.readouterr()
    args = ["transfer", "--examples", str(out / "examples"), "--models", "mlp,softmax"]
    assert main([*args, "--out", str(tmp_path / "t")]) == 0
    result = json.loads((tmp_path / "t" / "transfer.json").read_text())
    assert result["sources"] == ["mlp × fgsm"] and result["models"] == ["mlp", "softmax"]
    assert result["flip_rate"][0][0] == 1.0  # they fool the model they were made on
    assert result["examples"][0][0] == int(saved["flipped"].sum())

    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.npz").write_bytes(b"not a zip")
    assert main([*args[:1], "--examples", str(tmp_path / "bad"), "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err.strip()
    assert "x.npz: not an advbench examples file" in err and "\n" not in err


def _test_images(n: int):
    from advbench.engine import data

    return data.read_test_set().images[:n]
