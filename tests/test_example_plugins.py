"""The example plugins work end to end through the CLI, as a user would install and run them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "advbench", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def _run(tmp_path, models: str, attacks: str, limit: int, *extra, env=None):
    """`advbench run` into `tmp_path` (own results database, no figures): the process and
    the run's results.json (None if it wrote none)."""
    out = tmp_path / "o"
    proc = _cli(
        "run",
        "--models",
        models,
        "--attacks",
        attacks,
        "--limit",
        str(limit),
        "--out",
        str(out),
        "--db",
        str(tmp_path / "r.sqlite"),
        "--no-figures",
        *extra,
        env=env,
    )
    results = out / "results.json"
    return proc, json.loads(results.read_text()) if results.exists() else None


def test_installed_example_package_is_listed_and_runs_end_to_end(tmp_path):
    listed = _cli("plugins")
    assert listed.returncode == 0
    assert "entry point (advbench-example)" in listed.stdout, (
        "install it: pip install -e plugins/examples/advbench-example (make test does)"
    )
    proc, results = _run(tmp_path, "relu-mlp,mlp", "gaussian,fgsm", 100)
    assert proc.returncode == 0, proc.stderr
    cells = {(c["model"], c["label"]): c for c in results["cells"]}
    assert set(cells) == {(m, a) for m in ("relu-mlp", "mlp") for a in ("gaussian", "fgsm")}
    assert all(c["status"] == "done" for c in cells.values())
    models = results["models"]
    assert next(m for m in models if m["name"] == "relu-mlp")["clean_accuracy"] > 0.9


def test_the_installed_example_joins_runs_only_when_named(registry):
    """Installing a plugin that says `in_every = False` (the example does) must not change a
    user's runs that name no models or attacks; named, it is there."""
    assert "relu-mlp" in registry.models.entries and "gaussian" in registry.attacks.entries
    every_model = [m.name for m in registry.models.select(None)]
    every_attack = [a.name for a in registry.attacks.select(None)]
    assert "relu-mlp" not in every_model and "mlp" in every_model
    assert "gaussian" not in every_attack and "pgd" in every_attack
    assert [m.name for m in registry.models.select(["relu-mlp"])] == ["relu-mlp"]
    listed = _cli("plugins")
    assert "relu-mlp*" in listed.stdout and "runs only when named" in listed.stdout


def test_drop_in_file_runs_end_to_end(tmp_path):
    folder = ROOT / "plugins" / "examples" / "dropin"
    listed = _cli("plugins", "--plugins", str(folder))
    assert "contrast" in listed.stdout and str(folder / "contrast.py") in listed.stdout
    proc, results = _run(
        tmp_path, "mlp", "contrast", 100, env={"ADVBENCH_PLUGINS_DIR": str(folder)}
    )
    assert proc.returncode == 0, proc.stderr
    cell = results["cells"][0]
    assert cell["label"] == "contrast" and cell["flip_rate"] > 0.5


def test_block_list_pins_the_run(tmp_path):
    proc = _cli("plugins", "--json", env={"ADVBENCH_PLUGINS_BLOCK": "example"})
    names = {p["name"] for p in json.loads(proc.stdout)}
    assert "example" not in names and "mlp" in names


def test_the_guides_example_attack_runs_as_written(tmp_path):
    """docs/plugins.md's `signflip`, copied out of the guide into a drop-in folder, is listed
    and runs: the guide's code cannot rot unnoticed."""
    guide = (ROOT / "docs" / "plugins.md").read_text()
    start = guide.index("```python\n", guide.index("my_attacks/__init__.py")) + len("```python\n")
    code = guide[start : guide.index("```", start)]
    folder = tmp_path / "my_attacks"
    folder.mkdir()
    (folder / "signflip.py").write_text(textwrap.dedent(code))
    listed = _cli("plugins", "--plugins", str(folder))
    assert listed.returncode == 0 and "signflip" in listed.stdout, listed.stderr
    proc, results = _run(tmp_path, "mlp", "signflip", 50, "--plugins", str(folder))
    assert proc.returncode == 0, proc.stderr
    cell = results["cells"][0]
    assert cell["label"] == "signflip" and cell["status"] == "done" and cell["flip_rate"] > 0.5
