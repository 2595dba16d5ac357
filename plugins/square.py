"""`square`: the Square attack (Andriushchenko et al., 2020), L∞, black-box.

Uses only the model's scores (logits), never its gradients, so a model whose gradients mislead
cannot look robust by accident. Start: vertical stripes of ±eps. Each step proposes replacing
one random square of the perturbation by ±eps (one random sign) and keeps the proposal if the
margin z_label − max_{j≠label} z_j decreases. The square's area follows the paper's schedule
(p_init, halved at 10, 50, 200, 500, 1k, 2k, 4k, 6k, 8k of 10k iterations, rescaled to the
iteration budget). Defaults: eps 0.3, p_init 0.8 (the paper's MNIST value), 1,000 iterations.
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

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        stripes = random_signs(s.seed, s.index, s.iteration, 28, stream=7)  # one sign per column
        return clip(s.x0 + params["eps"] * t.tile(stripes, [1, 28]), params)

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        eps = params["eps"]
        scaled = t.cast(s.iteration, t.float32) * (10000.0 / params["iterations"])
        halvings = t.reduce_sum(t.cast(scaled > t.constant(SCHEDULE, t.float32), t.float32))
        p = params["p_init"] / t.pow(2.0, halvings)
        side = t.clip_by_value(t.round(t.sqrt(p * 784.0)), 1.0, 28.0)
        u = random_uniform(s.seed, s.index, s.iteration, 2, stream=8)
        corner = t.floor(u * (29.0 - side))  # [k, 2]: row, column in [0, 28 - side]
        grid = t.constant(np.arange(28, dtype=np.float32))
        rows = t.logical_and(grid[None, :] >= corner[:, :1], grid[None, :] < corner[:, :1] + side)
        cols = t.logical_and(grid[None, :] >= corner[:, 1:], grid[None, :] < corner[:, 1:] + side)
        mask = t.reshape(t.logical_and(rows[:, :, None], cols[:, None, :]), [-1, 784])
        sign = random_signs(s.seed, s.index, s.iteration, 1, stream=9)
        delta = t.where(mask, eps * sign * t.ones_like(s.x), s.x - s.x0)
        proposal = clip(s.x0 + delta, params)
        old = margin(net.logits(s.x), s.labels, s.onehot)
        new = margin(net.logits(proposal), s.labels, s.onehot)
        return t.where((new < old)[:, None], proposal, s.x)


@hookimpl
def register_attacks(register) -> None:
    register(Square())
