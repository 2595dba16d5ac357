"""advbench's `apgd` against IBM ART's AutoProjectedGradientDescent on the same graph and images.

Usage: python scripts/apgd_vs_art.py MODEL LOSS N   (e.g. cnn-pgd ce 500; needs advbench[art])

Prints robust accuracy (correct and never flipped) of both at apgd's defaults (L∞, ε 0.3, 100
steps, 1 restart) with `loss`, and the wall seconds of each after a 10-image warm-up.
"""

from __future__ import annotations

import sys

import numpy as np

from advbench.engine import data, runner, zoo
from advbench.host import plugins
from advbench.lab import art_apgd


def main(model_name: str, loss: str, n: int) -> None:
    registry = plugins.load()
    model = registry.models.get(model_name)
    loaded = zoo.load(model, model.config(), model.default_seed)
    test = data.read_test_set()
    images, labels = test.images[:n], test.labels_int[:n]
    index = np.arange(n, dtype=np.int64)
    attack = registry.attacks.get("apgd")
    params = attack.config({"loss": loss})
    spec = runner.AttackSpec(attack, params, 0)
    sample = runner.Sample.of(loaded, images, labels, index)
    graph = runner.build_attack_graph(loaded, spec)
    warm = slice(0, 10)
    runner.run_attack(loaded, spec, sample.first(10), graph=graph)
    records, ours_s = runner.run_attack(loaded, spec, sample, graph=graph)
    ours = float((records.attacked & ~records.flipped).mean())
    art_apgd.apgd(loaded, params, images[warm], labels[warm])
    adversarial, art_s = art_apgd.apgd(loaded, params, images, labels)
    assert np.abs(adversarial - images).max() <= params["eps"] + 1e-5
    theirs = float((runner.predict(loaded, adversarial) == labels).mean())
    print(
        f"{model_name} loss={loss} n={n}: advbench apgd {ours:.3f} ({ours_s:.1f} s), "
        f"ART APGD {theirs:.3f} ({art_s:.1f} s), ART/advbench time {art_s / ours_s:.1f}x"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
