"""The engine refuses results it can prove wrong instead of reporting them as numbers.

Each case is a drop-in plugin file loaded with `--plugins DIR`, run through the command line
as a user runs it: a model with NaN logits, a model with five classes, and an attack whose
images leave the L∞ ball it declares.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PLUGIN = textwrap.dedent(
    '''
    from advbench import (
        CLIP_PARAMS, Attack, Model, Network, Param, ThreatModel, clip, hookimpl, tf,
    )


    class Net(Network):
        def __init__(self, outputs, poison):
            t = tf()
            self.w = t.compat.v1.get_variable(
                "w", [784, outputs], initializer=t.compat.v1.zeros_initializer()
            )
            self.variables = [self.w]
            self.poison = poison

        def logits(self, x):
            return tf().matmul(x, self.w) + self.poison

        def loss(self, x, y_onehot):
            return tf().reduce_sum(tf().square(self.logits(x)), axis=1)


    class Broken(Model):
        params = (
            Param("steps", 1, "training steps", int, minimum=1),
            Param("batch_size", 10, "training batch", int, minimum=1),
        )

        def __init__(self, name, outputs, poison):
            self.name, self.outputs, self.poison = name, outputs, poison

        def build(self, config):
            return Net(self.outputs, self.poison)

        def train_step(self, net, x, y_onehot, config):
            return tf().no_op()


    class Overreach(Attack):
        """Declares an L∞ ball of 0.01 and steps 0.5 out of it."""

        name = "overreach"
        params = (Param("iterations", 2, "steps", int, minimum=1), *CLIP_PARAMS)

        def threat_model(self, params):
            return ThreatModel.bounded("linf", 0.01)

        def step(self, net, s, params):
            return clip(s.x + 0.5, params)


    @hookimpl
    def register_models(register):
        register(Broken("nan-logits", 10, float("nan")))
        register(Broken("five-classes", 5, 0.0))


    @hookimpl
    def register_attacks(register):
        register(Overreach())
    '''
)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "broken.py").write_text(PLUGIN)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "advbench",
            "run",
            "--plugins",
            str(plugins),
            "--limit",
            "30",
            "--db",
            str(tmp_path / "db.sqlite"),
            "--out",
            str(tmp_path / "out"),
            "--no-figures",
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ADVBENCH_HOME": str(tmp_path / "home")},
        timeout=600,
    )


def test_nan_logits_are_one_line_not_numbers(tmp_path):
    proc = _run(tmp_path, "--models", "nan-logits", "--attacks", "fgsm")
    assert proc.returncode == 2, proc.stderr
    assert "NaN or infinite logits for 30 of 30 images" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_model_with_another_class_count_is_one_line(tmp_path):
    proc = _run(tmp_path, "--models", "five-classes", "--attacks", "fgsm")
    assert proc.returncode == 2, proc.stderr
    # caught when the model is first built on the dataset's images, before any training
    assert "model 'five-classes' scores 5 classes" in proc.stderr
    assert "dataset 'mnist' has 10" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_an_attack_beyond_its_declared_budget_fails_its_cell(tmp_path):
    proc = _run(tmp_path, "--models", "mlp", "--attacks", "overreach,fgsm")
    assert proc.returncode == 1, proc.stderr
    cells = {
        c["attack"]: c for c in json.loads((tmp_path / "out/results.json").read_text())["cells"]
    }
    assert cells["overreach"]["status"] == "failed"
    assert "farther than the declared linf bound 0.01" in cells["overreach"]["error"]
    assert cells["fgsm"]["status"] == "done"  # the other cell of the run is unaffected


def test_swapped_weights_and_an_edited_record_are_refused(registry, tmp_path, monkeypatch, capsys):
    """A checkpoint's record seals its weights and itself: weights copied in from another seed
    would be used and reported as this seed's, an edited accuracy printed as measured."""
    from advbench.cli import main
    from advbench.engine import zoo

    monkeypatch.setenv("ADVBENCH_HOME", str(tmp_path / "home"))
    model = registry.models.get("softmax")
    one, two = (zoo.train(model, model.config(), seed) for seed in (1, 2))
    evaluate = ["eval", "softmax", "--limit", "50", "--model-seed"]
    assert main([*evaluate, "1"]) == 0

    for f in two.glob("model.ckpt.*"):
        (one / f.name).write_bytes(f.read_bytes())
    capsys.readouterr()
    assert main([*evaluate, "1"]) == 2
    err = capsys.readouterr().err
    assert "its weights are not the ones its record.json describes" in err
    assert err.count("\n") == 1

    record = json.loads((two / "record.json").read_text())
    record["test_accuracy"] = 0.99
    (two / "record.json").write_text(json.dumps(record))
    assert main([*evaluate, "2"]) == 2
    err = capsys.readouterr().err
    assert "record.json was edited" in err and str(two) in err
