"""The output's typed records and cells: one column mapping from SQL to `Records` to CSV, old
databases migrate and render, and the iteration pictures span an attack's whole step budget."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3

import numpy as np
import pytest
from matplotlib.axes import Axes

from advbench.cli import main
from advbench.engine.run import CellSpec, step_budget
from advbench.errors import AdvbenchError
from advbench.output import figures, metrics, report
from advbench.output.records import COLUMNS, CSV_HEADER, Budget, Cell, Records, Summary
from advbench.output.results import SCHEMA_VERSION, Store, run_key

# The schema as advbench wrote it before the schema had versions (user_version 0).
OLD_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, key TEXT NOT NULL, created TEXT NOT NULL,
    command TEXT NOT NULL, seed INTEGER NOT NULL, n INTEGER, data_checksum TEXT NOT NULL,
    versions TEXT NOT NULL, plan TEXT NOT NULL, finished TEXT);
CREATE INDEX runs_key ON runs(key);
CREATE TABLE models (run_id TEXT NOT NULL REFERENCES runs(id), name TEXT NOT NULL,
    info TEXT NOT NULL, PRIMARY KEY (run_id, name));
CREATE TABLE cells (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs(id),
    position INTEGER NOT NULL, model TEXT NOT NULL, label TEXT NOT NULL, attack TEXT NOT NULL,
    params TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('done', 'failed')), error TEXT,
    summary TEXT, checkpoint TEXT, model_seed INTEGER, seed INTEGER NOT NULL,
    data_checksum TEXT NOT NULL, versions TEXT NOT NULL, examples BLOB, created TEXT NOT NULL,
    UNIQUE (run_id, model, label));
CREATE TABLE records (cell_id INTEGER NOT NULL REFERENCES cells(id) ON DELETE CASCADE,
    row INTEGER NOT NULL, idx INTEGER NOT NULL, label INTEGER NOT NULL, target INTEGER NOT NULL,
    clean_pred INTEGER NOT NULL, adv_pred INTEGER NOT NULL, attacked INTEGER NOT NULL,
    flipped INTEGER NOT NULL, iterations INTEGER NOT NULL, l2 REAL NOT NULL, linf REAL NOT NULL,
    confidence REAL, PRIMARY KEY (cell_id, row));
"""
SUMMARY = {
    "n": 3,
    "rows": 3,
    "clean_accuracy": 0.666667,
    "adversarial_accuracy": 0.333333,
    "attacked": 2,
    "flipped": 1,
    "flip_rate": 0.5,
    "iterations_to_flip": {"mean": 7.0, "median": 7.0, "p90": 7.0, "max": 7},
    "mean_l2": 1.5,
    "median_l2": 1.5,
    "mean_linf": 0.1,
    "median_linf": 0.1,
    "seconds": 0.25,
    "images_per_second": 12.0,
    "budget": {"norm": "linf", "eps": 0.1},
}


def _records() -> Records:
    rng = np.random.default_rng(0)
    return Records(
        index=np.array([0, 1, 2], np.int64),
        label=np.array([7, 2, 1], np.int64),
        target=np.full(3, -1, np.int64),
        clean_pred=np.array([7, 2, 4], np.int64),
        adv_pred=np.array([3, 2, 4], np.int64),
        attacked=np.array([True, True, False]),
        iterations=np.array([7, 0, 0], np.int32),
        l2=np.array([1.5, 0.75, 0.0]),
        linf=np.array([0.1, 0.1, 0.0]),
        confidence=np.array([0.875, 0.5, np.nan]),  # NaN: the row was not attacked
        adversarial=rng.random((3, 784), dtype=np.float32),
        l1=np.array([6.25, 3.0, 0.0]),
        l0=np.array([40, 12, 0], np.int64),
        queries=np.array([120, 1000, -1], np.int64),  # -1: not counted (NULL)
    )


def _cell(**kw) -> Cell:
    fields = {
        "model": "mlp",
        "key": "pgd(eps=0.1)",
        "attack": "pgd",
        "params": {"eps": 0.1, "iterations": 40},
        "seed": 0,
        "data_checksum": "abc",
        "versions": {"advbench": "test"},
    }
    return Cell(**{**fields, **kw})


def test_one_column_mapping_round_trips_sql_records_csv(tmp_path):
    rec = _records()
    store = Store(tmp_path / "r.sqlite")
    run_id = store.open_run("k" * 16, "advbench run", 0, "abc", {}, {}, reuse=False)[0]
    cell = _cell(max_iterations=40)
    store.save_cell(run_id, 0, cell, rec)
    back = store.records(cell.id)
    for column in COLUMNS:
        np.testing.assert_array_equal(getattr(back, column.name), getattr(rec, column.name))
        assert getattr(back, column.name).dtype == np.dtype(column.dtype), column.name
    assert np.isnan(back.confidence[2])
    # NULL in SQL, not a sentinel
    sql = store.db.execute("SELECT confidence FROM records ORDER BY row").fetchall()
    assert sql == [(0.875,), (0.5,), (None,)]
    store.close()

    report.write_csv(tmp_path / "records.csv", [(cell, back)])
    with (tmp_path / "records.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_HEADER
    first = "mlp,pgd(eps=0.1),0,7,-1,7,3,True,True,7,1.5,0.1,0.875,,6.25,40,120"  # no component
    assert rows[1] == first.split(",")
    assert rows[3][CSV_HEADER.index("confidence")] == ""
    assert rows[3][CSV_HEADER.index("flipped")] == "False"
    assert rows[3][CSV_HEADER.index("queries")] == ""


def test_a_schema_6_cell_keeps_its_seal_and_reads_l1_l0_queries_as_unmeasured(tmp_path):
    """Schema 7 added L1, L0 and queries: a cell sealed by schema 6 (without them) must still
    pass its seal check after the migration, and read the new columns as not measured."""
    path = tmp_path / "r.sqlite"
    store = Store(path)
    run_id = store.open_run("k" * 16, "advbench run", 0, "abc", {}, {}, reuse=False)[0]
    cell = _cell(max_iterations=40)
    store.save_cell(run_id, 0, cell, _records())
    store.close()
    with sqlite3.connect(path) as con:  # back to schema 6, sealed as schema 6 sealed
        for column in ("l1", "l0", "queries"):
            con.execute(f"ALTER TABLE records DROP COLUMN {column}")
        old = [c.sql for c in COLUMNS if c.since < 7]
        h = hashlib.sha256()
        (summary,) = con.execute("SELECT summary FROM cells").fetchone()
        h.update((summary or "null").encode())
        for row in con.execute(f"SELECT row, {', '.join(old)} FROM records ORDER BY row"):
            h.update(json.dumps(row).encode())
        con.execute("UPDATE cells SET digest = ?", (h.hexdigest(),))
        con.execute("PRAGMA user_version = 6")
    store = Store(path)
    back = store.records(cell.id)  # checks the seal
    assert np.isnan(back.l1).all() and (back.l0 == -1).all() and (back.queries == -1).all()
    np.testing.assert_array_equal(back.l2, _records().l2)
    with sqlite3.connect(path) as con:  # and an edit after the migration is still caught
        con.execute("UPDATE records SET l1 = 1.0 WHERE row = 0")
    with pytest.raises(AdvbenchError, match="changed after it was stored"):
        store.records(cell.id)
    store.close()


def test_an_old_schema_database_opens_resumes_and_renders(tmp_path):
    path = tmp_path / "old.sqlite"
    rec = _records()
    with sqlite3.connect(path) as con:
        con.executescript(OLD_SCHEMA)
        con.execute(
            "INSERT INTO runs (id, key, created, command, seed, data_checksum, versions, plan)"
            " VALUES ('run-1', 'key', '2026-01-01', 'advbench run', 0, 'abc', '{}', '{}')"
        )
        model = {"name": "mlp", "clean_accuracy": 0.666667, "n": 3, "seed": 10}
        con.execute("INSERT INTO models VALUES ('run-1', 'mlp', ?)", (json.dumps(model),))
        con.execute(
            "INSERT INTO cells (id, run_id, position, model, label, attack, params, status,"
            " summary, seed, data_checksum, versions, examples, created) VALUES (1, 'run-1', 0,"
            " 'mlp', 'pgd(eps=0.1)', 'pgd', ?, 'done', ?, 0, 'abc', '{}', ?, 'now')",
            (
                json.dumps({"eps": 0.1, "iterations": 40}),
                json.dumps(SUMMARY),
                _npy(rec.adversarial[:1]),
            ),
        )
        con.execute(
            "INSERT INTO cells (id, run_id, position, model, label, attack, params, status,"
            " error, summary, seed, data_checksum, versions, created) VALUES (2, 'run-1', 1,"
            " 'mlp', 'cw-l2', 'cw-l2', '{}', 'failed', 'RuntimeError: no', 'null', 0, 'abc',"
            " '{}', 'now')"
        )
        for i in range(3):
            con.execute(
                "INSERT INTO records VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    i,
                    int(rec.index[i]),
                    int(rec.label[i]),
                    -1,
                    int(rec.clean_pred[i]),
                    int(rec.adv_pred[i]),
                    int(rec.attacked[i]),
                    int(rec.flipped[i]),
                    int(rec.iterations[i]),
                    float(rec.l2[i]),
                    float(rec.linf[i]),
                    -1.0 if np.isnan(rec.confidence[i]) else float(rec.confidence[i]),
                ),
            )
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert store.done_keys("run-1") == {("mlp", "pgd(eps=0.1)")}
    assert np.isnan(store.records(1).confidence[2])
    run = store.load_run("run-1")
    assert run.cells[0].max_iterations is None and run.cells[0].originals is None
    # everything stored before datasets had names is MNIST's; the run's key follows its plan
    assert run.info["dataset"] == "mnist" and {c.dataset for c in run.cells} == {"mnist"}
    assert store.find_run(run_key({"dataset": "mnist"})) == "run-1"
    assert run.cells[0].budget == Budget("linf", 0.1) and not run.cells[1].done

    out = tmp_path / "out"
    rendered = report.render(store, "run-1", out)
    results = json.loads((out / "results.json").read_text())
    assert [c["label"] for c in results["cells"]] == ["pgd(eps=0.1)", "cw-l2"]
    assert {k: v for k, v in results["cells"][0].items() if k in SUMMARY} == SUMMARY
    assert results["cells"][1]["error"] == "RuntimeError: no"
    assert "run" in results and results["run"]["n"] == 3
    assert (out / "mlp-01-pgd_eps_0.1_.png").stat().st_size > 1000  # drawn without originals
    assert "| mlp     | cw-l2 " in report.table(rendered)
    with (out / "records.csv").open() as fh:
        assert [r["confidence"] for r in csv.DictReader(fh)] == ["0.875", "0.5", ""]

    # resuming: the failed cell is stored again, in the migrated table
    cw = _cell(key="cw-l2", attack="cw-l2", params={}, max_iterations=500)
    store.save_cell("run-1", 1, cw, rec)
    assert store.done_keys("run-1") == {("mlp", "pgd(eps=0.1)"), ("mlp", "cw-l2")}
    assert store.load_run("run-1").cells[1].max_iterations == 500
    store.close()
    assert Store(path).db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _npy(images: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, images, allow_pickle=False)
    return buf.getvalue()


def test_cw_iteration_pictures_span_all_its_steps(registry, tmp_path, monkeypatch):
    """C&W's iterations-to-flip count over every round of its search: 5 × 200 by default."""
    cw = registry.attacks.get("cw-l2")
    params = cw.config()
    assert params["iterations"] == 200
    assert step_budget(CellSpec(cw, params, {})) == 1000

    rec = _records()
    cell = _cell(key="cw-l2", attack="cw-l2", params=params, max_iterations=1000, id=1)
    cell.summary = metrics.summarize(rec, 1.0)
    assert figures.step_budget(cell) == 1000
    drawn: list[float] = []
    real_plot = Axes.plot

    def plot(self, x, *args, **kw):
        drawn.append(float(np.max(x)))
        return real_plot(self, x, *args, **kw)

    monkeypatch.setattr(Axes, "plot", plot)
    assert figures.render_all([cell], {1: rec}, tmp_path) == [
        "iterations-cdf.png",
        "accuracy-vs-iterations.png",
    ]
    assert drawn == [1000.0, 1000.0]


@pytest.mark.parametrize(
    ("stored", "seen", "expected"), [(None, 50, 100), (None, 437, 437), (40, 37, 40)]
)
def test_the_step_budget_without_a_stored_one(stored, seen, expected):
    """Cells of old databases: the `iterations` parameter, widened to the largest
    iterations-to-flip seen; a stored budget is the budget."""
    cell = _cell(params={"iterations": 100}, max_iterations=stored)
    its = {"mean": 1.0, "median": 1.0, "p90": 1.0, "max": seen}
    cell.summary = Summary.from_dict({**SUMMARY, "iterations_to_flip": its})
    assert figures.step_budget(cell) == expected


def test_a_database_on_read_only_media_is_listed_and_rendered(tmp_path, capsys):
    """`report` on a database it cannot write (read-only media, someone else's files): it
    lists and renders without writing a byte, not even SQLite's side files."""
    db = tmp_path / "media" / "r.sqlite"
    run = ["run", "--models", "mlp", "--attacks", "fgsm", "--limit", "20", "--no-figures"]
    assert main([*run, "--db", str(db), "--out", str(tmp_path / "first")]) == 0
    before = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.is_file()}
    store = Store(db, read_only=True)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.db.execute("DELETE FROM cells")
        assert len(store.runs()) == 1
    finally:
        store.close()
    (db.parent).chmod(0o555)
    db.chmod(0o444)
    try:
        capsys.readouterr()
        assert main(["report", "--db", str(db), "--list"]) == 0
        assert "fgsm" not in capsys.readouterr().err
        assert main(["report", "--db", str(db), "--out", str(tmp_path / "again")]) == 0
    finally:
        (db.parent).chmod(0o755)
        db.chmod(0o644)
    assert (tmp_path / "again" / "report.md").is_file()
    assert {p.name: p.read_bytes() for p in db.parent.iterdir() if p.is_file()} == before


def test_a_value_edited_in_the_database_is_refused_not_rendered(tmp_path, capsys):
    """Stored cells are sealed (a checksum over summary and records): a prediction edited in
    the database afterwards is one line naming the cell, not a report that looks computed."""
    db = tmp_path / "r.sqlite"
    run = ["run", "--models", "mlp", "--attacks", "fgsm", "--limit", "20", "--no-figures"]
    assert main([*run, "--db", str(db), "--out", str(tmp_path / "o")]) == 0
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "same")]) == 0
    with sqlite3.connect(db) as con:
        con.execute("UPDATE records SET adv_pred = (adv_pred + 1) % 10 WHERE row = 3")
    capsys.readouterr()
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "edited")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cell mlp × fgsm was changed after it was stored" in err and "\n" not in err
    assert not (tmp_path / "edited" / "report.md").exists()
