"""pytest-benchmark timing of every built-in attack and every model's training (`make bench`).

Not part of `make test`: run `make bench` (saves the results with --benchmark-autosave) and
`make bench BENCH_ARGS=--benchmark-compare` to compare with the last saved run. Attacks are
timed on the first 200 test images after one warm-up run (graph optimisation excluded);
`extra_info.images_per_second` holds the throughput; `spsa` and `hopskipjump` run on smaller
budgets (`BUDGETS`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from advbench.engine import zoo

ATTACKS = [
    "noise",
    "ifgsm",
    "fgsm",
    "pgd",
    "mim",
    "deepfool",
    "cw-l2",
    "square",
    "targeted",
    "fooling",
    "apgd",
    "fab",
    "fmn",
    "autoattack",
    "spsa",
    "hopskipjump",
    "ead",
    "jsma",
]
#: Smaller budgets for the query-only attacks, whose defaults spend ~25,000 forward passes on a
#: robust image: a round of 200 images at the defaults would take minutes. Throughput per query
#: is what the bench compares.
BUDGETS = {"spsa": {"iterations": "20"}, "hopskipjump": {"iterations": "10", "max_queries": "5000"}}
# model: training steps timed (None: the model's whole definition)
TRAIN_STEPS = {"mlp": 2000, "softmax": 500, "cnn": 50, "keras-mlp": None, "cnn-pgd": 20}


def test_every_builtin_is_timed(advbench_registry):
    assert advbench_registry.builtin_names("attacks") == ATTACKS
    assert list(TRAIN_STEPS) == advbench_registry.builtin_names("models")


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_on_mlp(benchmark, advbench_attack_bench, attack):
    benchmark.group = "attacks on mlp (200 images)"
    advbench_attack_bench(benchmark, attack, BUDGETS.get(attack), model="mlp")


@pytest.mark.parametrize("attack", ["ifgsm", "pgd", "fgsm"])
def test_attack_on_cnn(benchmark, advbench_attack_bench, attack):
    benchmark.group = "attacks on cnn (200 images)"
    advbench_attack_bench(benchmark, attack, model="cnn")


@pytest.mark.parametrize("name", list(TRAIN_STEPS))
def test_training_step_rate(benchmark, advbench_registry, name):
    benchmark.group = "training"
    model = advbench_registry.models.get(name)
    steps = TRAIN_STEPS.get(name)
    overrides = {} if steps is None else {"steps": str(steps)}
    config = model.config(overrides)

    def train():
        with tempfile.TemporaryDirectory() as tmp:
            zoo.train(model, config, 0, root=Path(tmp))

    benchmark.pedantic(train, rounds=2, iterations=1, warmup_rounds=0)
    if steps:
        benchmark.extra_info["steps_per_second"] = steps / benchmark.stats.stats.mean
