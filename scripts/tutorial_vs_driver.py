"""The first tutorial's §6.4 attack loop, as the tutorial writes it, against advbench's `ifgsm`.

    python scripts/tutorial_vs_driver.py [N]        (default N = 1000 test images)

The tutorial's graph is rebuilt op for op from its text (its `sigma`, its hand-written
`d_a_0`, `x_star`), the shipped `mlp` checkpoint restored into it by variable name, and its
loop run as written: one image, a `sess.run` for the step and one for the prediction, the
argmax of the sigmoid outputs `a_2`, at most 300 steps. advbench runs `ifgsm` on the same
images in one batch. Per image the script compares the iteration at which the label changed
(the tutorial prints i, advbench records i + 1) and explains every difference: a tie of
saturated sigmoid outputs (two classes at 1.0 in float32, where the tutorial's argmax takes
the lower index and the logits still order them), or float32 rounding (the two graphs order
their operations differently).
"""

from __future__ import annotations

import sys

import numpy as np


def tutorial_loop(weights: dict[str, np.ndarray], images: np.ndarray, labels: np.ndarray):
    """Per image: (step at which the tutorial's argmax changed, or -1; was it attacked; the
    sigmoid outputs after every step, for explaining differences)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, [None, 784])
        y = v1.placeholder(tf.float32, [None, 10])
        w_1, b_1 = tf.constant(weights["w_1"]), tf.constant(weights["b_1"])
        w_2, b_2 = tf.constant(weights["w_2"]), tf.constant(weights["b_2"])

        def sigma(v):
            return tf.math.divide(tf.constant(1.0), tf.add(tf.constant(1.0), tf.exp(-v)))

        def sigmaprime(v):
            return tf.multiply(sigma(v), tf.subtract(tf.constant(1.0), sigma(v)))

        z_1 = tf.add(tf.matmul(x, w_1), b_1)
        a_1 = sigma(z_1)
        z_2 = tf.add(tf.matmul(a_1, w_2), b_2)
        a_2 = sigma(z_2)
        delta_2 = tf.multiply(tf.subtract(a_2, y), sigmaprime(z_2))
        delta_1 = tf.multiply(sigmaprime(z_1), tf.matmul(delta_2, tf.transpose(w_2)))
        d_a_0 = tf.matmul(delta_1, tf.transpose(w_1))
        x_star = tf.clip_by_value(tf.add(x, tf.multiply(0.002, tf.sign(d_a_0))), 0.0, 1.0)
    changed = np.full(len(images), -1)
    attacked = np.zeros(len(images), bool)
    outputs: list[list[np.ndarray]] = [[] for _ in images]
    with v1.Session(graph=graph) as sess:
        for k in range(len(images)):
            classes = np.eye(10, dtype=np.float32)[labels[k : k + 1]]
            value = images[k : k + 1]
            out = sess.run(a_2, {x: value})
            if np.argmax(out, axis=1)[0] != labels[k]:
                continue  # the tutorial attacks images it classifies correctly
            attacked[k] = True
            for i in range(300):
                value = sess.run(x_star, {x: value, y: classes})
                out = sess.run(a_2, {x: value})
                outputs[k].append(out[0])
                if np.argmax(out, axis=1)[0] != labels[k]:
                    changed[k] = i
                    break
    return changed, attacked, outputs


def main(n: int) -> int:
    from advbench.engine import data, runner, zoo
    from advbench.engine.checkpoints import read_weights
    from advbench.host import plugins

    registry = plugins.load()
    model, attack = registry.models.get("mlp"), registry.attacks.get("ifgsm")
    test = data.read_test_set()
    images, labels = test.images[:n], test.labels_int[:n]
    loaded = zoo.load(model, model.config(), model.default_seed)
    try:
        sample = runner.Sample.of(loaded, images, labels)
        spec = runner.AttackSpec(attack, attack.config(), 0)
        records, _ = runner.run_attack(loaded, spec, sample)
        weights = read_weights(loaded.folder)
    finally:
        loaded.close()
    changed, attacked, outputs = tutorial_loop(weights, images, labels)
    ours = np.where(records.flipped, records.iterations - 1, -1)  # the tutorial's i
    both = attacked & records.attacked
    differ = np.flatnonzero(both & (changed != ours))
    only = np.flatnonzero(attacked != records.attacked)
    print(
        f"first {n} test images: the tutorial attacks {attacked.sum()}, advbench "
        f"{records.attacked.sum()} ({len(only)} differ: {only.tolist()})"
    )
    print(f"iteration of the change differs on {len(differ)} of {both.sum()} attacked by both")
    for k in differ:
        first = min(i for i in (changed[k], ours[k]) if i >= 0)  # where the two first part
        out = outputs[k][first]
        top = np.flatnonzero(out == out.max())
        why = (
            f"tie: classes {top.tolist()} all at {out.max():.9g} in float32, the argmax "
            f"takes {top[0]}"
            if len(top) > 1
            else "float32 rounding: no tie in the sigmoid outputs"
        )
        print(f"  image {k}: tutorial i={changed[k]}, advbench i={ours[k]} ({why})")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
