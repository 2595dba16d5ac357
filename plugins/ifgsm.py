"""`ifgsm`: the tutorial's iterative fast gradient sign method (section 6.4).

x* = clip(x + step · sign(∂loss/∂x), clip_min, clip_max) with step 0.002, at most 300 steps,
each image stopping at its first flip. The gradient is the model's own `loss_gradient` — for
the `mlp` that is the tutorial's manual backprop `d_a_0 = delta_1 · W1ᵀ` of its squared error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    Attack,
    Network,
    Param,
    StepInputs,
    ThreatModel,
    clip,
    hookimpl,
    tf,
)


class IFGSM(Attack):
    """Iterative signed-gradient ascent of the model's training loss on the true label."""

    name = "ifgsm"
    description = "iterative FGSM on the model's loss, step 0.002 (tutorial 6.4)"
    params = (
        Param("step", 0.002, "size of each step (L∞)", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 300, "most steps per image", int, minimum=1),
        *CLIP_PARAMS,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        # A bound the kit asserts, not a budget: results are steps-to-flip, not accuracy at eps.
        return ThreatModel.bounded("linf", params["step"] * params["iterations"], reported=False)

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        _, grad = net.loss_gradient(s.x, s.onehot)
        return clip(s.x + params["step"] * tf().sign(grad), params)


@hookimpl
def register_attacks(register) -> None:
    register(IFGSM())
