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


def test_installed_example_package_is_listed_and_runs_end_to_end(tmp_path):
    listed = _cli("plugins")
    assert listed.returncode == 0
    assert "entry point (advbench-example)" in listed.stdout, (
        "install it: pip install -e plugins/examples/advbench-example (make test does)"
    )
    out = tmp_path / "o"
    proc = _cli(
        "run",
        "--models",
        "relu-mlp,mlp",
        "--attacks",
        "gaussian,fgsm",
        "--limit",
        "100",
        "--out",
        str(out),
        "--db",
        str(tmp_path / "r.sqlite"),
        "--no-figures",
    )
    assert proc.returncode == 0, proc.stderr
    cells = {
        (c["model"], c["label"]): c for c in json.loads((out / "results.json").read_text())["cells"]
    }
    assert set(cells) == {(m, a) for m in ("relu-mlp", "mlp") for a in ("gaussian", "fgsm")}
    assert all(c["status"] == "done" for c in cells.values())
    models = json.loads((out / "results.json").read_text())["models"]
    assert next(m for m in models if m["name"] == "relu-mlp")["clean_accuracy"] > 0.9


def test_drop_in_file_runs_end_to_end(tmp_path):
    folder = ROOT / "plugins" / "examples" / "dropin"
    listed = _cli("plugins", "--plugins", str(folder))
    assert "contrast" in listed.stdout and str(folder / "contrast.py") in listed.stdout
    out = tmp_path / "o"
    proc = _cli(
        "run",
        "--models",
        "mlp",
        "--attacks",
        "contrast",
        "--limit",
        "100",
        "--out",
        str(out),
        "--db",
        str(tmp_path / "r.sqlite"),
        "--no-figures",
        env={"ADVBENCH_PLUGINS_DIR": str(folder)},
    )
    assert proc.returncode == 0, proc.stderr
    cell = json.loads((out / "results.json").read_text())["cells"][0]
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
    out = tmp_path / "o"
    proc = _cli(
        "run",
        "--models",
        "mlp",
        "--attacks",
        "signflip",
        "--limit",
        "50",
        "--out",
        str(out),
        "--db",
        str(tmp_path / "r.sqlite"),
        "--no-figures",
        "--plugins",
        str(folder),
    )
    assert proc.returncode == 0, proc.stderr
    cell = json.loads((out / "results.json").read_text())["cells"][0]
    assert cell["label"] == "signflip" and cell["status"] == "done" and cell["flip_rate"] > 0.5
