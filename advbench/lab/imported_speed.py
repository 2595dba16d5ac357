"""`advbench bench`'s imported-model row: does a model that arrives as a file cost more to attack?

The shipped `cnn` (the tutorial's network, built natively in TF1 ops) and its twin made with
Keras 3 — the same layers, the same weights copied in, saved as a `.keras` file and brought in
the way a user brings theirs (`keras:PATH`: frozen to a GraphDef and imported into the attack
graph) — attacked by `pgd` on the same images, alternately, in one process. Both graphs are
built and run once before the clock starts; each side's figure is the median of its runs, so a
drift in the machine's speed hits both alike. The per-image results (prediction, steps to
flip, distance) must be the same: the import must not change what the attack finds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.lab import timing

NATIVE, ATTACK = "cnn", "pgd"


@dataclass(frozen=True)
class ImportedBench:
    """The row: both sides' median seconds and how their per-image results compare."""

    n: int
    native_seconds: float
    imported_seconds: float
    repeats: int
    differing_images: int  # images whose prediction, steps or L∞ distance differ
    largest_linf_gap: float

    @property
    def ratio(self) -> float:
        return self.imported_seconds / self.native_seconds


def keras_twin(weights: list[np.ndarray]) -> Any:
    """The `cnn` network as a Keras model, with `weights` (the native variables, in their
    order: conv kernels are HWIO in both, and Flatten reads NHWC as the native reshape does)."""
    import keras

    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2, padding="same"),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dense(10),
        ]
    )
    model.set_weights(weights)
    return model


def measure(
    registry: Any, images: np.ndarray, labels: np.ndarray, dataset: Any = None, repeats: int = 3
) -> ImportedBench:
    """`ATTACK` on the native `NATIVE` (trained on `dataset`; None: the default) and on its
    imported Keras twin, side by side."""
    from advbench.engine import runner, zoo

    native_model = registry.models.get(NATIVE)
    attack = registry.attacks.get(ATTACK)
    native = zoo.load(native_model, native_model.config(), native_model.default_seed, dataset)
    loaded = [native]
    try:
        weights = native.session.run(native.network.variables)
        with tempfile.TemporaryDirectory(prefix="advbench-bench-") as folder:
            path = Path(folder) / "cnn.keras"
            keras_twin(weights).save(path)
            twin_model = registry.models.get(f"keras:{path}")
            twin = zoo.load(twin_model, twin_model.config(), twin_model.default_seed, dataset)
            loaded.append(twin)
        params = attack.for_dataset(attack.config(), native.spec)
        runs = []
        for model in loaded:
            spec = runner.AttackSpec(attack, params, 0)
            sample = runner.Sample.of(model, images, labels)
            run = timing.attack_run(model, spec, sample, runner.build_attack_graph(model, spec))
            run()  # graph optimisation and first-touch allocation are not the attack's
            runs.append(run)
        seconds: list[list[float]] = [[], []]
        results: list[Any] = [None, None]
        for _ in range(repeats):
            for side, run in enumerate(runs):
                records, took = run()
                seconds[side].append(took)
                results[side] = records
    finally:
        for model in loaded:
            model.close()
    mine, theirs = results
    differ = (
        (mine.adv_pred != theirs.adv_pred)
        | (mine.iterations != theirs.iterations)
        | (mine.clean_pred != theirs.clean_pred)
        | ~np.isclose(mine.linf, theirs.linf, rtol=0, atol=1e-6)
    )
    return ImportedBench(
        len(images),
        float(np.median(seconds[0])),
        float(np.median(seconds[1])),
        repeats,
        int(differ.sum()),
        float(np.abs(mine.linf - theirs.linf).max()) if len(mine.linf) else 0.0,
    )


def render(b: ImportedBench) -> list[str]:
    """The lines `advbench bench` prints for the row."""
    same = (
        "the same per-image results"
        if b.differing_images == 0
        else f"DIFFERENT results on {b.differing_images} images"
    )
    return [
        f"{ATTACK} on {NATIVE} built natively vs imported from a saved Keras file (same "
        f"weights), {b.n} images, median of {b.repeats}: native {b.native_seconds:.2f} s, "
        f"imported {b.imported_seconds:.2f} s ({b.ratio:.2f}×); {same}"
    ]


def as_json(b: ImportedBench) -> dict[str, Any]:
    """The row as `advbench bench --json` writes it."""
    return {**vars(b), "ratio": b.ratio, "model": NATIVE, "attack": ATTACK}
