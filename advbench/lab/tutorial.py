"""The two seed tutorials, section by section, run with advbench's engine (`advbench tutorial`).

Each section prints what the tutorial printed and draws what it plotted (into
`reports/tutorial/SECTION/`), using the built-in models, their checkpoints and attacks. Where a
number differs from the tutorial's, it is because the weights differ (another random
initialisation); the README's seed table says by how much accuracy varies with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.errors import AdvbenchError


@dataclass
class Section:
    """One runnable section of a tutorial."""

    key: str
    tutorial: str
    title: str
    run: Callable[[Path, Any], None]


def _show(images: list[np.ndarray], titles: list[str], path: Path) -> None:
    from advbench.lab.explain import grid

    grid([i.reshape(28, 28) for i in images], titles, path, "", cols=len(images), cmap="gray")
    print(f"  picture: {path}")


def _load(plugins: Any, name: str, seed: int | None = None) -> Any:
    from advbench.engine import zoo

    model = plugins.models.get(name)
    return zoo.load(model, model.config(), model.default_seed if seed is None else seed)


def s2_4(out: Path, plugins: Any) -> None:
    from advbench.engine import data

    test = data.read_data_sets(one_hot=True).test
    print(f"Label is {test.labels[0]}")
    _show([test.images[0]], [f"Label is {test.labels_int[0]}"], out / "image.png")


def s3_1(out: Path, plugins: Any) -> None:
    from advbench.contract.lazy_tf import tf
    from advbench.engine.graph import session

    t = tf()
    graph = t.Graph()
    with graph.as_default():
        a = t.compat.v1.placeholder(t.int16)
        b = t.compat.v1.placeholder(t.int16)
        add, mul = t.add(a, b), t.multiply(a, b)
    with session(graph) as sess:
        print(sess.run(add, {a: 2, b: 3}), sess.run(mul, {a: 2, b: 3}))


def s4_3(out: Path, plugins: Any) -> None:
    from advbench.contract.lazy_tf import tf
    from advbench.engine import data
    from advbench.engine.graph import session

    t = tf()
    model = plugins.models.get("mlp")
    graph = t.Graph()
    with graph.as_default():
        t.compat.v1.set_random_seed(0)
        x = t.compat.v1.placeholder(t.float32, [1, 784])
        net = model.build(model.config())
        a = net.probabilities(x)
        init = t.compat.v1.global_variables_initializer()
    one_image, one_class = data.read_data_sets(one_hot=True, seed=0).train.next_batch(1)
    with session(graph) as sess:
        sess.run(init)
        out_a = sess.run(a, {x: one_image})
    print(float(out_a.argmax() == one_class.argmax()), out_a)


def s5_5(out: Path, plugins: Any) -> None:
    import tempfile

    from advbench.engine import zoo

    model = plugins.models.get("mlp")

    def report(step: int, total: int, acc: float | None) -> None:
        if acc is not None:
            print(step / 1000, round(acc * 1000))

    with tempfile.TemporaryDirectory() as tmp:
        zoo.train(model, model.config(), model.default_seed, root=Path(tmp), on_progress=report)
    print("done learning")


def s5_6(out: Path, plugins: Any) -> None:
    loaded = _load(plugins, "keras-mlp")
    try:
        record = loaded.record
    finally:
        loaded.close()
    print(f"\nacc: {record['keras_train_accuracy'] * 100:.2f}%  (training images, as the tutorial)")
    print(f"test accuracy: {record['test_accuracy'] * 100:.2f}%")


def s6_1(out: Path, plugins: Any) -> None:
    from advbench.engine import data, runner

    test = data.read_test_set()
    loaded = _load(plugins, "mlp")
    try:
        pred = runner.predict(loaded, test.images[:1000])
    finally:
        loaded.close()
    print(float(np.sum(pred == test.labels_int[:1000])))


def _tutorial_attack(name: str, out: Path, plugins: Any) -> None:
    from advbench.engine import data, runner
    from advbench.lab import reference

    test = data.read_test_set()
    ind = 3
    images, labels = test.images[ind : ind + 1], test.labels_int[ind : ind + 1]
    attack = plugins.attacks.get(name)
    params = attack.config()
    loaded = _load(plugins, "mlp")
    try:
        sample = runner.Sample.of(loaded, images, labels, np.array([ind], np.int64))
        print(sample.clean_pred, labels)
        its, final = reference.per_image_iterations(
            loaded, runner.AttackSpec(attack, params, 0), sample
        )
        after = runner.predict(loaded, final)
    finally:
        loaded.close()
    if its[0]:
        # the tutorial prints its loop index at the flip: steps applied minus one
        print(f"Classification of image changed after {its[0] - 1} iterations")
    _show(
        [images[0], final[0]],
        [f"Original image label is {labels[0]}", f"Attack image label is {after[0]}"],
        out / "images.png",
    )


def s6_2(out: Path, plugins: Any) -> None:
    _tutorial_attack("noise", out, plugins)


def s6_4(out: Path, plugins: Any) -> None:
    _tutorial_attack("ifgsm", out, plugins)


def _explain_view(name: str, wanted: tuple[str, ...]) -> Callable[[Path, Any], None]:
    def run(out: Path, plugins: Any) -> None:
        from advbench.lab import explain

        loaded = _load(plugins, name)
        try:
            if name == "cnn":
                print(f"test accuracy {loaded.record['test_accuracy']:g}")
            for f in explain.explain(loaded, name, out):
                if f.split(".")[0] in wanted:
                    print(f"  picture: {out / f}")
        finally:
            loaded.close()

    return run


def _ascend(loaded: Any, image: np.ndarray, digit: int, step: float, steps: int) -> np.ndarray:
    """The tutorial's loop: add step × the std-normalised gradient of P(digit)."""
    from advbench.contract.lazy_tf import tf

    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        probs = loaded.network.probabilities(x)
        (grad,) = t.gradients(probs[:, digit], [x])
    img = image.copy()
    for _ in range(steps):
        g = loaded.session.run(grad, {x: img})
        img = img + step * g / (np.std(g) + 1e-8)
        print(np.array2string(loaded.session.run(probs, {x: img}), precision=4))
    return img


def fooling(out: Path, plugins: Any) -> None:
    loaded = _load(plugins, "cnn")
    try:
        noise = np.random.RandomState(0).uniform(size=(1, 784)).astype(np.float32)
        fooled = _ascend(loaded, noise, 3, 1.0, 5)
    finally:
        loaded.close()
    _show([noise[0], fooled[0]], ["noise", "after 5 steps"], out / "fooling.png")


def targeted(out: Path, plugins: Any) -> None:
    from advbench.engine import data

    val = data.read_data_sets().validation
    image = val.images[15:16].copy()
    loaded = _load(plugins, "cnn")
    try:
        fooled = _ascend(loaded, image, 3, 0.02, 5)
    finally:
        loaded.close()
    np.save(out / "fooled.npy", fooled)
    _show([image[0], fooled[0]], ["validation 15", "after 5 steps toward 3"], out / "targeted.png")


def retrain(out: Path, plugins: Any) -> None:
    """The fooled image of `targeted` shown to a CNN retrained with another seed (2,000 steps)."""
    from advbench.engine import zoo

    targeted(out, plugins)
    fooled = np.load(out / "fooled.npy")
    model = plugins.models.get("cnn")
    config = model.config({"steps": "2000"})
    loaded = zoo.load(model, config, 1)
    try:
        from advbench.contract.lazy_tf import tf

        t = tf()
        with loaded.graph.as_default():
            x = t.compat.v1.placeholder(t.float32, [None, 784])
            probs = loaded.network.probabilities(x)
        print("retrained (seed 1, 2,000 steps):")
        print(np.array2string(loaded.session.run(probs, {x: fooled}), precision=4))
    finally:
        loaded.close()


SECTIONS: dict[str, Section] = {s.key: s for s in [
    Section("2.4", "backprop-and-attacks", "Try out the MNIST dataset", s2_4),
    Section("3.1", "backprop-and-attacks", "The computational graph concept", s3_1),
    Section("4.3", "backprop-and-attacks", "Feedforward one image (untrained)", s4_3),
    Section("5.5", "backprop-and-attacks", "Backpropagation: train the MLP", s5_5),
    Section("5.6", "backprop-and-attacks", "The Keras API", s5_6),
    Section("6.1", "backprop-and-attacks", "Feedforward 1,000 images from a saved model", s6_1),
    Section("6.2", "backprop-and-attacks", "Random noise on test image 3", s6_2),
    Section("6.4", "backprop-and-attacks", "Iterative FGSM on test image 3", s6_4),
    Section("softmax", "cnn-fooling", "Softmax regression and its weights",
            _explain_view("softmax", ("weights",))),
    Section("misclassified", "cnn-fooling", "Misclassified validation images (softmax)",
            _explain_view("softmax", ("misclassified",))),
    Section("fooling", "cnn-fooling", "Noise the CNN believes is a 3", fooling),
    Section("targeted", "cnn-fooling", "Validation image 15 (a 7) nudged to a 3", targeted),
    Section("retrain", "cnn-fooling", "The fooled image vs a retrained CNN", retrain),
    Section("filters", "cnn-fooling", "First conv layer: filters and activations",
            _explain_view("cnn", ("conv1-filters", "conv1-activations"))),
    Section("maximise", "cnn-fooling", "Inputs maximising each first-layer feature",
            _explain_view("cnn", ("conv1-maximising",))),
]}  # fmt: skip


def listing() -> str:
    """The sections as a table (`advbench tutorial` without a section)."""
    from tabulate import tabulate

    return tabulate(
        [[s.key, s.tutorial, s.title] for s in SECTIONS.values()],
        headers=("section", "tutorial", "what it does"),
    )


def section(key: str) -> Section:
    """The section called `key`, or a one-line error listing them."""
    if key not in SECTIONS:
        raise AdvbenchError(f"unknown tutorial section {key!r} (known: {', '.join(SECTIONS)})")
    return SECTIONS[key]
