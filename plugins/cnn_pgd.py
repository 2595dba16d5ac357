"""`cnn-pgd`: a small CNN adversarially trained with PGD (Madry et al., 2018), for contrast.

MadryLab's MNIST model (2 conv + 1024-unit fc, 100,000 steps of 40-step PGD) takes days on two
CPU cores; this is the same recipe shrunk to fit minutes: conv 5×5×16 → pool → conv 5×5×32 →
pool → fc 256 → fc 10, every training batch replaced by its PGD adversarial examples (L∞
eps 0.3, random start, `pgd_steps` steps of `pgd_step`, cross-entropy on logits), Adam 1e-3,
batch 50. The first `warmup` steps train on clean images with eps ramping up linearly, which
keeps a small network from collapsing to a constant guess at eps 0.3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import EngineHints, Model, Network, Param, hookimpl, tf


class SmallCNN(Network):
    def __init__(self) -> None:
        t = tf()

        def weight(shape, name):
            return t.Variable(t.random.truncated_normal(shape, stddev=0.1), name=name)

        def bias(shape, name):
            return t.Variable(t.constant(0.1, shape=shape), name=name)

        self.w1, self.b1 = weight([5, 5, 1, 16], "w1"), bias([16], "b1")
        self.w2, self.b2 = weight([5, 5, 16, 32], "w2"), bias([32], "b2")
        self.w3, self.b3 = weight([7 * 7 * 32, 256], "w3"), bias([256], "b3")
        self.w4, self.b4 = weight([256, 10], "w4"), bias([10], "b4")
        self.variables = [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3, self.w4, self.b4]
        self.step_count = t.Variable(0, trainable=False, name="adv_step", dtype=t.int64)

    def logits(self, x):
        return self.memo("logits", x, self._logits)

    def _logits(self, x):
        t = tf()

        def conv_pool(a, w, b):
            a = t.nn.relu(t.nn.conv2d(a, w, strides=1, padding="SAME") + b)
            return t.nn.max_pool2d(a, ksize=2, strides=2, padding="SAME")

        a = conv_pool(t.reshape(x, [-1, 28, 28, 1]), self.w1, self.b1)
        a = conv_pool(a, self.w2, self.b2)
        a = t.nn.relu(t.matmul(t.reshape(a, [-1, 7 * 7 * 32]), self.w3) + self.b3)
        return t.matmul(a, self.w4) + self.b4

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


class CNNPGD(Model):
    """Adversarial training with PGD examples."""

    name = "cnn-pgd"
    description = "small CNN adversarially trained with PGD (L∞ 0.3), for contrast"
    input_shape = (28, 28, 1)  # MNIST
    classes = 10
    params = (
        Param("eps", 0.3, "L∞ radius of the training examples", float, minimum=0.0),
        Param("pgd_steps", 10, "PGD steps per training batch", int, minimum=1),
        Param("pgd_step", 0.05, "PGD step size", float, minimum=0.0, min_exclusive=True),
        Param("learning_rate", 1e-3, "Adam step", float, minimum=0.0, min_exclusive=True),
        Param("batch_size", 50, "training batch", int, minimum=1, maximum=55000),
        Param("steps", 6000, "training steps", int, minimum=1),
        Param("warmup", 1000, "steps of clean-to-eps ramp", int, minimum=0),
    )
    hints = EngineHints(single_threaded_training=False, attack_batch_size=2000)

    def build(self, config: Mapping[str, Any]) -> SmallCNN:
        return SmallCNN()

    def train_step(self, net: Network, x, y_onehot, config: Mapping[str, Any]):
        assert isinstance(net, SmallCNN)
        t = tf()
        ramp = t.minimum(1.0, t.cast(net.step_count, t.float32) / max(config["warmup"], 1))
        eps = config["eps"] * ramp
        adv = t.clip_by_value(x + t.random.uniform(t.shape(x), -1.0, 1.0) * eps, 0.0, 1.0)
        for _ in range(config["pgd_steps"]):
            (g,) = t.gradients(t.reduce_sum(net.loss(adv, y_onehot)), [adv])
            adv = adv + config["pgd_step"] * t.sign(g)
            adv = t.clip_by_value(t.clip_by_value(adv, x - eps, x + eps), 0.0, 1.0)
        adv = t.stop_gradient(adv)
        loss = t.reduce_mean(net.loss(adv, y_onehot))
        optimizer = net.__dict__.setdefault(
            "_optimizer", t.compat.v1.train.AdamOptimizer(config["learning_rate"])
        )
        with t.control_dependencies([optimizer.minimize(loss, var_list=net.variables)]):
            return net.step_count.assign_add(1)


@hookimpl
def register_models(register) -> None:
    register(CNNPGD())
