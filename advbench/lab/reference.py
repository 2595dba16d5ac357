"""The tutorial's own loops, kept as references for the batched driver and the trainer.

`per_image_iterations`: one image at a time, two `sess.run` per iteration (one for the step,
one for the prediction), stopping at the first success — section 6.4's loop, built from the same
`Attack` methods (`initial`, `step_with_state`, `success`) as the batched driver, so any
difference is the driver's.

`tutorial_training`: section 5.5's training code as the tutorial writes it — its graph op for
op, a `tf.Session()` with default settings, one `sess.run` per batch — the baseline `advbench
bench` times the trainer against.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from advbench.contract.lazy_tf import tf
from advbench.contract.steps import StepInputs
from advbench.engine.runner import AttackSpec, Sample
from advbench.engine.zoo import Loaded


def per_image_iterations(
    loaded: Loaded,
    spec: AttackSpec,
    sample: Sample,
    targets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(iterations-to-success, final images) per image; 0 = never succeeded or not attacked.

    Like the tutorial, the loop classifies each image itself, one at a time, to decide whether
    to attack it: `sample.clean_pred` (batched predictions) is not used.
    """
    attack, params, seed = spec.attack, spec.params, spec.seed
    images, labels, indices = sample.images, sample.labels, sample.indices
    t = tf()
    net = loaded.network
    targets = labels if targets is None else targets
    with loaded.graph.as_default():
        ph = t.compat.v1.placeholder
        spec = loaded.spec
        x, x0 = ph(t.float32, [1, spec.pixels]), ph(t.float32, [1, spec.pixels])
        y, tgt, idx = ph(t.int64, [1]), ph(t.int64, [1]), ph(t.int64, [1])
        it = ph(t.int32, [])
        start = StepInputs(x0, x0, y, tgt, idx, t.constant(-1), seed, (), spec)
        x_init = attack.initial(net, start, params)
        state_init = tuple(
            attack.initial_state(net, StepInputs(x, x0, y, tgt, idx, -1, seed, (), spec), params)
        )
        state_ph = tuple(ph(s.dtype, s.shape) for s in state_init)
        s = StepInputs(x, x0, y, tgt, idx, it, seed, state_ph, spec)
        x_star, state_next = attack.step_with_state(net, s, params)
        now = StepInputs(x, x0, y, tgt, idx, it, seed, (), spec)
        won = attack.success(net, net.logits(x), now, params)
        pred = t.argmax(net.logits(x), 1)
    sess = loaded.session
    result = np.zeros(len(images), np.int32)
    finals = images.copy()
    for k in range(len(images)):
        feed = {
            x0: images[k : k + 1],
            y: labels[k : k + 1],
            tgt: targets[k : k + 1],
            idx: indices[k : k + 1],
        }
        if (
            not attack.attacks_misclassified
            and sess.run(pred, {**feed, x: images[k : k + 1]})[0] != labels[k]
        ):
            continue
        current = sess.run(x_init, feed)
        state = sess.run(state_init, {**feed, x: current}) if state_init else ()
        for i in range(attack.iterations(params)):
            current, state = sess.run(
                [x_star, state_next],
                {**feed, x: current, it: i, **dict(zip(state_ph, state, strict=True))},
            )
            if sess.run(won, {**feed, x: current, it: i})[0]:
                result[k] = i + 1
                break
        finals[k] = current[0]
    return result, finals


def tutorial_training(mnist: Any, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Train the 784-128-10 sigmoid MLP with section 5.5's code; return its weights.

    The tutorial's graph and loop (`next_batch(10)` fed per step, the accuracy on the first
    1,000 test images every 1,000 steps), with one change: the four `tf.assign` ops wait for
    all four gradients (control dependencies), as in the `mlp` plugin — without it the step is
    a read/write race and the result depends on thread scheduling. `mnist` is a fresh
    `read_data_sets(..., one_hot=True, seed=seed)`: the same batches as `zoo.train`.
    """
    t = tf()
    tf1 = t.compat.v1
    graph = t.Graph()
    with graph.as_default():
        tf1.set_random_seed(seed)
        x = tf1.placeholder(t.float32, [None, 784])
        y = tf1.placeholder(t.float32, [None, 10])
        w_1 = tf1.Variable(tf1.truncated_normal([784, 128]))
        b_1 = tf1.Variable(tf1.truncated_normal([1, 128]))
        w_2 = tf1.Variable(tf1.truncated_normal([128, 10]))
        b_2 = tf1.Variable(tf1.truncated_normal([1, 10]))

        def sigma(v):
            return tf1.div(tf1.constant(1.0), tf1.add(tf1.constant(1.0), tf1.exp(tf1.negative(v))))

        def sigmaprime(v):
            return tf1.multiply(sigma(v), tf1.subtract(tf1.constant(1.0), sigma(v)))

        a_0 = x
        z_1 = tf1.add(tf1.matmul(a_0, w_1), b_1)
        a_1 = sigma(z_1)
        z_2 = tf1.add(tf1.matmul(a_1, w_2), b_2)
        a_2 = sigma(z_2)
        acct_mat = tf1.equal(tf1.argmax(a_2, 1), tf1.argmax(y, 1))
        acct_res = tf1.reduce_sum(tf1.cast(acct_mat, t.float32))
        delta_2 = tf1.multiply(tf1.subtract(a_2, y), sigmaprime(z_2))
        d_b_2 = delta_2
        d_w_2 = tf1.matmul(tf1.transpose(a_1), delta_2)
        delta_1 = tf1.matmul(delta_2, tf1.transpose(w_2))
        delta_1 = tf1.multiply(sigmaprime(z_1), delta_1)
        d_b_1 = delta_1
        d_w_1 = tf1.matmul(tf1.transpose(a_0), delta_1)
        eta = tf1.constant(0.5)
        mean_b_1 = tf1.reduce_mean(d_b_1, axis=[0])
        mean_b_2 = tf1.reduce_mean(d_b_2, axis=[0])
        with tf1.control_dependencies([d_w_1, mean_b_1, d_w_2, mean_b_2]):
            step = [
                tf1.assign(w_1, tf1.subtract(w_1, tf1.multiply(eta, d_w_1))),
                tf1.assign(b_1, tf1.subtract(b_1, tf1.multiply(eta, mean_b_1))),
                tf1.assign(w_2, tf1.subtract(w_2, tf1.multiply(eta, d_w_2))),
                tf1.assign(b_2, tf1.subtract(b_2, tf1.multiply(eta, mean_b_2))),
            ]
        init = tf1.global_variables_initializer()
    with tf1.Session(graph=graph) as sess:
        sess.run(init)
        for i in range(steps):
            images, classes = mnist.train.next_batch(10)
            sess.run(step, feed_dict={x: images, y: classes})
            if i % 1000 == 0:
                sess.run(acct_res, {x: mnist.test.images[:1000], y: mnist.test.labels[:1000]})
        return dict(zip(("w_1", "b_1", "w_2", "b_2"), sess.run([w_1, b_1, w_2, b_2]), strict=True))
