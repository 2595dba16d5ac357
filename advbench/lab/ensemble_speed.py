"""`advbench bench`'s worst-case rows: what a robust-accuracy evaluation costs, in one run.

On the adversarially trained `cnn-pgd` at L∞ ε = 0.3 (the budget it was trained for), on the
same images (`apgd` against its floor is `speed`'s row, next to `pgd` on the same model):
- the standard `autoattack` ensemble as a run does it — each component only on the images the
  earlier ones left robust — against the same components each run on every image (what running
  them one by one costs);
- the same job as IBM ART 1.19's `AutoAttack` (its APGD-CE, APGD-DLR and Square with
  AutoAttack's budgets: `autoattack version=custom components=apgd-ce+apgd-dlr+square`), and
  ART doing it on the same graph and images when the `[art]` extra is installed
  (`art_apgd.autoattack`); with the model's forward pass timed alone: on a robust model
  Square's queries are nearly all the work, one forward pass each, whoever runs them.
Every way builds its graphs inside its own clock: a cold ensemble is what a user's run pays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from advbench.lab import art_apgd, timing

MODEL, EPS = "cnn-pgd", 0.3
ART_JOB = "apgd-ce+apgd-dlr+square"  # what ART's AutoAttack runs (art_apgd.autoattack)


@dataclass(frozen=True)
class Part:
    """One component's run: the images it attacked, the steps it spent on them (gradient
    steps or queries: iterations-to-flip, or the budget where none), its seconds."""

    label: str
    attacked: int
    steps: float
    seconds: float


@dataclass
class EnsembleBench:
    """The worst-case rows of one `advbench bench`."""

    n: int  # test images
    cascade: list[Part]  # the ensemble as a run does it
    robust: float  # the ensemble's robust accuracy on the n images
    every_image: list[Part]  # each component alone on every image
    art_job: list[Part]  # advbench's ensemble of ART's components (ART_JOB)
    art_job_robust: float
    forward_seconds: float  # one forward pass over the n images (median of several)
    art: dict[str, float] | None  # ART's seconds and robust accuracy, when installed

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.cascade)

    @property
    def every_image_seconds(self) -> float:
        return sum(p.seconds for p in self.every_image)

    @property
    def art_job_seconds(self) -> float:
        return sum(p.seconds for p in self.art_job)


def measure(registry: Any, n: int, dataset: Any = None) -> EnsembleBench:
    """The rows, on the first `n` test images of `dataset` (an `advbench.Dataset`; None: the
    default, MNIST: `MODEL` takes nothing else)."""
    from advbench.engine import data, ensemble, runner, zoo

    model = registry.models.get(MODEL)
    autoattack = registry.attacks.get("autoattack")
    test = data.read_test_set(dataset)
    images, labels = test.images[:n], test.labels_int[:n]
    loaded = zoo.load(model, model.config(), model.default_seed, dataset)
    try:
        sample = runner.Sample.of(loaded, images, labels)
        batch = model.hints.attack_batch_size
        find = registry.attacks.get

        def cascade_of(overrides: dict[str, Any]) -> tuple[list[Part], float, list[Any]]:
            params = autoattack.for_dataset(autoattack.config(overrides), loaded.spec)
            parts = ensemble.resolved(autoattack, params, autoattack.name, find, loaded.spec)
            budgets = {label: part.iterations(p) for label, part, p in parts or []}
            timed: list[tuple[str, Any, float]] = []
            records = ensemble.run_in_memory(
                loaded, autoattack, params, sample, find, 0, batch_size=batch, timings=timed
            )
            robust = float(np.mean(records.attacked & (records.adv_pred == records.label)))
            return [_part(lb, rec, s, budgets[lb]) for lb, rec, s in timed], robust, parts or []

        cascade, robust, parts = cascade_of({"eps": EPS})
        art_job, art_job_robust, _ = cascade_of(
            {"eps": EPS, "version": "custom", "components": ART_JOB}
        )
        forward = timing.forward_seconds(loaded, images)
        every = []
        for label, part, part_params in parts:
            spec = runner.AttackSpec(part, part_params, part.seed(part_params, 0))
            rec, seconds = runner.run_attack(loaded, spec, sample, batch_size=batch)
            every.append(_part(label, rec, seconds, part.iterations(part_params)))
        art = _art(loaded, images, labels, sample) if art_apgd.available() else None
    finally:
        loaded.close()
    return EnsembleBench(n, cascade, robust, every, art_job, art_job_robust, forward, art)


def _part(label: str, records: Any, seconds: float, budget: int) -> Part:
    return Part(label, int(records.attacked.sum()), timing.work(records, budget), seconds)


def _art(loaded: Any, images: np.ndarray, labels: np.ndarray, sample: Any) -> dict[str, float]:
    """ART's AutoAttack on the images: seconds, robust accuracy, and its largest L∞ step."""
    from advbench.engine import runner

    adversarial, seconds = art_apgd.autoattack(loaded, EPS, images, labels)
    pred = runner.predict(loaded, adversarial)
    correct = sample.clean_pred == labels
    return {
        "seconds": seconds,
        "robust": float(np.mean(correct & (pred == labels))),
        "linf": float(np.abs(adversarial - images).max()),
    }


def render(b: EnsembleBench) -> list[str]:
    """The lines `advbench bench` prints for the worst-case rows."""
    lines = [
        f"worst case on {MODEL} at L∞ ε {EPS}, first {b.n} test images:",
        f"  autoattack standard, each component on the images left robust: {b.seconds:.1f} s, "
        f"robust accuracy {b.robust:.3f}",
        f"  the same {len(b.every_image)} components each on every image: "
        f"{b.every_image_seconds:.1f} s; the ensemble takes {b.seconds / b.every_image_seconds:.0%}"
        f" of that time and {steps(b.cascade) / steps(b.every_image):.0%} of its image-steps "
        f"({steps(b.cascade):,.0f} of {steps(b.every_image):,.0f})",
    ]
    queries = sum(p.steps for p in b.art_job if p.label == "square")
    lines.append(
        f"  ART's job (APGD-CE, APGD-DLR, Square 5,000) as an advbench ensemble: "
        f"{b.art_job_seconds:.1f} s, robust accuracy {b.art_job_robust:.3f}; its "
        f"{queries:,.0f} Square image-queries, one forward pass each, are "
        f"{queries / b.n * b.forward_seconds:.1f} s at the model's forward speed "
        f"({b.forward_seconds * 1e3:.1f} ms for the {b.n} images as one batch): what any "
        f"implementation pays"
    )
    if b.art is None:
        lines.append("  IBM ART not installed: pip install 'advbench[art]' to time its AutoAttack")
    else:
        lines.append(
            f"  IBM ART 1.19 AutoAttack, the same job: {b.art['seconds']:.1f} s, robust accuracy "
            f"{b.art['robust']:.3f} (its points' largest L∞ {b.art['linf']:.3f}); advbench "
            f"{b.art['seconds'] / b.art_job_seconds:.1f}× faster on the same job, its standard "
            f"ensemble (the larger job) {b.art['seconds'] / b.seconds:.1f}×"
        )
    return lines


def steps(parts: list[Part]) -> float:
    """Image-steps of components (gradient steps and queries alike: the same components are
    compared, so their mix cancels out)."""
    return sum(p.steps for p in parts)


def as_json(b: EnsembleBench) -> dict[str, Any]:
    """The rows as `advbench bench --json` writes them."""
    return {
        "model": MODEL,
        "eps": EPS,
        "images": b.n,
        "ensemble_seconds": b.seconds,
        "ensemble_robust_accuracy": b.robust,
        "cascade": [vars(p) for p in b.cascade],
        "every_image": [vars(p) for p in b.every_image],
        "art_job": {
            "components": ART_JOB,
            "seconds": b.art_job_seconds,
            "robust_accuracy": b.art_job_robust,
            "parts": [vars(p) for p in b.art_job],
        },
        "forward_seconds": b.forward_seconds,
        "art": b.art,
    }
