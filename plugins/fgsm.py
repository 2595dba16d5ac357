"""`fgsm`: the fast gradient sign method (Goodfellow et al., 2015), one step of size eps.

x* = clip(x + eps · sign(∇x loss)), the loss on logits (cross-entropy by default). Targeted
with `target`: one step down the target's loss. Default eps 0.3, MadryLab's MNIST budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    EOT_PARAM,
    LOSS_PARAM,
    Attack,
    Network,
    Param,
    StepInputs,
    ThreatModel,
    ascent_gradient,
    clip,
    hookimpl,
    target_param,
    tf,
)


class FGSM(Attack):
    """One signed-gradient step of size eps."""

    name = "fgsm"
    description = "fast gradient sign method, one step of eps (L∞ 0.3)"
    params = (
        Param("eps", 0.3, "step and L∞ budget", float, minimum=0.0, min_exclusive=True),
        LOSS_PARAM,
        EOT_PARAM,
        target_param(),
        *CLIP_PARAMS,
    )

    def iterations(self, params: Mapping[str, Any]) -> int:
        return 1

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf", params["eps"])

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        grad = ascent_gradient(net, s, params["loss"], self.is_targeted(params), params["eot"])
        return clip(s.x + params["eps"] * tf().sign(grad), params)


@hookimpl
def register_attacks(register) -> None:
    register(FGSM())
