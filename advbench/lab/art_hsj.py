"""advbench's `hopskipjump` against IBM ART 1.19's HopSkipJump on the same graph and images.

`python -m advbench.lab.art_hsj --models mlp,cnn --limit 50 [--art-limit N] [--iterations 50]`
prints, per model, success rate, median L2 (of each attack's own successes), mean queries per
image and wall seconds of both, and advbench's ratios, all measured in the same run. Both run
untargeted L2 with the same `iterations` (ART's max_iter), `max_eval`, `init_eval` and
`init_size`, on the test images the model classifies correctly (advbench attacks only those).
Successes of both are judged alike: the engine's confirmation margin on the returned images.

ART is wrapped as in `art_apgd` (its TF1 classifier is not usable here): its queries are the
rows its `predict` sees while it attacks an image (`_perturb`), not its own bookkeeping passes
(the originals' labels before, the success rate it logs after). ART attacks one image at a
time in Python (binary-search probes one row per `predict`); advbench runs every phase of every
image in one graph. ART's own thresholds differ slightly: θ = 0.01/√d where the authors'
code (and advbench) use γ/d^{3/2}, and it returns the step-search point rather than the
boundary point.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from advbench.lab.art import _logging_handlers_kept
from advbench.lab.art_apgd import _classifier, available


@dataclass(frozen=True)
class Side:
    """One attack's result on a set of images."""

    n: int
    success: float  # share of the images, confirmed by the engine's margin
    median_l2: float  # over its own successes
    queries: float  # mean per image
    seconds: float


def _confirmed(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Untargeted success by the engine's own confirmation margin."""
    from advbench.engine.confirmation import margins, tolerance

    return margins(logits, labels, targeted=False) > tolerance(logits)


def _side(predict: Any, images, labels, adversarial, queries, seconds) -> Side:
    ok = _confirmed(predict(adversarial), labels)
    l2 = np.linalg.norm((adversarial - images).astype(np.float64), axis=1)
    median = float(np.median(l2[ok])) if ok.any() else float("nan")
    return Side(len(images), float(ok.mean()), median, float(np.mean(queries)), seconds)


def art_side(loaded: Any, params: dict, images: np.ndarray, labels: np.ndarray) -> Side:
    """ART's HopSkipJump with `hopskipjump`'s parameters (untargeted, L2), queries counted."""
    with warnings.catch_warnings(), _logging_handlers_kept():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import HopSkipJump  # type: ignore[import-not-found]

        classifier = _classifier(loaded, "ce")
        predict = classifier.predict
        counted: list[int] = []

        def counting(x: np.ndarray, batch_size: int = 1000, **kwargs: Any) -> np.ndarray:
            if counted:
                counted[-1] += len(x)
            return predict(x, batch_size=batch_size, **kwargs)

        classifier.predict = counting  # type: ignore[method-assign]
        attack = HopSkipJump(
            classifier,
            batch_size=1024,
            targeted=False,
            norm=2 if params["norm"] == "2" else np.inf,
            max_iter=int(params["iterations"]),
            max_eval=int(params["max_eval"]),
            init_eval=int(params["init_eval"]),
            init_size=int(params["init_size"]),
            verbose=False,
        )
        perturb = attack._perturb

        def perturb_counted(*args: Any, **kwargs: Any) -> np.ndarray:
            counted.append(0)
            return perturb(*args, **kwargs)

        attack._perturb = perturb_counted  # type: ignore[method-assign]
        onehot = np.eye(loaded.spec.classes, dtype=np.float32)[labels]
        started = time.perf_counter()
        adversarial = attack.generate(images, y=onehot).reshape(len(images), -1)
        seconds = time.perf_counter() - started
    return _side(predict, images, labels, adversarial, counted, seconds)


def advbench_side(loaded: Any, attack: Any, params: dict, sample: Any) -> Side:
    """advbench's `hopskipjump` on `sample` (every image attacked), graph built beforehand."""
    from advbench.engine import runner

    spec = runner.AttackSpec(attack, params, 0)
    graph = runner.build_attack_graph(loaded, spec)
    records, seconds = runner.run_attack(loaded, spec, sample, graph=graph)

    def predict(x: np.ndarray) -> np.ndarray:
        return _classifier_logits(loaded, x)

    return _side(
        predict, sample.images, sample.labels, records.adversarial, records.queries, seconds
    )


def _classifier_logits(loaded: Any, x: np.ndarray) -> np.ndarray:
    """The model's logits by its one shared forward pass (no new op per call)."""
    x_ph, logits = loaded.forward()
    return loaded.session.run(logits, {x_ph: x})


def compare(model_name: str, limit: int, art_limit: int, overrides: dict[str, str]) -> str:
    """One model's table rows: advbench on `limit` images, ART on the first `art_limit`."""
    from advbench.engine import data, runner, zoo
    from advbench.host import plugins

    registry = plugins.load()
    model = registry.models.get(model_name)
    attack = registry.attacks.get("hopskipjump")
    test = data.read_test_set()
    loaded = zoo.load(model, model.config(), model.default_seed)
    try:
        params = attack.for_dataset(attack.config(overrides), loaded.spec)
        first = runner.Sample.of(loaded, test.images[:limit], test.labels_int[:limit])
        right = np.flatnonzero(first.clean_pred == first.labels)
        sample = runner.Sample(
            *(a[right] for a in (first.images, first.labels)), right, first.clean_pred[right]
        )
        ours = advbench_side(loaded, attack, params, sample)
        few = sample.first(art_limit)
        theirs = art_side(loaded, params, few.images, few.labels)
        same = advbench_side(loaded, attack, params, few) if art_limit < len(sample) else ours
    finally:
        loaded.close()
    rows = [
        _row(f"{model_name} advbench", ours),
        *([_row(f"{model_name} advbench (ART's images)", same)] if same is not ours else []),
        _row(f"{model_name} ART", theirs),
        f"{model_name} ratios on the same {theirs.n} images: success "
        f"{same.success - theirs.success:+.3f}, median L2 "
        f"{same.median_l2 / theirs.median_l2:.3f}×, queries {same.queries / theirs.queries:.3f}×, "
        f"advbench {theirs.seconds / same.seconds:.1f}× faster "
        f"({theirs.seconds / theirs.n:.3f} s vs {same.seconds / same.n:.3f} s per image)",
    ]
    return "\n".join(rows)


def _row(label: str, s: Side) -> str:
    return (
        f"{label:34s} {s.n:5d} {s.success:8.3f} {s.median_l2:9.3f} {s.queries:10.0f} "
        f"{s.seconds:9.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated (default mlp,cnn)")
    parser.add_argument("--limit", type=int, default=50, help="test images for advbench")
    parser.add_argument("--art-limit", type=int, default=None, help="ART's images (default all)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="P=V", help="hopskipjump parameters, both"
    )
    args = parser.parse_args(argv)
    if not available():
        print("IBM ART is not installed (pip install 'advbench[art]')")
        return 2
    overrides = dict(item.split("=", 1) for item in args.set)
    print(f"{'':34s} {'n':>5s} {'success':>8s} {'median L2':>9s} {'queries':>10s} {'seconds':>9s}")
    for name in args.models.split(","):
        print(compare(name, args.limit, args.art_limit or args.limit, overrides), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
