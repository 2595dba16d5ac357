"""`cw-l2`: Carlini & Wagner's L2 attack (2017), with its binary search over c.

Minimise ‖x − x0‖² + c · max(z_label − max_{j≠label} z_j, −κ) (targeted: max(max_{j≠t} z_j −
z_t, −κ)) over x = (tanh(w) + 1)/2 · (clip_max − clip_min) + clip_min, with Adam. After each
of `binary_steps` rounds, c is halved toward the smallest value that still succeeds (or
multiplied by 10 while none has). The smallest-L2 successful image found over every step of
every round is the result.

Deviations from the paper (the authors' code and Foolbox 3: 9 rounds × 10,000 Adam steps at
learning rate 0.01, initial c 0.001, κ 0, abort early; CleverHans v3: 5 × 1,000, initial c
0.01), each measured on the shipped models, first 50 test images unless said (README,
"`cw-l2`'s defaults against a ten times longer search"):

- **200 Adam steps per round, learning rate 0.1, initial c 1.0.** The step budget keeps CPU
  benchmarks practical. With a learning rate of 0.01 and 100 steps only 50 % of `mlp`'s images
  succeed (200 images), because MNIST's pixels sit at 0 or 1, where tanh is saturated
  (w ≈ ±7.25) and w moves at most lr per step; with 0.1 every image succeeds. 200 steps, not
  100: warm-started 5 × 100 steps leave `cnn-pgd`'s median at 2.57, 14 % above 5 × 1,000.
- **Warm start** (`warm_start`, default true): a round begins at the best adversarial point
  found so far, with fresh Adam moments; an image with none restarts from x0 as in the paper.
  The paper restarts every round from x0, so each round must first cross the boundary again and
  a short round ends before it has descended: at 5 × 100 steps the median L2 on `cnn-pgd` was
  3.18 against 2.59 with 10× the steps per round. Warm-started, 5 × 200 steps reach 2.22, the
  same as 5 × 1,000 warm-started steps (2.25). `warm_start=false` is the paper's search. A
  round still succeeds, as in the paper, when any of its iterates is adversarial, so once an
  image has an example every later round succeeds (it starts at one) and c is halved each
  round: the search walks c down while keeping the best example. Counting only the round's
  last iterate, or only an improvement, gave the same medians within 1.3 % (`mlp` 0.622 and
  0.616 against 0.613; `cnn-pgd` 2.220 all three).
- **Success needs the engine's confirmation margin** (`beyond_tolerance`), not just a negative
  margin: a point within float32 rounding of the boundary was kept as the best and then
  withdrawn by the engine, so longer runs, which end closer to the boundary, succeeded less
  (`keras-mlp`, 5 × 1,000 steps: 19 of 30 images; now 30 of 30).
- **No learning-rate decay, no abort-early.** A cosine decay of lr within each round left
  images unbroken (`cnn-pgd`, 49 attacked: 24 broken when decayed to 1 % of lr; 39 when
  decayed to 10 % with the warm start): with the smaller average step, saturated pixels no
  longer move far enough within a round. Abort-early stops a batch's loop only when every
  image in it has stalled, which a batch of thousands of images never does, so it would save
  nothing here.

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
    beyond_tolerance,
    binary_search,
    cw_hinge,
    hookimpl,
    target_param,
    tf,
)

BIG = 1e10


class CarliniWagnerL2(Attack):
    """C&W L2 with binary search over the trade-off constant."""

    name = "cw-l2"
    description = "Carlini-Wagner L2, binary search over c (5 rounds × 200 Adam steps, warm start)"
    params = (
        Param("binary_steps", 5, "rounds of the search over c", int, minimum=1),
        Param("iterations", 200, "Adam steps per round", int, minimum=1),
        Param("learning_rate", 0.1, "Adam step size", float, minimum=0.0, min_exclusive=True),
        Param("initial_const", 1.0, "first c", float, minimum=0.0, min_exclusive=True),
        Param("confidence", 0.0, "margin κ the example must win by", float, minimum=0.0),
        Param(
            "warm_start",
            True,
            "start each round at the best adversarial point so far (false: at x0, the paper's)",
            bool,
        ),
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
        its = params["iterations"]
        b1, b2, lr = 0.9, 0.999, params["learning_rate"]

        def run_round(round_, const, best):
            def body(i, w, m, v, best, won):
                best_l2, best_x, best_w, best_at = best
                x = to_x(w)
                logits = net.logits(x)
                l2sq = t.reduce_sum(t.square(x - x0), axis=1)
                f, ok = cw_hinge(logits, cls, onehot, targeted, kappa)
                (g,) = t.gradients(t.reduce_sum(l2sq + const * f), [w])
                step = t.cast(i + 1, t.float32)
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * t.square(g)
                m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
                w_next = w - lr * m_hat / (t.sqrt(v_hat) + 1e-8)
                ok = t.logical_and(ok, beyond_tolerance(logits, cls, targeted))
                better = t.logical_and(ok, l2sq < best_l2)
                best = (
                    t.where(better, l2sq, best_l2),
                    t.where(better[:, None], x, best_x),
                    t.where(better[:, None], w, best_w),
                    t.where(better, round_ * its + i + 1, best_at),
                )
                return i + 1, w_next, m, v, best, t.logical_or(won, ok)

            zeros = t.zeros_like(w0)
            start = best[2] if params["warm_start"] else w0
            out = t.compat.v1.while_loop(
                lambda i, *_: i < its,
                body,
                [t.constant(0), start, zeros, zeros, best, t.zeros([n], t.bool)],
                back_prop=False,
            )
            return out[4], out[5]

        # best_w: the tanh-space point of best_x (w0 while none), where a warm round starts
        first = (t.fill([n], BIG), x0, w0, t.zeros([n], t.int32))
        _, best_x, _, best_at = binary_search(
            n, params["binary_steps"], params["initial_const"], run_round, first
        )
        pred = t.argmax(net.logits(best_x), 1)
        return BatchOutputs(best_x, best_at, pred)


@hookimpl
def register_attacks(register) -> None:
    register(CarliniWagnerL2())
