"""Checkpoints: train on a miss, save atomically with a record, restore by configuration + seed.

A checkpoint lives in a directory named `<model>-<dataset>-s<seed>-<key>`, where `key` hashes
the model name, its full configuration, the seed and the dataset's checksum; its record names
the dataset, its checksum, image shape and classes. Checkpoints made before datasets had names
(`<model>-s<seed>-<key>`, the same key, all MNIST) are found too: the key's checksum ties them
to their data. Two places are searched: the
checkpoints shipped inside the package (`advbench/checkpoints/`, produced by `advbench train
--ship`) and the user cache (`$ADVBENCH_HOME/checkpoints`, default `~/.cache/advbench`).

A directory is written under a temporary name and renamed into place only after the Saver files
and `record.json` are complete, so a killed training never leaves a checkpoint that looks whole.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.contract.dataset import Dataset, ImageSpec
from advbench.contract.lazy_tf import tf
from advbench.contract.model import Model, Network
from advbench.engine import data
from advbench.engine.checkpoints import (
    SHIPPED,
    cache_root,
    first_line,
    read_record,
    read_weights,  # noqa: F401  (re-exported: zoo.read_weights reads what zoo.train wrote)
    recovery,
    save_atomically,
    verify,
)
from advbench.engine.graph import ATTACK_THREADS, TRAINING_THREADS, session, versions
from advbench.engine.matching import (  # noqa: F401  (re-exported: zoo.takes, zoo.check_accepts)
    check_accepts,
    network_logits,
    probe,
    takes,
)
from advbench.errors import AdvbenchError

EVAL_EVERY = 1000  # steps between progress evaluations, as the tutorial prints them


def _key(model: Model, config: Mapping[str, Any], seed: int, dataset: Dataset) -> str:
    ident = {"model": model.name, "config": dict(config), "seed": seed, "data": dataset.checksum}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def owner(model: Model, config: Mapping[str, Any]) -> tuple[Model, Mapping[str, Any]]:
    """The model and configuration whose checkpoint `model` restores (`Model.weights_of`)."""
    shared = model.weights_of(config)
    return (model, config) if shared is None else shared


def checkpoint_name(model: Model, config: Mapping[str, Any], seed: int, dataset: Dataset) -> str:
    """Directory name identifying this model configuration, seed and dataset."""
    return f"{model.name}-{dataset.slug}-s{seed}-{_key(model, config, seed, dataset)}"


def legacy_name(model: Model, config: Mapping[str, Any], seed: int, dataset: Dataset) -> str:
    """The name a checkpoint had before datasets were named (only MNIST's checksum matches)."""
    return f"{model.name}-s{seed}-{_key(model, config, seed, dataset)}"


def find(
    model: Model, config: Mapping[str, Any], seed: int, dataset: Dataset | None = None
) -> Path | None:
    """The complete checkpoint directory for this configuration and dataset (default: the
    default dataset), if one exists; a model that shares another's weights (`weights_of`)
    finds that model's checkpoint."""
    dataset = dataset or data.default_dataset()
    model, config = owner(model, config)
    names = (
        checkpoint_name(model, config, seed, dataset),
        legacy_name(model, config, seed, dataset),
    )
    for name in names:
        for root in (SHIPPED, cache_root()):
            folder = root / name
            if (folder / "record.json").is_file():
                return folder
    return None


@dataclass
class Loaded:
    """A model restored into a fresh graph and session, ready for evaluation or attack."""

    graph: Any
    session: Any
    network: Network
    record: dict[str, Any]
    folder: Path
    spec: ImageSpec  # the images the network takes: shape, classes, value range
    _forward: Any = None  # (placeholder, logits), built on first use by `forward`

    def forward(self) -> tuple[Any, Any]:
        """(placeholder, logits) of one forward pass, built once: every caller that only
        classifies (clean predictions, the engine's confirmation) shares it, since each new op
        in a graph a session already ran makes the next `session.run` extend the session."""
        if self._forward is None:
            t = tf()
            with self.graph.as_default(), t.name_scope("forward"):
                x = t.compat.v1.placeholder(t.float32, [None, self.spec.pixels])
                self._forward = (x, self.network.logits(x))
        return self._forward

    def close(self) -> None:
        self.session.close()


def _evaluate(sess, x_ph, predictions, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of `predictions` on `images`, fed in slices to bound memory."""
    pred = np.concatenate(
        [sess.run(predictions, {x_ph: images[i : i + 1000]}) for i in range(0, len(images), 1000)]
    )
    return float(np.mean(pred == labels))


def train(
    model: Model,
    config: Mapping[str, Any],
    seed: int,
    dataset: Dataset | None = None,
    root: Path | None = None,
    on_progress: Callable[[int, int, float | None], None] | None = None,
    in_graph: bool | None = None,
) -> Path:
    """Train `model` from scratch with `seed`, save it under `root`, return its directory.

    Batches come from a seeded `next_batch`; graph ops are seeded by the graph-level seed; the
    session runs single-threaded unless the model opts out, so the same seed gives bit-identical
    weights. `on_progress(step, total, accuracy_or_None)` is called after each step; every 1,000
    steps (and at the end) with the accuracy on the first 1,000 test images, as the tutorial
    prints it. A model that trains outside the graph (Keras) supplies its weights via `fit`.

    `in_graph` (default: the model's `hints.in_graph_training`) runs 1,000 steps per `sess.run`
    inside a `tf.while_loop`, gathering each batch from the training set held in the graph, in
    exactly the order `next_batch` gives; otherwise one `sess.run` per step, as the tutorial.

    A model that shares another's weights (`Model.weights_of`) trains that model: the
    checkpoint is that model's, trained by its own graph, whoever asks for it first.
    """
    model, config = owner(model, config)
    t = tf()
    if model.pretrained:
        raise AdvbenchError(
            f"model {model.name} comes trained (imported from a file): advbench does not train it"
        )
    root = root or cache_root()
    try:  # before the training, not after it: a cache that cannot be written is one line
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AdvbenchError(
            f"checkpoint cache {root} cannot be created ({exc.strerror or exc}); "
            "set ADVBENCH_HOME to a writable directory"
        ) from None
    dataset = dataset or data.default_dataset()
    check_accepts(model, dataset)
    spec = dataset.spec
    if model.input_shape is None or model.classes is None:
        probe(model, config, dataset)
    sets = read(dataset, seed)
    started = time.perf_counter()
    # Keras trains eagerly: outside any graph context (a `with session` would be one).
    fitted = model.fit(config, seed, sets, on_progress) if model.trains_outside_graph else None
    graph = t.Graph()
    with graph.as_default():
        t.compat.v1.set_random_seed(seed)
        x = t.compat.v1.placeholder(t.float32, [None, spec.pixels], name=model.input_name)
        y = t.compat.v1.placeholder(t.float32, [None, spec.classes], name=model.label_name)
        net = model.build(config)
        if in_graph is None:
            in_graph = model.hints.in_graph_training
        in_graph = in_graph and not model.trains_outside_graph
        # Only the trainer that will run is built: the in-graph loop or the once-per-step op.
        loop = _in_graph_loop(model, net, config, sets) if in_graph else None
        step_op = (
            None if in_graph or model.trains_outside_graph else model.train_step(net, x, y, config)
        )
        # after the training ops, as ever: op-level seeds follow the order ops are created in
        predictions = t.argmax(network_logits(model, net, x, spec, dataset.name), 1)
        saver = t.compat.v1.train.Saver(var_list=net.variables, max_to_keep=None)
        init = t.compat.v1.variables_initializer(
            [
                v
                for v in t.compat.v1.global_variables()
                if v.name.split(":")[0] not in ("train_images", "train_labels")
            ]
        )
    test = sets.test
    first_x, first_y = test.images[:1000], test.labels_int[:1000]
    history: list[list[float]] = []
    threads = TRAINING_THREADS if model.hints.single_threaded_training else ATTACK_THREADS
    fuse = model.hints.fuse_matmul_bias_in_training
    with session(graph, threads, fuse_matmul_bias=fuse) as sess:
        sess.run(init)
        extra_record: dict[str, Any] = {}
        if fitted is not None:
            with graph.as_default():
                for var in net.variables:
                    var.load(fitted.weights[var.op.name], sess)
            steps, extra_record = fitted.steps, fitted.info
        elif loop is not None:
            steps, batch_size = int(config["steps"]), int(config["batch_size"])
            extra = model.train_feed(net, config)
            sess.run(
                loop.init, {loop.images_ph: sets.train.images, loop.labels_ph: sets.train.labels}
            )
            done = 0
            while done < steps:
                chunk = min(EVAL_EVERY, steps - done)
                order = np.stack([sets.train.next_indices(batch_size) for _ in range(chunk)])
                sess.run(loop.run, {loop.order: order, **extra})
                done += chunk
                acc = _evaluate(sess, x, predictions, first_x, first_y)
                history.append([done, acc])
                if on_progress:
                    on_progress(done, steps, acc)
        else:
            steps, batch_size = int(config["steps"]), int(config["batch_size"])
            extra = model.train_feed(net, config)
            for i in range(steps):
                images, classes = sets.train.next_batch(batch_size)
                sess.run(step_op, {x: images, y: classes, **extra})
                acc = None
                if (i + 1) % EVAL_EVERY == 0 or i + 1 == steps:
                    acc = _evaluate(sess, x, predictions, first_x, first_y)
                    history.append([i + 1, acc])
                if on_progress:
                    on_progress(i + 1, steps, acc)
        seconds = time.perf_counter() - started
        record = {
            "model": model.name,
            "config": dict(config),
            "seed": seed,
            "steps": steps,
            "test_accuracy": _evaluate(sess, x, predictions, test.images, test.labels_int),
            "test_accuracy_first_1000": _evaluate(sess, x, predictions, first_x, first_y),
            "history_first_1000": history,
            "train_seconds": round(seconds, 3),
            "threads": "1/1" if model.hints.single_threaded_training else "all cores",
            "dataset": dataset.name,
            "data_checksum": dataset.checksum,
            "image_shape": list(spec.shape),
            "classes": spec.classes,
            "value_range": list(spec.value_range),
            "versions": versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra_record,
        }
        with graph.as_default():
            name = checkpoint_name(model, config, seed, dataset)
            return save_atomically(saver, sess, root, name, record)


@dataclass
class _Loop:
    init: Any
    images_ph: Any
    labels_ph: Any
    order: Any
    run: Any


def _in_graph_loop(model: Model, net: Network, config: Mapping[str, Any], sets) -> _Loop:
    """Training steps inside one `tf.while_loop`, the training set held in graph variables."""
    t = tf()
    images_ph = t.compat.v1.placeholder(t.float32, sets.train.images.shape)
    labels_ph = t.compat.v1.placeholder(t.float32, sets.train.labels.shape)
    images = t.Variable(images_ph, trainable=False, name="train_images")
    labels = t.Variable(labels_ph, trainable=False, name="train_labels")
    order = t.compat.v1.placeholder(t.int64, [None, int(config["batch_size"])], name="order")

    # The chunk's batches are gathered once, before the loop (one pass over the rows instead of
    # a random gather per step), and the step count is computed once too.
    batch_images, batch_labels = t.gather(images, order), t.gather(labels, order)
    steps = t.shape(order)[0]

    def body(i):
        step = model.train_step(net, batch_images[i], batch_labels[i], config)
        with t.control_dependencies([step]):
            return i + 1

    run = t.compat.v1.while_loop(lambda i: i < steps, body, [t.constant(0)])
    init = t.compat.v1.variables_initializer([images, labels])
    return _Loop(init, images_ph, labels_ph, order, run)


def read(dataset: Dataset, seed: int) -> data.DataSets:
    """The dataset's splits with one-hot labels, batches seeded by `seed` (training's view)."""
    return data.read_data_sets(dataset, one_hot=True, seed=seed)


def spec_of(model: Model, record: Mapping[str, Any], dataset: Dataset | None) -> ImageSpec:
    """The images a restored network takes: the dataset's, else the record's (trained since
    datasets were named), else the model's declaration (older records: all MNIST)."""
    if dataset is not None:
        return dataset.spec
    if "image_shape" in record and "classes" in record:
        lo, hi = record.get("value_range", (0.0, 1.0))
        return ImageSpec(tuple(record["image_shape"]), int(record["classes"]), (lo, hi))
    if model.input_shape is not None and model.classes is not None:
        return ImageSpec(tuple(model.input_shape), int(model.classes))
    raise AdvbenchError(f"checkpoint of model {model.name!r} does not say which images it takes")


def restore(
    model: Model, config: Mapping[str, Any], folder: Path, dataset: Dataset | None = None
) -> Loaded:
    """Build `model` in a fresh graph and load the weights saved in `folder`."""
    t = tf()
    record = read_record(folder)
    verify(folder, record)
    spec = spec_of(model, record, dataset)
    graph = t.Graph()
    with graph.as_default():
        net = model.build(config)
        saver = t.compat.v1.train.Saver(var_list=net.variables)
    sess = session(graph)
    try:
        with graph.as_default():
            saver.restore(sess, str(folder / "model.ckpt"))
    except Exception as exc:
        sess.close()
        raise AdvbenchError(
            f"checkpoint {folder} could not be restored ({first_line(exc)}); {recovery(folder)}"
        ) from None
    return Loaded(graph, sess, net, record, folder, spec)


def load(
    model: Model,
    config: Mapping[str, Any],
    seed: int,
    dataset: Dataset | None = None,
    on_train: Callable[[int, int, float | None], None] | None = None,
) -> Loaded:
    """The model restored from its checkpoint for `dataset` (default: the default dataset),
    training (and caching) it first on a miss; a pretrained (imported) model is built from its
    file, shaped to the dataset's images."""
    dataset = dataset or data.default_dataset()
    check_accepts(model, dataset)
    if model.pretrained:
        return open_pretrained(model, config, dataset)
    folder = find(model, config, seed, dataset)
    if folder is None:
        folder = train(model, config, seed, dataset, on_progress=on_train)
    return restore(model, config, folder, dataset)


#: Real test images a pretrained model looks at once after loading (`Network.calibrate`).
CALIBRATION_IMAGES = 100


def open_pretrained(model: Model, config: Mapping[str, Any], dataset: Dataset) -> Loaded:
    """A model that comes with its weights (imported from a file) in a fresh graph and session;
    its record is its origin (file, content digest, conversions), its folder the file."""
    t = tf()
    record = {"model": model.name, **model.origin(config)}
    graph = t.Graph()
    with graph.as_default():
        net = model.build(config)
        init = t.compat.v1.variables_initializer(net.variables)
    sess = session(graph)
    try:
        sess.run(init)
        net.calibrate(sess, dataset.test.images[:CALIBRATION_IMAGES])
    except Exception:
        sess.close()
        raise
    record["scores"] = getattr(net, "scores", record.get("scores"))
    return Loaded(graph, sess, net, record, Path(record.get("file", model.name)), dataset.spec)
