"""`apgd`: Auto-PGD (Croce & Hein, ICML 2020), L∞ or L2, cross-entropy or DLR loss.

PGD without a step size to tune. From a random start x⁰ in the ε-ball, with step η = 2ε:

    z  = Π(xᵏ + η · dir(∇f(xᵏ)))                  dir = sign (L∞) or ∇/‖∇‖₂ (L2)
    xᵏ⁺¹ = Π(xᵏ + α(z − xᵏ) + (1 − α)(xᵏ − xᵏ⁻¹))     α = 0.75 (1 on the first step)

Π projects onto the ε-ball and the pixel range. At checkpoints w_j (`checkpoints`: 22 % of the
iterations, then intervals shrinking by 3 % down to 6 %: 0, 22, 41, 57, 70, 80, 87, 93, 99 of
100) each image halves its η and moves back to the point of highest loss seen so far (with the
gradient there) when (a) at most ρ = 0.75 of the steps since the last checkpoint increased the
loss — the loss oscillates — or (b) its η was not halved at the last checkpoint and the best loss
has not improved since — it stalls. All of this is per-image state carried by the engine's loop
(`initial_state`/`step_with_state`); the checkpoint table is baked into the graph.

Losses (`loss`): `ce`, cross-entropy on logits; `dlr`, the difference of logits ratio (scale
invariant, `advbench.dlr_loss`). With `target` set the attack aims at a class: `ce` descends the
target's cross-entropy, `dlr` ascends the targeted DLR (`advbench.targeted_dlr_loss`, the
APGD-T of AutoAttack); success is the prediction reaching the target. Both losses are accepted
with or without a target, as in the reference code.

`target_rank` k ≥ 1 is AutoAttack's APGD-T: the target of each image is the k-th runner-up of
its *clean* logits (sorted descending, computed in-graph from the originals when the loop
starts), the loss is the targeted one (targeted DLR with `loss=dlr`), and success is any
misclassification, not reaching the target — the attack is untargeted in what it reports (one
row per image), targeted only in the direction it pushes. AutoAttack's `autoattack` runs it for
k = 1..9, each rank only on the images still robust.

The best adversarial point on the whole path is kept. The reference keeps the last
misclassified iterate aside while it goes on maximising the loss; here the engine's driver
scores every iterate before the next step and stops each image at its first success, so a
success found mid-path is returned even if later iterates (after a restart from the best-loss
point, or an overshoot) are no longer adversarial — nothing is lost, and the image costs no
further steps. Its iterations-to-flip is the first successful iterate.

Restarts (`restarts` R > 1) run inside the same loop: after the N steps of one run an image
that is still standing gets a fresh random start (counter-based randomness keyed by its index
and the step number) and its state is re-initialised, so the loop has R·(N + 1) − 1 steps
(each later run's random start is itself scored) and only images still robust are restarted,
as in the reference's `perturb`. Random starts are uniform in the ε-ball (L∞) or a uniform
point of the L2 ball (`advbench.random_start`), keyed by image index: an image's path does
not depend on the batch it is in.

Where this follows the reference code (fra31/auto-attack, `autopgd_base.py`) rather than the
paper's wording: the checkpoint intervals use its integer arithmetic (int(0.22 N), decrements
of int(0.03 N), floor int(0.06 N)); condition (a) is `increases ≤ ρ · interval` and condition
(b) is not tested at the first checkpoint. Where it follows the paper: the first interval's
increases are counted against the loss at the random start.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

import numpy as np

from advbench import (
    CLIP_PARAMS,
    EOT_PARAM,
    SEED_PARAM,
    Attack,
    ImageSpec,
    Network,
    Param,
    ParamError,
    StepInputs,
    ThreatModel,
    dlr_loss,
    expected_gradient,
    gradient_step,
    hookimpl,
    project,
    random_start,
    target_param,
    targeted_dlr_loss,
    tf,
)

MOMENTUM = 0.75


def checkpoints(iterations: int) -> list[int]:
    """The steps after which step sizes are checked: 0, then w_j < `iterations`.

    The reference code's integer schedule: the first interval is int(0.22 N) steps, each later
    one int(0.03 N) shorter, never shorter than int(0.06 N) (each at least one step).
    """
    n = int(iterations)
    length = max(int(0.22 * n), 1)
    shrink, floor = max(int(0.03 * n), 1), max(int(0.06 * n), 1)
    points = [0]
    while points[-1] + length < n:
        points.append(points[-1] + length)
        length = max(length - shrink, floor)
    return points


def interval_table(iterations: int) -> np.ndarray:
    """float32 [N + 1]: at a checkpoint w_j (j ≥ 1) the interval w_j − w_{j−1}, else 0."""
    table = np.zeros(int(iterations) + 1, np.float32)
    points = checkpoints(iterations)
    for before, at in pairwise(points):
        table[at] = at - before
    return table


class APGD(Attack):
    """Auto-PGD: momentum PGD whose per-image step size halves when progress stops."""

    name = "apgd"
    description = "Auto-PGD, L∞/L2, ce or (targeted) DLR loss, adaptive step (eps 0.3, 100 steps)"
    params = (
        Param("eps", 0.3, "radius of the threat ball", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 100, "steps per restart", int, minimum=1),
        Param("norm", "inf", "threat model: inf (L∞) or 2 (L2)", str, choices=("inf", "2")),
        Param(
            "loss",
            "ce",
            "objective: ce (cross-entropy on logits) or dlr (difference of logits ratio; "
            "the targeted DLR when target is set)",
            str,
            choices=("ce", "dlr"),
        ),
        Param(
            "rho",
            0.75,
            "halve the step when at most this share of steps increased the loss",
            float,
            minimum=0.0,
            maximum=1.0,
            min_exclusive=True,
        ),
        Param(
            "restarts", 1, "runs from fresh random starts for images still robust", int, minimum=1
        ),
        EOT_PARAM,
        target_param(),
        Param(
            "target_rank",
            0,
            "0: off; k >= 1: push towards the k-th runner-up of the clean logits (APGD-T), "
            "success = any misclassification",
            int,
            minimum=0,
        ),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def check(self, params: Mapping[str, Any]) -> None:
        """A target class and a target rank are two answers to one question."""
        if params["target_rank"] and params["target"] != "none":
            raise ParamError(
                f"apgd.target_rank={params['target_rank']} and apgd.target={params['target']}"
                " both choose the target: set one of them"
            )

    def for_dataset(self, params: Mapping[str, Any], spec: ImageSpec) -> dict[str, Any]:
        """A target rank needs that many other classes; DLR needs 3 classes (4 targeted)."""
        k = spec.classes
        if params["target_rank"] > k - 1:
            raise ParamError(
                f"invalid value {params['target_rank']} for apgd.target_rank: must be <= "
                f"{k - 1} (classes - 1)"
            )
        targeted = bool(params["target_rank"]) or self.is_targeted(params)
        need = 4 if targeted else 3
        if params["loss"] == "dlr" and k < need:
            raise ParamError(
                f"apgd.loss=dlr{' with a target' if targeted else ''} needs {need} classes or "
                f"more; the dataset has {k}"
            )
        return super().for_dataset(params, spec)

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf" if params["norm"] == "inf" else "l2", params["eps"])

    def iterations(self, params: Mapping[str, Any]) -> int:
        """N steps per restart, plus one fresh random start between restarts."""
        return int(params["restarts"]) * (int(params["iterations"]) + 1) - 1

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        return random_start(
            s, params["norm"], params["eps"], params["clip_min"], params["clip_max"]
        )

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        """Placeholders of the right shapes: the first step of each run fills them in."""
        t = tf()
        image, row = t.zeros_like(s.x), t.zeros_like(s.x[:, 0])
        # x_prev, eta, best_loss, x_best, grad_best, prev_loss, increases, reduced, best_at_check
        state = (image, row, row, image, image, row, row, t.cast(row, t.bool), row)
        rank = int(params["target_rank"])
        if rank:
            # APGD-T's target: the rank-th runner-up of the clean logits, fixed for the run
            ranked = t.argsort(net.logits(s.x0), axis=1, direction="DESCENDING", stable=True)
            state += (t.cast(ranked[:, rank], t.int64),)
        return state

    def objective(self, logits, s: StepInputs, params: Mapping[str, Any], rows=lambda v: v):
        """The per-image loss the attack ascends, [k]; `rows` lays the labels and targets out
        as the rows of `logits` (a batch tiled for `eot`)."""
        t = tf()
        ranked = bool(params["target_rank"])
        targeted = ranked or self.is_targeted(params)
        targets = s.state[-1] if ranked else s.targets  # target_rank: the class in the state
        labels, targets = rows(s.labels), rows(targets)
        if params["loss"] == "dlr":
            return (
                targeted_dlr_loss(logits, labels, targets) if targeted else dlr_loss(logits, labels)
            )
        classes = targets if targeted else labels
        ce = t.nn.sparse_softmax_cross_entropy_with_logits(labels=classes, logits=logits)
        return -ce if targeted else ce

    def loss_and_gradient(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """The objective at `s.x` and its input gradient, each averaged over `eot` passes."""

        def one_draw(x, rows):
            loss = self.objective(net.logits(x), s, params, rows)
            (grad,) = tf().gradients(tf().reduce_sum(loss), [x])
            return loss, grad

        return expected_gradient(net, s.x, one_draw, int(params["eot"]))

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        n_iter, eps, norm = int(params["iterations"]), float(params["eps"]), params["norm"]
        restarts = int(params["restarts"]) > 1
        j = s.iteration % (n_iter + 1) if restarts else s.iteration  # step within this run
        loss, grad = self.loss_and_gradient(net, s, params)
        x_prev, eta, best_loss, x_best, g_best, prev_loss, ups, reduced, best_at_check = s.state[:9]

        # The first step of a run (re)initialises the state from its start point.
        first = t.equal(j, 0)
        eta = t.where(first, 2.0 * eps * t.ones_like(loss), eta)
        x_prev = t.where(first, s.x, x_prev)
        ups = t.where(first, t.zeros_like(ups), ups + t.cast(loss > prev_loss, t.float32))
        reduced = t.logical_or(first, reduced)  # condition (b) waits for the second checkpoint
        best_at_check = t.where(first, loss, best_at_check)
        better = t.logical_or(first, loss > best_loss)
        best_loss = t.where(better, loss, best_loss)
        x_best = t.where(better[:, None], s.x, x_best)
        g_best = t.where(better[:, None], grad, g_best)

        # At a checkpoint: halve the step and go back to the best point where progress stopped.
        interval = t.gather(t.constant(interval_table(n_iter)), j)
        at_check = interval > 0
        oscillates = ups <= params["rho"] * interval
        stalls = t.logical_and(t.logical_not(reduced), best_at_check >= best_loss)
        halve = t.logical_and(at_check, t.logical_or(oscillates, stalls))
        eta = t.where(halve, 0.5 * eta, eta)
        x_from = t.where(halve[:, None], x_best, s.x)
        g_from = t.where(halve[:, None], g_best, grad)
        reduced = t.where(at_check, halve, reduced)
        best_at_check = t.where(at_check, best_loss, best_at_check)
        ups = t.where(at_check, t.zeros_like(ups), ups)

        box = (s.x0, norm, eps, params["clip_min"], params["clip_max"])
        z = project(gradient_step(x_from, g_from, eta[:, None], norm), *box)
        a = t.where(first, 1.0, MOMENTUM)
        x_next = project(x_from + a * (z - x_from) + (1.0 - a) * (x_from - x_prev), *box)
        if restarts:
            x_next = t.cond(
                t.equal(j, n_iter),
                lambda: random_start(s, norm, eps, *box[3:]),
                lambda: x_next,
            )
        state = (x_from, eta, best_loss, x_best, g_best, loss, ups, reduced, best_at_check)
        return x_next, state + s.state[9:]  # target_rank's target rides along unchanged


@hookimpl
def register_attacks(register) -> None:
    register(APGD())
