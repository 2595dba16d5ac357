"""Transferability: do adversarial examples crafted on one model fool another?

For each source model the attack runs on the test images it classifies correctly; every
successful adversarial image is then shown to every target model. The flip rate of a pair is
the share of those images, among the ones whose original the target classifies correctly, that
the target misclassifies. A second copy of an architecture trained with another seed shows the
second tutorial's retraining experiment: images crafted on one copy mostly no longer fool the
other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Member:
    """A model taking part: registered model, configuration, training seed and display name."""

    label: str
    model: Any
    config: dict[str, Any]
    seed: int


def run(
    members: list[Member],
    attack: Any,
    params: dict[str, Any],
    seed: int,
    images: np.ndarray,
    labels: np.ndarray,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """The matrix of flip rates [source, target] and the counts behind each cell."""
    from advbench.engine import runner, zoo

    n = len(images)
    idx = np.arange(n, dtype=np.int64)
    crafted: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    clean: dict[str, np.ndarray] = {}
    for m in members:
        loaded = zoo.load(m.model, m.config, m.seed, data_dir)
        try:
            sample = runner.Sample.of(loaded, images, labels, idx)
            clean[m.label] = sample.clean_pred
            rec, _ = runner.run_attack(loaded, runner.AttackSpec(attack, params, seed), sample)
            ok = rec.flipped
            crafted[m.label] = (rec.index[ok], rec.adversarial[ok], rec.label[ok])
        finally:
            loaded.close()
    k = len(members)
    rates, counts = np.zeros((k, k)), np.zeros((k, k), dtype=int)
    for j, target in enumerate(members):
        loaded = zoo.load(target.model, target.config, target.seed, data_dir)
        try:
            for i, source in enumerate(members):
                where, adv, true = crafted[source.label]
                eligible = clean[target.label][where] == true
                if not eligible.any():
                    continue
                pred = runner.predict(loaded, adv[eligible])
                rates[i, j] = float(np.mean(pred != true[eligible]))
                counts[i, j] = int(eligible.sum())
        finally:
            loaded.close()
    labels_ = [m.label for m in members]
    return {
        "models": labels_,
        "attack": attack.name,
        "params": params,
        "n": n,
        "flip_rate": rates.round(6).tolist(),
        "examples": counts.tolist(),
    }
