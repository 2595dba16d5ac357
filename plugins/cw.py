"""`cw-l2`: Carlini & Wagner's L2 attack (2017), with its binary search over c.

Minimise ‖x − x0‖² + c · max(z_label − max_{j≠label} z_j, −κ) (targeted: max(max_{j≠t} z_j −
z_t, −κ)) over x = (tanh(w) + 1)/2 · (clip_max − clip_min) + clip_min, with Adam. After each
of `binary_steps` rounds, c is halved toward the smallest value that still succeeds (or
multiplied by 10 while none has). The smallest-L2 successful image found is the result.
Defaults: 5 binary steps, κ 0 as in CleverHans v3, but 100 Adam steps per round (not 1,000,
to keep CPU benchmarks practical) with learning rate 0.1 (not 0.01) and initial c 1.0 (not
0.01). Measured on `mlp`, 200 images: with CleverHans' 0.01 and 100 steps only 50 % succeed,
because MNIST's pixels sit at 0 or 1, where tanh is saturated (w ≈ ±7.25) and w moves at most
lr per step; with 0.1 every image succeeds, with a smaller median L2 than DeepFool's.

The whole search is one graph (a `tf.while_loop` per round); iterations-to-flip reports the
Adam step (counted over all rounds) at which the returned example was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    Attack,
    BatchInputs,
    BatchOutputs,
    Network,
    Param,
    ThreatModel,
    hookimpl,
    margin,
    target_param,
    tf,
)

BIG = 1e10


class CarliniWagnerL2(Attack):
    """C&W L2 with binary search over the trade-off constant."""

    name = "cw-l2"
    description = "Carlini-Wagner L2, binary search over c (5 rounds × 100 Adam steps)"
    params = (
        Param("binary_steps", 5, "rounds of the search over c", int, minimum=1),
        Param("iterations", 100, "Adam steps per round", int, minimum=1),
        Param("learning_rate", 0.1, "Adam step size", float, minimum=0.0, min_exclusive=True),
        Param("initial_const", 1.0, "first c", float, minimum=0.0, min_exclusive=True),
        Param("confidence", 0.0, "margin κ the example must win by", float, minimum=0.0),
        target_param(),
        *CLIP_PARAMS,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.minimal("l2")

    def iterations(self, params: Mapping[str, Any]) -> int:
        """Adam steps over all rounds: iterations-to-flip counts across the binary search, so
        an image can succeed as late as step binary_steps × iterations."""
        return int(params["binary_steps"]) * int(params["iterations"])

    def build(self, net: Network, b: BatchInputs, params: Mapping[str, Any]) -> BatchOutputs:
        t = tf()
        lo, hi = params["clip_min"], params["clip_max"]
        targeted = self.is_targeted(params)
        x0, n = b.x, t.shape(b.x)[0]
        cls = b.targets if targeted else b.labels
        onehot = t.one_hot(cls, b.classes, dtype=t.float32)
        kappa = params["confidence"]

        def to_x(w):
            return (t.tanh(w) + 1.0) / 2.0 * (hi - lo) + lo

        w0 = t.atanh(t.clip_by_value((x0 - lo) / (hi - lo) * 2.0 - 1.0, -1.0, 1.0) * 0.999999)
        const = t.fill([n], params["initial_const"])
        lower, upper = t.zeros([n]), t.fill([n], BIG)
        best_l2, best_x, best_at = t.fill([n], BIG), x0, t.zeros([n], t.int32)
        its = params["iterations"]
        b1, b2, lr = 0.9, 0.999, params["learning_rate"]
        for round_ in range(params["binary_steps"]):

            def cond(i, *_):
                return i < its

            def body(i, w, m, v, best_l2, best_x, best_at, won, const=const, round_=round_):
                x = to_x(w)
                logits = net.logits(x)
                l2sq = t.reduce_sum(t.square(x - x0), axis=1)
                gap = margin(logits, cls, onehot)  # z_cls − max other
                f = t.maximum(-gap if targeted else gap, -kappa)
                (g,) = t.gradients(t.reduce_sum(l2sq + const * f), [w])
                step = t.cast(i + 1, t.float32)
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * t.square(g)
                m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
                w_next = w - lr * m_hat / (t.sqrt(v_hat) + 1e-8)
                ok = (gap > kappa) if targeted else (gap < -kappa)
                better = t.logical_and(ok, l2sq < best_l2)
                best_l2 = t.where(better, l2sq, best_l2)
                best_x = t.where(better[:, None], x, best_x)
                best_at = t.where(better, round_ * its + i + 1, best_at)
                return i + 1, w_next, m, v, best_l2, best_x, best_at, t.logical_or(won, ok)

            zeros = t.zeros_like(w0)
            out = t.compat.v1.while_loop(
                cond,
                body,
                [t.constant(0), w0, zeros, zeros, best_l2, best_x, best_at, t.zeros([n], t.bool)],
                back_prop=False,
            )
            best_l2, best_x, best_at, won = out[4], out[5], out[6], out[7]
            upper = t.where(won, t.minimum(upper, const), upper)
            lower = t.where(won, lower, t.maximum(lower, const))
            const = t.where(
                upper < BIG / 10, (lower + upper) / 2.0, t.where(won, const, const * 10)
            )
        pred = t.argmax(net.logits(best_x), 1)
        return BatchOutputs(best_x, best_at, pred)


@hookimpl
def register_attacks(register) -> None:
    register(CarliniWagnerL2())
