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

`noisy-cnn` is the same network with fresh Gaussian noise N(0, sigma²), sigma 0.3 by default,
added to its input at every forward pass: a randomised model (a "random noise" defence), on
which plain PGD overestimates robustness and EOT-PGD (`--set pgd.eot=10`) does not. It restores
the cnn's checkpoint (`Model.weights_of`): the noise changes how the network is applied, not
its weights. What its randomness means for the numbers:

- clean accuracy is one draw per image (the first 1,000 test images: 0.992 without noise,
  0.933 and 0.942 in two draws at sigma 0.3; 7 % of the predictions change between draws);
- the engine's confirmation classifies each claimed adversarial image again, a fresh draw, so
  a success that held for one draw only is withdrawn (the "unconfirmed success" check counts
  them) — plain PGD stops at the first lucky draw and most of its claims are withdrawn;
- each forward pass is a stateful `tf.random.normal` op whose op seed follows `noise_seed`
  and the order in which the engine builds passes: the same command gives the same numbers,
  run after run; another `--batch-size`, `--limit`, a resumed or a distributed run draws other
  noise (statistically the same model, not the same bits);
- the model checks' "randomness" fires (logits of the same images differ between two runs),
  and so does "unstable predictions".

It is not in every run (`in_every = False`): its numbers are not reproducible across batch
sizes or resumptions as the other models' are, and it exists to demonstrate EOT.
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


class NoisyNetwork(Network):
    """The cnn's network with fresh Gaussian noise added to its input at every forward pass.

    Each pass (`logits`, `probabilities` and `loss` of one input tensor share it: `memo`) is a
    stateful `tf.random.normal` op with its own op seed, derived from `noise_seed` and the
    order in which the passes are built; every execution of the op draws anew. Two passes of
    the same images — even in one `sess.run` — see independent noise.
    """

    def __init__(self, inner: CNNNetwork, sigma: float, seed: int) -> None:
        self.inner, self.sigma, self.seed = inner, sigma, seed
        self.variables = inner.variables
        self.keep_prob = inner.keep_prob
        self.passes = 0  # noise ops built so far: each gets an op seed of its own

    def noisy(self, x):
        """`x` plus N(0, sigma²) per pixel, drawn anew each time the op runs."""
        return self.memo("noisy", x, self._noisy)

    def _noisy(self, x):
        t = tf()
        self.passes += 1
        op_seed = (self.seed * 1_000_003 + self.passes) % (2**31 - 1)
        return x + t.random.normal(t.shape(x), stddev=self.sigma, seed=op_seed)

    def logits(self, x):
        return self.inner.logits(self.noisy(x))

    def probabilities(self, x):
        return self.inner.probabilities(self.noisy(x))

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


class NoisyCNN(CNN):
    """`cnn` with Gaussian noise on its input at inference: a randomised model (module
    docstring)."""

    name = "noisy-cnn"
    description = "cnn with fresh Gaussian noise on its input at every forward pass (EOT demo)"
    params = (
        *CNN.params,
        Param("sigma", 0.3, "std of the input noise, in pixel units", float, minimum=0.0),
        Param("noise_seed", 0, "seed of the noise draws", int, minimum=0, maximum=2**31 - 2),
    )
    in_every = False  # a demonstration of a random model: runs only when named
    # EOT tiles each batch `eot` times: 200 images × K = 10 is the cnn's 2,000 rows
    hints = EngineHints(single_threaded_training=False, attack_batch_size=200)

    def weights_of(self, config: Mapping[str, Any]) -> tuple[Model, dict[str, Any]]:
        """The cnn's own weights: the noise changes how the network is applied, not the
        network, so it restores (and on a miss trains) the cnn's checkpoint."""
        base = CNN()
        return base, base.config({p.name: config[p.name] for p in CNN.params})

    def build(self, config: Mapping[str, Any]) -> NoisyNetwork:
        return NoisyNetwork(CNNNetwork(), config["sigma"], config["noise_seed"])


@hookimpl
def register_models(register) -> None:
    register(CNN())
    register(NoisyCNN())
