"""`softmax`: the multinomial logistic regression of the second tutorial.

TensorFlow's beginner tutorial, as the second tutorial uses it: W and b initialised to zeros,
y = softmax(xW + b), cross-entropy `reduce_mean(-reduce_sum(y_ * log(y)))`, gradient descent
0.5, 1,000 steps of batch 100. Training uses that exact formula; attacks get the same loss in
its numerically stable form (`softmax_cross_entropy_with_logits`), which is equal where the
tutorial's is finite and never returns NaN for a saturated softmax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import Model, Network, Param, hookimpl, tf


class SoftmaxNetwork(Network):
    """xW + b: logits of a linear classifier."""

    def __init__(self, W, b) -> None:
        self.W, self.b = W, b
        self.variables = [W, b]

    def logits(self, x):
        t = tf()
        return t.matmul(x, self.W) + self.b

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


class Softmax(Model):
    """The beginner tutorial's softmax regression."""

    name = "softmax"
    description = "multinomial logistic regression, zero init, GD 0.5 (second tutorial)"
    input_shape = (28, 28, 1)  # MNIST
    classes = 10
    params = (
        Param(
            "learning_rate", 0.5, "gradient descent step", float, minimum=0.0, min_exclusive=True
        ),
        Param("batch_size", 100, "training batch size", int, minimum=1, maximum=55000),
        Param("steps", 1000, "training steps", int, minimum=1),
    )

    def build(self, config: Mapping[str, Any]) -> SoftmaxNetwork:
        t = tf()
        return SoftmaxNetwork(
            t.Variable(t.zeros([784, 10]), name="W"), t.Variable(t.zeros([10]), name="b")
        )

    def train_step(self, net: Network, x, y_onehot, config: Mapping[str, Any]):
        t = tf()
        y = t.nn.softmax(net.logits(x))
        cross_entropy = t.reduce_mean(-t.reduce_sum(y_onehot * t.math.log(y), axis=[1]))
        optimizer = t.compat.v1.train.GradientDescentOptimizer(config["learning_rate"])
        return optimizer.minimize(cross_entropy, var_list=net.variables)


@hookimpl
def register_models(register) -> None:
    register(Softmax())
