"""IBM ART 1.19's ElasticNet and SaliencyMapMethod next to advbench's `ead` and `jsma`: the
same graph, images, targets and parameters, measured in one process.

    python -m advbench.lab.art_sparse --models mlp,cnn --limit 100

prints, per model and attack, each side's success rate, median L1 (EAD) or L0 (JSMA) over its
successes, and seconds, with the ratios of the two measured in the same run. ART runs twice
(`--art-classifier`): on its own TF1 `TensorFlowClassifier` ("stock", what an ART user wraps a
session in), whose class gradient runs one backward pass per distinct label in the batch (up
to `classes`), and on `art_apgd`'s session classifier ("lean"), one backward pass for any
labels; both with the whole job as one batch, ART's fastest. The seconds are each attack's own work,
graphs and classifiers built beforehand and each side warmed up on two rows (XLA compiles
`jsma`'s pair search on its first run).

The two JSMAs are not the same algorithm: ART's `SaliencyMapMethod` takes the two pixels with
the largest gradient of the target's score (one backward pass and a top-2 per step), the paper's
pair search over every pair with both the target's and the other classes' gradients is
advbench's (two backward passes and pixels² pairs per step). ART's γ test lets it change
up to two pixel values past ⌊γ · pixels⌋; its successes are counted as it reports them.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from advbench.lab.art import _logging_handlers_kept
from advbench.lab.art_apgd import _classifier, available


@dataclass
class Side:
    """One tool's result on the job: success rate, median norm over its successes, seconds;
    ART's side also says on what share of rows its example is advbench's, value for value."""

    rows: int
    success: float
    median: float
    seconds: float
    identical: float = float("nan")


def _norm(adversarial: np.ndarray, originals: np.ndarray, norm: str) -> np.ndarray:
    delta = adversarial.astype(np.float64) - originals.astype(np.float64)
    if norm == "l1":
        return np.abs(delta).sum(axis=1)
    return np.count_nonzero(delta, axis=1).astype(np.float64)


def _side(won: np.ndarray, sizes: np.ndarray, seconds: float) -> Side:
    median = float(np.median(sizes[won])) if won.any() else float("nan")
    return Side(len(won), float(won.mean()) if len(won) else 0.0, median, seconds)


def _stock_classifier(loaded: Any) -> Any:
    """ART's own TF1 `TensorFlowClassifier` on the loaded graph (what `advbench.lab.art` times
    BIM with), its per-class gradient ops all built before any timing."""
    from art.estimators.classification import TensorFlowClassifier  # type: ignore

    from advbench.contract.lazy_tf import tf

    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, loaded.spec.pixels])
        y = t.compat.v1.placeholder(t.float32, [None, loaded.spec.classes])
        classifier = TensorFlowClassifier(
            input_ph=x,
            output=loaded.network.logits(x),
            labels_ph=y,
            loss=t.reduce_sum(loaded.network.loss(x, y)),
            sess=loaded.session,
            clip_values=(0.0, 1.0),
        )
        classifier.class_gradient(np.zeros((1, loaded.spec.pixels), np.float32))
    return classifier


def _art_attack(
    loaded: Any, name: str, params: Mapping[str, Any], rows: int, classifier: str
) -> Any:
    """ART's attack of `name` ("ead" or "jsma") with advbench's `params`, batch = the job, on
    ART's own classifier ("stock") or `art_apgd`'s one-backward-pass one ("lean")."""
    with warnings.catch_warnings(), _logging_handlers_kept():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import (  # type: ignore[import-not-found]
            ElasticNet,
            SaliencyMapMethod,
        )

        classifier = (
            _stock_classifier(loaded) if classifier == "stock" else _classifier(loaded, "ce")
        )
        if name == "jsma":
            return SaliencyMapMethod(
                classifier,
                theta=float(params["theta"]),
                gamma=float(params["max_pixels"]) / loaded.spec.pixels,
                batch_size=max(rows, 1),
                verbose=False,
            )
        return ElasticNet(
            classifier,
            confidence=float(params["confidence"]),
            targeted=params["target"] != "none",
            learning_rate=float(params["learning_rate"]),
            binary_search_steps=int(params["binary_steps"]),
            max_iter=int(params["iterations"]),
            beta=float(params["beta"]),
            initial_const=float(params["initial_const"]),
            batch_size=max(rows, 1),
            decision_rule=params["decision_rule"].upper(),
            verbose=False,
        )


def compare(
    loaded: Any,
    attack: Any,
    overrides: Mapping[str, str],
    images: np.ndarray,
    labels: np.ndarray,
    classifier: str = "stock",
) -> tuple[Side, Side]:
    """(advbench, ART) on the rows advbench attacks: the images the model gets right, each with
    its target (`jsma`: every other class by default). Each side is timed on its own work."""
    from advbench.engine import runner

    params = attack.for_dataset(attack.config(overrides), loaded.spec)
    norm = attack.threat_model(params).norm
    spec = runner.AttackSpec(attack, params, 0)
    sample = runner.Sample.of(loaded, images, labels)
    graph = runner.build_attack_graph(loaded, spec)
    warm = runner.Sample.of(loaded, images[:2], labels[:2])
    runner.run_attack(loaded, spec, warm, graph=graph)  # XLA compiles jsma's kernels once
    started = time.perf_counter()
    rec = runner.run_attack(loaded, spec, sample, graph=graph)[0]
    ours_seconds = time.perf_counter() - started
    rows = np.flatnonzero(rec.attacked)
    originals = images[rec.index[rows]]
    ours = _side(rec.flipped[rows], _norm(rec.adversarial[rows], originals, norm), ours_seconds)

    targeted = attack.is_targeted(params)
    goal = rec.target[rows] if targeted else rec.label[rows]
    art = _art_attack(loaded, attack.name, params, len(rows), classifier)
    onehot = np.eye(loaded.spec.classes, dtype=np.float32)[goal]
    art.generate(originals[:2], y=onehot[:2])  # the same warm-up
    started = time.perf_counter()
    adversarial = art.generate(originals, y=onehot).reshape(len(rows), -1)
    art_seconds = time.perf_counter() - started
    pred = runner.predict(loaded, adversarial)
    won = pred == goal if targeted else pred != goal
    theirs = _side(won, _norm(adversarial, originals, norm), art_seconds)
    theirs.identical = float(np.mean(np.all(adversarial == rec.adversarial[rows], axis=1)))
    return ours, theirs


def table(results: list[tuple[str, str, str, Side, Side]]) -> str:
    """Markdown: one row per (model, attack), both sides and their ratios."""
    head = (
        "| model | attack | rows | success advbench / ART | median norm advbench / ART "
        "| seconds advbench / ART | ART ÷ advbench time | rows identical |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for model, name, norm, ours, art in results:
        ratio = art.seconds / max(ours.seconds, 1e-9)
        lines.append(
            f"| {model} | {name} | {ours.rows} | {ours.success:.3f} / {art.success:.3f} "
            f"| {norm} {ours.median:.3f} / {art.median:.3f} "
            f"| {ours.seconds:.2f} / {art.seconds:.2f} | {ratio:.1f}× | {art.identical:.3f} |"
        )
    return "\n".join(lines)


def _overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"advbench.lab.art_sparse: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated (default mlp,cnn)")
    parser.add_argument("--attacks", default="ead,jsma", help="ead, jsma or both")
    parser.add_argument("--limit", type=int, default=100, help="first N test images (100)")
    parser.add_argument("--ead-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--jsma-set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--art-classifier",
        choices=("stock", "lean", "both"),
        default="both",
        help="ART's own TensorFlowClassifier, the one-backward-pass wrapper, or both (default)",
    )
    args = parser.parse_args(argv)
    if not available():
        raise SystemExit("advbench.lab.art_sparse: IBM ART is not installed (advbench[art])")
    from advbench.engine import data, zoo
    from advbench.host import plugins

    registry = plugins.load()
    test = data.read_test_set()
    images, labels = test.images[: args.limit], test.labels_int[: args.limit]
    sets = {"ead": _overrides(args.ead_set), "jsma": _overrides(args.jsma_set)}
    kinds = ("stock", "lean") if args.art_classifier == "both" else (args.art_classifier,)
    results = []
    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model = registry.models.get(model_name)
        config = model.config()
        folder = zoo.find(model, config, model.default_seed)
        if folder is None:
            raise SystemExit(f"advbench.lab.art_sparse: {model_name} is not trained yet")
        loaded = zoo.restore(model, config, folder)
        try:
            for name in [a.strip() for a in args.attacks.split(",") if a.strip()]:
                attack = registry.attacks.get(name)
                for kind in kinds:
                    ours, art = compare(loaded, attack, sets[name], images, labels, kind)
                    norm = "L1" if name == "ead" else "L0"
                    results.append((model_name, f"{name} (ART {kind})", norm, ours, art))
                    print(table(results[-1:]).splitlines()[-1], flush=True)
        finally:
            loaded.close()
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
