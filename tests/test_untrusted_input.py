"""A results database is input too: one crafted by someone else cannot make `report` write
outside its output directory."""

from __future__ import annotations

import sqlite3

from advbench.cli import main


def test_a_crafted_model_name_cannot_escape_the_output_directory(tmp_path, capsys):
    db = tmp_path / "db.sqlite"
    args = ["--models", "softmax", "--attacks", "fgsm", "--limit", "20", "--db", str(db)]
    assert main(["run", *args, "--out", str(tmp_path / "first")]) == 0
    evil = "../../escaped"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE cells SET model = ?", (evil,))
        con.execute("UPDATE models SET name = ?", (evil,))
    out = tmp_path / "deep" / "out"
    capsys.readouterr()
    assert main(["report", "--db", str(db), "--out", str(out)]) == 0
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*.png")}
    assert all(p.parts[0] in ("first", "deep") for p in written), written
    assert (out / "_.._.._escaped-01-fgsm.png").is_file()
