"""`spsa`: the SPSA attack (Uesato et al., ICML 2018), L∞, scores only.

A gradient-free attack: each step estimates the gradient of the logit margin by simultaneous
perturbation (SPSA) and takes an Adam step on it, then projects onto the ε-ball and the pixel
range. The estimate draws `samples` Rademacher directions v ∈ {±1}^d per image and step,
queries the model at x + δv and x − δv (both clipped to the pixel range, so every query is a
valid image) and averages (L(x + δv) − L(x − δv)) / (2δ) · v. The loss is the margin on logits,
z_label − max_{j≠label} z_j (targeted: max_{j≠target} z_j − z_target), which the attack drives
below zero. Adam as in CleverHans (β₁ 0.9, β₂ 0.999, ε 1e-9) on the perturbation, from a
uniform random start in the ball; each image stops at its first success (the engine's driver).

Defaults from the paper and CleverHans: ε 0.3, δ 0.01, learning rate 0.01, 128 directions
(256 queries) per step; 100 steps. The model is never differentiated: the engine's gradient
detector sees no gradient op in its graph (tested). The directions are counter-based, keyed on
(seed, image index, step, direction), so an image's result does not depend on its batch.
Queries per image: 1 (the start) + (2 · samples + 1) per step taken, the new point's scores
included — they travel in the attack's state, so the success check costs nothing more.

The directions are drawn and evaluated in groups of at most 8 (a `tf.while_loop` over the
groups), so memory is 2 · 8 · pixels floats per active image, whatever `samples` is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    Network,
    Param,
    ParamError,
    QueryCost,
    StepInputs,
    ThreatModel,
    clip,
    hookimpl,
    margin,
    project,
    random_signs,
    random_start,
    target_param,
    tf,
)

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-9
GROUP = 8  # most directions evaluated in one batch


def _group(samples: int) -> int:
    """The largest divisor of `samples` up to GROUP: the directions evaluated together."""
    return max(g for g in range(1, min(GROUP, samples) + 1) if samples % g == 0)


class SPSA(Attack):
    """Simultaneous-perturbation gradient estimates on the margin loss, Adam steps, L∞ ball."""

    name = "spsa"
    description = "SPSA, L∞ score-based black-box (eps 0.3, 100 steps × 256 queries)"
    #: 25,701 forward passes per robust image by default: too slow for every run.
    in_every = False
    params = (
        Param("eps", 0.3, "L∞ budget", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 100, "Adam steps", int, minimum=1),
        Param("samples", 128, "Rademacher directions per step (2 queries each)", int, minimum=1),
        Param("delta", 0.01, "SPSA perturbation size δ", float, minimum=0.0, min_exclusive=True),
        Param("lr", 0.01, "Adam learning rate", float, minimum=0.0, min_exclusive=True),
        Param("random_start", True, "start from a uniform point of the ball", bool),
        target_param(),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def check(self, params: Mapping[str, Any]) -> None:
        keys = params["iterations"] * (params["samples"] // _group(params["samples"]))
        if keys >= 2**31:
            raise ParamError(
                f"spsa.samples: {params['iterations']} steps × {params['samples']} directions "
                "exceed the random-number counter (2^31 draws per image)"
            )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf", params["eps"])

    def query_cost(self, params: Mapping[str, Any]) -> QueryCost:
        return QueryCost(1, 2 * params["samples"] + 1)

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        if not params["random_start"]:
            return s.x0
        return random_start(s, "inf", params["eps"], params["clip_min"], params["clip_max"])

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        """The current images' logits (one query) and Adam's two moments."""
        zeros = tf().zeros_like(s.x)
        return (net.logits(s.x), zeros, zeros)

    def logits_of(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        return s.state[0]

    def _loss(self, logits, s: StepInputs, params: Mapping[str, Any], copies: int = 1):
        """The margin the attack drives below zero, per row; `copies` consecutive rows of
        `logits` belong to each image of `s`."""
        t = tf()
        targeted = self.is_targeted(params)
        goal = t.repeat(s.targets if targeted else s.labels, copies)
        m = margin(logits, goal, t.one_hot(goal, t.shape(logits)[1], dtype=logits.dtype))
        return -m if targeted else m

    def _estimate(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """The SPSA gradient estimate [k, pixels] of the loss at `s.x` (2 · samples queries)."""
        t = tf()
        samples, delta = params["samples"], params["delta"]
        g = _group(samples)
        groups = samples // g
        k, d = t.shape(s.x)[0], s.pixels

        def body(j, total):
            key = s.iteration * groups + j
            v = t.reshape(random_signs(s.seed, s.index, key, g * d, stream=11), [k, g, d])
            x = s.x[:, None, :]
            both = t.concat([x + delta * v, x - delta * v], axis=1)  # [k, 2g, d]
            points = clip(t.reshape(both, [-1, d]), params)
            loss = t.reshape(self._loss(net.logits(points), s, params, 2 * g), [k, 2 * g])
            diff = (loss[:, :g] - loss[:, g:]) / (2.0 * delta)
            return j + 1, total + t.reduce_sum(diff[:, :, None] * v, axis=1)

        _, total = t.compat.v1.while_loop(
            lambda j, _: j < groups, body, [t.constant(0), t.zeros_like(s.x)], back_prop=False
        )
        return total / float(samples)

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        _, m, v = s.state
        grad = self._estimate(net, s, params)
        m = BETA1 * m + (1.0 - BETA1) * grad
        v = BETA2 * v + (1.0 - BETA2) * t.square(grad)
        n = t.cast(s.iteration + 1, t.float32)
        m_hat = m / (1.0 - t.pow(BETA1, n))
        v_hat = v / (1.0 - t.pow(BETA2, n))
        x = s.x - params["lr"] * m_hat / (t.sqrt(v_hat) + ADAM_EPS)
        x = project(x, s.x0, "inf", params["eps"], params["clip_min"], params["clip_max"])
        return x, (net.logits(x), m, v)


@hookimpl
def register_attacks(register) -> None:
    register(SPSA())
