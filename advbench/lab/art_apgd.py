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


def _classifier(loaded: Any, loss: str) -> Any:
    """An ART classifier over `loaded`'s session whose loss is advbench's `ce` or `dlr`."""
    from art.estimators.classification.classifier import (  # type: ignore[import-not-found]
        ClassifierLossGradients,
    )

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
    sess = loaded.session

    class SessionClassifier(ClassifierLossGradients):
        """Logits, loss and loss gradient of one TF1 graph, in ART's estimator API."""

        estimator_params = ClassifierLossGradients.estimator_params

        def __init__(self) -> None:
            super().__init__(model=None, clip_values=(0.0, 1.0))
            self.nb_classes = loaded.spec.classes

        @property
        def input_shape(self) -> tuple[int, ...]:
            return (loaded.spec.pixels,)

        def predict(self, x: np.ndarray, batch_size: int = 1000, **kwargs: Any) -> np.ndarray:
            parts = [
                sess.run(logits, {x_ph: x[i : i + batch_size]})
                for i in range(0, len(x), batch_size)
            ]
            empty = np.zeros((0, loaded.spec.classes), np.float32)
            return np.concatenate(parts) if parts else empty

        def fit(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> None:
            raise NotImplementedError("a restored advbench model is not trained through ART")

        def loss_gradient(self, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> np.ndarray:
            return sess.run(grad, {x_ph: x, y_ph: y})

        def compute_loss(
            self, x: np.ndarray, y: np.ndarray, reduction: str = "none", **kwargs: Any
        ) -> np.ndarray:
            values = sess.run(per_image, {x_ph: x, y_ph: y})
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
