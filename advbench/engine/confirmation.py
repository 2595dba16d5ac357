"""Confirming each claimed success by feeding the adversarial image to the model again.

An attack decides success inside its own loop, on logits computed in a batch of its own
choosing. A point on the decision boundary (DeepFool's and C&W's minimal perturbations end
near one) can be "adversarial" there and classified correctly when fed again, in another batch,
or in float64: a flip the user cannot reproduce. Every attack's claim is therefore checked by
the engine itself, the same way for all attacks: the final images of the rows that claim
success are classified again in fixed chunks (the same rows give the same logits whatever the
attack's batch size), and the goal must hold with a margin:

- untargeted: the best other class beats the true label by more than `tolerance(logits)`;
- targeted: the target beats every other class by more than `tolerance(logits)`.

A claim that fails is not a success: the row's iterations become 0 (not flipped). Every
attacked row's prediction is what the model says when the image is fed again; an untargeted
row within the tolerance of a tie with its label is credited to the label (the model is not
called fooled by a rounding error), so flip rate and adversarial accuracy always agree.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from advbench.contract.losses import CONFIRM_RELATIVE
from advbench.engine.zoo import Loaded
from advbench.output.records import Records

CHUNK = 1000  # rows per forward pass; fixed, so the logits never depend on the attack's batch


def tolerance(logits: np.ndarray) -> np.ndarray:
    """The margin a success needs, per row: `CONFIRM_RELATIVE` × (1 + max |z|). Float32
    rounding in other batch shapes, other kernels or float64 moves logits by far less."""
    return CONFIRM_RELATIVE * (1.0 + np.max(np.abs(logits), axis=1))


def margins(logits: np.ndarray, goal: np.ndarray, targeted: bool) -> np.ndarray:
    """Per row: how far the goal is met. Untargeted (`goal` = label): best other − label;
    targeted (`goal` = target): target − best other. Positive means met."""
    rows = np.arange(len(logits))
    own = logits[rows, goal]
    others = logits.astype(np.float64).copy()
    others[rows, goal] = -np.inf
    best = others.max(axis=1) if logits.shape[1] > 1 else np.full(len(logits), -np.inf)
    return best - own if not targeted else own - best


def _logits(loaded: Loaded, images: np.ndarray) -> np.ndarray:
    """The model's logits of `images`, `CHUNK` rows per `session.run` (the loaded model's one
    forward pass)."""
    x, z = loaded.forward()
    out = [loaded.session.run(z, {x: images[i : i + CHUNK]}) for i in range(0, len(images), CHUNK)]
    return np.concatenate(out) if out else np.zeros((0, loaded.spec.classes), np.float32)


def confirm(loaded: Loaded, records: Records, targeted: bool) -> tuple[Records, int]:
    """`records` with every attacked row classified again (module docstring), and how many
    claims were withdrawn. Records without adversarial images (read back from a database) are
    returned unchanged."""
    rows = np.flatnonzero(records.attacked)
    if not len(rows) or records.adversarial.shape[1] == 0:
        return records, 0
    z = _logits(loaded, records.adversarial[rows])
    goal = records.target[rows] if targeted else records.label[rows]
    margin = margins(z, goal, targeted)
    tol = tolerance(z)
    adv_pred = records.adv_pred.copy()
    adv_pred[rows] = np.argmax(z, axis=1)
    if not targeted:  # within the tolerance of a tie with the label: the label's
        tie = rows[np.abs(margin) <= tol]
        adv_pred[tie] = records.label[tie]
    withdrawn = rows[records.flipped[rows] & ~(margin > tol)]
    iterations = records.iterations.copy()
    iterations[withdrawn] = 0
    unconfirmed = np.zeros(len(iterations), bool)
    unconfirmed[withdrawn] = True
    confirmed = replace(records, adv_pred=adv_pred, iterations=iterations, unconfirmed=unconfirmed)
    return confirmed, len(withdrawn)
