"""`cnn`: the "Deep MNIST for Experts" network of the second tutorial, with its node names.

conv 5×5×32 → ReLU → max-pool 2×2 → conv 5×5×64 → ReLU → max-pool → fc 1024 ReLU → dropout →
fc 10 → softmax; weights `truncated_normal(stddev=0.1)`, biases 0.1; cross-entropy
`reduce_mean(-reduce_sum(y_ * log(y_conv)))`, Adam 1e-4, batch 50, 10,000 steps, dropout
keep_prob 0.5 in training and 1.0 otherwise.

The training graph names its nodes as the tutorial does (`input`, `y_`, `W_conv1`, `h_conv1`,
`h_pool1`, …, `keep_prob`, `output`, `cross_entropy`, `accuracy`), and the checkpoint carries its
meta graph, so the tutorial's own restore code works on it:
`tf.compat.v1.train.import_meta_graph('…/model.ckpt.meta')`, then
`get_tensor_by_name("input:0")`, `"output:0"`, `"keep_prob:0"`. `keep_prob` is a
`placeholder_with_default(1.0)`, so evaluation and attacks need not feed it. The tutorial's
unused `W` and `b` variables (left over from the softmax model) are not created.

Training uses both cores (single-threaded it would take twice as long); on this machine's
TensorFlow CPU kernels the result is still reproducible for the same seed (tested on a short run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import EngineHints, Model, Network, Param, hookimpl, tf


def _weight(shape, name):
    t = tf()
    return t.Variable(t.random.truncated_normal(shape, stddev=0.1), name=name)


def _bias(shape, name):
    t = tf()
    return t.Variable(t.constant(0.1, shape=shape), name=name)


class CNNNetwork(Network):
    """The Deep MNIST network applied to any input batch."""

    def __init__(self) -> None:
        t = tf()
        self.W_conv1, self.b_conv1 = _weight([5, 5, 1, 32], "W_conv1"), _bias([32], "b_conv1")
        self.W_conv2, self.b_conv2 = _weight([5, 5, 32, 64], "W_conv2"), _bias([64], "b_conv2")
        self.W_fc1, self.b_fc1 = _weight([7 * 7 * 64, 1024], "W_fc1"), _bias([1024], "b_fc1")
        self.W_fc2, self.b_fc2 = _weight([1024, 10], "W_fc2"), _bias([10], "b_fc2")
        self.keep_prob = t.compat.v1.placeholder_with_default(1.0, [], name="keep_prob")
        self.variables = [
            self.W_conv1,
            self.b_conv1,
            self.W_conv2,
            self.b_conv2,
            self.W_fc1,
            self.b_fc1,
            self.W_fc2,
            self.b_fc2,
        ]

    def layers(self, x) -> dict[str, Any]:
        """Every named node of the forward pass (the first call gets the tutorial's names)."""
        return self.memo("layers", x, self._layers)

    def _layers(self, x) -> dict[str, Any]:
        t = tf()

        def conv2d(a, w):
            return t.nn.conv2d(a, w, strides=[1, 1, 1, 1], padding="SAME")

        def max_pool_2x2(a, name):
            return t.nn.max_pool2d(a, ksize=2, strides=2, padding="SAME", name=name)

        x_image = t.reshape(x, [-1, 28, 28, 1], name="x_image")
        h_conv1 = t.nn.relu(conv2d(x_image, self.W_conv1) + self.b_conv1, name="h_conv1")
        h_pool1 = max_pool_2x2(h_conv1, "h_pool1")
        h_conv2 = t.nn.relu(conv2d(h_pool1, self.W_conv2) + self.b_conv2, name="h_conv2")
        h_pool2 = max_pool_2x2(h_conv2, "h_pool2")
        h_pool2_flat = t.reshape(h_pool2, [-1, 7 * 7 * 64], name="h_pool2_flat")
        h_fc1 = t.nn.relu(t.matmul(h_pool2_flat, self.W_fc1) + self.b_fc1, name="h_fc1")
        h_fc1_drop = t.nn.dropout(h_fc1, rate=1.0 - self.keep_prob, name="h_fc1_drop")
        logits = t.matmul(h_fc1_drop, self.W_fc2) + self.b_fc2
        y_conv = t.nn.softmax(logits, name="output")
        return {
            "h_conv1": h_conv1,
            "h_pool1": h_pool1,
            "h_conv2": h_conv2,
            "h_pool2": h_pool2,
            "h_fc1": h_fc1,
            "logits": logits,
            "output": y_conv,
        }

    def logits(self, x):
        return self.layers(x)["logits"]

    def probabilities(self, x):
        return self.layers(x)["output"]

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


class CNN(Model):
    """Deep MNIST for Experts, as the second tutorial trains it."""

    name = "cnn"
    description = "Deep MNIST CNN: 2 conv + 2 fc, dropout, Adam 1e-4 (second tutorial)"
    input_shape = (28, 28, 1)  # MNIST
    classes = 10
    params = (
        Param("learning_rate", 1e-4, "Adam learning rate", float, minimum=0.0, min_exclusive=True),
        Param("batch_size", 50, "training batch size", int, minimum=1, maximum=55000),
        Param("steps", 10000, "training steps", int, minimum=1),
        Param(
            "keep_prob",
            0.5,
            "dropout keep probability in training",
            float,
            minimum=0.0,
            maximum=1.0,
            min_exclusive=True,
        ),
    )
    input_name = "input"
    label_name = "y_"
    # conv activations and their gradients: ~1 GB per 1,000 images
    hints = EngineHints(single_threaded_training=False, attack_batch_size=1000)

    def build(self, config: Mapping[str, Any]) -> CNNNetwork:
        return CNNNetwork()

    def train_step(self, net: Network, x, y_onehot, config: Mapping[str, Any]):
        assert isinstance(net, CNNNetwork)
        t = tf()
        y_conv = net.probabilities(x)
        cross_entropy = t.reduce_mean(
            -t.reduce_sum(y_onehot * t.math.log(y_conv), axis=[1]), name="cross_entropy"
        )
        correct = t.equal(t.argmax(y_conv, 1), t.argmax(y_onehot, 1), name="correct_prediction")
        t.reduce_mean(t.cast(correct, t.float32), name="accuracy")
        optimizer = t.compat.v1.train.AdamOptimizer(config["learning_rate"], name="train_step")
        return optimizer.minimize(cross_entropy, var_list=net.variables)

    def train_feed(self, net: Network, config: Mapping[str, Any]) -> dict[Any, Any]:
        assert isinstance(net, CNNNetwork)
        return {net.keep_prob: config["keep_prob"]}


@hookimpl
def register_models(register) -> None:
    register(CNN())
