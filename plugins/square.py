"""`square`: the Square attack (Andriushchenko et al., 2020), L∞, black-box.

Uses only the model's scores (logits), never its gradients, so a model whose gradients mislead
cannot look robust by accident. Start: vertical stripes of ±eps. Each step proposes replacing
one random square of the perturbation by ±eps (one random sign) and keeps the proposal if the
margin z_label − max_{j≠label} z_j decreases. The square's area follows the paper's schedule
(p_init, halved at 10, 50, 200, 500, 1k, 2k, 4k, 6k, 8k of 10k iterations, rescaled to the
iteration budget). The current images' logits travel in the attack's state, so a query costs
one forward pass, the proposal's. Defaults: eps 0.3, p_init 0.8 (the paper's MNIST value),
1,000 iterations.

Any image shape: the stripes have one sign per column and channel, a square's side is
round(sqrt(p · h · w)) within 1 … min(h, w), it covers every channel of its pixels and each
channel gets its own sign, as in the reference code (rows are flattened h × w × c images).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from advbench import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    Network,
    Param,
    QueryCost,
    StepInputs,
    ThreatModel,
    clip,
    hookimpl,
    margin,
    random_signs,
    random_uniform,
    tf,
)

SCHEDULE = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


class Square(Attack):
    """Score-based random search over square-shaped L∞ perturbations."""

    name = "square"
    description = "Square attack, L∞ score-based black-box (eps 0.3, 1000 queries)"
    params = (
        Param("eps", 0.3, "L∞ budget", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 1000, "queries after the first", int, minimum=1),
        Param(
            "p_init",
            0.8,
            "initial share of pixels in a square",
            float,
            minimum=0.0,
            maximum=1.0,
            min_exclusive=True,
        ),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf", params["eps"])

    def query_cost(self, params: Mapping[str, Any]) -> QueryCost:
        """The start's scores, then one proposal per step (the accepted point's scores travel
        in the state)."""
        return QueryCost(1, 1)

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        h, w, c = s.shape
        # one sign per (column, channel): a row of w·c values, repeated down the h rows
        stripes = random_signs(s.seed, s.index, s.iteration, w * c, stream=7)
        return clip(s.x0 + params["eps"] * t.tile(stripes, [1, h]), params)

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        """The logits of the current images, carried so that each query costs one forward
        pass (the proposal's), not two."""
        return (net.logits(s.x),)

    def logits_of(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        return s.state[0]

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        eps = params["eps"]
        scaled = t.cast(s.iteration, t.float32) * (10000.0 / params["iterations"])
        halvings = t.reduce_sum(t.cast(scaled > t.constant(SCHEDULE, t.float32), t.float32))
        p = params["p_init"] / t.pow(2.0, halvings)
        h, w, c = s.shape
        side = t.clip_by_value(t.round(t.sqrt(p * float(h * w))), 1.0, float(min(h, w)))
        u = random_uniform(s.seed, s.index, s.iteration, 2, stream=8)
        # [k, 2]: row in [0, h - side], column in [0, w - side]
        corner = t.floor(u * (t.constant([h + 1.0, w + 1.0]) - side))
        row_grid = t.constant(np.arange(h, dtype=np.float32))[None, :]
        col_grid = t.constant(np.arange(w, dtype=np.float32))[None, :]
        rows = t.logical_and(row_grid >= corner[:, :1], row_grid < corner[:, :1] + side)
        cols = t.logical_and(col_grid >= corner[:, 1:], col_grid < corner[:, 1:] + side)
        square = t.logical_and(rows[:, :, None, None], cols[:, None, :, None])  # [k, h, w, 1]
        mask = t.reshape(t.tile(square, [1, 1, 1, c]), [-1, h * w * c])
        sign = random_signs(s.seed, s.index, s.iteration, c, stream=9)  # one per channel
        delta = t.where(mask, eps * t.tile(sign, [1, h * w]), s.x - s.x0)
        proposal = clip(s.x0 + delta, params)
        (logits,) = s.state
        proposed = net.logits(proposal)
        better = margin(proposed, s.labels, s.onehot) < margin(logits, s.labels, s.onehot)
        return (
            t.where(better[:, None], proposal, s.x),
            (t.where(better[:, None], proposed, logits),),
        )


@hookimpl
def register_attacks(register) -> None:
    register(Square())
