"""An example third-party advbench plugin: one model and one attack, registered by hooks.

- model `relu-mlp`: 784-64-10 ReLU network, softmax cross-entropy, Adam 1e-3, 1,500 steps of 64
  (trains in seconds, ~96 % test accuracy);
- attack `gaussian`: adds Gaussian noise of growing standard deviation until the label flips,
  a baseline that needs no gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    Model,
    Network,
    Param,
    StepInputs,
    clip,
    hookimpl,
    random_normal,
    tf,
)


class ReluNetwork(Network):
    def __init__(self, hidden: int) -> None:
        t = tf()
        self.w1 = t.Variable(t.random.truncated_normal([784, hidden], stddev=0.05), name="w1")
        self.b1 = t.Variable(t.zeros([hidden]), name="b1")
        self.w2 = t.Variable(t.random.truncated_normal([hidden, 10], stddev=0.05), name="w2")
        self.b2 = t.Variable(t.zeros([10]), name="b2")
        self.variables = [self.w1, self.b1, self.w2, self.b2]

    def logits(self, x):
        t = tf()
        return t.matmul(t.nn.relu(t.matmul(x, self.w1) + self.b1), self.w2) + self.b2

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


class ReluMLP(Model):
    name = "relu-mlp"
    description = "example plugin: 784-64-10 ReLU MLP, Adam"
    input_shape = (28, 28, 1)  # MNIST
    classes = 10
    in_every = False  # an example: installing it must not add it to a user's every-model runs
    params = (
        Param("hidden", 64, "hidden units", int, minimum=1),
        Param("learning_rate", 1e-3, "Adam step", float, minimum=0.0, min_exclusive=True),
        Param("batch_size", 64, "training batch", int, minimum=1),
        Param("steps", 1500, "training steps", int, minimum=1),
    )

    def build(self, config: Mapping[str, Any]) -> ReluNetwork:
        return ReluNetwork(config["hidden"])

    def train_step(self, net: Network, x, y_onehot, config: Mapping[str, Any]):
        t = tf()
        loss = t.reduce_mean(net.loss(x, y_onehot))
        return t.compat.v1.train.AdamOptimizer(config["learning_rate"]).minimize(
            loss, var_list=net.variables
        )


class GaussianNoise(Attack):
    name = "gaussian"
    description = "example plugin: Gaussian noise of growing std until the label flips"
    in_every = False  # runs when named (--attacks gaussian), never by default
    params = (
        Param(
            "sigma_step", 0.02, "std added per iteration", float, minimum=0.0, min_exclusive=True
        ),
        Param("iterations", 50, "most iterations", int, minimum=1),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        sigma = params["sigma_step"] * t.cast(s.iteration + 1, t.float32)
        return clip(s.x0 + sigma * random_normal(s.seed, s.index, s.iteration, s.pixels), params)


@hookimpl
def register_models(register) -> None:
    register(ReluMLP())


@hookimpl
def register_attacks(register) -> None:
    register(GaussianNoise())
