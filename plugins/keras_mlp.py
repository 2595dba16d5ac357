"""`keras-mlp`: section 5.6's Keras model, trained with Keras, attacked through the TF1 graph.

`Sequential([Dense(128, sigmoid), Dense(10, sigmoid)])`, mean squared error, plain SGD (Keras'
default learning rate 0.01), 1 epoch, batch 10 — trained eagerly with the Keras API exactly as
the tutorial does. Keras 3 cannot build into a `tf.compat.v1` graph, so its trained kernels and
biases are copied into variables of an equivalent graph (same ops: `sigmoid(x·W + b)` twice) and
saved with `Saver` like every other model; attacks then run on that graph. The training order
is a seeded permutation of the 55,000 training images and the initialisation is seeded with
`keras.utils.set_random_seed`, so the same seed gives the same weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from advbench import Fitted, Model, Network, Param, hookimpl, tf


class KerasMLPNetwork(Network):
    """The Keras model's math in the TF1 graph."""

    def __init__(self, hidden: int) -> None:
        t = tf()
        z = t.zeros
        self.kernel_1 = t.Variable(z([784, hidden]), name="dense/kernel")
        self.bias_1 = t.Variable(z([hidden]), name="dense/bias")
        self.kernel_2 = t.Variable(z([hidden, 10]), name="dense_1/kernel")
        self.bias_2 = t.Variable(z([10]), name="dense_1/bias")
        self.variables = [self.kernel_1, self.bias_1, self.kernel_2, self.bias_2]

    def logits(self, x):
        t = tf()
        a_1 = t.sigmoid(t.matmul(x, self.kernel_1) + self.bias_1)
        return t.matmul(a_1, self.kernel_2) + self.bias_2

    def probabilities(self, x):
        return tf().sigmoid(self.logits(x))

    def loss(self, x, y_onehot):
        """Keras' mean_squared_error: the mean over the 10 outputs, per image."""
        t = tf()
        return t.reduce_mean(t.square(self.probabilities(x) - y_onehot), axis=1)


class KerasMLP(Model):
    """Section 5.6 of the tutorial."""

    name = "keras-mlp"
    description = "Keras Sequential Dense(128 sigmoid)-Dense(10 sigmoid), MSE, SGD (tutorial 5.6)"
    input_shape = (28, 28, 1)  # MNIST
    classes = 10
    params = (
        Param("hidden", 128, "hidden units", int, minimum=1),
        Param(
            "learning_rate",
            0.01,
            "SGD learning rate (Keras default)",
            float,
            minimum=0.0,
            min_exclusive=True,
        ),
        Param("batch_size", 10, "training batch size", int, minimum=1, maximum=55000),
        Param("epochs", 1, "training epochs", int, minimum=1),
    )
    trains_outside_graph = True

    def build(self, config: Mapping[str, Any]) -> KerasMLPNetwork:
        return KerasMLPNetwork(config["hidden"])

    def fit(self, config: Mapping[str, Any], seed: int, data: Any, on_progress: Any) -> Fitted:
        tf()  # quiet TensorFlow start-up before Keras imports it
        import keras

        keras.utils.set_random_seed(seed)
        model = keras.Sequential(
            [
                keras.Input(shape=(784,)),
                keras.layers.Dense(config["hidden"], activation="sigmoid"),
                keras.layers.Dense(10, activation="sigmoid"),
            ]
        )
        model.compile(
            loss="mean_squared_error",
            optimizer=keras.optimizers.SGD(learning_rate=config["learning_rate"]),
            metrics=["categorical_accuracy"],
        )
        order = np.random.RandomState(seed).permutation(data.train.num_examples)
        x, y = data.train.images[order], data.train.labels[order]
        per_epoch = -(-len(x) // config["batch_size"])
        total = per_epoch * config["epochs"]

        class Report(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if on_progress:
                    on_progress(batch + 1, total, None)

        model.fit(
            x,
            y,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            shuffle=False,
            verbose=0,
            callbacks=[Report()],
        )
        # The tutorial reports accuracy on the training images it trained on.
        _, train_acc = model.evaluate(data.train.images, data.train.labels, verbose=0)
        dense_1, dense_2 = model.layers
        weights = {
            "dense/kernel": dense_1.kernel.numpy(),
            "dense/bias": dense_1.bias.numpy(),
            "dense_1/kernel": dense_2.kernel.numpy(),
            "dense_1/bias": dense_2.bias.numpy(),
        }
        return Fitted(
            weights,
            total,
            {"keras_train_accuracy": float(train_acc), "keras_version": keras.__version__},
        )


@hookimpl
def register_models(register) -> None:
    register(KerasMLP())
