"""Transferability: do adversarial examples crafted on one model fool another?

For each source model the attack runs on the test images it classifies correctly; every
successful adversarial image is then shown to every target model. The flip rate of a pair is
the share of those images, among the ones whose original the target classifies correctly, that
the target misclassifies. A second copy of an architecture trained with another seed shows the
second tutorial's retraining experiment: images crafted on one copy mostly no longer fool the
other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ATTACK = "ifgsm"  # the tutorial's attack, crafting the examples unless told otherwise


@dataclass
class Member:
    """A model taking part: registered model, configuration, training seed and display name."""

    label: str
    model: Any
    config: dict[str, Any]
    seed: int


def members(
    registry: Any, names: list[str] | None, copies: Sequence[tuple[str, int]] = ()
) -> list[Member]:
    """The selected models (None: all) with their own seeds, then each (model, seed) copy."""
    out = [Member(m.name, m, m.config(), m.default_seed) for m in registry.models.select(names)]
    for name, seed in copies:
        model = registry.models.get(name)
        out.append(Member(f"{name}@seed{seed}", model, model.config(), seed))
    return out


def run(
    members: list[Member],
    attack: Any,
    params: dict[str, Any],
    seed: int,
    images: np.ndarray,
    labels: np.ndarray,
    dataset: Any = None,
) -> dict[str, Any]:
    """The matrix of flip rates [source, target] and the counts behind each cell."""
    from advbench.engine import runner, zoo

    n = len(images)
    idx = np.arange(n, dtype=np.int64)
    crafted: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    clean: dict[str, np.ndarray] = {}
    for m in members:
        loaded = zoo.load(m.model, m.config, m.seed, dataset)
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
        loaded = zoo.load(target.model, target.config, target.seed, dataset)
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


def from_examples(
    paths: Sequence[Path], members: list[Member], test: Any, dataset: Any = None
) -> dict[str, Any]:
    """The flip rates [file, target] of adversarial examples saved by a run
    (`--save-examples`): each file's successful examples, shown to every member, among the
    ones whose original (the test image of the same index) the member classifies right."""
    from advbench.engine import runner, zoo
    from advbench.errors import AdvbenchError
    from advbench.output import examples

    sources = []
    for path in paths:
        content = examples.read(path)
        index = content["index"]
        if index.size and (index.min() < 0 or index.max() >= len(test.labels_int)):
            raise AdvbenchError(
                f"{path}: image indices beyond the test set of {len(test.labels_int)}"
            )
        if not np.array_equal(test.labels_int[index], content["label"]):
            raise AdvbenchError(f"{path}: labels differ from this dataset's (another dataset?)")
        ok = content["flipped"].astype(bool)
        adv = content["adversarial"][ok].reshape(int(ok.sum()), -1)
        sources.append(
            (f"{content['model']} × {content['cell']}", index[ok], adv, content["label"][ok])
        )
    k, n = len(sources), len(members)
    rates, counts = np.zeros((k, n)), np.zeros((k, n), dtype=int)
    for j, target in enumerate(members):
        loaded = zoo.load(target.model, target.config, target.seed, dataset)
        try:
            clean = runner.predict(loaded, test.images)
            for i, (_, where, adv, true) in enumerate(sources):
                eligible = clean[where] == true
                if eligible.any():
                    pred = runner.predict(loaded, adv[eligible])
                    rates[i, j] = float(np.mean(pred != true[eligible]))
                    counts[i, j] = int(eligible.sum())
        finally:
            loaded.close()
    return {
        "sources": [label for label, *_ in sources],
        "models": [m.label for m in members],
        "attack": "saved examples",
        "files": [str(p) for p in paths],
        "n": len(test.labels_int),
        "flip_rate": rates.round(6).tolist(),
        "examples": counts.tolist(),
    }


def write(result: dict[str, Any], out: Path) -> str:
    """transfer.json, transfer.md and transfer.png in `out`; returns the table as text."""
    from tabulate import tabulate

    from advbench.output import figures

    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.json").write_text(json.dumps(result, indent=2) + "\n")
    names = result["models"]
    sources = result.get("sources", names)  # saved examples: one row per file
    rows = [
        [src, *[f"{v:.3f}" for v in row]]
        for src, row in zip(sources, result["flip_rate"], strict=True)
    ]
    text = tabulate(rows, headers=["crafted on \\ evaluated on", *names], tablefmt="github")
    figures.heatmap(
        np.array(result["flip_rate"]),
        sources,
        names,
        out / "transfer.png",
        f"transfer flip rate ({result['attack']}, {result['n']} images)",
    )
    (out / "transfer.md").write_text(
        f"# Transferability ({result['attack']})\n\n{text}\n\n![transfer](transfer.png)\n"
    )
    return text
