"""Running one attack on one loaded model over many images, batched, into per-image records.

Which rows are attacked: images the model already misclassifies are not attacked by untargeted
attacks (they count as wrong in adversarial accuracy and are left out of the flip rate). A
targeted attack with `target=all` attacks every correctly classified image once per other class;
with a fixed target, every correctly classified image whose label differs from it. Attacks that
ignore the image's content (`attacks_misclassified`) attack every row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from advbench.contract.attack import Attack
from advbench.contract.lazy_tf import tf
from advbench.contract.model import Model
from advbench.contract.steps import BatchInputs
from advbench.engine import confirmation
from advbench.engine.batches import (
    KeptBatches,
    Ticker,
    interruptible,
    run_within,
    within,
)
from advbench.engine.driver import early_stopping_loop
from advbench.engine.zoo import Loaded
from advbench.errors import ModelError
from advbench.output.records import Records, distances

DEFAULT_BATCH = 10000


def predict(loaded: Loaded, images: np.ndarray, batch: int = 2000) -> np.ndarray:
    """Argmax predictions of the loaded model, in batches.

    The logits are checked on the way: a model with another number of classes, or with NaN or
    infinite logits, would otherwise give predictions (argmax of NaN is 0) that every metric
    downstream takes at face value.
    """
    classes = loaded.spec.classes
    x, logits = loaded.forward()
    out = []
    for i in range(0, len(images), batch):
        z = loaded.session.run(logits, {x: images[i : i + batch]})
        if z.ndim != 2 or z.shape != (len(images[i : i + batch]), classes):
            raise ModelError(
                f"model {loaded.folder.name}: logits of shape {z.shape[1:]} for a batch of "
                f"{len(images[i : i + batch])} images, expected ({classes},) per image"
            )
        bad = ~np.isfinite(z).all(axis=1)
        if bad.any():
            raise ModelError(
                f"model {loaded.folder.name}: NaN or infinite logits for {int(bad.sum())} of "
                f"{len(z)} images (first: image {i + int(np.flatnonzero(bad)[0])})"
            )
        out.append(np.argmax(z, axis=1))
    return np.concatenate(out) if out else np.zeros(0, np.int64)


class UnverifiedResult(Exception):
    """An attack returned images that break its own declared threat model."""


def verify(spec: AttackSpec, records: Records) -> None:
    """Refuse records that contradict what the attack declared, rather than report them.

    An attack reported at L∞ ε whose images reach farther would turn its robust accuracy into a
    number for another threat model; measured here on the records (float64 distances, with the
    same tolerance as the conformance kit).
    """
    threat = spec.attack.threat_model(spec.params)
    slacks = {"linf": 1e-6, "l2": 1e-4, "l1": 1e-3, "l0": 0.0}
    for norm, slack in slacks.items():
        distances, bound = getattr(records, norm), threat.bound(norm)
        if bound is None or not len(distances):
            continue
        over = distances > bound + slack
        if over.any():
            raise UnverifiedResult(
                f"{int(over.sum())} of {len(distances)} images are farther than the declared "
                f"{norm} bound {bound:g} (largest {distances.max():.4g})"
            )


@dataclass(frozen=True, eq=False)
class Sample:
    """The images an attack runs on, travelling together: pixels, true labels, test-set
    indices (they key counter-based noise, so an image's noise never depends on its batch) and
    the model's clean predictions (which decide the rows attacked)."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    clean_pred: np.ndarray

    @classmethod
    def of(
        cls,
        loaded: Loaded,
        images: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray | None = None,
    ) -> Sample:
        """The sample with `loaded`'s clean predictions; indices default to 0..n-1."""
        if indices is None:
            indices = np.arange(len(images), dtype=np.int64)
        return cls(images, labels, indices, predict(loaded, images))

    def __len__(self) -> int:
        return len(self.images)

    def first(self, n: int) -> Sample:
        """The first `n` images (all of them when there are fewer)."""
        return Sample(self.images[:n], self.labels[:n], self.indices[:n], self.clean_pred[:n])


@dataclass(frozen=True)
class AttackSpec:
    """What one cell runs: an attack, one full parameter set, and the cell's attack seed."""

    attack: Attack
    params: Mapping[str, Any]
    seed: int


@dataclass
class AttackGraph:
    """Placeholders and fetches of one attack, built once per (attack, parameters)."""

    inputs: BatchInputs
    final_x: Any
    done_at: Any
    pred: Any
    confidence: Any
    queries: Any  # int64 [n] model evaluations per row; -1 where the attack does not count
    ticker: Ticker | None = None  # per-step reports from inside the loop (progress bars)


def build_attack_graph(loaded: Loaded, spec: AttackSpec, ticks: bool = False) -> AttackGraph:
    """The whole attack as graph ops: feed a batch of rows, fetch their final state. With
    `ticks`, a step loop reports every step to the graph's `ticker` (a progress bar that
    moves inside a long batch); without, the graph has no Python in its loop."""
    attack, params, seed = spec.attack, spec.params, spec.seed
    t = tf()
    ph = t.compat.v1.placeholder
    with loaded.graph.as_default(), t.name_scope(f"attack_{attack.name}"):
        b = BatchInputs(
            ph(t.float32, [None, loaded.spec.pixels], name="x"),
            ph(t.int64, [None], name="labels"),
            ph(t.int64, [None], name="targets"),
            ph(t.int64, [None], name="index"),
            seed,
            loaded.spec,
        )
        out = attack.build(loaded.network, b, params)
        ticker = Ticker() if ticks and out is None else None  # a step loop only
        out = out or early_stopping_loop(attack, loaded.network, b, params, tick=ticker)
        probs = loaded.network.probabilities(out.final_x)
        which = b.targets if attack.is_targeted(params) else out.pred
        confidence = t.gather(probs, which, batch_dims=1)
        if out.queries is None:
            queries = t.fill(t.shape(out.done_at), t.constant(-1, t.int64))
        else:
            queries = t.cast(out.queries, t.int64)
    return AttackGraph(b, out.final_x, out.done_at, out.pred, confidence, queries, ticker)


def plan_rows(
    attack: Attack,
    params: Mapping[str, Any],
    labels: np.ndarray,
    clean_pred: np.ndarray,
    classes: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image position, target, attacked) of every row of the cell, in a fixed order; targeted
    attacks aim at classes 0 … `classes` − 1."""
    limit = attack.max_images(params)
    if limit is not None:
        labels, clean_pred = labels[:limit], clean_pred[:limit]
    n = len(labels)
    correct = clean_pred == labels
    if not attack.is_targeted(params):
        attacked = np.ones(n, bool) if attack.attacks_misclassified else correct
        return np.arange(n), np.full(n, -1, np.int64), attacked
    if params["target"] != "all":
        target = int(params["target"])
        eligible = (
            np.ones(n, bool) if attack.attacks_misclassified else (labels != target) & correct
        )
        return np.arange(n), np.where(eligible, target, -1), eligible
    pos, tgt, att = [], [], []
    for i in range(n):
        if attack.attacks_misclassified or correct[i]:
            others = [c for c in range(classes) if attack.attacks_misclassified or c != labels[i]]
            pos += [i] * len(others)
            tgt += others
            att += [True] * len(others)
        else:
            pos.append(i)
            tgt.append(-1)
            att.append(False)
    return np.array(pos, np.int64), np.array(tgt, np.int64), np.array(att, bool)


def run_attack(
    loaded: Loaded,
    spec: AttackSpec,
    sample: Sample,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[float, int], None] | None = None,
    graph: AttackGraph | None = None,
    only: np.ndarray | None = None,
    time_limit: float | None = None,
    ticks: bool | None = None,
    kept: KeptBatches | None = None,
) -> tuple[Records, float]:
    """Attack every planned row; return per-row records and the wall seconds of the attack.

    `graph` reuses an attack graph built by `build_attack_graph` with the same spec (timing
    loops and repeated runs should not grow the TensorFlow graph). `only` (bool per image of
    `sample`) leaves the rows of the other images unattacked: an ensemble's later components
    run only on the images the earlier ones left robust. `time_limit` (seconds) ends a run
    that goes on longer in `CellTimeout`: TensorFlow cancels the batch at the deadline.
    `ticks` (default: with `on_progress`) builds the graph's loop with a per-step Python
    report, which also lets Ctrl-C stop a long batch within a step. `kept` stores each
    finished batch as it ends and hands back the ones an interrupted attempt finished (the
    same rows in the same batches: bit-identical to an uninterrupted run).
    """
    if ticks is None:
        ticks = on_progress is not None
    graph = graph or build_attack_graph(loaded, spec, ticks=ticks)
    images, labels, indices = sample.images, sample.labels, sample.indices
    clean_pred = sample.clean_pred
    pos, target, attacked = plan_rows(
        spec.attack, spec.params, labels, clean_pred, loaded.spec.classes
    )
    if only is not None:
        attacked = attacked & only[pos]
        target = np.where(attacked, target, -1)
    rows = len(pos)
    adversarial = images[pos].copy()
    adv_pred = clean_pred[pos].copy()
    iterations = np.zeros(rows, np.int32)
    confidence = np.full(rows, np.nan, np.float64)
    queries = np.full(rows, -1, np.int64)
    todo = np.flatnonzero(attacked)
    b = graph.inputs
    started = time.perf_counter()
    carried = 0.0  # seconds of the batches kept from an interrupted attempt
    steps = max(int(spec.attack.iterations(spec.params) or 1), 1) if graph.ticker else 1
    for lo in range(0, len(todo), batch_size):
        sel = todo[lo : lo + batch_size]
        p = pos[sel]
        if graph.ticker is not None and on_progress is not None:
            graph.ticker.to = within(on_progress, lo, len(sel), steps, len(todo))
        feed = {
            b.x: images[p],
            b.labels: labels[p],
            b.targets: np.where(target[sel] >= 0, target[sel], labels[p]),
            b.index: indices[p],
        }
        number = lo // batch_size
        out = kept.get(number, sel) if kept is not None else None
        if out is None:
            fetches = [graph.final_x, graph.done_at, graph.pred, graph.confidence, graph.queries]
            run = partial(run_within, loaded.session, fetches, feed, started, time_limit)
            began = time.perf_counter()
            out = run() if graph.ticker is None else interruptible(run, graph.ticker)
            if kept is not None:
                kept.put(number, sel, out, time.perf_counter() - began)
        else:
            carried += kept.seconds(number)
        adversarial[sel], iterations[sel], adv_pred[sel], confidence[sel], queries[sel] = out
        if on_progress:
            on_progress(lo + len(sel), len(todo))
    seconds = time.perf_counter() - started + carried
    records = Records(
        index=indices[pos].astype(np.int64),
        label=labels[pos].astype(np.int64),
        target=target,
        clean_pred=clean_pred[pos].astype(np.int64),
        adv_pred=adv_pred.astype(np.int64),
        attacked=attacked,
        iterations=iterations,
        confidence=confidence,
        adversarial=adversarial,
        queries=queries,
        **distances(adversarial, images[pos]),
    )
    records, _ = confirmation.confirm(loaded, records, spec.attack.is_targeted(spec.params))
    verify(spec, records)
    return records, seconds


def evaluate(
    models: Sequence[Model],
    model_seed: int | None,
    images: np.ndarray,
    labels: np.ndarray,
    dataset: Any = None,
    bars: Any = None,
    sets: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Clean accuracy of each model's checkpoint (trained first if missing) on `images`.

    `model_seed` picks the checkpoints' training seed (None: each model's own). One dict per
    model, in order: name, clean_accuracy, n, checkpoint, seed (`advbench eval`'s JSON).
    `sets` holds each model's parameters by name (`--set`; an imported model's tensors).
    """
    from advbench.engine import progress, zoo

    out = []
    for model in models:
        seed = model.default_seed if model_seed is None else model_seed
        on_train = None
        if bars is not None:
            on_train = progress.training_task(bars, f"{model.name} (no checkpoint yet)")
        config = model.config((sets or {}).get(model.name))
        loaded = zoo.load(model, config, seed, dataset, on_train=on_train)
        try:
            pred = predict(loaded, images)
        finally:
            loaded.close()
        out.append(
            {
                "name": model.name,
                "clean_accuracy": float((pred == labels).mean()),
                "n": len(images),
                "checkpoint": str(loaded.folder),
                "seed": seed,
            }
        )
    return out
