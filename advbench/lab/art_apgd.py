"""IBM ART's AutoProjectedGradientDescent on the same graph: an independent check of `apgd`.

ART 1.19 refuses its `TensorFlowClassifier` (TF1) for this attack ("does not support
TensorFlow v1"), so the session is wrapped in a minimal ART classifier of our own
(`ClassifierLossGradients`: logits, per-image loss and its input gradient, all from the loaded
graph). The attack's arithmetic — steps, momentum, checkpoints, restarts — is ART's; the loss
is the one advbench's `apgd` ascends (`ce` or `dlr`), fed to ART as the estimator's own loss.

ART returns each image's *last* iterate (a success visited mid-path and then left is lost) and
restarts on the images its last iterates left standing, so its robust accuracy should be at
least advbench's at the same budget; a lower one would mean `apgd` misses adversarial points.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from advbench.lab.art import _logging_handlers_kept


def available() -> bool:
    """Is ART importable here?"""
    try:
        with warnings.catch_warnings(), _logging_handlers_kept():
            warnings.simplefilter("ignore")
            import art.attacks.evasion  # type: ignore[import-not-found]  # noqa: F401
    except Exception:
        return False
    return True


def _classifier(loaded: Any, loss: str, image_shape: tuple[int, ...] | None = None) -> Any:
    """An ART classifier over `loaded`'s session whose loss is advbench's `ce` or `dlr`.

    `image_shape` is the shape ART sees (default: flat rows): ART's Square attack cuts its
    patches out of (h, w, c) images, so it needs the dataset's image shape; the session is fed
    the same pixels flattened."""
    image_shape = image_shape or (loaded.spec.pixels,)
    from art.estimators.classification.classifier import (  # type: ignore[import-not-found]
        ClassGradientsMixin,
        ClassifierLossGradients,
    )
    from art.estimators.estimator import NeuralNetworkMixin  # type: ignore[import-not-found]

    from advbench.contract.lazy_tf import tf
    from advbench.contract.losses import dlr_loss

    t = tf()
    with loaded.graph.as_default():
        x_ph = t.compat.v1.placeholder(t.float32, [None, loaded.spec.pixels])
        y_ph = t.compat.v1.placeholder(t.float32, [None, loaded.spec.classes])
        logits = loaded.network.logits(x_ph)
        labels = t.argmax(y_ph, 1)
        if loss == "dlr":
            per_image = dlr_loss(logits, labels)
        else:
            per_image = t.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        (grad,) = t.gradients(t.reduce_sum(per_image), [x_ph])
        label_ph = t.compat.v1.placeholder(t.int64, [None])
        (class_grad,) = t.gradients(t.reduce_sum(t.gather(logits, label_ph, batch_dims=1)), [x_ph])
    sess = loaded.session

    class SessionClassifier(NeuralNetworkMixin, ClassGradientsMixin, ClassifierLossGradients):
        """Logits, loss, loss gradient and class gradients of one TF1 graph, in ART's estimator
        API (a neural network's, channels last, as ART's Square attack requires). A class
        gradient is one backward pass whatever the labels (ART's own `TensorFlowClassifier`
        runs one per distinct label in the batch, up to `classes`)."""

        estimator_params = ClassifierLossGradients.estimator_params

        def __init__(self) -> None:
            super().__init__(model=None, clip_values=(0.0, 1.0), channels_first=False)
            self.nb_classes = loaded.spec.classes

        def get_activations(self, *args: Any, **kwargs: Any) -> np.ndarray:
            raise NotImplementedError("no attack here reads a layer's activations")

        @property
        def input_shape(self) -> tuple[int, ...]:
            return image_shape

        def predict(self, x: np.ndarray, batch_size: int = 1000, **kwargs: Any) -> np.ndarray:
            x = x.reshape(len(x), -1)
            parts = [
                sess.run(logits, {x_ph: x[i : i + batch_size]})
                for i in range(0, len(x), batch_size)
            ]
            empty = np.zeros((0, loaded.spec.classes), np.float32)
            return np.concatenate(parts) if parts else empty

        def fit(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
            raise NotImplementedError("a restored advbench model is not trained through ART")

        def loss_gradient(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
            return sess.run(grad, {x_ph: x.reshape(len(x), -1), y_ph: y}).reshape(x.shape)

        def class_gradient(self, x: np.ndarray, label: Any = None, **kwargs: Any) -> np.ndarray:
            rows = x.reshape(len(x), -1)
            if label is None:
                every = [self.class_gradient(x, c) for c in range(self.nb_classes)]
                return np.concatenate(every, axis=1)
            labels = np.broadcast_to(np.asarray(label, np.int64), (len(rows),))
            g = sess.run(class_grad, {x_ph: rows, label_ph: labels})
            return g.reshape(len(x), 1, *x.shape[1:])

        def compute_loss(
            self, x: np.ndarray, y: np.ndarray, reduction: str = "none", **kwargs: Any
        ) -> np.ndarray:
            values = sess.run(per_image, {x_ph: x.reshape(len(x), -1), y_ph: y})
            return {"mean": values.mean, "sum": values.sum}.get(reduction, lambda: values)()

    return SessionClassifier()


def apgd(
    loaded: Any,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    batch: int = 500,
) -> tuple[np.ndarray, float]:
    """(adversarial images, wall seconds) of ART's APGD with `apgd`'s parameters, untargeted.

    eps_step is 2ε, the paper's (and advbench's) initial step; ART's default would be 0.1.
    """
    with warnings.catch_warnings(), _logging_handlers_kept():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import (  # type: ignore[import-not-found]
            AutoProjectedGradientDescent,
        )

        attack = AutoProjectedGradientDescent(
            _classifier(loaded, params["loss"]),
            norm=np.inf if params["norm"] == "inf" else 2,
            eps=float(params["eps"]),
            eps_step=2.0 * float(params["eps"]),
            max_iter=int(params["iterations"]),
            targeted=False,
            nb_random_init=int(params["restarts"]),
            batch_size=batch,
            loss_type=None,
            verbose=False,
        )
    onehot = np.eye(loaded.spec.classes, dtype=np.float32)[labels]
    started = time.perf_counter()
    adversarial = attack.generate(images, y=onehot)
    return adversarial, time.perf_counter() - started


def autoattack(
    loaded: Any,
    eps: float,
    images: np.ndarray,
    labels: np.ndarray,
    batch: int = 500,
    iterations: int = 100,
    queries: int = 5000,
) -> tuple[np.ndarray, float]:
    """(adversarial images, wall seconds) of ART's AutoAttack at L∞ `eps`: its APGD-CE,
    APGD-DLR and Square, in that order, each on the images the earlier ones left robust
    (ART's own cascade), with AutoAttack's budgets — `iterations` APGD steps from a 2ε step,
    one restart each, Square with `queries` queries and p_init 0.8, one restart. ART has no
    FAB, and its targeted pass would aim at every class with both losses, so it runs untargeted.
    """
    with warnings.catch_warnings(), _logging_handlers_kept():
        warnings.simplefilter("ignore")
        from art.attacks.evasion import (  # type: ignore[import-not-found]
            AutoAttack,
            AutoProjectedGradientDescent,
            SquareAttack,
        )

        shape = tuple(loaded.spec.shape)
        by_loss = {loss: _classifier(loaded, loss, shape) for loss in ("ce", "dlr")}
        apgds = [
            AutoProjectedGradientDescent(
                by_loss[loss],
                norm=np.inf,
                eps=eps,
                eps_step=2.0 * eps,
                max_iter=iterations,
                targeted=False,
                nb_random_init=1,
                batch_size=batch,
                loss_type=None,
                verbose=False,
            )
            for loss in ("ce", "dlr")
        ]
        square = SquareAttack(
            by_loss["ce"],
            norm=np.inf,
            max_iter=queries,
            eps=eps,
            p_init=0.8,
            nb_restarts=1,
            batch_size=batch,
            verbose=False,
        )
        attack = AutoAttack(
            by_loss["ce"], norm=np.inf, eps=eps, attacks=[*apgds, square], batch_size=batch
        )
        onehot = np.eye(loaded.spec.classes, dtype=np.float32)[labels]
        started = time.perf_counter()
        adversarial = attack.generate(images.reshape(-1, *shape), y=onehot)
    return adversarial.reshape(len(images), -1), time.perf_counter() - started
