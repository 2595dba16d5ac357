"""Objectives that gradient attacks ascend, on logits (not on softmax outputs).

Cross-entropy on softmax *outputs* saturates and gives vanishing gradients for confident
models — a known source of weak FGSM numbers; every loss here starts from the logits.
"""

from __future__ import annotations

from typing import Any

from advbench.contract.eot import expected_gradient, tile_rows, tiled
from advbench.contract.lazy_tf import tf
from advbench.contract.model import Network
from advbench.contract.params import Param
from advbench.contract.steps import StepInputs

LOSS_PARAM = Param(
    "loss",
    "xent",
    "objective: xent (cross-entropy on logits), cw (logit margin), "
    "model (the model's own training loss and gradient)",
    str,
    choices=("xent", "cw", "model"),
)


def margin(logits, classes, onehot):
    """z_c − max_{j≠c} z_j per row: positive while class `c` wins."""
    t = tf()
    other = t.reduce_max(logits - 1e9 * onehot, axis=1)
    return t.gather(logits, classes, batch_dims=1) - other


# The margin by which a success must hold for the engine to confirm it (`engine.confirmation`),
# relative to 1 + the row's largest logit magnitude: far above float32 rounding (6e-8).
CONFIRM_RELATIVE = 1e-5


def beyond_tolerance(logits, classes, targeted: bool):
    """bool [k]: the goal holds by more than the engine's confirmation margin. Untargeted
    (`classes` the labels): some other class beats the label; targeted: the target beats every
    other class. An attack that stops at the first success and ends next to the boundary
    (DeepFool) uses this as its criterion, so that the engine never withdraws its claim."""
    t = tf()
    onehot = t.one_hot(classes, t.shape(logits)[1], dtype=logits.dtype)  # width from the logits
    m = margin(logits, classes, onehot)
    tol = CONFIRM_RELATIVE * (1.0 + t.reduce_max(t.abs(logits), axis=1))
    return m > tol if targeted else -m > tol


def least_adversarial(net: Network, x, goal, targeted: bool, draws: int):
    """Per image, the logits of the one of `draws` passes (`eot`) that is farthest from the
    attack's goal [k, classes]: `beyond_tolerance` holds on them exactly when it holds on every
    draw. An attack on a random model then stops only where every draw is fooled, not at the
    first lucky one, which the engine's confirmation (a fresh draw) would likely withdraw.
    The passes are the step's own (`eot.tiled`): they cost nothing more."""
    t = tf()
    z = net.logits(tiled(net, x, draws))
    goals = tile_rows(goal, draws)
    m = margin(z, goals, t.one_hot(goals, t.shape(z)[1], dtype=z.dtype))
    toward = (m if targeted else -m) - CONFIRM_RELATIVE * (1.0 + t.reduce_max(t.abs(z), axis=1))
    worst = t.argmin(t.reshape(toward, [draws, -1]), axis=0, output_type=t.int32)
    k = t.shape(x)[0]
    return t.gather(z, worst * k + t.range(k))


def ascent_gradient(net: Network, s: StepInputs, kind: str, targeted: bool, draws: int = 1) -> Any:
    """Per-image gradient of the objective the attack increases, w.r.t. `s.x` [k, pixels].

    Untargeted: increase the loss of the true label. Targeted: decrease the loss of the target.
    `draws` > 1 averages it over that many forward passes of a random model (`eot`); 1 is the
    plain graph, op for op.
    """
    t = tf()

    def one_draw(x, rows):
        if kind == "model":
            loss, grad = net.loss_gradient(x, rows(s.target_onehot if targeted else s.onehot))
            return (-loss, -grad) if targeted else (loss, grad)
        logits = net.logits(x)
        if kind == "xent":
            classes = rows(s.targets if targeted else s.labels)
            loss = t.nn.sparse_softmax_cross_entropy_with_logits(labels=classes, logits=logits)
            objective = -loss if targeted else loss
        elif targeted:  # cw margin
            objective = margin(logits, rows(s.targets), rows(s.target_onehot))
        else:
            objective = -margin(logits, rows(s.labels), rows(s.onehot))
        (grad,) = t.gradients(t.reduce_sum(objective), [x])
        return objective, grad

    return expected_gradient(net, s.x, one_draw, draws)[1]


def dlr_loss(logits, labels):
    """Difference of logits ratio (Croce & Hein, 2020), per image: larger is more adversarial.

    −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12), π the logits sorted in decreasing order.
    The margin is divided by a spread of the logits, so it is invariant to shifting and scaling
    them: a model cannot look robust by inflating its logits (which saturates cross-entropy).
    Needs at least three classes.
    """
    t = tf()
    top = t.math.top_k(logits, k=3).values
    z_y = t.gather(logits, labels, batch_dims=1)
    onehot = t.one_hot(labels, t.shape(logits)[1], dtype=logits.dtype)
    best_other = t.reduce_max(logits - 1e9 * onehot, axis=1)
    return -(z_y - best_other) / (top[:, 0] - top[:, 2] + 1e-12)


def targeted_dlr_loss(logits, labels, targets):
    """Targeted DLR (Croce & Hein, 2020), per image: larger means the target gains on the label.

    −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12), π the logits sorted in decreasing order;
    the denominator skips π2 so that it does not vanish when the target reaches the top.
    Needs at least four classes.
    """
    t = tf()
    top = t.math.top_k(logits, k=4).values
    z_y = t.gather(logits, labels, batch_dims=1)
    z_t = t.gather(logits, targets, batch_dims=1)
    return -(z_y - z_t) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)
